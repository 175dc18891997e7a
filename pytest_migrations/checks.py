"""The built-in checks, as plain functions over a :class:`~pytest_migrations.harness.Harness`.

Each check returns ``None`` when it passes, returns a string (the reason) when the
check does not apply (a revision declared irreversible has no downgrade to test), and
raises :class:`~pytest_migrations.exceptions.MigrationCheckFailed` with a readable
report when it finds a defect. Nothing here imports pytest.
"""

from __future__ import annotations

import importlib
import json
import re
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import sqlalchemy as sa
from alembic.autogenerate import produce_migrations, render_python_code
from alembic.runtime.migration import MigrationContext, RevisionStep
from sqlalchemy import MetaData
from sqlalchemy.pool import NullPool

from . import changes, since
from . import data as rowdata
from .advice import rename_advice, renamed_constraints, suggest_downgrade
from .exceptions import (
    ConfigurationError,
    MigrationCheckFailed,
    MigrationStepFailed,
    RevisionBlocked,
    SchemaMismatch,
    first_line,
)
from .harness import Harness
from .history import Revision, RevisionGraph
from .policy import ACCEPT_ATTRIBUTE, accept_entry, split_accepted
from .project import import_object
from .schema import SchemaDiff, SchemaSnapshot
from .urls import sync_url

CheckResult = str | None


def check_history_unchanged(history: since.History, graph: RevisionGraph) -> CheckResult:
    """No revision of REF edited or deleted, and every new one built on REF's heads (see :mod:`.since`)."""
    found = since.changes(history, graph)
    if not found:
        added = len(since.new_revisions(history, graph))
        return None if added else f"no revision was added since {history.ref}"
    by_file: dict[str, list[str]] = {}
    for change in found:
        by_file.setdefault(change.path, []).append(change.what)
    per_file = [(path, "\n".join(whats)) for path, whats in sorted(by_file.items())]
    raise MigrationCheckFailed(
        f"{len(found)} change(s) to the history of {history.ref} ({history.commit[:12]}): revisions that exist there "
        "have most likely run in production, and a database that ran them will not run them again",
        [
            *per_file,
            (
                "fix",
                "put the edited revisions back as they are at the ref (git checkout "
                f"{history.ref} -- <file>) and make the change in a new revision on top of the head",
            ),
        ],
    )


def check_single_head(graph: RevisionGraph, expected: int) -> CheckResult:
    heads = graph.heads
    if not heads:
        return "the history has no revisions yet"
    if len(heads) == expected:
        return None
    lines = [f"{graph[h].label}" for h in heads]
    fix = (
        'merge them with `alembic merge heads -m "merge"`, or, if the branches are meant to stay apart, '
        f"set migrations_expected_heads = {len(heads)}"
    )
    raise MigrationCheckFailed(
        f"the history has {len(heads)} heads, expected {expected}",
        [("heads", "\n".join(lines)), ("fix", fix)],
    )


def _describe_walk_failure(exc: MigrationStepFailed, revision: Revision) -> MigrationStepFailed:
    """Reword a step failure that happened on another revision while walking up to ``revision``."""
    if exc.where.revision in (None, revision.id):
        return exc
    exc.summary = (
        f"cannot test {revision.short_id}: walking up to it, {exc.summary} (its own stairway item reports it in full)"
    )
    return exc


def _blocked(harness: Harness, blocker: str, what: str, *, needs_head: bool = False) -> RevisionBlocked:
    cause = harness.broken[blocker].cause
    text = str(cause).strip().splitlines()
    failure = f"{type(cause).__name__}: {text[0] if text else ''}"
    return RevisionBlocked(blocker, harness.graph[blocker].label, failure, what, needs_head=needs_head)


def check_stairway(harness: Harness, revision: Revision, notes: list[str] | None = None) -> CheckResult:
    """From the revision's parent: upgrade; downgrade; compare; upgrade again; compare.

    The database starts with every revision before this one in the graph order,
    except what a failing upgrade elsewhere makes unreachable: a revision whose
    upgrade fails blocks only its descendants, never a revision on another branch.

    :param notes: receives a line per accepted difference, for the report.
    :raises RevisionBlocked: a revision this one needs fails its upgrade.
    """
    while True:
        blocker = harness.blocker(revision.requires)
        if blocker is not None:
            raise _blocked(harness, blocker, f"the stairway of {revision.short_id}")
        try:
            return _stairway_once(harness, revision, notes if notes is not None else [])
        except MigrationStepFailed as exc:
            on_rows = harness.data is not None
            if exc.where.revision == revision.id:
                harness.note_failure(exc, on_rows=on_rows)
                raise
            if not harness.note_failure(exc, on_rows=on_rows):  # not a new failing upgrade: nothing to walk around
                raise _describe_walk_failure(exc, revision) from exc.__cause__
            # A revision elsewhere fails its upgrade: try again without what it blocks.


def _stairway_once(harness: Harness, revision: Revision, notes: list[str]) -> CheckResult:
    graph = harness.graph
    index = graph.position[revision.id]
    target = harness.reachable(graph.prefix(index))
    module = harness.module(revision.id)
    exemption = harness.policy.downgrade_exemption(graph, revision, module)
    accept = harness.policy.accepted_entries(revision, module)
    dbs, start = harness.take_cursor(index)
    # The cursor's last snapshot is this revision's "before" when no step separates them.
    known = harness.cursor_snapshots if start == index else {}
    final: dict[int, SchemaSnapshot] = {}
    left: list[tuple[SchemaMismatch, SchemaSnapshot]] = []
    rows = None
    if harness.data is not None:
        if harness.data.revision_data and harness.revision_data is None:
            harness.revision_data = rowdata.RevisionData.load(harness.data.revision_data)
        rows = _Rows(harness.data, revision, module, notes, harness)

    def plan(session: Any) -> Iterator[RevisionStep]:
        walked = len(session.completed)
        yield from session.walk_to(target, label="upgrade (walking to the revision's parent)")
        before = (known.get(session.index) if len(session.completed) == walked else None) or harness.capture(session)
        session.before_step = before
        if rows is not None:
            rows.seed(session, before, continued=len(session.completed) == walked)
        yield from session.step(revision.id, upgrade=True, label="upgrade")
        if exemption and rows is None:
            return
        after = session.before_step = harness.capture(session)
        if rows is not None:
            rows.stepped("upgrade", session, before, after)
        if exemption:
            if rows is not None:
                rows.at_revision(session, after)
            return
        yield from session.step(revision.id, upgrade=False, label="downgrade")
        downgraded = harness.capture(session)
        if rows is not None:
            rows.stepped("downgrade", session, after, downgraded)
        downgraded, mismatch = compare_backed(
            harness, session, before, downgraded, revision, "downgrade", accept, notes
        )
        if mismatch is not None:
            # End the plan normally, so the database stays as the downgrade left it:
            # autogenerate then compares it with the schema before the upgrade.
            left.append((mismatch, before))
            return
        if rows is not None:
            rows.check("downgrade", session, downgraded)
        session.before_step = downgraded
        yield from session.step(revision.id, upgrade=True, label="re-upgrade")
        final[session.index] = harness.capture(session)
        if rows is not None:
            rows.stepped("re-upgrade", session, downgraded, final[session.index])
        final[session.index], mismatch = compare_backed(
            harness, session, after, final[session.index], revision, "re-upgrade", accept, notes
        )
        if mismatch is not None:
            raise mismatch
        if rows is not None:
            rows.check("re-upgrade", session, final[session.index])
            rows.at_revision(session, final[session.index])

    try:
        try:
            harness.run_live(dbs, plan)
        except MigrationStepFailed as exc:
            if rows is not None and exc.where.revision == revision.id:
                rows.explain(exc)
            raise
        if left:
            raise _with_autogenerate_fix(harness, dbs, index, *left[0])
    except BaseException:
        harness.drop(dbs)
        raise
    harness.return_cursor(dbs, index + 1, final)
    if exemption:
        return f"upgrade of {revision.short_id} passed; its downgrade is not tested: {exemption}"
    return None


LOSSY_ATTRIBUTE = "lossy_downgrade"
"""Module-level name of a revision file's reason why its downgrade does not give back every row."""


class _Rows:
    """The rows side of one stairway item with ``--migrations-data``: seed, snapshot, compare.

    Before the upgrade every table of the parent state without rows gets generated rows
    (they stay in the database as the walk moves on, so each table is seeded once). The
    rows are snapshot before the upgrade and after it; after the downgrade every row of
    before must be back with the same values in the parent schema's columns, and after
    the re-upgrade the rows must equal those after the first upgrade, except for values
    the database makes anew (keys from a sequence, ``now()`` defaults).

    A step is read back and compared only on the tables it may have touched (see
    :mod:`pytest_migrations.changes`); the rows of the others are the cache's
    (:class:`~pytest_migrations.data.RowCache`), so an item costs what its revision
    touches, not the whole schema.
    """

    def __init__(
        self,
        settings: rowdata.DataSettings,
        revision: Revision,
        module: object,
        notes: list[str],
        harness: Harness,
    ) -> None:
        self.settings = settings
        self.cache = harness.reflections
        self.stores = harness.row_caches
        self.given = harness.revision_data
        self.revision = revision
        declared = getattr(module, LOSSY_ATTRIBUTE, None)
        self.lossy = (
            (declared if isinstance(declared, str) else f"{LOSSY_ATTRIBUTE} = {declared!r}") if declared else None
        )
        for key, why in settings.lossy.items():
            if self.lossy is None and revision.id.startswith(key):
                self.lossy = f"{why} (migrations_lossy_downgrade)" if why else "migrations_lossy_downgrade"
        self.notes = notes
        self.seeded: dict[str, rowdata.Seeded] = {}
        self.taken: dict[str, rowdata.RowSnapshot] = {}
        self.touched: dict[str, set[str] | None] = {}
        """Tables each step may have changed (``None``: any)."""

    def _store(self, session: Any) -> rowdata.RowCache:
        return self.stores.setdefault(session.index, rowdata.RowCache())

    def seed(self, session: Any, schema: SchemaSnapshot, *, continued: bool) -> None:
        """Seed the empty tables and take the rows before the upgrade.

        :param continued: the database is where the previous item left it (no walk since):
            the cache's rows are still what it holds.
        """
        connection = session.connection
        store = self._store(session)
        database, applied = connection.engine.url.database, frozenset(session.applied)
        if not (continued and store.continues(database, applied)):
            store.restart(database, applied)
        tables = rowdata.data_tables(schema)
        unread = store.unread(tables)
        candidates = unread + [
            name
            for name in tables
            if name not in unread and not store.rows[name].rows and store.tried.get(name) != tables[name]
        ]
        seeded: dict[str, rowdata.Seeded] = {}
        hook_rows: Mapping[str, Sequence[Mapping[str, Any]]] = {}
        if self.settings.user_rows is not None:
            hook_rows = self.settings.user_rows(self.revision.id, self.cache.tables_of(connection, tables)) or {}
        ini_rows = self.given.rows_before(self.revision.id) if self.given is not None else {}
        if candidates or hook_rows or ini_rows:
            metadata = self.cache.metadata(connection, schema)  # all of it: a child's rows need its parents' keys
            seeded = rowdata.insert_user_rows(connection, metadata, hook_rows)
            seeded.update(rowdata.insert_user_rows(connection, metadata, ini_rows, "migrations_revision_data"))
            candidates = [name for name in candidates if name not in seeded]
            seeded = {**rowdata.seed(connection, metadata, self.revision.id, self.settings.rows, candidates), **seeded}
        self.seeded = seeded
        for name in candidates:
            if not (seeded.get(name) and seeded[name].inserted):
                store.tried[name] = tables[name]
        read = set(unread) | {name for name, made in seeded.items() if made.inserted}
        self._read(session, tables, read)
        self.taken["before"] = dict(store.rows)

    def at_revision(self, session: Any, schema: SchemaSnapshot) -> None:
        """The rows ``migrations_revision_data`` gives at this revision, for the revisions above it."""
        rows = self.given.rows_at(self.revision.id) if self.given is not None else {}
        if rows:
            metadata = self.cache.metadata(session.connection, schema)
            rowdata.insert_user_rows(session.connection, metadata, rows, "migrations_revision_data (at_revision_data)")
            self._read(session, rowdata.data_tables(schema), set(rows))

    def stepped(self, step: str, session: Any, before: SchemaSnapshot, after: SchemaSnapshot) -> None:
        """After ``step``: read again what it may have touched."""
        tables = rowdata.data_tables(after)
        touched = self._touched(session, before, after, tables)
        self.touched[step] = touched
        self._read(session, tables, touched)
        store = self._store(session)
        store.applied = frozenset(session.applied)
        if step == "upgrade":
            self.taken["upgraded"] = dict(store.rows)

    def _read(self, session: Any, tables: Mapping[str, frozenset[tuple[str, str]]], names: set[str] | None) -> None:
        """Read the rows of ``names`` (every table when ``None``) of ``tables``, the schema now, into the cache."""
        wanted = list(tables) if names is None else [name for name in tables if name in names]
        found = self.cache.tables_of(session.connection, tables, only=wanted)
        self._store(session).keep(tables, rowdata.snapshot(session.connection, found))

    def _touched(
        self,
        session: Any,
        before: SchemaSnapshot,
        after: SchemaSnapshot,
        tables: Mapping[str, frozenset[tuple[str, str]]],
    ) -> set[str] | None:
        if session.elsewhere:
            return None  # statements on a connection of its own were not recorded
        old = rowdata.data_tables(before)
        functions = {
            name.split("(")[0].rpartition(".")[2]
            for kind, name in before.objects.keys() | after.objects.keys()
            if kind == "function"
        }
        named = changes.written_tables((s.sql for s in session.statements), tables.keys() | old.keys(), functions)
        if named is None:
            return None
        named |= {name for name in tables.keys() | old.keys() if tables.get(name) != old.get(name)}
        referrers: dict[str, set[str]] = {}
        triggered = []
        for name, table in self.cache.tables_of(session.connection, tables).items():
            if any(fact.startswith("trigger ") for fact, _ in tables[name]):
                triggered.append(name)
            for fk in table.foreign_keys:
                referrers.setdefault(fk.target_fullname.rsplit(".", 2)[-2], set()).add(name)
        return changes.with_dependents(named, referrers, triggered)

    def check(self, step: str, session: Any, schema: SchemaSnapshot) -> None:
        """Compare the rows after ``step`` with what they must be; raise the row diff as a mismatch."""
        if self.lossy is not None:
            note = f"{self.revision.short_id} {step}: rows not compared: {LOSSY_ATTRIBUTE}: {self.lossy}"
            if note not in self.notes:
                self.notes.append(note)
            return
        expected = self.taken["before" if step == "downgrade" else "upgraded"]
        steps = ("upgrade", "downgrade") if step == "downgrade" else ("downgrade", "re-upgrade")
        spans = [self.touched.get(s) for s in steps]
        if all(span is not None for span in spans):
            compared = set().union(*(span for span in spans if span is not None))
            expected = {name: rows for name, rows in expected.items() if name in compared}
        actual = self._store(session).rows
        self.taken[step] = dict(actual)
        ignore = None
        if step == "re-upgrade":
            found = self.cache.tables_of(session.connection, rowdata.data_tables(schema), only=expected)
            ignore = rowdata.volatile_columns(found)
        differences = rowdata.compare(expected, actual, ignore)
        if differences and step == "re-upgrade":
            fresh = rowdata.made_afresh(expected, actual, differences)
            if fresh:
                assert ignore is not None
                for name, columns in fresh.items():
                    ignore.setdefault(name, set()).update(columns)
                    shown = ", ".join(f"{name}.{column}" for column in sorted(columns))
                    self.notes.append(
                        f"{self.revision.short_id} re-upgrade: {shown} not compared: new random UUIDs in each run"
                    )
                differences = rowdata.compare(expected, actual, ignore)
        if differences:
            raise self._mismatch(step, differences, session)

    def _mismatch(self, step: str, differences: list[rowdata.RowDifference], session: Any) -> SchemaMismatch:
        revision = self.revision
        db = f" (database {session.index})" if session.index else ""
        tables = ", ".join(f'"{d.table}" ({d.counts or "gone"})' for d in differences)
        if step == "downgrade":
            summary = (
                f"downgrade of revision {revision.label} does not give back the rows that were there before "
                f"the upgrade{db}: table {tables}"
            )
            labels = ("before the upgrade", "after the downgrade")
            fix = (
                f"make downgrade() in {revision.path.name} put back what upgrade() changed or moved: copy the values "
                "into the restored column or table before dropping the new one (op.execute(UPDATE/INSERT ... "
                "SELECT)), or rename instead of drop and re-create; if the loss is deliberate, declare it: "
                f'{LOSSY_ATTRIBUTE} = "<why>" at module level in {revision.path.name}'
            )
        else:
            summary = (
                f"re-upgrade of revision {revision.label} after its downgrade gives different rows from the first "
                f"upgrade{db}: table {tables}"
            )
            labels = ("after the first upgrade", "after the re-upgrade")
            fix = (
                f"upgrade() of {revision.path.name} must give the same rows on data that went through its downgrade: "
                "the downgrade leaves values the upgrade's data migration treats differently (a row or a counter "
                "it does not take back), or the upgrade makes values anew in each run (the clock, random values other "
                "than UUIDs: a column's server_default is not compared); if the difference is deliberate, "
                f'declare it: {LOSSY_ATTRIBUTE} = "<why>" in '
                f"{revision.path.name} (its rows are then compared neither after the downgrade nor after the "
                "re-upgrade)"
            )
        lines = [line for d in differences for line in d.render_lines(*labels)]
        return SchemaMismatch(
            summary,
            [
                ("revision", f"{revision.id} in {revision.path}"),
                ("rows", "\n".join(lines)),
                ("rows before the upgrade (--migrations-data)", rowdata.describe(self.taken["before"], self.seeded)),
                ("fix", fix),
            ],
        )

    def explain(self, exc: MigrationStepFailed) -> None:
        """Add to a failed step which tables had rows, and that they were generated: the step may fail on them."""
        before = self.taken.get("before")
        if before is None:
            return
        statement = getattr(exc.cause, "statement", None)
        if not isinstance(statement, str):  # raised in Python: the tables its queries read matter
            statement = " ".join(exc.statements)
        shown = None
        if statement:
            words = {word.lower() for word in re.findall(r"[A-Za-z_][\w$]*", statement)}
            shown = [name for name in before if name.lower() in words] or None
        lines = rowdata.render_rows(before, shown)
        exc.sections = (
            *exc.sections,
            (
                "rows (--migrations-data)",
                rowdata.describe(before, self.seeded, shown)
                + ("\n" + "\n".join(lines) if lines else "")
                + "\nthe step ran on these rows; on the same tables empty it may pass. Edge values (NULL, '', the "
                "longest string, negatives, boundary dates) are generated on purpose: the migration must handle "
                "them, or, if your data can never look like that, give these tables rows of your own before this "
                "revision (the pytest_migrations_seed_data hook, or migrations_revision_data)",
            ),
        )


def _compare(
    expected: SchemaSnapshot,
    actual: SchemaSnapshot,
    revision: Revision,
    step: str,
    session: Any,
    accept: Sequence[str] = (),
    notes: list[str] | None = None,
) -> SchemaMismatch | None:
    """The mismatch between two snapshots around ``step`` of ``revision``, or ``None`` when they match.

    Differences an accept entry of the revision covers are no mismatch; they are added to ``notes``.
    """
    accepted, rest = split_accepted(accept, expected.diff(actual))
    if notes is not None:
        notes.extend(
            f"{revision.short_id} {step}: accepted {d.render('before', 'after')}"
            for d in accepted
            if f"{revision.short_id} {step}: accepted {d.render('before', 'after')}" not in notes
        )
    if not rest:
        return None
    diff = SchemaDiff(tuple(rest))
    db = f" (database {session.index})" if session.index else ""
    if step == "downgrade":
        summary = (
            f"downgrade of revision {revision.label} does not undo its upgrade{db}: "
            f"{len(diff)} difference(s) from the schema before the upgrade"
        )
        lines = diff.render_lines(expected="before the upgrade", actual="after the downgrade")
        entries = list(dict.fromkeys(json.dumps(accept_entry(d), ensure_ascii=False) for d in rest))
        shown = ", ".join(entries[:_ENTRIES_SHOWN]) + (", ..." if len(entries) > _ENTRIES_SHOWN else "")
        fix = (
            f"make downgrade() in {revision.path.name} reverse every operation of upgrade() "
            "(objects marked + were left behind, - were removed or not restored, ~ were changed); "
            "to keep a difference on purpose, accept exactly it, one entry per difference"
            f"{f' ({len(entries)} entries for all of them)' if len(entries) > 1 else ''}: {ACCEPT_ATTRIBUTE} = "
            f"[{shown}] in {revision.path.name}"
        )
        labels = [d.name for d in rest if d.kind == "enum" and d.fact == "labels"]
        if labels:
            fix += (
                f"; PostgreSQL cannot drop a label of enum {labels[0]}: downgrade() must re-create the type without "
                "it (rename the type, create the old one, ALTER the columns to it USING <column>::text::<type>, "
                "drop the renamed one), or, to keep the label, accept it and make upgrade() add it with ALTER TYPE "
                "... ADD VALUE IF NOT EXISTS, so that the re-upgrade can run over it"
            )
        for renamed in renamed_constraints(diff):
            fix += "; " + rename_advice(renamed, expected.dialect)
        suggestion = suggest_downgrade(diff, dialect=expected.dialect)
        if suggestion:
            fix += "; for what was left behind, downgrade() probably needs:\n" + "\n".join(suggestion)
    else:
        summary = (
            f"re-upgrade of revision {revision.label} after its downgrade gives a different schema "
            f"from the first upgrade{db}: {len(diff)} difference(s)"
        )
        lines = diff.render_lines(expected="after the first upgrade", actual="after the re-upgrade")
        fix = f"the downgrade of {revision.path.name} leaves state that changes what its upgrade does"
    sections = [("revision", f"{revision.id} in {revision.path}"), ("differences", "\n".join(lines))]
    if accepted:
        sections.append(("accepted (stairway_accept)", "\n".join(d.render("before", "after") for d in accepted)))
    sections.append(("fix", fix))
    return SchemaMismatch(summary, sections, diff=diff)


def compare_backed(
    harness: Harness,
    session: Any,
    expected: SchemaSnapshot,
    actual: SchemaSnapshot,
    revision: Revision,
    step: str,
    accept: Sequence[str] = (),
    notes: list[str] | None = None,
) -> tuple[SchemaSnapshot, SchemaMismatch | None]:
    """:func:`_compare`, with a difference confirmed on a full read of the database before it is
    reported (snapshots are normally incremental, see :mod:`.pg_catalog`); the actual snapshot used."""
    mismatch = _compare(expected, actual, revision, step, session, accept, notes)
    if mismatch is not None:
        actual = harness.capture(session, full=True)
        mismatch = _compare(expected, actual, revision, step, session, accept, notes)
    return actual, mismatch


_AUTOGENERATE_NOISE = (
    "Cannot correctly sort tables; there are unresolvable cycles",  # SQLAlchemy, for tables with an FK cycle
    "autoincrement and existing_autoincrement only make sense for MySQL",  # Alembic, on the other databases
)


def _with_autogenerate_fix(
    harness: Harness, dbs: Any, position: int, mismatch: SchemaMismatch, expected: SchemaSnapshot
) -> SchemaMismatch:
    """Add what Alembic's autogenerate says the downgrade is missing, checked before it is called a fix.

    A database is brought to the state before the upgrade and the differing tables are
    reflected from it; autogenerate then compares the database the downgrade left with
    that reflection, and renders the ``op.*`` calls that would turn one into the other.
    The calls are then applied to a copy of the downgraded database: only when that
    removes every table difference are they shown as what downgrade() is missing.
    Only on failure: a passing item pays nothing for it.
    """
    diff = mismatch.diff
    tables = {d.name for d in diff or () if d.kind == "table" and "." not in d.name}
    if not tables or len(dbs.urls) != 1:
        return mismatch
    # autogenerate reads through connections of its own: the downgrade must be committed first.
    harness.end_live(dbs)
    try:
        with warnings.catch_warnings():
            # The plugin's own reflection and trial run, not the user's code: their warnings would be
            # noise on every failing item, and errors under filterwarnings=error.
            for message in _AUTOGENERATE_NOISE:
                warnings.filterwarnings("ignore", message=message)
            code = _autogenerate_difference(harness, dbs, position, tables)
            title = _verify_fix(harness, dbs, code, expected, tables) if code else None
    except Exception as exc:
        code, title = f"(autogenerate could not compare: {type(exc).__name__}: {exc})", "what autogenerate says"
    if code and title and diff is not None:
        # autogenerate's code replaces the hand-made suggestion for tables; other objects keep theirs.
        rest = suggest_downgrade(diff, tables_too=False, dialect=expected.dialect)
        sections = []
        for name, body in mismatch.sections:
            if name == "fix":
                body = body.split("; for what was left behind")[0]
                if rest:
                    body += (
                        "; for what was left behind besides the tables, downgrade() probably needs, after the "
                        "code autogenerate gives below (tables may depend on them):\n" + "\n".join(rest)
                    )
            sections.append((name, body))
        sections.append((title, code))
        mismatch.sections = tuple(sections)
    return mismatch


def _autogenerate_difference(harness: Harness, dbs: Any, position: int, tables: set[str]) -> str | None:
    scratch = harness.database_at(position)
    expected = MetaData()
    try:
        engine = sa.create_engine(sync_url(next(iter(scratch.urls.values()))), poolclass=NullPool)
        try:
            present = set(sa.inspect(engine).get_table_names())
            expected.reflect(engine, only=sorted(tables & present))
        finally:
            engine.dispose()
    finally:
        # The failed item's cursor is gone; the next item starts from this database, not from far back.
        harness.adopt_checkpoint(scratch, position)
    engine = sa.create_engine(sync_url(next(iter(dbs.urls.values()))), poolclass=NullPool)
    try:
        with engine.connect() as conn:
            context = MigrationContext.configure(
                conn,
                opts={
                    "compare_type": True,
                    "include_name": lambda name, kind, parents: kind != "table" or name in tables,
                    # Reflection also brings the tables foreign keys point to: no part of the difference.
                    "include_object": lambda obj, name, kind, reflected, other: kind != "table" or name in tables,
                },
            )
            ops = produce_migrations(context, expected).upgrade_ops
    finally:
        engine.dispose()
    if ops is None or ops.is_empty():
        return None
    # SQLite alters tables only in batch mode: that is the code to give its users, and the code that can run.
    return _dedent_rendered(render_python_code(ops, render_as_batch=engine.dialect.name == "sqlite"))


def _verify_fix(harness: Harness, dbs: Any, code: str, expected: SchemaSnapshot, tables: set[str]) -> str:
    """Apply autogenerate's code to a copy of the downgraded database; the section title says how it went."""
    from alembic.operations import Operations
    from sqlalchemy.dialects import mysql, postgresql, sqlite

    copy = harness.clone(dbs)
    try:
        engine = sa.create_engine(sync_url(next(iter(copy.urls.values()))), poolclass=NullPool)
        try:
            with engine.begin() as conn:
                # What the rendered code names: sa.*, the dialect modules, and bare type names (Text()).
                namespace: dict[str, Any] = {k: getattr(sa, k) for k in dir(sa) if not k.startswith("_")}
                namespace.update(op=Operations(MigrationContext.configure(conn)), sa=sa)
                namespace.update(postgresql=postgresql, mysql=mysql, sqlite=sqlite)
                try:
                    exec(compile(code, "<autogenerate>", "exec"), namespace)
                except sa.exc.DBAPIError as exc:
                    return (
                        "what autogenerate proposes (NOT a fix: applied to a copy of the database it fails with "
                        f"{first_line(exc.orig)})"
                    )
                except Exception as exc:
                    return f"what autogenerate proposes (not checked: {type(exc).__name__}: {first_line(exc)})"
            with engine.connect() as conn:
                after = harness.snapshots.capture(conn)
        finally:
            engine.dispose()
    finally:
        harness.drop(copy)
    remaining = [d for d in expected.diff(after) if d.kind == "table" and d.name in tables]
    if remaining:
        return (
            "what autogenerate proposes (NOT a complete fix: applied to a copy of the database, it leaves "
            f"{len(remaining)} difference(s) from the schema before the upgrade)"
        )
    return "what autogenerate says downgrade() is missing (applied to a copy of the database, it removes them)"


_ENTRIES_SHOWN = 6
"""Accept entries a fix lists at most: accepting more differences than that is rarely what a team means."""


def alembic_order(harness: Harness, *, downgrade: bool = False) -> list[str]:
    """The order ``alembic upgrade heads`` (or ``downgrade base`` from heads) runs the revisions in.

    Which revision of two branches comes first is Alembic's choice; following it makes a
    whole walk fail first where the ``alembic`` command would.
    """
    script = harness.project.script
    try:
        if downgrade:
            scripts = script.iterate_revisions(harness.graph.heads, "base", select_for_downgrade=True)
            order = [s.revision for s in scripts]
        else:
            order = [s.revision for s in reversed(list(script.iterate_revisions("heads", "base")))]
    except Exception:  # Alembic could not plan it: fall back to the graph's own order
        order = []
    ours = [rev.id for rev in harness.graph.order]
    if sorted(order) != sorted(ours):
        return ours[::-1] if downgrade else ours
    return order


def check_upgrade_to_head(harness: Harness) -> CheckResult:
    """Upgrade a fresh database from base to every head in a single env.py run, as production does."""
    graph = harness.graph
    dbs = harness.create()
    everything = frozenset(rev.id for rev in graph.order)
    order = alembic_order(harness)
    heads: list[tuple[str, ...]] = []

    def plan(session: Any) -> Iterator[RevisionStep]:
        session.fresh_steps = False  # one command: the memory of the context carries over, as in production
        for rid in order:
            if rid not in session.applied:
                yield from session.step(rid, upgrade=True)
        heads.append(tuple(session.context.get_current_heads()))

    try:
        harness.run(dbs, plan)
    except MigrationStepFailed as exc:
        harness.drop(dbs)
        harness.note_failure(exc)
        raise
    except BaseException:
        harness.drop(dbs)
        raise
    expected = set(graph.heads_of(everything))
    if any(set(h) != expected for h in heads):
        harness.drop(dbs)
        raise MigrationCheckFailed(
            "after upgrading to head the version table does not hold the heads of the history",
            [("expected", ", ".join(sorted(expected))), ("found", "; ".join(", ".join(h) for h in heads))],
        )
    harness.keep_checkpoint(dbs, len(graph))
    harness.drop(dbs)
    return None


def _at_head(harness: Harness, what: str) -> Any:
    """A database with every revision applied; a failing upgrade blocks ``what`` instead of failing it again.

    An upgrade that failed only on the stairway's generated rows blocks nothing here: the
    database is then walked from base on empty tables, as ``upgrade_to_head`` walks it.
    """
    graph = harness.graph
    broken = harness.broken_without_rows()
    if broken:
        raise _blocked(harness, broken[0], what, needs_head=True)
    try:
        return harness.database_at(len(graph), empty_tables=bool(harness.broken))
    except MigrationStepFailed as exc:
        if harness.note_failure(exc):
            raise _blocked(harness, str(exc.where.revision), what, needs_head=True) from None
        raise


def check_downgrade_to_base(harness: Harness, notes: list[str] | None = None) -> CheckResult:
    """From head, downgrade every revision to base in one env.py run; nothing may be left behind.

    Revisions whose downgrade is not tested (irreversible, upgrade-only, below the
    downgrade floor) stay, with everything they need: the walk then stops at that
    floor and its schema is compared with a fresh database upgraded to the floor.
    """
    graph = harness.graph
    exempt = {
        rev.id: reason
        for rev in graph.order
        if (reason := harness.policy.downgrade_exemption(graph, rev, harness.module(rev.id)))
    }
    if not graph.order:
        return "nothing to downgrade: the history has no revisions yet"
    floor = graph.ancestors(exempt)
    if floor == frozenset(graph.position):
        first, reason = next(iter(exempt.items()))
        return (
            "nothing to downgrade: every revision is one whose downgrade is not tested, or lies below one "
            f"({graph[first].short_id}: {reason})"
        )
    dbs = _at_head(harness, "downgrade_to_base")
    expected = harness.snapshots_at(floor)
    order = [rid for rid in alembic_order(harness, downgrade=True) if rid not in floor]
    leftovers: list[SchemaSnapshot] = []

    def plan(session: Any) -> Iterator[RevisionStep]:
        session.fresh_steps = False
        for rid in order:
            if rid in session.applied:
                yield from session.step(rid, upgrade=False)
        leftovers.append(harness.capture(session))

    try:
        harness.run(dbs, plan)
    finally:
        harness.drop(dbs)
    where = "base" if not floor else f"the downgrade floor ({len(floor)} revision(s) kept)"
    for fresh, snapshot in zip(expected, leftovers, strict=True):
        diff = fresh.diff(snapshot)
        if diff:
            reference = "a fresh database" if not floor else "a fresh database upgraded to that floor"
            only_left = all(d.expected is None for d in diff)
            fix = (
                "some downgrade() does not drop what its upgrade() creates"
                if only_left
                else "some downgrade() does not undo its upgrade() (+ was left behind, - was dropped or not "
                "restored, ~ was changed)"
            )
            raise SchemaMismatch(
                f"downgrading every revision to {where} leaves {len(diff)} difference(s) from {reference}",
                [
                    (
                        "left behind" if only_left else "differences",
                        "\n".join(diff.render_lines(f"in {reference}", "after the downgrades")),
                    ),
                    ("fix", f"{fix}; the stairway items show which"),
                ],
                diff=diff,
            )
    if floor and notes is not None:
        kept = ", ".join(f"{graph[rid].short_id} ({reason})" for rid, reason in exempt.items())
        notes.append(f"downgrade_to_base stopped at the downgrades that are not tested: {kept}")
    return None


def load_models(path: str, setting: str = "migrations_models") -> MetaData:
    """Import ``package.module:attribute`` (a MetaData, or a declarative base with ``.metadata``)."""
    try:
        obj = import_object(path, "metadata")
    except (ImportError, AttributeError) as exc:
        raise ConfigurationError(
            f"cannot load the models {path!r}: {type(exc).__name__}: {exc}; "
            f"{setting} takes module.path:attribute, e.g. myapp.models:Base.metadata"
        ) from exc
    metadata = getattr(obj, "metadata", obj)
    if not isinstance(metadata, MetaData):
        raise ConfigurationError(f"{setting} {path!r} is a {type(obj).__name__}, not a MetaData")
    return metadata


def check_drift(harness: Harness, models: str | None = None) -> CheckResult:
    """At head, the models must match the migrated database (``alembic check``, with the fix shown)."""
    override = load_models(models) if models else None
    dbs = _at_head(harness, "drift")
    reports: list[str] = []
    unmodelled: list[int] = []
    empty: list[str] = []
    names = list(dbs.urls)

    def plan(session: Any) -> Iterator[RevisionStep]:
        context = session.context
        metadata = override if override is not None else context.opts.get("target_metadata")
        if metadata is None:
            unmodelled.append(session.index)
            return
        name = names[session.index] if len(names) > 1 and session.index < len(names) else None
        upgrade_ops = produce_migrations(context, metadata).upgrade_ops
        if upgrade_ops is None or upgrade_ops.is_empty():
            return
        tables = metadata if isinstance(metadata, MetaData) else None
        if tables is not None and not tables.tables and _only_drops(upgrade_ops):
            empty.append(name or "the database")
            return
        code = _dedent_rendered(render_python_code(upgrade_ops))
        reports.append(f"# engine {name}\n{code}" if name else code)
        return
        yield  # a plan is a generator even when it runs no step

    try:
        sessions = harness.run(dbs, plan)
    finally:
        harness.drop(dbs)
    if unmodelled and len(unmodelled) == len(sessions):
        return (
            "no models to compare: env.py passes no target_metadata to context.configure(); set it in env.py, "
            "or set migrations_models = myapp.models:Base.metadata"
        )
    if empty:
        source = f"migrations_models = {models}" if models else "env.py's target_metadata"
        raise MigrationCheckFailed(
            f"the models look empty: {source} has no tables, while the migrated database has some ({', '.join(empty)})",
            [
                (
                    "fix",
                    "import the modules that define the models before target_metadata is read (in env.py, "
                    "`import myapp.models` next to `target_metadata = Base.metadata`), or point migrations_models "
                    "at the MetaData the models use",
                )
            ],
        )
    if reports:
        raise MigrationCheckFailed(
            "the models do not match the schema at head: a migration is missing",
            [
                ("the missing migration (what `alembic revision --autogenerate` would write)", "\n\n".join(reports)),
                ("compared", _comparisons(sessions[0].context.opts)),
            ],
        )
    return None


def check_models_registered(harness: Harness, package: str, models: str | None = None) -> CheckResult:
    """Every module of the models package is imported by what env.py imports (its tables are visible to drift).

    env.py's ``target_metadata`` knows only the tables of the model modules that were
    imported when it was read; a module nobody imports is invisible to ``drift`` and
    to ``alembic revision --autogenerate``. The check reads the MetaData as env.py
    leaves it, imports every module of ``package``, and names each table that only
    then appears, with the module that defines it. (In a process where tests of yours
    imported those modules first, they count as imported.)
    """
    captured: list[Any] = []
    if models:
        captured.append(load_models(models))
    else:
        dbs = harness.create()

        def plan(session: Any) -> Iterator[RevisionStep]:
            captured.append(session.context.opts.get("target_metadata"))
            return
            yield  # a plan is a generator even when it runs no step

        try:
            harness.run(dbs, plan)
        finally:
            harness.drop(dbs)
    metadatas = [m for item in captured for m in (item if isinstance(item, (list, tuple)) else [item])]
    metadatas = [m for m in metadatas if isinstance(m, MetaData)]
    if not metadatas:
        return (
            "no models to check: env.py passes no target_metadata to context.configure(); set it in env.py, "
            "or set migrations_models = myapp.models:Base.metadata"
        )
    known = {id(m): set(m.tables) for m in metadatas}
    modules = _import_package(package)
    added = sorted({name for m in metadatas for name in set(m.tables) - known[id(m)]})
    if not added:
        return None
    where = _defining_modules(modules, set(added))
    lines = [f"table {name}: defined in {where.get(name, 'a module of ' + package)}" for name in added]
    unregistered = sorted({where[name] for name in added if name in where})
    to_import = ", ".join(unregistered) if unregistered else f"the modules of {package}"
    raise MigrationCheckFailed(
        f"{len(added)} table(s) of {package} are not registered on env.py's target_metadata: drift and "
        "`alembic revision --autogenerate` cannot see them (autogenerate would even drop them)",
        [
            ("not registered", "\n".join(lines)),
            (
                "fix",
                f"import {to_import} where env.py's models are imported (in env.py next to target_metadata, or "
                f"in {package}/__init__.py)",
            ),
        ],
    )


def _import_package(package: str) -> list[Any]:
    """Import ``package`` and every module under it; a module that fails to import is named."""
    import pkgutil

    try:
        root = importlib.import_module(package)
    except Exception as exc:
        raise ConfigurationError(
            f"migrations_models_package = {package}: cannot import it: {type(exc).__name__}: {exc}"
        ) from exc
    modules = [root]
    for info in pkgutil.walk_packages(getattr(root, "__path__", []), prefix=f"{package}."):
        try:
            modules.append(importlib.import_module(info.name))
        except Exception as exc:
            raise ConfigurationError(
                f"migrations_models_package = {package}: importing {info.name} raised {type(exc).__name__}: {exc}"
            ) from exc
    return modules


def _defining_modules(modules: list[Any], tables: set[str]) -> dict[str, str]:
    """Table name -> the module that defines it (a mapped class's ``__table__`` or a ``Table`` object)."""
    found: dict[str, str] = {}
    for module in modules:
        for value in vars(module).values():
            table = getattr(value, "__table__", value)
            name = getattr(table, "fullname", None)
            owner = getattr(value, "__module__", module.__name__) if hasattr(value, "__table__") else module.__name__
            if isinstance(table, sa.Table) and name in tables and owner == module.__name__:
                found.setdefault(name, module.__name__)
    return found


def _only_drops(upgrade_ops: Any) -> bool:
    from alembic.operations.ops import DropTableOp

    return all(isinstance(op, DropTableOp) for op in upgrade_ops.ops)


def _dedent_rendered(code: str) -> str:
    """render_python_code indents every line but the first by four spaces; align them."""
    lines = code.strip().splitlines()
    body = [line[4:] if line.startswith("    ") else line for line in lines[1:]]
    return "\n".join([lines[0], *body]) if lines else ""


def _comparisons(opts: dict[str, Any]) -> str:
    off = []
    if opts.get("compare_type") is False:
        off.append("column types (compare_type=False)")
    if not opts.get("compare_server_default"):
        off.append("server defaults (compare_server_default is off)")
    if not off:
        return "tables, columns, types, server defaults, indexes, unique and foreign key constraints"
    return (
        "tables, columns, indexes, unique and foreign key constraints; NOT compared: "
        + ", ".join(off)
        + ". Turn them on in env.py's context.configure() to check them too."
    )


CheckFunction = Callable[..., CheckResult]
