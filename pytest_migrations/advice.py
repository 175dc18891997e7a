"""What to write in ``downgrade()``: ``op.*`` lines derived from the differences a round trip left.

A downgrade that leaves an object behind is fixed by dropping it; one that re-creates a
constraint under another name than the one it had (or a name where it had none) is not: a
drop would remove the constraint itself. Such a constraint is told apart by its definition,
which is the same on both sides of the difference, and gets advice to re-create it as it was.
SQLite cannot ALTER a constraint, so there every line is in batch mode.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass

from .schema import Difference, SchemaDiff

_DROP_KEYWORDS = {
    "enum": "TYPE",
    "sequence": "SEQUENCE",
    "view": "VIEW",
    "schema": "SCHEMA",
    "extension": "EXTENSION",
    "function": "FUNCTION",
    "role": "ROLE",
}
_CONSTRAINT_TYPES = {"foreign key": "foreignkey", "unique constraint": "unique", "check constraint": "check"}

_DROP_ORDER = ("view", "table", "function", "enum", "sequence", "role", "extension", "schema")
"""What depends on what: views on tables, tables (their indexes, defaults, columns) on functions, types,
sequences and extensions (a gin_trgm_ops index on pg_trgm), everything on its schema; dropped in this order."""

_FOREIGN_KEY = re.compile(r"\((?P<columns>[^)]*)\) -> (?P<table>[^(\s]+)\((?P<targets>[^)]*)\)(?P<options>.*)")
_FOREIGN_KEY_OPTION = re.compile(r"\b(ON ?DELETE|ON ?UPDATE) (.+?)(?= ON ?DELETE | ON ?UPDATE |$)")
"""``ONDELETE CASCADE`` as SQLAlchemy reflects it, ``ON DELETE CASCADE`` as MySQL's catalog has it."""


@dataclass(frozen=True)
class Renamed:
    """A constraint of ``table`` the downgrade re-created with the same definition under ``back``;
    before the upgrade it was named ``gone`` (``None``: it had no name)."""

    table: str
    kind: str
    definition: str
    gone: str | None
    back: str
    extra: Difference


def _split_fact(fact: str) -> tuple[str, str] | None:
    """``foreign key fk_posts_user`` -> ``("foreign key", "fk_posts_user")``; ``foreign key (a, b)`` ->
    ``("foreign key", "(a, b)")``; ``None`` for what is not a constraint."""
    for kind in _CONSTRAINT_TYPES:
        if fact.startswith(f"{kind} "):
            return kind, fact[len(kind) + 1 :]
    return None


def renamed_constraints(diff: Iterable[Difference]) -> list[Renamed]:
    """The constraints a downgrade brought back under another name: a ``+`` named constraint whose
    definition is that of a ``-`` constraint of the same table and kind."""
    differences = list(diff)
    missing: dict[tuple[str, str, str], str | None] = {}
    for d in differences:
        split = _split_fact(d.fact) if d.fact else None
        if split and d.actual is None and d.expected is not None:
            name = None if split[1].startswith("(") else split[1]
            missing.setdefault((d.name, split[0], d.expected), name)
    found = []
    for d in differences:
        split = _split_fact(d.fact) if d.fact else None
        if not split or d.expected is not None or d.actual is None or split[1].startswith("("):
            continue
        key = (d.name, split[0], d.actual)
        if key in missing:
            found.append(Renamed(d.name, split[0], d.actual, missing.pop(key), split[1], d))
    return found


def rename_advice(renamed: Renamed, dialect: str) -> str:
    """How to re-create ``renamed`` as it was before the upgrade, in place of the renamed one."""
    what = f'{renamed.kind} {renamed.definition} of table "{renamed.table}" came back named {renamed.back}'
    if renamed.gone is not None:
        return f"{what}, but before the upgrade it was named {renamed.gone}: create it under that name"
    head = f"{what}, but before the upgrade it had no name: create it without one, in place of the named one"
    parsed = _FOREIGN_KEY.fullmatch(renamed.definition) if renamed.kind == "foreign key" else None
    if parsed is None:
        return head
    schema, _, table = renamed.table.rpartition(".")
    columns = [c.strip() for c in parsed["columns"].split(",")]
    targets = [c.strip() for c in parsed["targets"].split(",")]
    options = "".join(
        f", {keyword.replace(' ', '').lower()}={json.dumps(value)}"
        for keyword, value in _FOREIGN_KEY_OPTION.findall(parsed["options"])
    )
    if dialect == "sqlite":
        # Alembic's batch create_foreign_key needs a name; a constraint of the copied table does not.
        references = [f"{parsed['table']}.{target}" for target in targets]
        constraint = f"sa.ForeignKeyConstraint({json.dumps(columns)}, {json.dumps(references)}{options})"
        where = f', schema="{schema}"' if schema else ""
        return (
            f"{head} (batch mode's create_foreign_key needs a name; the copy of the table can hold it unnamed):\n"
            f'    with op.batch_alter_table("{table}"{where}, recreate="always", reflect_args=[{constraint}]):\n'
            "        pass"
        )
    referent_schema, _, referent = parsed["table"].rpartition(".")
    schemas = (f', source_schema="{schema}"' if schema else "") + (
        f', referent_schema="{referent_schema}"' if referent_schema else ""
    )
    return (
        f"{head}:\n"
        f'    op.create_foreign_key(None, "{table}", "{referent}", {json.dumps(columns)}, {json.dumps(targets)}'
        f"{schemas}{options})"
    )


def suggest_downgrade(diff: SchemaDiff, *, tables_too: bool = True, dialect: str = "") -> list[str]:
    """``op.*`` lines that would remove what a downgrade left behind (the ``+`` differences), in an order
    the database accepts (:data:`_DROP_ORDER`). A constraint brought back under another name is not
    left behind (:func:`renamed_constraints`): dropping it would remove the constraint."""
    renamed = {id(r.extra) for r in renamed_constraints(diff)}
    lines: list[str] = []
    rank = {kind: number for number, kind in enumerate(_DROP_ORDER)}
    for d in sorted(diff, key=lambda d: rank.get(d.kind, len(rank))):
        if d.expected is not None or (d.kind == "table" and not tables_too) or id(d) in renamed:
            continue
        schema, _, name = d.name.rpartition(".")
        where = f', schema="{schema}"' if schema else ""
        if d.fact is None:
            if d.kind == "table":
                lines.append(f'op.drop_table("{name}"{where})')
            elif d.kind in _DROP_KEYWORDS:
                lines.append(f'op.execute("DROP {_DROP_KEYWORDS[d.kind]} {d.name}")')
            continue
        split = _split_fact(d.fact)
        if split is None:
            kind, _, item = d.fact.rpartition(" ")
            if kind == "column":
                lines.append(f'op.drop_column("{name}", "{item}"{where})')
            elif kind == "index" and not item.startswith("("):
                lines.append(f'op.drop_index("{item}", table_name="{name}"{where})')
        elif not split[1].startswith("("):
            kind, item = split
            if dialect == "sqlite":
                # SQLite has no ALTER for constraints: Alembic re-creates the table without it.
                lines.append(f'with op.batch_alter_table("{name}"{where}) as batch_op:')
                lines.append(f'    batch_op.drop_constraint("{item}", type_="{_CONSTRAINT_TYPES[kind]}")')
            else:
                lines.append(f'op.drop_constraint("{item}", "{name}", type_="{_CONSTRAINT_TYPES[kind]}"{where})')
    return [f"    {line}" for line in lines]
