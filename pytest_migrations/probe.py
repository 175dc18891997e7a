"""Run env.py without a database, so that revision files can import what env.py makes importable.

The ``alembic`` command runs ``env.py`` first and loads the revision files only once
env.py has called ``context.run_migrations()``. Many histories rely on that order: env.py
puts a source folder on ``sys.path`` or imports the application, and the revision files
then ``from myapp.types import GUID``. The plugin builds the revision graph at
collection time, before any env.py run, so those imports fail there.

A *probe* closes the gap: when a revision file fails to import, env.py is run the way
Alembic runs it, but stopped before it can reach a database, and the files are loaded
again. Nothing in a probe can touch a database:

* its ``context.configure()`` raises a private sentinel instead of configuring, so the
  run ends where a migration context would be created;
* every SQLAlchemy connection attempt is refused for its duration (a ``do_connect``
  listener on every engine), so an env.py that builds an engine and connects at import
  time, or has no offline branch, stops at the connection;
* env.py sees a placeholder URL of the kind under test, never the one in alembic.ini.

A probe runs offline (``--sql`` mode) first; only if the files still fail to import is it
run online (where env.py's online branch runs up to its first connection), because the
offline branch does the least (it needs no engine) and suffices for the usual env.py that
sets up imports at module level. Whatever env.py raises in a probe is kept, never raised:
the real env.py runs later report env.py's errors with their context, and a graph that
still fails to load says what the probe ran into.

env.py's logging setup (``fileConfig()`` disables every existing logger and closes every
handler, pytest's among them) is skipped in a probe, and the logging configuration is
put back as it was, so a probe leaves no trace in the user's loggers.
"""

from __future__ import annotations

import logging
import logging.config
import os
import tempfile
import threading
import traceback
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any
from unittest import mock

from alembic.runtime.environment import EnvironmentContext
from sqlalchemy import event
from sqlalchemy.engine import URL, Engine, make_url

from .exceptions import RevisionGraphError
from .logstate import LoggingState
from .providers import with_driver
from .urls import url_in_environment

if TYPE_CHECKING:
    from .project import AlembicProject

#: The database name of placeholder URLs: one no test database ever has (those are ``pytest_migrations_<run>_...``).
PLACEHOLDER_DATABASE = "pytest_migrations_collect"


class _ProbeStopped(BaseException):
    """env.py reached ``context.configure()``: everything it does before connecting has run.

    A BaseException, so that an env.py catching ``Exception`` around its setup cannot
    carry on into a run the probe has no context for.
    """


class ConnectionRefusedInProbe(BaseException):
    """A database connection attempted while env.py is probed at collection time.

    A BaseException, so that a "wait for the database" loop catching ``Exception`` in
    env.py ends at once instead of retrying.
    """


def placeholder_url(database: str, server_url: str | None = None) -> URL:
    """A URL of the ``database`` kind for env.py and revision files to read at collection.

    It is never connected to: on a configured server, a database name the plugin never
    creates; without one, ``localhost``; for SQLite, a file in the temporary directory.
    """
    if database == "sqlite":
        # Per process: a file another run's revision code created must not look like ours.
        name = f"{PLACEHOLDER_DATABASE}_{os.getpid()}.db"
        return URL.create("sqlite", database=str(Path(tempfile.gettempdir()) / name))
    base = make_url(server_url) if server_url else URL.create(database, host="localhost")
    return with_driver(base).set(database=PLACEHOLDER_DATABASE)


def collection_url(project: AlembicProject) -> URL:
    """The placeholder URL of ``project`` as env.py would be given it (with the async driver when async)."""
    from .envrun import driver_url  # envrun imports project, which imports this module when loading the graph

    return driver_url(project.collection_url or placeholder_url("sqlite"), project)


@contextmanager
def url_variable(project: AlembicProject) -> Iterator[None]:
    """Set ``migrations_url_variable`` (when named) to the placeholder URL; restore the environment after.

    Revision files may read it at import (one real history picks MySQL collations from
    ``os.environ["DATABASE_URL"]``), as env.py does.
    """
    with url_in_environment(project.url_variable, collection_url(project)):
        yield


@dataclass(frozen=True)
class ProbeResult:
    """How a probe of env.py ended."""

    error: BaseException | None
    """What env.py raised before reaching ``context.configure()``; ``None`` when it got there (or finished)."""
    env_path: Path

    def describe(self) -> str:
        """A clause for error messages: where env.py stopped, when that is worth saying."""
        if self.error is None:
            return ""
        line = next(
            (
                f" (line {f.lineno}: {f.line})"
                for f in reversed(traceback.extract_tb(self.error.__traceback__))
                if Path(f.filename).resolve() == self.env_path.resolve()
            ),
            "",
        )
        if isinstance(self.error, ConnectionRefusedInProbe):
            return (
                f"; env.py stopped at a database connection{line}, which collection refuses, so what it "
                "does after that never ran: set up the imports before connecting"
            )
        return f"; env.py itself stopped with {type(self.error).__name__}: {self.error}{line}"


def probe_env(project: AlembicProject, *, offline: bool) -> ProbeResult:
    """Run env.py up to ``context.configure()``, with every database connection refused."""
    from .envrun import end_live_run

    if threading.current_thread() is threading.main_thread():
        end_live_run()  # alembic.context is one per process: the probe installs its own
    config = project.make_config()
    rendered = collection_url(project).render_as_string(hide_password=False).replace("%", "%%")
    for name in project.database_names:
        config.set_section_option(name, "sqlalchemy.url", rendered)
    environment = EnvironmentContext(config, project.script, as_sql=offline)

    def configure(*args: Any, **kw: Any) -> None:
        raise _ProbeStopped

    # As envrun.guard does: `from alembic import context` proxies whatever the instance has.
    environment.configure = configure  # type: ignore[method-assign]
    error: BaseException | None = None
    with ExitStack() as stack:
        stack.enter_context(_logging_preserved())
        stack.enter_context(_connections_refused())
        try:
            with environment:
                project.script.run_env()
        except _ProbeStopped:
            pass
        except KeyboardInterrupt:
            raise
        except BaseException as exc:  # SystemExit too: env.py must not end the pytest run
            error = exc
    return ProbeResult(error, project.env_path)


def fails_to_import(error: RevisionGraphError) -> bool:
    """Whether ``error`` is a revision file raising while imported (a syntax error no env.py run can fix)."""
    return any(p.kind == "import" for p in error.problems) and not isinstance(error.__cause__, SyntaxError)


def still_failing(error: RevisionGraphError, result: ProbeResult) -> RevisionGraphError:
    """``error`` with each import problem saying that running env.py first did not help."""
    suffix = (
        ", even after running env.py first as the alembic command does"
        f"{result.describe()}. Make the module importable: install it, or put its folder on sys.path "
        "(prepend_sys_path in alembic.ini, or a sys.path insert at the top of env.py)"
    )
    problems = [replace(p, message=p.message + suffix) if p.kind == "import" else p for p in error.problems]
    return RevisionGraphError(problems)


def _refuse(*args: Any, **kw: Any) -> None:
    raise ConnectionRefusedInProbe(
        "pytest-migrations refuses database connections while it runs env.py to load the revision files "
        "at collection time"
    )


@contextmanager
def _connections_refused() -> Iterator[None]:
    """Refuse every SQLAlchemy connection, on engines made before or during the probe."""
    event.listen(Engine, "do_connect", _refuse)
    try:
        yield
    finally:
        event.remove(Engine, "do_connect", _refuse)


@contextmanager
def _logging_preserved() -> Iterator[None]:
    """Skip env.py's logging setup, and undo any other change it makes to the loggers.

    ``fileConfig()``/``dictConfig()`` are skipped, not undone: they close every existing
    handler (pytest's ``--log-file`` handler stops writing), which no restore can reopen.
    """
    saved = LoggingState.save()

    def skip(*args: Any, **kw: Any) -> None:
        """env.py's logging setup, skipped while it is probed."""

    try:
        with (
            mock.patch.object(logging.config, "fileConfig", skip),
            mock.patch.object(logging.config, "dictConfig", skip),
        ):
            yield
    finally:
        saved.restore()
