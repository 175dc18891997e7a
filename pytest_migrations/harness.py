"""The per-process workbench: throwaway databases at any point of the history, cheaply.

Every check and every :class:`~pytest_migrations.runner.MigrationRunner` needs a
database in a given state: *the first k revisions of the graph order applied*. Walking
from base for each one would make a stairway over N revisions cost N² steps. The
:class:`Harness` instead keeps

- a **cursor**: one database that walks forward as stairway items run, so items taken in
  order cost one step each; and
- **checkpoints**: copies of the cursor every few positions (a file copy on SQLite,
  ``CREATE DATABASE ... TEMPLATE`` on PostgreSQL), so an item behind the cursor (``-k``,
  ``--lf``, random order, a failed item that took the cursor with it) restores the
  nearest checkpoint and walks a few steps. They are kept only once the cursor has been
  lost: a clone costs as much as dozens of steps on a server, and ends the env.py run kept
  open for the cursor, while a run in history order where every item passes never needs
  one. The first loss costs a walk from the start; from then on checkpoints are kept.

Every database belongs to this process (names carry the run and worker id) and is
dropped by :meth:`Harness.close`.
"""

from __future__ import annotations

import functools
import itertools
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import sqlalchemy as sa
from alembic.runtime.migration import RevisionStep
from sqlalchemy import MetaData
from sqlalchemy.engine import URL, Connection
from sqlalchemy.pool import NullPool

from . import roles, timings
from .ahead import CloneAhead
from .backends import Backend, controller_alive, database_name, run_id
from .backends.server import MySQLBackend, PostgreSQLBackend
from .backends.waits import ServerCanceller
from .data import DataSettings, ReflectionCache, RevisionData, RowCache
from .envrun import EnvRunner, LiveRun, Plan, Session, end_live_run
from .exceptions import ConfigurationError, MigrationStepFailed, ProviderError, first_line
from .history import RevisionGraph
from .mysql_schemas import SharedSchemas
from .policy import Policy
from .project import AlembicProject
from .schema import SchemaSnapshot, SnapshotTaker


@dataclass(frozen=True)
class DatabaseSet:
    """The databases of one test database "slot": one per env.py database section."""

    names: dict[str, str]
    """Config section -> database name."""
    urls: dict[str, URL]

    @property
    def key(self) -> str:
        return next(iter(self.names.values()))


class Harness:
    """Makes, positions, snapshots and drops the throwaway databases of one process."""

    def __init__(
        self,
        project: AlembicProject,
        backend: Backend,
        *,
        worker: str | None = None,
        checkpoint_every: int = 8,
        baseline: MetaData | None = None,
        policy: Policy | None = None,
        step_timeout: float | None = None,
        data: DataSettings | None = None,
        mysql_schemas: tuple[str, ...] = (),
    ) -> None:
        self.project = project
        self.backend = backend
        self.shared: SharedSchemas | None = None
        """The MySQL schemas migrations name (``migrations_mysql_schemas``), lent per database set."""
        if mysql_schemas and isinstance(backend, MySQLBackend):
            self.shared = SharedSchemas(backend, mysql_schemas, wait=3 * (step_timeout or 600.0))
        self.baseline = baseline
        """Tables every fresh database starts with, for histories whose first revision expects them."""
        self.worker = worker
        self.checkpoint_every = max(1, checkpoint_every)
        self.snapshots = SnapshotTaker()
        self._serial = itertools.count(1)
        self._runners: dict[str, EnvRunner] = {}
        self._cursor: tuple[DatabaseSet, int] | None = None
        self.cursor_snapshots: dict[int, SchemaSnapshot] = {}
        """The cursor's schema (per database of a multidb set) when it was returned, valid until taken again."""
        self._checkpoints: dict[int, DatabaseSet] = {}
        self._cursor_taken = False
        self.checkpointing = False
        """Whether the cursor is copied every ``checkpoint_every`` positions: from its first loss on."""
        self._owned: dict[str, DatabaseSet] = {}
        self._spares: list[DatabaseSet] = []
        """Fresh sets from :meth:`create` that nothing ran on (see :meth:`give_back`)."""
        self._templates: dict[frozenset[str], DatabaseSet] = {}
        self._ahead: dict[frozenset[str], tuple[DatabaseSet, CloneAhead]] = {}
        """The next clone of a template, being made while a test runs (see :mod:`.ahead`)."""
        self._live: tuple[str, LiveRun] | None = None
        self.step_timeout = step_timeout
        """Seconds one step may run before the watchdog stops it (``None``: no limit)."""
        self.policy = policy or Policy()
        """The downgrades not to test and the differences to accept."""
        self.data = data
        """How the stairway seeds and compares rows (``--migrations-data``); ``None``: it does not."""
        self.env_error: ConfigurationError | None = None
        """What is wrong with env.py itself (it never commits, say), once seen: every later item fails with it."""
        self._env_checked = False
        self.reflections = ReflectionCache()
        """Tables reflected for --migrations-data, by their schema facts (see :class:`~.data.ReflectionCache`)."""
        self.revision_data: RevisionData | None = None
        """The rows ``migrations_revision_data`` names, once loaded."""
        self.row_caches: dict[int, RowCache] = {}
        """The rows of the stairway's database (one per multidb database) as last read (:class:`~.data.RowCache`)."""
        self._baseline_error: ConfigurationError | None = None
        """Why the baseline could not be created, once seen: every later database fails with it at once."""
        self.broken: dict[str, MigrationStepFailed] = {}
        """Revisions whose upgrade failed in this process, with the failure: walks go around them."""
        self.broken_on_rows: set[str] = set()
        """Those of :attr:`broken` that failed on generated rows (``--migrations-data``) and may pass without."""

    @property
    def graph(self) -> RevisionGraph:
        return self.project.graph

    def module(self, revision: str) -> object:
        """The imported module of a revision file (its module-level declarations)."""
        script = self.project.script.get_revision(revision)
        return script.module if script is not None else None

    # ------------------------------------------------------------------ failing upgrades

    def note_failure(self, exc: MigrationStepFailed, *, on_rows: bool = False) -> bool:
        """Remember a revision whose (first) upgrade failed; ``True`` when that is news.

        A failed downgrade or re-upgrade is not remembered: walks only upgrade, and the
        revision's first upgrade worked. ``on_rows``: it failed on a database holding
        generated rows; the checks that run on empty tables (``drift``, ``downgrade_to_base``)
        are not blocked by it until it fails there too, which is news again.
        """
        where = exc.where
        if where.revision is None or not where.step.startswith("upgrade"):
            return False
        if where.revision in self.broken and (on_rows or where.revision not in self.broken_on_rows):
            return False
        self.broken[where.revision] = exc
        if on_rows:
            self.broken_on_rows.add(where.revision)
        else:
            self.broken_on_rows.discard(where.revision)
        return True

    def broken_without_rows(self) -> list[str]:
        """The revisions of :attr:`broken` that failed on empty tables, in graph order."""
        return [rid for rid in self.graph.sorted(self.broken) if rid not in self.broken_on_rows]

    def blocker(self, requires: Iterable[str]) -> str | None:
        """The first revision (in graph order) among ``requires`` and their ancestors whose upgrade fails."""
        if not self.broken:
            return None
        needed = self.graph.ancestors(requires)
        return next((rid for rid in self.graph.sorted(self.broken) if rid in needed), None)

    def reachable(self, target: frozenset[str], *, rows: bool = True) -> frozenset[str]:
        """``target`` without the revisions that failing upgrades make impossible to reach.

        ``rows=False``: for a walk on empty tables, where only failures on empty tables count.
        """
        broken = self.broken if rows else self.broken_without_rows()
        if not broken:
            return target
        return target - self.graph.descendants(broken)

    # ------------------------------------------------------------------ databases

    def _names(self) -> dict[str, str]:
        if not controller_alive():
            raise ProviderError(
                "the pytest process that started this xdist worker is gone; the worker creates no more databases "
                "(the next run removes what this run left)"
            )
        serial = next(self._serial)
        sections = self.project.database_names
        multi = len(sections) > 1
        return {s: database_name(run_id(), self.worker, serial, s if multi else None) for s in sections}

    def create(self) -> DatabaseSet:
        """A new set of fresh databases: empty, or holding the baseline tables."""
        if self._spares:
            return self._spares.pop()
        if self._baseline_error is not None:
            raise self._baseline_error
        names = self._names()
        dbs = DatabaseSet(names, {s: self.backend.create(n) for s, n in names.items()})
        self._owned[dbs.key] = dbs
        if self.baseline is not None:
            try:
                for url in dbs.urls.values():
                    engine = sa.create_engine(url, poolclass=NullPool)
                    try:
                        self.baseline.create_all(engine)
                    finally:
                        engine.dispose()
            except Exception as exc:
                self.drop(dbs)
                self._baseline_error = _baseline_failed(self.backend.dialect, exc)
                raise self._baseline_error from None
        return dbs

    def fresh_snapshots(self) -> list[SchemaSnapshot]:
        """The schema of a fresh database (one per multidb database): what downgrading to base must give."""
        return self.snapshots_at(frozenset())

    def snapshots_at(self, applied: frozenset[str]) -> list[SchemaSnapshot]:
        """The schema of a fresh database upgraded to exactly ``applied`` (one per multidb database)."""
        dbs = self.create()
        taken: list[SchemaSnapshot] = []

        def plan(session: Session) -> Iterator[RevisionStep]:
            yield from session.walk_to(applied)
            taken.append(self.capture(session))

        try:
            self.run(dbs, plan)
        finally:
            self.drop(dbs)
        return taken

    def clone(self, source: DatabaseSet) -> DatabaseSet:
        self.end_live(source)  # a clone copies committed state, with nobody connected to the source
        names = self._names()
        if self.shared is not None:
            assert isinstance(self.backend, MySQLBackend)
            renames = self.shared.renames(source.key, next(iter(names.values())))
            clone: Callable[[str, str], URL] = functools.partial(self.backend.clone, renames=renames)
        else:
            clone = self.backend.clone
        dbs = DatabaseSet(names, {s: clone(source.names[s], n) for s, n in names.items()})
        self._own_clone(source, dbs)
        if self.shared is not None:
            reverse = {**{source.names[s]: n for s, n in names.items()}, **renames}
            self.shared.cloned(source.key, dbs.key, reverse)
        return dbs

    def _own_clone(self, source: DatabaseSet, dbs: DatabaseSet) -> None:
        """Register ``dbs``, a clone of ``source``: :meth:`close` drops it, and it holds the roles ``source`` holds."""
        self._owned[dbs.key] = dbs
        for section, name in dbs.names.items():
            roles.LEDGER.cloned(source.names[section], name)

    def give_back(self, dbs: DatabaseSet) -> None:
        """Take back a set from :meth:`create` that nothing ran on: the next :meth:`create` returns it.

        A ``migration_runner`` that gets a template clone on its first upgrade never used the
        fresh database it was given; keeping it saves the next test a CREATE and this one a DROP.
        """
        if len(self._spares) < 2:
            self._spares.append(dbs)
        else:
            self.drop(dbs)

    def drop(self, dbs: DatabaseSet) -> None:
        if dbs in self._spares:
            self._spares.remove(dbs)
        self.end_live(dbs)
        self._runners.pop(dbs.key, None)
        self._owned.pop(dbs.key, None)
        for name in dbs.names.values():
            self.backend.drop(name)
        if self.shared is not None:
            self.shared.released(dbs.key)
        with self._role_admin() as admin:
            if admin is not None:
                for name in dbs.names.values():
                    roles.LEDGER.released(admin, name)

    def close(self) -> None:
        """Drop every database of this process."""
        self.end_live()
        for dbs, ahead in self._ahead.values():
            self._settle(dbs, ahead)
        self._ahead.clear()
        for dbs in list(self._owned.values()):
            self.drop(dbs)
        self._cursor = None
        self._checkpoints.clear()
        self._templates.clear()
        with self._role_admin() as admin:
            if admin is not None:
                roles.LEDGER.close(admin)
        if self.shared is not None:
            self.shared.close()
        self.backend.close()

    @contextmanager
    def _role_admin(self) -> Iterator[Connection | None]:
        """An admin connection when the process's migrations created PostgreSQL roles (see :mod:`.roles`), else None."""
        if not (roles.LEDGER and isinstance(self.backend, PostgreSQLBackend)):
            yield None
            return
        with self.backend.admin() as admin:
            yield admin

    # ------------------------------------------------------------------ running

    def runner(self, dbs: DatabaseSet) -> EnvRunner:
        if dbs.key not in self._runners:
            canceller = None
            if self.backend.dialect != "sqlite":
                canceller = ServerCanceller(self.backend, list(dbs.names.values()))
            self._runners[dbs.key] = EnvRunner(
                self.project, dbs.urls, self.snapshots, step_timeout=self.step_timeout, canceller=canceller
            )
        return self._runners[dbs.key]

    def run(self, dbs: DatabaseSet, plan: Plan) -> list[Session]:
        """Run ``plan`` through env.py on ``dbs``, in an env.py run of its own.

        EnvRunner.run ends any open env.py run first (one per process), whichever harness opened it.
        """
        self._enter_roles(dbs)
        with self.lending(dbs):
            return self.runner(dbs).run(plan)

    @contextmanager
    def lending(self, dbs: DatabaseSet) -> Iterator[None]:
        """In the block, the schemas of ``migrations_mysql_schemas`` hold ``dbs``'s content (:mod:`.mysql_schemas`)."""
        if self.shared is None:
            yield
            return
        with self.shared.lent(dbs.key):
            yield

    def _enter_roles(self, dbs: DatabaseSet) -> None:
        """The PostgreSQL roles migrations created: those ``dbs`` holds under their names (see :mod:`.roles`)."""
        with self._role_admin() as admin:
            if admin is not None:
                end_live_run()  # an open run's transaction may hold the roles to rename
                roles.LEDGER.enter(admin, dbs.names.values())

    def run_live(self, dbs: DatabaseSet, plan: Plan) -> None:
        """Run ``plan`` on ``dbs`` in the env.py run kept open for it (opened now if needed).

        Consecutive plans on one database share one env.py run. Falls back to a run of
        its own where an open run cannot work: ``multidb`` environments, and env.py
        reading its URL from an environment variable (which must not stay set between items).
        """
        if self.env_error is not None:
            raise self.env_error
        if self.project.is_multidb or self.project.url_variable or self.shared is not None or not self._env_checked:
            # The first plan of a process runs on its own: what env.py commits is then read back
            # from a second connection, which an open run cannot do until it ends.
            self._env_checked = True
            try:
                self.run(dbs, plan)
            except ConfigurationError as exc:
                self.env_error = exc
                raise
            return
        if self._live is None or self._live[0] != dbs.key or not self._live[1].alive:
            self.end_live()
            self._enter_roles(dbs)
            self._live = (dbs.key, LiveRun(self.runner(dbs)))
        live = self._live[1]
        try:
            live.execute(plan)
        finally:
            if not live.alive:
                self._live = None

    def end_live(self, dbs: DatabaseSet | None = None) -> None:
        """End the open env.py run (of ``dbs`` only, when given): env.py commits and disconnects."""
        if self._live is not None and (dbs is None or self._live[0] == dbs.key):
            live, self._live = self._live[1], None
            live.close()

    def capture(self, session: Session, *, full: bool = False) -> SchemaSnapshot:
        """Snapshot the live database of ``session``, leaving out Alembic's version table.

        ``full``: read the whole catalog, whatever the last snapshot of the database knew.

        Only the plugin's own database is looked at: on PostgreSQL all of its schemas; on
        MySQL a "schema" is another database of the server, which is never ours to read.
        """
        started = time.perf_counter()
        schemas: tuple[str | None, ...] = (None,)
        if self.shared is not None and self.shared.active is not None:
            schemas += self.shared.names  # lent to this database (see :mod:`.mysql_schemas`)
        snapshot = self.snapshots.capture(
            session.connection, exclude_tables=[_version_table(session)], schemas=schemas, full=full
        )
        timings.RECORDER.snapshot(time.perf_counter() - started)
        if roles.LEDGER and snapshot.dialect == "postgresql":
            held = dict(roles.LEDGER.states(session.connection))
            snapshot = SchemaSnapshot({**snapshot.objects, **held}, "postgresql")
        return snapshot

    # ------------------------------------------------------------------ positions

    def take_cursor(self, position: int) -> tuple[DatabaseSet, int]:
        """A database of this process at some position ``<= position``; the caller walks the rest.

        The caller owns it until :meth:`return_cursor` (on success) or :meth:`drop`.
        """
        if self._cursor is not None and self._cursor[1] <= position:
            cursor, self._cursor = self._cursor, None
            self._cursor_taken = True
            return cursor
        if self._cursor_taken:  # behind the cursor, or a failed item dropped it: the cursor is lost
            self.checkpointing = True
        self._cursor_taken = True
        self.cursor_snapshots = {}
        best = max((p for p in self._checkpoints if p <= position), default=None)
        if best is None:
            return self.create(), 0
        return self.clone(self._checkpoints[best]), best

    def return_cursor(
        self, dbs: DatabaseSet, position: int, snapshots: dict[int, SchemaSnapshot] | None = None
    ) -> None:
        """Keep ``dbs`` (now at ``position``) as the cursor, checkpointing it when due.

        :param snapshots: the schema of ``dbs`` now, when the caller has it: the next
            stairway item starting here reuses it instead of taking it again.
        """
        self.cursor_snapshots = dict(snapshots or {})
        if self._cursor is not None:
            self.drop(self._cursor[0])
        last = max((p for p in self._checkpoints if p <= position), default=0)
        if self.checkpointing and position - last >= self.checkpoint_every:
            self.keep_checkpoint(dbs, position)
        self._cursor = (dbs, position)

    def keep_checkpoint(self, dbs: DatabaseSet, position: int) -> None:
        if position not in self._checkpoints:
            self._checkpoints[position] = self.clone(dbs)

    def adopt_checkpoint(self, dbs: DatabaseSet, position: int) -> None:
        """Keep ``dbs`` itself (at ``position``, nobody else using it) as a checkpoint, or drop it."""
        if position in self._checkpoints:
            self.drop(dbs)
        else:
            self._checkpoints[position] = dbs

    def from_template(self, applied: frozenset[str]) -> DatabaseSet | None:
        """A new database set cloned from the template of ``applied``, if one was kept.

        On PostgreSQL the clone after it is started at once, in the background (see :mod:`.ahead`).
        """
        template = self._templates.get(applied)
        if template is None:
            return None
        dbs = self._take_ahead(applied) or self.clone(template)
        self._clone_ahead(applied, template)
        return dbs

    def _take_ahead(self, applied: frozenset[str]) -> DatabaseSet | None:
        """The clone made ahead for ``applied``, once made; ``None`` when there is none or it failed."""
        entry = self._ahead.get(applied)
        if entry is None:
            return None
        dbs, ahead = entry
        made = self._settle(dbs, ahead)  # still listed meanwhile: after a Ctrl-C here, close() waits for it too
        del self._ahead[applied]
        if made:
            return dbs
        if ahead.finished:
            self.drop(dbs)  # it failed: drop what it made; the plain clone that follows reports why
        return None

    def _settle(self, dbs: DatabaseSet, ahead: CloneAhead) -> bool:
        """Wait for a clone made ahead; whether it is made. One still running then (a server that hangs) is
        no longer this process's to drop: its DROP would wait on the CREATE. The next run's clean-up drops it."""
        made = ahead.wait()
        if not made and not ahead.finished:
            self._owned.pop(dbs.key, None)
        return made

    def _clone_ahead(self, applied: frozenset[str], template: DatabaseSet) -> None:
        """Start cloning ``template`` for the next runner going to ``applied`` (PostgreSQL: one statement)."""
        if not isinstance(self.backend, PostgreSQLBackend) or applied in self._ahead:
            return
        try:
            names = self._names()
        except ProviderError:
            return  # the controller is gone: no more databases
        backend = self.backend
        dbs = DatabaseSet(names, {s: backend.url(n) for s, n in names.items()})
        self._own_clone(template, dbs)  # registered first: close() drops it whatever happens

        def make() -> None:
            for section, name in names.items():
                backend.clone(template.names[section], name)

        self._ahead[applied] = (dbs, CloneAhead(make))

    def keep_template(self, applied: frozenset[str], dbs: DatabaseSet) -> None:
        """Keep a copy of ``dbs`` (at ``applied``): the next runner going there costs a clone, not a walk."""
        if applied and applied not in self._templates:
            self._templates[applied] = self.clone(dbs)

    def database_at(self, position: int, *, empty_tables: bool = False) -> DatabaseSet:
        """A new database set with the first ``position`` revisions of the graph order applied.

        ``empty_tables``: walked from base, for a check that must not meet the generated
        rows that checkpoints of a ``--migrations-data`` stairway hold.
        """
        best = None if empty_tables else max((p for p in self._checkpoints if p <= position), default=None)
        dbs = self.create() if best is None else self.clone(self._checkpoints[best])
        if best != position:
            target = self.reachable(self.graph.prefix(position), rows=not empty_tables)

            def plan(session: Session) -> Iterator[RevisionStep]:
                yield from session.walk_to(target, label="upgrade (walking to the starting revision)")

            try:
                self.run(dbs, plan)
            except BaseException:
                self.drop(dbs)
                raise
            if not empty_tables and (position == len(self.graph) or position % self.checkpoint_every == 0):
                self.keep_checkpoint(dbs, position)
        return dbs


def _baseline_failed(dialect: str, exc: Exception) -> ConfigurationError:
    """One line for a baseline the database refuses, instead of a traceback (and its whole DDL) per item."""
    statement = getattr(exc, "statement", None)
    cause = exc.orig if isinstance(exc, sa.exc.DBAPIError) and exc.orig is not None else exc
    where = f" at: {' '.join(str(statement).split())[:300]}" if statement else ""
    return ConfigurationError(
        f"the baseline (migrations_baseline) could not be created on {dialect}: {type(cause).__name__}: "
        f"{first_line(cause)}{where}. Fix the baseline's DDL for {dialect}, or give it for the databases it works on"
    )


def _version_table(session: Session) -> str:
    context = session.context
    schema = context.version_table_schema
    return f"{schema}.{context.version_table}" if schema else context.version_table
