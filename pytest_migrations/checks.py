"""The built-in checks, as plain functions over a :class:`~pytest_migrations.harness.Harness`.

Each check returns ``None`` when it passes, returns a string (the reason) when the
check does not apply (a revision declared irreversible has no downgrade to test), and
raises :class:`~pytest_migrations.exceptions.MigrationCheckFailed` with a readable
report when it finds a defect. Nothing here imports pytest.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from alembic.autogenerate import produce_migrations, render_python_code
from alembic.runtime.migration import MigrationContext, RevisionStep
from sqlalchemy import MetaData
from sqlalchemy.pool import NullPool

from .exceptions import ConfigurationError, MigrationCheckFailed, MigrationStepFailed, SchemaMismatch
from .harness import Harness
from .history import Revision, RevisionGraph
from .schema import SchemaDiff, SchemaSnapshot

CheckResult = str | None


@dataclass(frozen=True)
class Check:
    """A built-in check: its name, and whether it runs once per revision."""

    name: str
    per_revision: bool
    doc: str


CHECKS: dict[str, Check] = {
    c.name: c
    for c in (
        Check("graph", False, "the revision files form a valid history"),
        Check("single_head", False, "the history has the expected number of heads"),
        Check("upgrade_to_head", False, "every revision upgrades from base to head in one walk"),
        Check("stairway", True, "upgrade, downgrade, re-upgrade of one revision leave matching schemas"),
        Check("downgrade_to_base", False, "every revision downgrades from head to base, leaving nothing behind"),
        Check("drift", False, "the models match the schema at head: no migration is missing"),
    )
}


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


def check_stairway(harness: Harness, revision: Revision) -> CheckResult:
    """From the revision's parent: upgrade; downgrade; compare; upgrade again; compare."""
    graph = harness.graph
    index = graph.position[revision.id]
    target = graph.prefix(index)
    dbs, start = harness.take_cursor(index)
    # The cursor's last snapshot is this revision's "before" when no step separates them.
    known = harness.cursor_snapshots if start == index else {}
    final: dict[int, SchemaSnapshot] = {}
    left: list[SchemaMismatch] = []

    def plan(session: Any) -> Iterator[RevisionStep]:
        yield from session.walk_to(target, label="upgrade (walking to the revision's parent)")
        before = known.get(session.index) or harness.capture(session)
        yield from session.step(revision.id, upgrade=True, label="upgrade")
        if revision.irreversible:
            return
        after = harness.capture(session)
        yield from session.step(revision.id, upgrade=False, label="downgrade")
        mismatch = _compare(before, harness.capture(session), revision, "downgrade", session)
        if mismatch is not None:
            # End the plan normally, so the database stays as the downgrade left it:
            # autogenerate then compares it with the schema before the upgrade.
            left.append(mismatch)
            return
        yield from session.step(revision.id, upgrade=True, label="re-upgrade")
        final[session.index] = harness.capture(session)
        mismatch = _compare(after, final[session.index], revision, "re-upgrade", session)
        if mismatch is not None:
            raise mismatch

    try:
        harness.run_live(dbs, plan)
        if left:
            raise _with_autogenerate_fix(harness, dbs, index, left[0])
    except MigrationStepFailed as exc:
        harness.drop(dbs)
        raise _describe_walk_failure(exc, revision) from exc.__cause__
    except BaseException:
        harness.drop(dbs)
        raise
    harness.return_cursor(dbs, index + 1, final)
    if revision.irreversible:
        return f"upgrade of {revision.short_id} passed; its downgrade is not tested: {revision.irreversible}"
    return None


def _compare(
    expected: SchemaSnapshot, actual: SchemaSnapshot, revision: Revision, step: str, session: Any
) -> SchemaMismatch | None:
    """The mismatch between two snapshots around ``step`` of ``revision``, or ``None`` when they match."""
    diff = expected.diff(actual)
    if not diff:
        return None
    db = f" (database {session.index})" if session.index else ""
    if step == "downgrade":
        summary = (
            f"downgrade of revision {revision.label} does not undo its upgrade{db}: "
            f"{len(diff)} difference(s) from the schema before the upgrade"
        )
        lines = diff.render_lines(expected="before the upgrade", actual="after the downgrade")
        fix = (
            f"make downgrade() in {revision.path.name} reverse every operation of upgrade() "
            "(objects marked + were left behind, - were removed or not restored, ~ were changed)"
        )
        suggestion = suggest_downgrade(diff)
        if suggestion:
            fix += "; for what was left behind, downgrade() probably needs:\n" + "\n".join(suggestion)
    else:
        summary = (
            f"re-upgrade of revision {revision.label} after its downgrade gives a different schema "
            f"from the first upgrade{db}: {len(diff)} difference(s)"
        )
        lines = diff.render_lines(expected="after the first upgrade", actual="after the re-upgrade")
        fix = f"the downgrade of {revision.path.name} leaves state that changes what its upgrade does"
    return SchemaMismatch(
        summary,
        [("revision", f"{revision.id} in {revision.path}"), ("differences", "\n".join(lines)), ("fix", fix)],
        diff=diff,
    )


def _with_autogenerate_fix(harness: Harness, dbs: Any, position: int, mismatch: SchemaMismatch) -> SchemaMismatch:
    """Add what Alembic's autogenerate says the downgrade is missing.

    A database is brought to the state before the upgrade and the differing tables are
    reflected from it; autogenerate then compares the database the downgrade left with
    that reflection, and renders the ``op.*`` calls that would turn one into the other.
    Only on failure: a passing item pays nothing for it.
    """
    diff = mismatch.diff
    tables = {d.name for d in diff or () if d.kind == "table" and "." not in d.name}
    if not tables or len(dbs.urls) != 1:
        return mismatch
    try:
        code = _autogenerate_difference(harness, dbs, position, tables)
    except Exception as exc:
        code = f"(autogenerate could not compare: {type(exc).__name__}: {exc})"
    if code and diff is not None:
        # autogenerate's code replaces the hand-made suggestion for tables; other objects keep theirs.
        rest = suggest_downgrade(diff, tables_too=False)
        sections = []
        for title, body in mismatch.sections:
            if title == "fix":
                body = body.split("; for what was left behind")[0]
                if rest:
                    body += "; for what was left behind, downgrade() probably needs:\n" + "\n".join(rest)
            sections.append((title, body))
        sections.append(("what autogenerate says downgrade() is missing", code))
        mismatch.sections = tuple(sections)
    return mismatch


def _autogenerate_difference(harness: Harness, dbs: Any, position: int, tables: set[str]) -> str | None:
    scratch = harness.database_at(position)
    expected = MetaData()
    try:
        engine = sa.create_engine(next(iter(scratch.urls.values())), poolclass=NullPool)
        try:
            present = set(sa.inspect(engine).get_table_names())
            expected.reflect(engine, only=sorted(tables & present))
        finally:
            engine.dispose()
    finally:
        # The failed item's cursor is gone; the next item starts from this database, not from far back.
        harness.adopt_checkpoint(scratch, position)
    engine = sa.create_engine(next(iter(dbs.urls.values())), poolclass=NullPool)
    try:
        with engine.connect() as conn:
            context = MigrationContext.configure(
                conn,
                opts={
                    "compare_type": True,
                    "include_name": lambda name, kind, parents: kind != "table" or name in tables,
                },
            )
            ops = produce_migrations(context, expected).upgrade_ops
    finally:
        engine.dispose()
    if ops is None or ops.is_empty():
        return None
    return _dedent_rendered(render_python_code(ops))


_DROP_KEYWORDS = {
    "enum": "TYPE",
    "sequence": "SEQUENCE",
    "view": "VIEW",
    "schema": "SCHEMA",
    "extension": "EXTENSION",
    "function": "FUNCTION",
}
_CONSTRAINT_TYPES = {"foreign key": "foreignkey", "unique constraint": "unique", "check constraint": "check"}


def suggest_downgrade(diff: SchemaDiff, *, tables_too: bool = True) -> list[str]:
    """``op.*`` lines that would remove what a downgrade left behind (the ``+`` differences)."""
    lines: list[str] = []
    for d in diff:
        if d.expected is not None or (d.kind == "table" and not tables_too):
            continue
        schema, _, name = d.name.rpartition(".")
        where = f', schema="{schema}"' if schema else ""
        if d.fact is None:
            if d.kind == "table":
                lines.append(f'op.drop_table("{name}"{where})')
            elif d.kind in _DROP_KEYWORDS:
                lines.append(f'op.execute("DROP {_DROP_KEYWORDS[d.kind]} {d.name}")')
            continue
        kind, _, item = d.fact.rpartition(" ")
        if kind == "column":
            lines.append(f'op.drop_column("{name}", "{item}"{where})')
        elif kind == "index" and not item.startswith("("):
            lines.append(f'op.drop_index("{item}", table_name="{name}"{where})')
        elif kind in _CONSTRAINT_TYPES and not item.startswith("("):
            lines.append(f'op.drop_constraint("{item}", "{name}", type_="{_CONSTRAINT_TYPES[kind]}"{where})')
    return [f"    {line}" for line in lines]


def check_upgrade_to_head(harness: Harness) -> CheckResult:
    """Upgrade a fresh database from base to every head in a single env.py run, as production does."""
    graph = harness.graph
    dbs = harness.create()
    everything = frozenset(rev.id for rev in graph.order)
    heads: list[tuple[str, ...]] = []

    def plan(session: Any) -> Iterator[RevisionStep]:
        yield from session.walk_to(everything)
        heads.append(tuple(session.context.get_current_heads()))

    try:
        harness.run(dbs, plan)
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


def check_downgrade_to_base(harness: Harness) -> CheckResult:
    """From head, downgrade every revision to base in one env.py run; nothing may be left behind."""
    graph = harness.graph
    blocked = [rev for rev in graph.order if rev.irreversible]
    stop = max((graph.position[rev.id] for rev in blocked), default=-1)
    floor = graph.prefix(stop + 1)
    expected = harness.fresh_snapshots() if not floor else []
    dbs = harness.database_at(len(graph))
    leftovers: list[SchemaSnapshot] = []

    def plan(session: Any) -> Iterator[RevisionStep]:
        yield from session.walk_to(floor)
        if not floor:
            leftovers.append(harness.capture(session))

    try:
        harness.run(dbs, plan)
    finally:
        harness.drop(dbs)
    if stop >= 0:
        rev = graph.order[stop]
        return (
            f"downgraded from head down to {rev.short_id}, which is irreversible ({rev.irreversible}); "
            "the revisions below it were not downgraded"
        )
    for fresh, snapshot in zip(expected, leftovers, strict=True):
        diff = fresh.diff(snapshot)
        if diff:
            raise SchemaMismatch(
                f"downgrading every revision to base leaves {len(diff)} difference(s) from a fresh database",
                [
                    ("left behind", "\n".join(diff.render_lines("in a fresh database", "after downgrading to base"))),
                    ("fix", "some downgrade() does not drop what its upgrade() creates; the stairway items show which"),
                ],
            )
    return None


def load_models(path: str, setting: str = "migrations_models") -> MetaData:
    """Import ``package.module:attribute`` (a MetaData, or a declarative base with ``.metadata``)."""
    module_name, _, attribute = path.partition(":")
    try:
        obj: Any = importlib.import_module(module_name)
        for part in (attribute or "metadata").split("."):
            obj = getattr(obj, part)
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
    dbs = harness.database_at(len(harness.graph))
    reports: list[str] = []
    unmodelled: list[int] = []

    def plan(session: Any) -> Iterator[RevisionStep]:
        context = session.context
        metadata = override if override is not None else context.opts.get("target_metadata")
        if metadata is None:
            unmodelled.append(session.index)
            return
        upgrade_ops = produce_migrations(context, metadata).upgrade_ops
        if upgrade_ops is not None and not upgrade_ops.is_empty():
            reports.append(_dedent_rendered(render_python_code(upgrade_ops)))
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
    if reports:
        raise MigrationCheckFailed(
            "the models do not match the schema at head: a migration is missing",
            [
                ("the missing migration (what `alembic revision --autogenerate` would write)", "\n\n".join(reports)),
                ("compared", _comparisons(sessions[0].context.opts)),
            ],
        )
    return None


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
