"""Template clones made ahead of time, so that a ``migration_runner`` waits for none.

A ``migration_runner`` going to a state an earlier one reached gets a clone of the
template kept there (see :meth:`.harness.Harness.from_template`). On PostgreSQL that is
``CREATE DATABASE ... TEMPLATE``: one statement, but 50 to 500 ms of copying on the
server (it writes the whole database to the WAL), and a test suite whose every test
upgrades its runner to ``head`` pays it per test. Once a template has been cloned for
one runner it is likely to be asked for again, so the next clone is started at once, on
a thread of its own, while the test runs: the next runner going there takes it ready
(or waits for the rest of it).

A clone ahead is the plugin's like any other: its name is the run's, it is registered
before the statement is sent, and :meth:`.harness.Harness.close` waits for it (bounded)
and drops it when no runner took it. The thread touches nothing but the server (one
``CREATE DATABASE`` per database of the set); bookkeeping stays on the caller's thread.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

_WAIT = 30.0
"""Seconds :meth:`CloneAhead.wait` waits at most: a CREATE DATABASE of a template takes well under one. A
clone still running then (a server that hangs) is left to the next run's clean-up, which drops every
database of a finished run."""


class CloneAhead:
    """One clone being made on a background thread: ``make()`` runs there, once."""

    def __init__(self, make: Callable[[], object]) -> None:
        self._done = threading.Event()
        self.error: BaseException | None = None
        """What ``make()`` raised, if it did (the caller then clones the usual way, which reports it)."""
        thread = threading.Thread(target=self._run, args=(make,), name="pytest-migrations-clone-ahead", daemon=True)
        thread.start()

    def _run(self, make: Callable[[], object]) -> None:
        try:
            make()
        except BaseException as exc:  # kept for the caller, which falls back to a plain clone
            self.error = exc
        finally:
            self._done.set()

    def wait(self, timeout: float = _WAIT) -> bool:
        """Wait for the clone; whether it is made (``False``: it failed, or is still running after ``timeout``)."""
        return self._done.wait(timeout) and self.error is None

    @property
    def finished(self) -> bool:
        """Whether the thread is done (made or failed): the databases may then be dropped."""
        return self._done.is_set()
