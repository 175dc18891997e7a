"""Run the user's env.py once and execute a whole plan of steps inside it.

Alembic runs ``env.py`` once per command, and ``env.py`` calls
``context.run_migrations()``, which asks a *migrations function* for the steps to run.
The ``alembic upgrade`` command passes a function returning a list; we pass a
generator (``EnvironmentContext(config, script, fn=...)``). Each step we yield is run
by Alembic exactly as ``alembic upgrade`` would run it (its transaction handling, its
version-table bookkeeping, the ``include_object``/``render_as_batch``/... options env.py
configured), and between two steps our code runs on the very same connection: that is
where schema snapshots are taken. A walk of N steps therefore costs N migrations, not N
runs of env.py and N connections.

A *plan* is a generator function ``plan(session) -> Iterator[RevisionStep]`` that
yields steps through :meth:`Session.step` and may call :meth:`Session.capture` or use
:attr:`Session.connection` between them. The ``multidb`` template runs the migrations
function once per database; the plan is then run once per database, each with its own
:class:`Session`.

Safety lives here too: env.py is handed the URL of a throwaway database, and
:func:`guard` refuses, *before any step runs*, a connection to any other
database (an env.py that reads ``DATABASE_URL`` or hard-codes a URL).
"""

from __future__ import annotations

import asyncio
import collections
import collections.abc
import contextvars
import copy
import os
import queue
import re
import threading
import time
import traceback
import weakref
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import CodeType, ModuleType
from typing import Any

import sqlalchemy as sa
from alembic.runtime.environment import EnvironmentContext
from alembic.runtime.migration import MigrationContext, RevisionStep
from alembic.script import Script, ScriptDirectory
from alembic.util import load_python_file
from sqlalchemy import event
from sqlalchemy.engine import URL, Connection, make_url
from sqlalchemy.pool import NullPool

from . import timings
from .backends.sqlite import owned_directories
from .exceptions import (
    ConfigurationError,
    MigrationCheckFailed,
    MigrationsError,
    MigrationStepFailed,
    StepContext,
    UnsafeTargetError,
)
from .hints import step_hint
from .history import RevisionGraph
from .logstate import LoggingState
from .project import AlembicProject
from .sandbox import Allowed, library_file, observing, sandboxed
from .schema import SchemaSnapshot, SnapshotTaker
from .urls import database_identity, mask, sync_url, url_in_environment
from .watchdog import GRACE_SECONDS, Canceller, StepTimeout, Stopped, raise_in_thread, wait

ASYNC_DRIVERS = {"sqlite": "aiosqlite", "postgresql": "asyncpg", "mysql": "aiomysql", "mariadb": "aiomysql"}


@dataclass
class Statement:
    """One SQL statement a step sent, and whether the database accepted it."""

    sql: str
    done: bool = False
    """The driver returned from executing it (``after_cursor_execute`` fired)."""
    commits: bool = False
    """It ended the transaction (``COMMIT`` sent as SQL): what ran before it is permanent."""


_COMMIT_SQL = frozenset({"COMMIT", "COMMIT TRANSACTION", "COMMIT WORK", "END", "END TRANSACTION"})

_used_scripts: set[str] = set()
"""Revision files whose module already ran a step in this process (see :meth:`Session.step`)."""


@dataclass
class Session:
    """The live state of one env.py run, as seen by a plan."""

    context: MigrationContext
    script: ScriptDirectory
    graph: RevisionGraph
    applied: set[str]
    """Revisions applied in the database right now (ancestors of the version table's heads)."""
    index: int = 0
    """Which run of the migrations function this is (0, or the database's index in multidb)."""
    completed: list[tuple[str, str]] = field(default_factory=list)
    """``(step label, revision)`` of every step that finished in this plan."""
    in_run: list[tuple[str, str]] = field(default_factory=list)
    """Every step that finished in this env.py run, across the plans an open run executed."""
    pending: tuple[str, str] | None = None
    statements: list[Statement] = field(default_factory=list)
    """SQL the pending step has executed so far (reported when it fails half-way)."""
    recording: bool = False
    committed: bool = False
    """The connection committed while the pending step ran (``connection.commit()`` in a migration)."""
    elsewhere: bool = False
    """The pending step sent statements on another connection than this session's (not in :attr:`statements`)."""
    fresh_steps: bool = True
    """Each step starts as a new ``alembic`` command would: no memory of earlier steps in the context.

    Whole walks that model one production command (``upgrade_to_head``) turn it off.
    """
    reload_modules: bool = False
    """Re-execute every revision file before its step, even on first use (env.py reads a URL variable)."""
    before_step: SchemaSnapshot | None = None
    """The schema right before the pending step, when the plan took it: a failure then says what stays."""
    raised: BaseException | None = None
    """What the pending step's ``upgrade()``/``downgrade()`` raised, kept in case env.py swallows it."""
    finished: bool = False
    """The plan ran to its end (the run's commit is then checked from a second connection)."""
    started: float | None = None
    """When the pending step started (``time.monotonic()``), for the step timeout."""

    @property
    def connection(self) -> Connection:
        conn = self.context.connection
        assert conn is not None, "env.py ran in offline mode"
        return conn

    def _keeping_what_it_raises(self, function: Callable[..., Any]) -> Callable[..., Any]:
        """``function`` (a step's upgrade or downgrade), noting what it raises before it propagates."""

        def migration(**kw: Any) -> Any:
            try:
                return function(**kw)
            except BaseException as exc:
                self.raised = exc
                raise

        return migration

    def step(self, revision: str, *, upgrade: bool, label: str | None = None) -> Iterator[RevisionStep]:
        """Yield one exact step (``yield from session.step(rev, upgrade=True)``).

        Alembic runs each command in a new context and imports each revision file
        afresh. A stairway runs many steps in one context, so two kinds of memory must
        not carry over from step to step: the DDL memo of the context's impl (where
        SQLAlchemy notes that a PostgreSQL enum type was created, so a re-upgrade after
        the downgrade dropped it would never create it again), and the revision
        module's own globals (a script whose upgrade() consumes module-level state).
        A module that already ran a step in this process is therefore executed again
        from its file (one file, not the history).
        """
        label = label or ("upgrade" if upgrade else "downgrade")
        self.pending = (label, revision)
        self.started = time.monotonic()
        self.statements.clear()
        self.committed = False
        self.elsewhere = False
        if self.fresh_steps:
            self.context.impl.memo.clear()
        script = _fresh_script(self.script.get_revision(revision), always=self.reload_modules)
        self.recording = True
        self.raised = None
        step = RevisionStep(self.script.revision_map, script, upgrade)
        step.migration_fn = self._keeping_what_it_raises(step.migration_fn)
        try:
            yield step
        finally:
            timings.RECORDER.step(revision, label, time.monotonic() - self.started)
        self.recording = False
        self.pending = None
        self.before_step = None
        self.completed.append((label, revision))
        self.in_run.append((label, revision))
        if upgrade:
            self.applied.add(revision)
        else:
            self.applied.discard(revision)

    def walk_to(self, target: frozenset[str], label: str | None = None) -> Iterator[RevisionStep]:
        """Yield the steps that turn the applied set into ``target``: downgrades first, newest first."""
        for rid in self.graph.sorted(self.applied - target, reverse=True):
            yield from self.step(rid, upgrade=False, label=label)
        for rid in self.graph.sorted(target - self.applied):
            yield from self.step(rid, upgrade=True, label=label)


def _fresh_script(script: Script | None, *, always: bool) -> Script:
    """``script``, with its module executed afresh from its file if it ran a step before.

    The file is compiled once (per modification time) and its code executed into a new
    module each time, as Alembic's loader would: a step pays one module execution.
    """
    assert script is not None
    if not always and (script.path not in _used_scripts or not _stateful(script.module)):
        _used_scripts.add(script.path)
        return script
    _used_scripts.add(script.path)
    fresh = copy.copy(script)
    fresh.module = _execute_afresh(script.path, script.module)
    return fresh


_compiled: dict[str, tuple[float, CodeType]] = {}
_state: weakref.WeakKeyDictionary[ModuleType, bool] = weakref.WeakKeyDictionary()
"""Per module object, not per ``id()``: ids of collected modules are reused by later ones."""


def _stateful(module: ModuleType) -> bool:
    """Whether a revision module holds state a step could consume: a mutable container, an iterator,
    or an instance of a class it defines. Modules of constants and functions (nearly all) run as they are.
    """
    known = _state.get(module)
    if known is None:
        known = _state[module] = any(
            isinstance(value, (list, dict, set, bytearray, collections.deque, collections.abc.Iterator))
            or type(value).__module__ == module.__name__
            for name, value in vars(module).items()
            if not name.startswith("__")
        )
    return known


def _execute_afresh(path: str, loaded: ModuleType) -> ModuleType:
    try:
        mtime = os.stat(path).st_mtime
    except OSError:  # a history shipped as .pyc only: let Alembic's loader find it
        return load_python_file(os.path.dirname(path), os.path.basename(path))
    cached = _compiled.get(path)
    if cached is None or cached[0] != mtime:
        with open(path, "rb") as source:
            cached = (mtime, compile(source.read(), path, "exec"))
        _compiled[path] = cached
    module = ModuleType(loaded.__name__, loaded.__doc__)
    module.__file__ = path
    exec(cached[1], module.__dict__)
    return module


Plan = Callable[[Session], Iterator[RevisionStep]]


_current_environment: EnvironmentContext | None = None


@contextmanager
def _installed(environment: EnvironmentContext) -> Iterator[EnvironmentContext]:
    """``with environment:``, except that on exit ``alembic.context`` is left alone unless it is still ours.

    A run abandoned by the watchdog may wake up long after a newer run installed its
    context; its exit must not tear down the newer run's.
    """
    global _current_environment
    environment.__enter__()
    _current_environment = environment
    try:
        yield environment
    finally:
        if _current_environment is environment:
            _current_environment = None
            environment.__exit__(None, None, None)


def guard(environment: EnvironmentContext, allowed: frozenset[tuple[str, ...]]) -> EnvironmentContext:
    """Make ``environment.configure`` refuse a connection to any database outside ``allowed``.

    The check replaces ``configure`` on the instance (``from alembic import context``
    proxies whatever the instance has), so it runs before Alembic touches the
    connection: not even the version table is created on a foreign database.
    """
    original = environment.configure

    def configure(connection: Connection | None = None, url: str | URL | None = None, **kw: Any) -> None:
        if connection is None:
            shown = mask(make_url(url)) if url else "no connection"
            raise UnsafeTargetError(
                f"env.py called context.configure() without a connection ({shown}); the plugin only runs "
                "migrations online, on a connection to its own test database"
            )
        if database_identity(connection.engine.url) not in allowed:
            raise UnsafeTargetError(
                f"env.py connected to {mask(connection.engine.url)}, not to the test database the plugin "
                "created; no migration was run on it. Make env.py honour the URL it is given: build the "
                'engine from config.get_main_option("sqlalchemy.url") (or engine_from_config(config.get_section('
                "config.config_ini_section)) as the alembic templates do), or use "
                'config.attributes["connection"] when it is set, instead of DATABASE_URL or a hard-coded URL. '
                "If env.py reads its URL from an environment variable, name it in migrations_url_variable "
                "(--migrations-url-variable DATABASE_URL): the plugin then sets it to the test database."
            )
        original(connection=connection, url=url, **kw)

    environment.configure = configure  # type: ignore[method-assign,assignment]
    return environment


def driver_url(url: URL, project: AlembicProject) -> URL:
    """The URL env.py is given: switched to the async driver when env.py is async."""
    if not project.is_async or url.get_dialect().is_async:
        return url
    backend = url.get_backend_name()
    driver = ASYNC_DRIVERS.get(backend)
    if driver is None:
        raise ConfigurationError(f"env.py is async, and there is no known async driver for {backend}")
    return url.set(drivername=f"{backend}+{driver}")


class EnvRunner:
    """Runs plans through the user's env.py against a fixed set of throwaway databases.

    :param urls: one URL per database section (see :attr:`AlembicProject.database_names`).
    """

    def __init__(
        self,
        project: AlembicProject,
        urls: Mapping[str, URL],
        snapshots: SnapshotTaker | None = None,
        *,
        step_timeout: float | None = None,
        canceller: Canceller | None = None,
    ) -> None:
        self.project = project
        self.step_timeout = step_timeout or None
        """Seconds a step may run before it is stopped (``None``: no limit)."""
        self.canceller = canceller
        """Cancels statements on the server and says what they wait on (server databases only)."""
        self.current: Session | None = None
        """The session of the run in progress (the one whose steps the watchdog times)."""
        self.stopped: Stopped | None = None
        """The step the watchdog stopped in the run in progress, if it did."""
        self.unwinding = False
        """The run in progress failed and is writing its report: the watchdog leaves it alone."""
        self.urls = {name: driver_url(url, project) for name, url in urls.items()}
        self.snapshots = snapshots or SnapshotTaker()
        """Takes the schema from a second connection after a failed step, to say what stays."""
        self.config = project.make_config()
        for name, url in self.urls.items():
            # Inline, not in a local: a traceback shown with --showlocals must not print the password.
            self.config.set_section_option(
                name, "sqlalchemy.url", url.render_as_string(hide_password=False).replace("%", "%%")
            )
        self._allowed = frozenset(database_identity(url) for url in self.urls.values())
        self._sandbox = Allowed.of(list(self.urls.values()), frozenset(owned_directories()))
        if project.customize is not None:
            project.customize(self.config, dict(self.urls))

    def run(self, plan: Plan) -> list[Session]:
        """Run env.py once; run ``plan`` inside it; return one :class:`Session` per database.

        What is applied when the plan starts is read from the version table's heads.
        When the run ends, what it committed is read back from a second connection, as
        production would see it: an env.py that never commits fails here, not silently.

        :raises MigrationStepFailed: a step or env.py raised; the error names it.
        """
        if threading.current_thread() is not threading.main_thread():
            return self._run(plan)  # already in a watched thread (an open run's)
        end_live_run()  # alembic.context is one per process: one env.py run at a time
        outbox: queue.Queue[tuple[str, Any]] = queue.Queue()

        def main() -> None:
            try:
                outbox.put(("done", self._run(plan)))
            except BaseException as exc:
                outbox.put(("error", exc))

        thread = start_env_thread(main)
        kind, payload = self.watch(outbox, thread)
        if kind == "error":
            raise payload
        if kind == "abandoned":
            raise self._abandoned(payload)
        assert kind == "done", kind
        return list(payload)

    def watch(self, outbox: queue.Queue[tuple[str, Any]], thread: threading.Thread) -> tuple[str, Any]:
        """Wait for the env.py thread's next message, stopping a step that overruns (see :mod:`.watchdog`)."""
        kind, payload = wait(outbox, thread, lambda: self._overrun(thread), lambda: self._interrupt(thread))
        if kind == "closed" and self.stopped is not None:
            return ("abandoned", self.stopped)
        return kind, payload

    def _overrun(self, thread: threading.Thread) -> Stopped | None:
        session, stopped = self.current, self.stopped
        now = time.monotonic()
        if stopped is not None:
            if self.unwinding:  # the step gave up: its failure is being written, leave it be
                if thread.is_alive() and now - stopped.since > 6 * GRACE_SECONDS:
                    stopped.abandoned = True
                    return stopped
                return None
            if thread.is_alive() and now - stopped.since > 1 and not stopped.interrupted:
                stopped.interrupted = True
                raise_in_thread(thread, StepTimeout)  # still in the step after the cancel: stuck in Python
            if thread.is_alive() and now - stopped.since > GRACE_SECONDS:
                stopped.abandoned = True
                return stopped
            return None
        if not self.step_timeout or session is None or session.pending is None or session.started is None:
            return None
        if now - session.started < self.step_timeout:
            return None
        label, revision = session.pending
        running = next((st.sql for st in reversed(session.statements) if not st.done), None)
        waits = self._safely(lambda: self.canceller.describe_waits() if self.canceller else None)
        self.stopped = Stopped(label, revision, now - session.started, running, waits)
        self._cancel(session)
        return None

    def _cancel(self, session: Session | None) -> None:
        """Cancel what runs on the server (or interrupt SQLite), so a blocked driver call returns."""
        if self.canceller is not None:
            self._safely(self.canceller.cancel)
        elif session is not None and session.context.connection is not None:
            dbapi = session.context.connection.connection.dbapi_connection
            interrupt = getattr(dbapi, "interrupt", None)
            if callable(interrupt):
                self._safely(interrupt)

    def _interrupt(self, thread: threading.Thread) -> None:
        """Ctrl-C: stop the env.py thread too, so one Ctrl-C ends everything."""
        self._cancel(self.current)
        raise_in_thread(thread, KeyboardInterrupt)
        thread.join(timeout=2)

    @staticmethod
    def _safely(action: Callable[[], Any]) -> Any:
        try:
            return action()
        except Exception:  # the server may be gone too: the timeout is reported either way
            return None

    def _abandoned(self, stopped: Stopped) -> MigrationStepFailed:
        """The failure of a step whose thread never gave up after being stopped."""
        rev = self.project.graph[stopped.revision]
        exc = StepTimeout(f"{stopped.label} of {stopped.revision} ran past the step timeout")
        summary, sections = self._timeout_report(stopped, rev.label)
        sections.append(
            ("what happened", "the step did not stop when asked; its thread was abandoned and its database dropped")
        )
        return MigrationStepFailed(summary, StepContext(rev.id, rev.path, stopped.label), exc, sections)

    def _timeout_report(self, stopped: Stopped, label: str) -> tuple[str, list[tuple[str, str]]]:
        summary = (
            f"{stopped.label} of revision {label} did not finish within {self.step_timeout:.0f} s "
            "(--migrations-step-timeout) and was stopped"
        )
        sections: list[tuple[str, str]] = []
        if stopped.statement:
            sections.append(("statement running", stopped.statement[:500]))
        if stopped.waits:
            sections.append(("waiting on", stopped.waits))
        elif not stopped.statement:
            sections.append(("waiting on", "no SQL statement was running: the step was busy or sleeping in Python"))
        return summary, sections

    def _run(self, plan: Plan) -> list[Session]:
        self.stopped = None
        self.unwinding = False
        project, graph = self.project, self.project.graph
        script = project.script
        sessions: list[Session] = []
        runs_expected = len(project.database_names)

        logging_before = LoggingState.save()

        def migrations_fn(heads: tuple[str, ...], context: MigrationContext) -> Iterator[RevisionStep]:
            if not sessions:  # env.py has configured itself (fileConfig): give the user's loggers back
                logging_before.restore()
            if len(sessions) >= runs_expected:
                calls = "one call" if runs_expected == 1 else f"one call per database ({runs_expected})"
                raise ConfigurationError(
                    f"{project.env_path} called context.run_migrations() {len(sessions) + 1} times in one run; "
                    f"alembic expects {calls}. Look for a second call: run_migrations_online() called twice, "
                    "or both the offline and the online branch running"
                )
            applied = set(graph.ancestors(heads))
            session = Session(context=context, script=script, graph=graph, applied=applied, index=len(sessions))
            session.reload_modules = bool(project.url_variable)
            sessions.append(session)
            self.current = session
            if context.connection is not None:
                _record_statements(context.connection, session)
            return _finishing(plan(session), session)

        environment = guard(EnvironmentContext(self.config, script, fn=migrations_fn), self._allowed)
        try:
            with _installed(environment), self._url_variable(), sandboxed(self._sandbox), observing(self._saw):
                script.run_env()
        except MigrationsError as exc:
            self.unwinding = True
            if isinstance(exc, MigrationCheckFailed) or not sessions or sessions[-1].pending is None:
                raise
            raise self._step_failed(sessions[-1], exc) from exc
        except BaseException as exc:
            self.unwinding = True
            if isinstance(exc, (KeyboardInterrupt, GeneratorExit)):
                raise
            if sessions and sessions[-1].pending is not None:
                raise self._step_failed(sessions[-1], exc) from exc
            if isinstance(exc, SystemExit):
                raise
            if sessions:
                raise self._between_steps_failed(sessions[-1], exc) from exc
            raise self._env_failed(exc) from exc
        if not sessions:
            # Nothing ran: without this, every check would "pass" having tested nothing.
            raise ConfigurationError(
                f"{self.project.env_path} finished without calling context.run_migrations(), so nothing was "
                "migrated or checked. env.py must configure the context on a connection and call "
                "context.run_migrations() when run online, as the alembic templates do"
            )
        self._check_ran_to_the_end(sessions)
        if not project.commits_verified:
            self._check_committed(sessions)
            # What env.py commits does not change from run to run: once seen right, it is not read back again.
            project.commits_verified = True
        return sessions

    def _check_ran_to_the_end(self, sessions: list[Session]) -> None:
        """Fail a run whose env.py returned normally before its migrations finished: it swallowed a failure.

        An env.py that wraps ``context.run_migrations()`` in ``try``/``except`` (Galaxy's
        catches OperationalError) makes ``alembic upgrade`` exit 0 with the database stopped
        at the failing step; without this check every item would pass, the later revisions
        never run.
        """
        for session in sessions:
            if session.finished or session.context.connection is None:
                continue
            consequence = (
                "`alembic upgrade` would exit 0 with the database stopped here, and every later step silently not "
                "run. Let it propagate out of context.run_migrations() (re-raise in the except block, after "
                "logging it)"
            )
            if session.pending is not None:
                label, rid = session.pending
                cause = session.raised or RuntimeError(
                    f"the {label} of {rid[:12]} stopped with an exception env.py caught (it was raised outside the "
                    "migration's own function: in its transaction's commit, or in env.py)"
                )
                failure = self._step_failed(session, cause)
                swallowed = f"{self.project.env_path} caught this exception and returned normally, so {consequence}"
                failure.sections = (("swallowed by env.py", swallowed), *failure.sections)
                raise failure
            done = _completed(session.completed)
            raise ConfigurationError(
                f"{self.project.env_path} returned before its migrations finished (steps completed: {done}): it "
                "stopped iterating the migrations between two steps, or caught an exception raised there: "
                f"{consequence}"
            )

    def _saw(self, connection: Any) -> None:
        """A statement of user code is about to run on ``connection``: the step's, or one of its own."""
        session = self.current
        if session is not None and session.recording and connection is not session.context.connection:
            session.elsewhere = True

    def _check_committed(self, sessions: list[Session]) -> None:
        """Read each database's version table from a new connection: it must hold what the run applied."""
        for session in sessions:
            if not session.finished or session.context.connection is None:
                continue
            expected = set(session.graph.heads_of(session.applied))
            url = self._url_of(session)
            if url is None:
                continue
            engine = sa.create_engine(sync_url(url), poolclass=NullPool)
            try:
                with engine.connect() as conn:
                    context = MigrationContext.configure(
                        conn,
                        opts={
                            "version_table": session.context.version_table,
                            "version_table_schema": session.context.version_table_schema,
                        },
                    )
                    found = set(context.get_current_heads())
            finally:
                engine.dispose()
            if found != expected:
                shown = ", ".join(sorted(found)) or "nothing (no version rows)"
                raise ConfigurationError(
                    f"{self.project.env_path} did not commit its migrations: after the run, a new connection sees "
                    f"the version table holding {shown}, but the run migrated to "
                    f"{', '.join(sorted(expected)) or 'base'}. `alembic upgrade` would leave the database the same "
                    "way. Run the migrations inside `with context.begin_transaction(): context.run_migrations()` "
                    "as the alembic templates do (with SQLAlchemy 2 a connection does not autocommit), or commit "
                    "the connection after run_migrations()"
                )

    def _url_of(self, session: Session) -> URL | None:
        identity = database_identity(session.connection.engine.url)
        return next((u for u in self.urls.values() if database_identity(u) == identity), None)

    def _between_steps_failed(self, session: Session, exc: BaseException) -> MigrationsError:
        """Something failed between two steps: in the plugin's own inspection of the database, not in a migration."""
        done = ", ".join(f"{label} {rid[:12]}" for label, rid in session.completed) or "before the first step"
        return MigrationsError(
            f"pytest-migrations failed while inspecting the {session.context.dialect.name} database between "
            f"migration steps (after: {done}): {type(exc).__name__}: {mask_text(str(exc), self.urls.values())}. "
            "No migration raised; this is a problem of the plugin's, please report it with this message."
        )

    @contextmanager
    def _url_variable(self) -> Iterator[None]:
        """Point the environment variable env.py reads its URL from (if configured) at the test database."""
        with url_in_environment(self.project.url_variable, next(iter(self.urls.values()))):
            yield

    def _step_failed(self, session: Session, exc: BaseException) -> MigrationStepFailed:
        assert session.pending is not None
        label, rid = session.pending
        rev = self.project.graph[rid]
        where = StepContext(rid, rev.path, label, tuple(r for _, r in session.completed))
        summary = f"{label} of revision {rev.label} raised {type(exc).__name__}: {exc}"
        sections = [("raised at", _user_frames(exc, rev.path))]
        stopped = self.stopped
        if stopped is not None and stopped.revision == rid:
            summary, timeout_sections = self._timeout_report(stopped, rev.label)
            sections = [*timeout_sections, ("stopped at", _user_frames(exc, rev.path))]
        hint = step_hint(exc, label, rev.path.name, session.before_step, session.context.dialect.name)
        if hint:
            sections.append(("fix", hint))
        sections.append(("database state", self._state_after_failure(session, rev.id)))
        return MigrationStepFailed(summary, where, exc, sections, [st.sql for st in session.statements])

    def _env_failed(self, exc: BaseException) -> MigrationStepFailed:
        env = self.project.env_path
        summary = f"env.py ({env}) raised {type(exc).__name__}: {mask_text(str(exc), self.urls.values())}"
        where = StepContext(None, env, "env.py")
        sections = [("raised at", _user_frames(exc, env))]
        hint = step_hint(exc, "env.py", "env.py")
        if hint:
            sections.append(("fix", hint))
        return MigrationStepFailed(summary, where, exc, sections)

    def _state_after_failure(self, session: Session, revision: str) -> str:
        """What a failed step left in the database, as the database itself says when it can be asked."""
        lines = [*_statement_lines(session), _reasoned_state(session, revision)]
        observed = self._observe(session)
        if observed is not None:
            lines.append(observed)
        return "\n".join(lines)

    def _observe(self, session: Session) -> str | None:
        """Compare the schema before the step with what a new connection sees now (``None``: cannot tell)."""
        before = session.before_step
        if before is None or session.context.connection is None:
            return None
        try:
            url = self._url_of(session)
            if url is None:
                return None
            engine = sa.create_engine(sync_url(url), poolclass=NullPool)
            try:
                with engine.connect() as conn:
                    schema = session.context.version_table_schema
                    table = session.context.version_table
                    now = self.snapshots.capture(conn, exclude_tables=[f"{schema}.{table}" if schema else table])
            finally:
                engine.dispose()
        except Exception:
            return None
        diff = before.diff(now)
        seen = "as a new connection sees it after the failure, the schema"
        if not diff:
            return f"{seen} is as it was before the step"
        if _rolled_back_with_the_run(session) and all(d.actual is None for d in diff):
            # Expected, and no news: the run's one transaction took the earlier steps with it.
            names = [f'{d.kind} "{d.name}"' + (f" ({d.fact})" if d.fact else "") for d in diff]
            shown = ", ".join(names[:3]) + (f" and {len(names) - 3} more" if len(names) > 3 else "")
            return (
                f"{seen} lacks what the {len(session.in_run)} earlier step(s) of this env.py run made, gone with the "
                f"rollback: {shown}. The failing step did not remove them; run as separate `alembic` commands, "
                "those steps would have stayed"
            )
        return "\n".join(
            [
                f"{seen} differs from before the step in {len(diff)} way(s):",
                *(f"  {line}" for line in diff.render_lines("before the step", "after the failure")),
            ]
        )


def _finishing(steps: Iterator[RevisionStep], session: Session) -> Iterator[RevisionStep]:
    yield from steps
    session.finished = True


_STATEMENTS_SHOWN = 10
"""Accepted statements a failure lists in full; beyond that, only those that can write."""


def _statement_lines(session: Session) -> list[str]:
    """The SQL the step sent: what the database accepted and which statement it refused."""
    done = [st for st in session.statements if st.done]
    refused = next((st for st in session.statements if not st.done), None)
    listed = list(enumerate(done, 1))
    reads = sum(_reads_only(st.sql) for st in done)
    title = f"statements the database accepted ({len(done)})"
    if len(done) > _STATEMENTS_SHOWN and reads:
        # Batch mode reflects a table in tens of PRAGMAs and SELECTs: only what can write is news.
        listed = [(i, st) for i, st in listed if not _reads_only(st.sql)]
        title += f"; the {reads} that change nothing (queries, connection settings) are not listed"
    lines = [f"{title}:"]
    lines += [f"  {i}. {st.sql[:300]}" for i, st in listed]
    if refused is not None:
        lines.append(f"statement that failed: {refused.sql[:300]}")
    elif session.statements:
        lines.append("every statement succeeded; the step raised in Python after its last one")
    else:
        lines.append("the step raised before sending any SQL")
    return lines


def _rolled_back(session: Session) -> bool:
    """Whether the failure rolled the step back whole: transactional DDL, and nothing committed during it."""
    return bool(
        session.context.impl.transactional_ddl
        and not session.committed
        and not any(st.commits and st.done for st in session.statements)
    )


def _rolled_back_with_the_run(session: Session) -> bool:
    """Whether the failure rolled back earlier steps too: env.py's one transaction held them all."""
    return bool(session.in_run) and not session.context.opts.get("transaction_per_migration") and _rolled_back(session)


def _reasoned_state(session: Session, revision: str) -> str:
    """What stays, from the dialect's transactional DDL and the commits seen during the step."""
    context = session.context
    done = _completed(session.completed)
    in_run = len(session.in_run)
    committed_at = max((i for i, st in enumerate(session.statements, 1) if st.commits and st.done), default=0)
    if _rolled_back(session):
        scope = "that step" if context.opts.get("transaction_per_migration") else "this walk"
        also = ""
        if _rolled_back_with_the_run(session):  # env.py's one transaction held every step of this env.py run
            also = (
                f" (env.py runs every step in one transaction: the {in_run} earlier step(s) of this env.py run, the "
                "plugin's walk to this revision included, are gone too)"
            )
        return (
            f"{context.dialect.name} has transactional DDL: the transaction of {scope} was rolled back{also}, so "
            f"nothing {revision[:12]} ran stays. Steps completed earlier in this walk: {done}"
        )
    if context.impl.transactional_ddl:
        return (
            f"the step committed part of its work (a COMMIT after statement {committed_at or '?'}): what ran before "
            "the commit stays, the rest was rolled back. A migration that commits cannot be rolled back as a unit. "
            f"Steps completed earlier in this walk: {done}"
        )
    if not any(st.done for st in session.statements):
        return (
            f"{context.dialect.name} has no transactional DDL, but the database accepted no statement of this "
            f"step: nothing {revision[:12]} ran stays. Steps completed earlier in this walk: {done}"
        )
    if not any(st.done and not _reads_only(st.sql) for st in session.statements):
        return (
            f"{context.dialect.name} has no transactional DDL, but the statements the database accepted change "
            f"nothing (queries, connection settings): nothing {revision[:12]} ran changed the database. Steps "
            f"completed earlier in this walk: {done}"
        )
    return (
        f"{context.dialect.name} has no transactional DDL: every DDL statement the database accepted stays "
        "applied, so in production this step leaves the database half-migrated (make it safe to rerun, or split "
        f"it into steps that each do one DDL statement). Steps completed earlier in this walk: {done}"
    )


_PERSISTENT_PRAGMAS = ("user_version", "application_id", "journal_mode", "auto_vacuum", "page_size", "schema_version")
"""SQLite pragmas whose assignment is kept in the database file; every other one sets the connection only."""


def _reads_only(sql: str) -> bool:
    """Whether a statement changes nothing in the database: SELECT (not ``SELECT ... INTO`` or ``FOR UPDATE``),
    SHOW, a PRAGMA query, or a setting of the connection (``PRAGMA foreign_keys=OFF``, MySQL's ``SET ...``)."""
    text = sql.lstrip().upper()
    if text.startswith("PRAGMA"):
        name = re.sub(r"^PRAGMA\s+(\w+\.)?", "", text).split("=")[0].split("(")[0].strip().lower()
        return "=" not in text or name not in _PERSISTENT_PRAGMAS
    first = text.split(None, 1)[0] if text else ""
    if first == "SET":
        return not re.match(r"SET\s+(GLOBAL|PERSIST|PASSWORD)\b", text)
    return first in ("SELECT", "SHOW", "EXPLAIN", "DESCRIBE") and not re.search(r"\bINTO\b|\bFOR\s+UPDATE\b", text)


def _completed(steps: Sequence[tuple[str, str]], shown: int = 3) -> str:
    """The steps a walk completed before the failing one: the last few, and how many came before."""
    if not steps:
        return "none"
    text = ", ".join(f"{label} {rid[:12]}" for label, rid in steps[-shown:])
    return text if len(steps) <= shown else f"{len(steps)} steps, the last {shown}: {text}"


def _record_statements(connection: Connection, session: Session) -> None:
    """Keep the SQL each step runs and whether it succeeded, so a failed step can say what it did."""

    def before(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if session.recording:
            sql = " ".join(statement.split())
            session.statements.append(Statement(sql, commits=sql.rstrip(";").upper() in _COMMIT_SQL))

    def after(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if session.recording and session.statements:
            session.statements[-1].done = True

    def commit(conn: Any) -> None:
        if session.recording:
            session.committed = True

    event.listen(connection, "before_cursor_execute", before)
    event.listen(connection, "after_cursor_execute", after)
    event.listen(connection, "commit", commit)


def mask_text(text: str, urls: Any) -> str:
    """Remove any password of ``urls`` from ``text``."""
    for url in urls:
        if url.password:
            text = text.replace(str(url.password), "***")
    return text


def _user_frames(exc: BaseException, focus: Path) -> str:
    """The traceback lines in user files (migration scripts, env.py), innermost last.

    Files of the script directory (``focus``'s folder and above it up to the one holding
    env.py) always count, even when a project's migrations are installed in site-packages.
    """
    frames = traceback.extract_tb(exc.__traceback__)
    scripts = _script_root(focus)

    def is_user(filename: str) -> bool:
        return filename.startswith(scripts) or not library_file(filename)

    user = [f for f in frames if is_user(f.filename)] or frames[-3:]
    if not str(exc) and frames and frames[-1] not in user:
        # A bare ``assert`` deep in a library says nothing but its line: that line is the message.
        user.append(frames[-1])
    lines = [f"{f.filename}:{f.lineno} in {f.name}\n    {f.line}" for f in user]
    lines.append(f"{type(exc).__name__}: {exc}")
    return "\n".join(lines)


def _script_root(focus: Path) -> str:
    """The migration script directory of a revision file or env.py (the folder holding env.py)."""
    for folder in (focus.parent, *focus.parents):
        if (folder / "env.py").is_file():
            return str(folder) + os.sep
        if folder == focus.parents[-1] or len(folder.parts) <= 2:
            break
    return str(focus.parent) + os.sep


class LiveRun:
    """One env.py run kept open in a thread, executing plans handed to it one after another.

    A stairway item is one plan; running each in its own env.py run pays env.py's
    imports, engine, connection, logging setup and version-table checks every time.
    Consecutive items on the same database instead feed their plans to one open run:
    the migrations function is a generator that waits for the next plan between items.
    :meth:`close` ends the run the normal way (env.py commits and disconnects); a plan
    that fails ends it with that failure, exactly as a one-shot run would.

    Only for single-database environments: ``multidb`` runs the migrations function
    once per database, one after the other.
    """

    _CLOSE = object()

    def __init__(self, runner: EnvRunner) -> None:
        global _active_live
        end_live_run()
        _active_live = self
        self.runner = runner
        self._inbox: queue.Queue[Any] = queue.Queue()
        self._outbox: queue.Queue[tuple[str, Any]] = queue.Queue()
        self.busy = False
        self.alive = True
        self._thread = start_env_thread(self._main)

    def _main(self) -> None:
        try:
            self.runner.run(self._feed)
        except BaseException as exc:  # handed to the caller waiting in execute()
            self._outbox.put(("error", exc))
        else:
            self._outbox.put(("closed", None))

    def _feed(self, session: Session) -> Iterator[RevisionStep]:
        while True:
            plan = self._inbox.get()
            if plan is self._CLOSE:
                return
            session.completed.clear()
            yield from plan(session)
            self._outbox.put(("done", None))

    def execute(self, plan: Plan) -> None:
        """Run ``plan`` in the open run; re-raise its failure (the run is then over)."""
        self.busy = True
        self._inbox.put(plan)
        kind, payload = self.runner.watch(self._outbox, self._thread)
        self.busy = False
        if kind == "error":
            self.alive = False
            raise payload
        if kind == "abandoned":
            self.alive = False
            raise self.runner._abandoned(payload)
        if kind == "closed":  # env.py ended the run by itself (it never called run_migrations)
            self.alive = False

    def close(self) -> None:
        """End the run: env.py commits and disconnects. Abandons a run still busy (after Ctrl-C)."""
        global _active_live
        if _active_live is self:
            _active_live = None
        if not self.alive or self.busy:
            self.alive = False
            return
        self.alive = False
        self._inbox.put(self._CLOSE)
        kind, payload = self.runner.watch(self._outbox, self._thread)
        self._thread.join(timeout=30)
        if kind == "error":
            raise payload


def start_env_thread(target: Callable[[], None]) -> threading.Thread:
    """Start a daemon thread for an env.py run, with the caller's context variables and an event loop.

    The thread sees the caller's context variables (an application context env.py may
    rely on). Older async env.py files call asyncio.get_event_loop(), which has no loop
    to give in a thread; asyncio.run() (today's template) makes its own either way.
    """

    def main() -> None:
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        try:
            target()
        finally:
            asyncio.set_event_loop(None)
            loop.close()

    context = contextvars.copy_context()
    thread = threading.Thread(target=context.run, args=(main,), name="pytest-migrations env.py", daemon=True)
    thread.start()
    return thread


_active_live: LiveRun | None = None
"""The open env.py run of this process, if any: alembic.context allows one at a time."""


def end_live_run() -> None:
    """End the open env.py run, whichever harness opened it."""
    if _active_live is not None:
        _active_live.close()
