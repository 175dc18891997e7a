"""PostgreSQL's catalog read into schema snapshots: two queries per snapshot.

A snapshot of a PostgreSQL database is every user schema's tables and views (columns,
constraints, indexes, triggers, comments), enums, standalone sequences, schemas,
extensions and functions. They are read with two catalog queries: one for relations, one
for everything else, because each round trip to the server costs about as much as the
rendering of a small table, and a stairway takes three snapshots per revision.

Every user schema counts, not only the default one: the database is the plugin's own, and
a migration that creates tables elsewhere must be checked there too.

What is no difference here (names PostgreSQL generated, whitespace in function bodies) is
described in :mod:`pytest_migrations.schema`.
"""

from __future__ import annotations

import re
import textwrap
from collections.abc import Iterator
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from .schema import ObjectKey, ObjectState, _normalise_sql, _state

# A sequence owned by a column: SERIAL's (pg_depend deptype 'a') or an identity's ('i').
_PG_SEQUENCE_DEFINITION = (
    "concat_ws(' ', sq.seqtypid::regtype, 'START', sq.seqstart, 'INCREMENT', sq.seqincrement, "
    "'MIN', sq.seqmin, 'MAX', sq.seqmax, CASE WHEN sq.seqcycle THEN 'CYCLE' END)"
)

_USER_SCHEMA = (
    "(n.nspname = current_schema() OR n.nspname = ANY(CAST(:schemas AS name[]))"
    " OR (n.nspname NOT LIKE 'pg\\_%' AND n.nspname <> 'information_schema'))"
)
"""The schemas a snapshot reads: the default one, those asked for, and every one not PostgreSQL's own."""

_PG_RELATIONS = f"""
SELECT c.relkind, n.nspname, c.relname,
  (SELECT json_agg(json_build_array(a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull,
                                    pg_get_expr(d.adbin, d.adrelid), a.attidentity, a.attgenerated,
                                    col_description(c.oid, a.attnum),
                                    (SELECT json_build_array(sq.seqrelid::regclass::text, {_PG_SEQUENCE_DEFINITION})
                                       FROM pg_depend dep JOIN pg_sequence sq ON sq.seqrelid = dep.objid
                                      WHERE dep.classid = 'pg_class'::regclass
                                        AND dep.refclassid = 'pg_class'::regclass
                                        AND dep.refobjid = c.oid AND dep.refobjsubid = a.attnum
                                        AND dep.deptype IN ('a', 'i')
                                      ORDER BY sq.seqrelid LIMIT 1)))
     FROM pg_attribute a LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
    WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped),
  (SELECT json_agg(json_build_array(con.conname, con.contype, pg_get_constraintdef(con.oid)))
     FROM pg_constraint con WHERE con.conrelid = c.oid),
  (SELECT json_agg(json_build_array(ic.relname, pg_get_indexdef(i.indexrelid)))
     FROM pg_index i JOIN pg_class ic ON ic.oid = i.indexrelid
    WHERE i.indrelid = c.oid
      AND NOT EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conindid = i.indexrelid AND k.contype IN ('p', 'u', 'x'))),
  (SELECT json_agg(json_build_array(t.tgname, pg_get_triggerdef(t.oid)))
     FROM pg_trigger t WHERE t.tgrelid = c.oid AND NOT t.tgisinternal),
  obj_description(c.oid, 'pg_class'),
  CASE WHEN c.relkind IN ('v', 'm') THEN pg_get_viewdef(c.oid) END
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f') AND {_USER_SCHEMA}
"""

_PG_CONSTRAINTS = {
    "p": "primary key",
    "f": "foreign key",
    "u": "unique constraint",
    "c": "check constraint",
    "x": "exclusion constraint",
    "t": "constraint trigger",
    "n": "not-null constraint",
}

# pg_get_constraintdef's leading keyword per kind: a fact keyed by its definition leaves it
# out, as the fact already says the kind (``unique constraint (email)``).
_PG_CONSTRAINT_KEYWORDS = {
    "p": "PRIMARY KEY ",
    "f": "FOREIGN KEY ",
    "u": "UNIQUE ",
    "c": "CHECK ",
    "x": "EXCLUDE ",
    "n": "NOT NULL ",
}

_PG_GENERATED_NAME = re.compile(r".+_(?:pkey|key|fkey|check|excl|idx|not_null)\d*")
"""The names PostgreSQL gives constraints and indexes created without one (ChooseConstraintName):
``<table>_<columns>_<label>`` plus a number when taken. They are not renamed with their table."""

_PG_OTHERS = f"""
SELECT 'default', NULL, current_schema()::text, NULL, NULL
UNION ALL
SELECT 'enum', n.nspname::text, t.typname::text, string_agg(e.enumlabel::text, ', ' ORDER BY e.enumsortorder), NULL
  FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace JOIN pg_enum e ON e.enumtypid = t.oid
 WHERE {_USER_SCHEMA} GROUP BY n.nspname, t.typname
UNION ALL
SELECT 'sequence', n.nspname::text, c.relname::text, {_PG_SEQUENCE_DEFINITION}, NULL
  FROM pg_sequence sq JOIN pg_class c ON c.oid = sq.seqrelid JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE {_USER_SCHEMA}
   AND NOT EXISTS (SELECT 1 FROM pg_depend dep
                    WHERE dep.classid = 'pg_class'::regclass AND dep.objid = sq.seqrelid
                      AND dep.refclassid = 'pg_class'::regclass AND dep.refobjsubid > 0
                      AND dep.deptype IN ('a', 'i'))
UNION ALL
SELECT 'schema', NULL, nspname::text, '', NULL FROM pg_namespace
 WHERE nspname NOT LIKE 'pg\\_%' AND nspname NOT IN ('information_schema', 'public')
UNION ALL
SELECT 'extension', NULL, extname::text, extversion, NULL FROM pg_extension WHERE extname <> 'plpgsql'
UNION ALL
SELECT 'function', n.nspname::text, p.proname || '(' || pg_get_function_identity_arguments(p.oid) || ')',
       l.lanname::text, pg_get_functiondef(p.oid)
  FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace JOIN pg_language l ON l.oid = p.prolang
 WHERE {_USER_SCHEMA} AND p.prokind IN ('f', 'p')
   AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.objid = p.oid AND d.deptype = 'e')
"""
"""Everything but relations, one row each: ``(kind, schema, name, detail, definition)``;
the first row is the default schema. Sequences owned by a column are facts of that column
(see _PG_RELATIONS), not objects; schemas, extensions and functions (a trigger's function,
say) are left behind by downgrades too."""


def read(connection: Connection, schemas: list[str | None]) -> Iterator[tuple[ObjectKey, Any]]:
    """Every object of the user schemas of the database, and ``schemas`` (``None``: the default one)."""
    params = {"schemas": [schema for schema in schemas if schema is not None]}
    relations = connection.execute(sa.text(_PG_RELATIONS), params).all()
    others = connection.execute(sa.text(_PG_OTHERS), params).all()
    default = others[0][2]

    def key_name(schema: str, name: str) -> str:
        return name if schema == default else f"{schema}.{name}"

    for relkind, schema, name, columns, constraints, indexes, triggers, comment, view in relations:
        qualified = key_name(schema, name)
        if relkind in ("v", "m"):
            yield ("view", qualified), ObjectState("view", qualified, frozenset({("definition", _normalise_sql(view))}))
            continue
        facts: list[tuple[str, str, str | None]] = []
        for col, *rest, owned in columns or ():
            facts.append((f"column {col}", _pg_column(*rest, owned_sequence=owned[0] if owned else None), None))
            if owned:
                facts.append((f"owned sequence of column {col}", owned[1], None))
        facts += [_pg_constraint(con, kind, text) for con, kind, text in constraints or ()]
        facts += [_pg_index_fact(index, text) for index, text in indexes or ()]
        facts += [(f"trigger {trigger}", _normalise_sql(text), None) for trigger, text in triggers or ()]
        if comment:
            facts.append(("comment", comment, None))
        yield ("table", qualified), _state("table", qualified, facts)
    for kind, schema, name, detail, definition in others[1:]:
        if kind in ("schema", "extension"):
            yield (kind, name), ObjectState(kind, name, frozenset({("version", detail)} if detail else ()))
            continue
        qualified = key_name(schema, name)
        if kind == "enum":
            yield (kind, qualified), ObjectState(kind, qualified, frozenset({("labels", detail)}))
        elif kind == "sequence":
            yield (kind, qualified), ObjectState(kind, qualified, frozenset({("definition", detail)}))
        else:
            text = _pg_function_definition(definition, detail)
            yield (kind, qualified), ObjectState(kind, qualified, frozenset({("definition", text)}))


def _pg_column(
    type_: str,
    not_null: bool,
    default: str | None,
    identity: str,
    generated: str,
    comment: str | None,
    *,
    owned_sequence: str | None = None,
) -> str:
    """``integer NOT NULL DEFAULT nextval(<owned sequence>)``: a serial column's sequence is named
    after the table it was created with, and the name is no part of the column."""
    parts = [type_, "NOT NULL" if not_null else "NULL"]
    if generated:
        parts.append(f"GENERATED ALWAYS AS {default}")
    elif default is not None:
        if owned_sequence is not None:
            literal = "'" + owned_sequence.replace("'", "''") + "'::regclass"
            default = default.replace(f"nextval({literal})", "nextval(<owned sequence>)")
        parts.append(f"DEFAULT {default}")
    if identity:
        parts.append("GENERATED " + ("ALWAYS" if identity == "a" else "BY DEFAULT") + " AS IDENTITY")
    if comment:
        parts.append(f"COMMENT {comment!r}")
    return " ".join(parts)


def _pg_constraint(name: str, kind: str, definition: str) -> tuple[str, str, str | None]:
    """A constraint's fact; one PostgreSQL named (``zones_pkey``) is keyed by its definition."""
    label = _PG_CONSTRAINTS.get(kind, kind)
    text = _normalise_sql(definition)
    if not _PG_GENERATED_NAME.fullmatch(name):
        return f"{label} {name}", text, None
    text = text.removeprefix(_PG_CONSTRAINT_KEYWORDS.get(kind, ""))
    return f"{label} {text}", text, f"named {name}"


def _pg_index_fact(name: str, definition: str) -> tuple[str, str, str | None]:
    """An index's fact; one PostgreSQL named (``CREATE INDEX ON t (lower(c))`` gives ``t_lower_idx``)
    is keyed by its definition."""
    text = _pg_index(definition)
    if _PG_GENERATED_NAME.fullmatch(name):
        return f"index {text}", text, f"named {name}"
    return f"index {name}", text, None


def _pg_index(definition: str) -> str:
    """``CREATE UNIQUE INDEX ix ON public.t USING btree (c)`` -> ``UNIQUE USING btree (c)``."""
    text = re.sub(r"^CREATE (UNIQUE )?INDEX \S+ ON (ONLY )?\S+ ", r"\1", definition)
    return _normalise_sql(text)


# Tokens of a function body: literals and comments are kept whole, whitespace is a token of its own.
_SQL_TOKENS = re.compile(
    r"'(?:[^']|'')*'|\"(?:[^\"]|\"\")*\"|--[^\n]*|/\*.*?\*/|\$[A-Za-z_0-9]*\$|\s+|\w+|.", re.DOTALL
)
_LINE_AFTER = {";", "BEGIN", "DECLARE", "THEN", "LOOP", "ELSE"}
_DOLLAR_BODY = re.compile(r"(?P<header>.*?)\bAS (?P<tag>\$[A-Za-z_0-9]*\$)(?P<body>.*)(?P=tag)\s*", re.DOTALL)


def _pg_function_definition(definition: str, language: str) -> str:
    """pg_get_functiondef's text with the body's layout made canonical, so that whitespace and
    blank lines are no difference while the text still reads (and diffs) line by line.

    SQL and PL/pgSQL bodies are re-laid out token by token: one statement a line, whitespace
    outside literals and comments collapsed. Other languages (PL/Python) keep their lines,
    since indentation can matter there: only blank lines, trailing and common leading
    whitespace go.
    """
    match = _DOLLAR_BODY.fullmatch(definition)
    if match is None:  # a BEGIN ATOMIC body or a C function: PostgreSQL's own deparsed text
        return "\n".join(line.strip() for line in definition.splitlines() if line.strip())
    header = [line.strip() for line in match["header"].splitlines() if line.strip()]
    body = match["body"]
    if language in ("sql", "plpgsql"):
        lines = _relaid(body)
    else:
        lines = [line.rstrip() for line in textwrap.dedent(body.strip("\n")).splitlines() if line.strip()]
    return "\n".join([*header, f"AS {match['tag']}", *lines, match["tag"]])


def _relaid(body: str) -> list[str]:
    """A SQL body's lines, broken after each statement and block keyword whatever the author's layout;
    a line break ending a ``--`` comment is kept, as it ends the comment."""
    lines: list[str] = []
    current: list[str] = []

    def end_line() -> None:
        line = "".join(current).strip()
        if line:
            lines.append(line)
        current.clear()

    for token in _SQL_TOKENS.findall(body):
        if token.isspace():
            current.append(" ")
            continue
        current.append(token)
        if token.startswith("--") or token.upper() in _LINE_AFTER:
            end_line()
    end_line()
    return lines
