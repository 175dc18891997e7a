"""Bounded faults: every env.py run is watched, so a step that hangs ends, and Ctrl-C ends the run.

env.py and its migrations run in a thread of their own; the thread that asked for the
run (pytest's) waits for it in short slices and keeps control:

- **step timeout**: a step (one revision's upgrade or downgrade) running longer than
  ``--migrations-step-timeout`` is stopped. First the server is asked what the step
  waits on (PostgreSQL's lock views: the blocking session and its query; MySQL's
  process list), then its running statements are cancelled on the server (SQLite:
  the connection is interrupted), and :class:`StepTimeout` is raised inside the
  thread for a step stuck in Python (``time.sleep``). The step's failure says all of
  that. A thread that still does not give up within a grace period is abandoned: it
  is a daemon, its exception fires as soon as it runs Python again, and its
  database is dropped like any other;
- **Ctrl-C**: pytest's thread gets ``KeyboardInterrupt`` at once, cancels what runs
  on the server, stops the env.py thread the same way, and lets pytest unwind and
  drop every database: one Ctrl-C is enough.

Nothing here knows a dialect: the runner passes a :class:`Canceller` that does.
"""

from __future__ import annotations

import ctypes
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

POLL_SECONDS = 0.2
"""How often the waiting thread looks at the clock and stays interruptible."""
GRACE_SECONDS = 5.0
"""How long a stopped step may take to unwind before its thread is abandoned."""


class StepTimeout(BaseException):
    """Raised inside the env.py thread when its step ran out of time.

    A BaseException, so that a migration catching ``Exception`` cannot swallow it.
    """


class Canceller(Protocol):
    """What the runner can do on the server about its own databases."""

    def describe_waits(self) -> str | None:
        """What the running statements wait on (a lock and who holds it), or ``None``."""

    def cancel(self) -> None:
        """Cancel every statement running on the run's databases."""


@dataclass
class Stopped:
    """The record of a step stopped by the watchdog."""

    label: str
    revision: str
    seconds: float
    statement: str | None
    waits: str | None
    abandoned: bool = False
    interrupted: bool = False
    """:class:`StepTimeout` was raised in the thread (once)."""
    since: float = field(default_factory=time.monotonic)


def raise_in_thread(thread: threading.Thread, exc_type: type[BaseException]) -> None:
    """Raise ``exc_type`` in ``thread`` at its next Python instruction (CPython's async exception)."""
    if thread.ident is not None and thread.is_alive():
        ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(thread.ident), ctypes.py_object(exc_type))


def wait(
    outbox: queue.Queue[tuple[str, Any]],
    thread: threading.Thread,
    overrun: Callable[[], Stopped | None],
    interrupt: Callable[[], None],
) -> tuple[str, Any]:
    """Wait for the env.py thread's next message, checking for an overrun step between short slices.

    :param overrun: called every slice; returns the record of a stopped step once the
        thread has been given up on (then ``("abandoned", record)`` is returned).
    :param interrupt: called on Ctrl-C, before ``KeyboardInterrupt`` is re-raised.
    """
    while True:
        try:
            return outbox.get(timeout=POLL_SECONDS)
        except queue.Empty:
            if not thread.is_alive():
                try:
                    return outbox.get_nowait()
                except queue.Empty:
                    return ("closed", None)
            stopped = overrun()
            if stopped is not None and stopped.abandoned:
                return ("abandoned", stopped)
        except KeyboardInterrupt:
            interrupt()
            raise
