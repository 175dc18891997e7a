"""MigrationRunner: the revision engine as a test harness for the user's own tests.

A runner owns one throwaway database (one per section for the ``multidb`` template)
and moves it through the history with the same exact steps the built-in checks use,
running the user's env.py once per call. It is what a data-migration test needs: go to
the revision before the migration, insert rows, upgrade, look at what the rows became,
downgrade, look again.

Example::

    def test_split_name(migration_runner):
        migration_runner.upgrade("a1b2c3d4e5f6")           # the revision before the data migration
        migration_runner.insert("users", [{"id": 1, "name": "Ada Lovelace"}])
        migration_runner.upgrade("+1")
        assert migration_runner.execute("SELECT first, last FROM users") == [("Ada", "Lovelace")]
        migration_runner.downgrade("-1")
        assert migration_runner.execute("SELECT name FROM users") == [("Ada Lovelace",)]
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

import sqlalchemy as sa
from alembic.runtime.migration import RevisionStep
from alembic.script.revision import RevisionError
from alembic.util import CommandError
from sqlalchemy.pool import NullPool

from . import data as rowdata
from .catalog import DEFAULT_ROWS
from .checks import check_drift, compare_backed
from .envrun import Plan, Session
from .exceptions import ConfigurationError, SchemaMismatch
from .harness import DatabaseSet, Harness
from .history import Revision, RevisionGraph
from .schema import SchemaSnapshot
from .urls import mask


def _version_tables(conn: sa.Connection) -> list[str]:
    """Tables that hold nothing but Alembic version numbers (whatever env.py named them)."""
    inspector = sa.inspect(conn)
    return [
        name
        for name in inspector.get_table_names()
        if [c["name"] for c in inspector.get_columns(name)] == ["version_num"]
    ]


def _with_parents(metadata: sa.MetaData, names: set[str]) -> set[str]:
    """``names`` and every table their foreign keys point to, transitively."""
    found, stack = set(), list(names)
    while stack:
        name = stack.pop()
        if name in found or name not in metadata.tables:
            continue
        found.add(name)
        stack.extend(fk.column.table.name for fk in metadata.tables[name].foreign_keys)
    return found


def _raise(mismatch: SchemaMismatch | None) -> None:
    if mismatch is not None:
        raise mismatch


class MigrationRunner:
    """Moves one throwaway database through the revision history. Get one from the ``migration_runner`` fixture."""

    def __init__(self, harness: Harness, databases: DatabaseSet, *, _ispytest: bool = False) -> None:
        self._harness = harness
        self._dbs = databases
        self._engines: dict[str, sa.Engine] = {}
        self._applied: frozenset[str] | None = frozenset()  # a new database is at base
        self._pristine = True
        """Nothing but migrations has touched the database: it may be swapped for a template clone."""
        self._untouched = True
        """Nothing at all has run on the database (it is as :meth:`Harness.create` made it)."""

    def __repr__(self) -> str:
        return f"<MigrationRunner {', '.join(mask(u) for u in self._dbs.urls.values())}>"

    # ------------------------------------------------------------------ the history

    @property
    def graph(self) -> RevisionGraph:
        """The revision graph (order, heads, bases, ...)."""
        return self._harness.graph

    @property
    def heads(self) -> tuple[str, ...]:
        """The heads of the history (not of the database: see :meth:`current`)."""
        return self.graph.heads

    def revision(self, target: str) -> Revision:
        """The one revision a target (id, unique prefix, ``label@head``...) names."""
        revisions = self._resolve(target)
        if len(revisions) != 1:
            raise ConfigurationError(f"{target!r} names {len(revisions)} revisions; name exactly one")
        return self.graph[revisions[0]]

    # ------------------------------------------------------------------ moving

    def current(self) -> tuple[str, ...]:
        """The heads recorded in the database's version table (read through env.py)."""
        found: list[tuple[str, ...]] = []

        def plan(session: Session) -> Iterator[RevisionStep]:
            found.append(tuple(session.context.get_current_heads()))
            self._applied = frozenset(session.applied)
            return
            yield

        self._run(plan)
        return found[0]

    def upgrade(self, target: str = "heads") -> tuple[str, ...]:
        """Upgrade to ``target`` (``heads``, a revision, ``label@head``, ``+N``); return the new heads.

        From a fresh database, the first runner to reach a state walks there and keeps a
        template; later runners going to the same state get a clone of it instead.
        """
        if self._pristine and self._applied is not None:
            destination = self._upgrade_target(target, self._applied)
            clone = self._harness.from_template(destination)
            if clone is not None:
                self.close()
                if self._untouched:
                    self._harness.give_back(self._dbs)
                else:
                    self._harness.drop(self._dbs)
                self._dbs, self._applied = clone, destination
                return self.graph.heads_of(destination)
            heads = self._walk(lambda applied: destination)
            if self._applied == destination:
                self._harness.keep_template(destination, self._dbs)
            return heads
        return self._walk(lambda applied: self._upgrade_target(target, applied))

    def downgrade(self, target: str = "-1") -> tuple[str, ...]:
        """Downgrade to ``target`` (``base``, a revision, ``-N``); return the new heads."""
        return self._walk(lambda applied: self._downgrade_target(target, applied))

    def _walk(self, destination: Any) -> tuple[str, ...]:
        def plan(session: Session) -> Iterator[RevisionStep]:
            target = destination(frozenset(session.applied))
            yield from session.walk_to(target)
            self._applied = frozenset(session.applied)

        self._run(plan)
        assert self._applied is not None
        return self.graph.heads_of(self._applied)

    def _run(self, plan: Plan) -> None:
        """Run ``plan`` through env.py on the runner's database (which is then no longer untouched)."""
        self._untouched = False
        self._harness.run(self._dbs, plan)

    def _resolve(self, target: str) -> list[str]:
        try:
            scripts = self._harness.project.script.get_revisions(target)
        except (RevisionError, CommandError) as exc:
            raise ConfigurationError(f"{target!r} is not a revision of this history: {exc}") from exc
        return [s.revision for s in scripts if s is not None]

    def _upgrade_target(self, target: str, applied: frozenset[str]) -> frozenset[str]:
        graph = self.graph
        if target in ("head", "heads"):
            return frozenset(rev.id for rev in graph.order)
        if target.startswith("+") and target[1:].isdigit():
            result = set(applied)
            for _ in range(int(target[1:])):
                nxt = next((r.id for r in graph.order if r.id not in result and set(r.requires) <= result), None)
                if nxt is None:
                    raise ConfigurationError(f"cannot upgrade {target}: the database is already at every head")
                result.add(nxt)
            return frozenset(result)
        return applied | graph.ancestors(self._resolve(target))

    def _downgrade_target(self, target: str, applied: frozenset[str]) -> frozenset[str]:
        graph = self.graph
        if target == "base":
            return frozenset()
        if target.startswith("-") and target[1:].isdigit():
            ordered = graph.sorted(applied)
            count = int(target[1:])
            if count > len(ordered):
                raise ConfigurationError(f"cannot downgrade {target}: only {len(ordered)} revision(s) are applied")
            return frozenset(ordered[: len(ordered) - count])
        keep = self._resolve(target)
        return applied - (graph.descendants(keep) - set(keep))

    # ------------------------------------------------------------------ data

    def url(self, database: str | None = None) -> sa.URL:
        """The URL of the runner's database, to point your own code at it (its repr hides the password)."""
        return self._dbs.urls[database or next(iter(self._dbs.urls))]

    def engine(self, database: str | None = None) -> sa.Engine:
        """A SQLAlchemy engine on the runner's database (``database``: the multidb section)."""
        self._pristine = self._untouched = False  # the caller may write through it
        section = database or next(iter(self._dbs.urls))
        if section not in self._engines:
            self._engines[section] = sa.create_engine(self._dbs.urls[section], poolclass=NullPool)
        return self._engines[section]

    def execute(
        self,
        sql: str | sa.Executable,
        params: Mapping[str, Any] | Sequence[Mapping[str, Any]] | None = None,
        *,
        database: str | None = None,
    ) -> list[tuple[Any, ...]]:
        """Run SQL in its own transaction; return the rows (as tuples) when it returns any."""
        statement = sa.text(sql) if isinstance(sql, str) else sql
        self._pristine = False
        with self._harness.lending(self._dbs), self.engine(database).begin() as conn:
            result = conn.execute(statement, params) if params is not None else conn.execute(statement)
            return [tuple(row) for row in result] if result.returns_rows else []

    def table(self, name: str, *, schema: str | None = None, database: str | None = None) -> sa.Table:
        """The table as it is at the current revision, reflected from the database."""
        return sa.Table(name, sa.MetaData(), schema=schema, autoload_with=self.engine(database))

    def insert(
        self, table: str, rows: Iterable[Mapping[str, Any]], *, schema: str | None = None, database: str | None = None
    ) -> None:
        """Insert rows into ``table`` as it is at the current revision."""
        reflected = self.table(table, schema=schema, database=database)
        self._pristine = False
        with self._harness.lending(self._dbs), self.engine(database).begin() as conn:
            conn.execute(reflected.insert(), list(rows))

    def seed(
        self, tables: Iterable[str] | None = None, rows: int = DEFAULT_ROWS, *, database: str | None = None
    ) -> dict[str, int]:
        """Fill empty tables with generated rows, as ``--migrations-data`` does; return the rows inserted per table.

        The rows follow the schema at the current revision (keys distinct, foreign keys
        pointing at existing rows, lengths, enums, CHECK constraints) and include the
        values that find bugs (NULLs, repeats, the longest strings, unicode, zero,
        negatives). They are the same every time for the same revision. ``tables`` limits
        the seeding to those tables and the tables they refer to; tables that already
        have rows are left as they are.

        Example::

            migration_runner.upgrade("3c4d5e6f7a8b")
            migration_runner.seed(["users"])
            migration_runner.upgrade("+1")   # the data migration under test now runs on rows
        """
        if self._applied is None:
            self.current()  # the seed is the revision's: the same rows every time at the same heads
        seed_key = "runner/" + ",".join(self.graph.heads_of(self._applied or frozenset()))
        self._pristine = False
        with self._harness.lending(self._dbs), self.engine(database).begin() as conn:
            metadata = rowdata.reflect(conn, _version_tables(conn))
            if tables is not None:
                wanted = set(tables)
                missing = wanted - set(metadata.tables)
                if missing:
                    raise ConfigurationError(
                        f"seed(): no table {', '.join(sorted(missing))} at the current revision; tables: "
                        f"{', '.join(sorted(metadata.tables)) or 'none'}"
                    )
                keep = _with_parents(metadata, wanted)
                for name in list(metadata.tables):
                    if name not in keep:
                        metadata.remove(metadata.tables[name])
            seeded = rowdata.seed(conn, metadata, seed_key, rows)
        return {name: done.inserted for name, done in seeded.items()}

    # ------------------------------------------------------------------ checks

    def snapshot(self) -> SchemaSnapshot:
        """The schema now (version table excluded). Snapshots compare with ``==``."""
        taken: list[SchemaSnapshot] = []

        def plan(session: Session) -> Iterator[RevisionStep]:
            taken.append(self._harness.capture(session))
            return
            yield

        self._run(plan)
        return taken[0]

    def roundtrip(self, target: str) -> None:
        """Upgrade to the revision's parents, then upgrade, downgrade, re-upgrade it, comparing schemas.

        Raises :class:`~pytest_migrations.exceptions.SchemaMismatch` on a difference.
        """
        revision = self.revision(target)
        graph = self.graph

        def plan(session: Session) -> Iterator[RevisionStep]:
            yield from session.walk_to(frozenset(session.applied) | graph.ancestors(revision.requires))
            yield from session.walk_to(frozenset(session.applied) - (graph.descendants([revision.id])))
            before = self._harness.capture(session)
            yield from session.step(revision.id, upgrade=True)
            after = self._harness.capture(session)
            yield from session.step(revision.id, upgrade=False)
            harness = self._harness
            _raise(compare_backed(harness, session, before, harness.capture(session), revision, "downgrade")[1])
            yield from session.step(revision.id, upgrade=True, label="re-upgrade")
            _raise(compare_backed(harness, session, after, harness.capture(session), revision, "re-upgrade")[1])
            self._applied = frozenset(session.applied)

        self._run(plan)

    def stairway(self) -> None:
        """Run :meth:`roundtrip` for every revision in order, from base."""
        self.downgrade("base")
        for revision in self.graph.order:
            self.roundtrip(revision.id)

    def assert_no_drift(self, models: str | None = None) -> None:
        """Fail when the models (env.py's ``target_metadata``, or ``models``) differ from the schema at head."""
        check_drift(self._harness, models)

    def close(self) -> None:
        """Dispose of the engines handed out by :meth:`engine`."""
        for engine in self._engines.values():
            engine.dispose()
        self._engines.clear()

    def _dispose(self) -> None:
        """Close, and drop the runner's database (the fixture's teardown)."""
        self.close()
        self._harness.drop(self._dbs)
