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
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from .schema import ObjectKey, ObjectState, _normalise_sql, _state

# A sequence owned by a column: SERIAL's (pg_depend deptype 'a') or an identity's ('i').
_PG_SEQUENCE_DEFINITION = (
    "concat_ws(' ', sq.seqtypid::regtype, 'START', sq.seqstart, 'INCREMENT', sq.seqincrement, "
    "'MIN', sq.seqmin, 'MAX', sq.seqmax, CASE WHEN sq.seqcycle THEN 'CYCLE' END)"
)

DDL_SCHEMA = "pytest_migrations_ddl"
"""The plugin's own schema in each PostgreSQL database it creates: what tells it which objects DDL
touched (see :class:`Incremental`). It is never part of a snapshot."""

_USER_SCHEMA = (
    f"n.nspname <> '{DDL_SCHEMA}' AND (n.nspname = current_schema() OR n.nspname = ANY(CAST(:schemas AS name[]))"
    " OR (n.nspname NOT LIKE 'pg\\_%' AND n.nspname <> 'information_schema'))"
)
"""The schemas a snapshot reads: the default one, those asked for, and every one not PostgreSQL's own."""

_PG_RELATION_COLUMNS = f"""
  c.relkind, n.nspname, c.relname,
  (SELECT json_agg(json_build_array(a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull,
                                    pg_get_expr(d.adbin, d.adrelid), a.attidentity, a.attgenerated,
                                    (SELECT ds.description FROM pg_description ds WHERE ds.objoid = c.oid
                                        AND ds.classoid = 'pg_class'::regclass AND ds.objsubid = a.attnum),
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
      AND NOT EXISTS (SELECT 1 FROM pg_constraint k
                       WHERE k.conrelid = c.oid AND k.conindid = i.indexrelid AND k.contype IN ('p', 'u', 'x'))),
  (SELECT json_agg(json_build_array(t.tgname, pg_get_triggerdef(t.oid)))
     FROM pg_trigger t WHERE t.tgrelid = c.oid AND NOT t.tgisinternal),
  (SELECT ds.description FROM pg_description ds
    WHERE ds.objoid = c.oid AND ds.classoid = 'pg_class'::regclass AND ds.objsubid = 0),
  CASE WHEN c.relkind IN ('v', 'm') THEN pg_get_viewdef(c.oid) END
"""
"""A relation's kind, schema, name, columns, constraints, indexes, triggers, comment, view text.

Comments are read from pg_description by its index rather than with ``col_description`` and
``obj_description`` (SQL functions that look the catalog up by name at every call), and an
index's constraint among its table's constraints (``conindid`` has no index of its own): a
third less time per relation, the same rows."""

_PG_RELATIONS = f"""
SELECT {_PG_RELATION_COLUMNS}
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
SELECT 0::oid, 'default', NULL, current_schema()::text, NULL, NULL
UNION ALL
SELECT t.oid, 'enum', n.nspname::text, t.typname::text,
       string_agg(e.enumlabel::text, ', ' ORDER BY e.enumsortorder), NULL
  FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace JOIN pg_enum e ON e.enumtypid = t.oid
 WHERE {_USER_SCHEMA} GROUP BY t.oid, n.nspname, t.typname
UNION ALL
SELECT c.oid, 'sequence', n.nspname::text, c.relname::text, {_PG_SEQUENCE_DEFINITION}, NULL
  FROM pg_sequence sq JOIN pg_class c ON c.oid = sq.seqrelid JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE {_USER_SCHEMA}
   AND NOT EXISTS (SELECT 1 FROM pg_depend dep
                    WHERE dep.classid = 'pg_class'::regclass AND dep.objid = sq.seqrelid
                      AND dep.refclassid = 'pg_class'::regclass AND dep.refobjsubid > 0
                      AND dep.deptype IN ('a', 'i'))
UNION ALL
SELECT oid, 'schema', NULL, nspname::text, '', NULL FROM pg_namespace
 WHERE nspname NOT LIKE 'pg\\_%' AND nspname NOT IN ('information_schema', 'public', '{DDL_SCHEMA}')
UNION ALL
SELECT oid, 'extension', NULL, extname::text, extversion, NULL FROM pg_extension WHERE extname <> 'plpgsql'
UNION ALL
SELECT p.oid, 'function', n.nspname::text, p.proname || '(' || pg_get_function_identity_arguments(p.oid) || ')',
       l.lanname::text, pg_get_functiondef(p.oid)
  FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace JOIN pg_language l ON l.oid = p.prolang
 WHERE {_USER_SCHEMA} AND p.prokind IN ('f', 'p')
   AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.objid = p.oid AND d.deptype = 'e')
"""
"""Everything but relations, one row each: ``(oid, kind, schema, name, detail, definition)``;
the first row is the default schema. Sequences owned by a column are facts of that column
(see _PG_RELATIONS), not objects; schemas, extensions and functions (a trigger's function,
say) are left behind by downgrades too."""


def read(connection: Connection, schemas: list[str | None]) -> Iterator[tuple[ObjectKey, Any]]:
    """Every object of the user schemas of the database, and ``schemas`` (``None``: the default one)."""
    params = {"schemas": [schema for schema in schemas if schema is not None]}
    relations = connection.execute(sa.text(_PG_RELATIONS), params).all()
    others = connection.execute(sa.text(_PG_OTHERS), params).all()
    default = others[0][3]
    for row in relations:
        yield _relation_item(row, default)
    for row in others[1:]:
        yield _other_item(row, default)


def _key_name(schema: str, name: str, default: str | None) -> str:
    return name if schema == default else f"{schema}.{name}"


def _relation_item(row: Sequence[Any], default: str | None) -> tuple[ObjectKey, ObjectState]:
    relkind, schema, name, columns, constraints, indexes, triggers, comment, view = row
    qualified = _key_name(schema, name, default)
    if relkind in ("v", "m"):
        return ("view", qualified), ObjectState("view", qualified, frozenset({("definition", _normalise_sql(view))}))
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
    return ("table", qualified), _state("table", qualified, facts)


def _other_item(row: Sequence[Any], default: str | None) -> tuple[ObjectKey, ObjectState]:
    _oid, kind, schema, name, detail, definition = row
    if kind in ("schema", "extension"):
        return (kind, name), ObjectState(kind, name, frozenset({("version", detail)} if detail else ()))
    qualified = _key_name(schema, name, default)
    if kind == "enum":
        return (kind, qualified), ObjectState(kind, qualified, frozenset({("labels", detail)}))
    if kind == "sequence":
        return (kind, qualified), ObjectState(kind, qualified, frozenset({("definition", detail)}))
    text = _pg_function_definition(definition, detail)
    return (kind, qualified), ObjectState(kind, qualified, frozenset({("definition", text)}))


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


# --------------------------------------------------------------------------- incremental snapshots

DDL_LOG = "pytest_migrations.ddl"
"""The session setting the event trigger appends to: ``<mark>|`` then, per DDL command,
``<catalog>:<oid>,...;`` for every object the command created, altered or dropped."""

_OWNERS = """
WITH t AS (
  SELECT ARRAY(
    SELECT unnest(CAST(:touched AS oid[]))
    UNION SELECT typarray FROM pg_type WHERE oid = ANY(CAST(:touched AS oid[])) AND typarray <> 0
    UNION SELECT reltype FROM pg_class WHERE oid = ANY(CAST(:touched AS oid[])) AND reltype <> 0
  ) AS oids
), owner AS (
  SELECT unnest(oids) AS oid FROM t
  UNION SELECT i.indrelid FROM pg_index i WHERE i.indexrelid = ANY(CAST((SELECT oids FROM t) AS oid[]))
  UNION SELECT g.tgrelid FROM pg_trigger g WHERE g.oid = ANY(CAST((SELECT oids FROM t) AS oid[]))
  UNION SELECT k.conrelid FROM pg_constraint k WHERE k.oid = ANY(CAST((SELECT oids FROM t) AS oid[]))
  UNION SELECT a.adrelid FROM pg_attrdef a WHERE a.oid = ANY(CAST((SELECT oids FROM t) AS oid[]))
  UNION SELECT r.ev_class FROM pg_rewrite r WHERE r.oid = ANY(CAST((SELECT oids FROM t) AS oid[]))
  UNION SELECT d.refobjid FROM pg_depend d
   WHERE d.classid = 'pg_class'::regclass AND d.objid = ANY(CAST((SELECT oids FROM t) AS oid[]))
     AND d.refclassid = 'pg_class'::regclass AND d.deptype IN ('a', 'i')
  UNION SELECT CASE d.classid
           WHEN 'pg_class'::regclass THEN coalesce((SELECT indrelid FROM pg_index WHERE indexrelid = d.objid), d.objid)
           WHEN 'pg_constraint'::regclass THEN (SELECT conrelid FROM pg_constraint WHERE oid = d.objid)
           WHEN 'pg_attrdef'::regclass THEN (SELECT adrelid FROM pg_attrdef WHERE oid = d.objid)
           WHEN 'pg_rewrite'::regclass THEN (SELECT ev_class FROM pg_rewrite WHERE oid = d.objid)
           WHEN 'pg_trigger'::regclass THEN (SELECT tgrelid FROM pg_trigger WHERE oid = d.objid)
         END
    FROM pg_depend d
   WHERE d.refclassid = ANY(ARRAY['pg_class'::regclass, 'pg_type'::regclass, 'pg_proc'::regclass]::oid[])
     AND d.refobjid = ANY(CAST((SELECT oids FROM t) AS oid[]))
  UNION SELECT unnest(CAST(:extra AS oid[]))
)"""
"""The relations a set of touched objects belongs to (an index's table, a trigger's, ...), and those
whose rendering names one of them (a foreign key to a renamed table, a view, a column of a type).

The touched oids are one array, compared with ``= ANY``: each catalog is then searched by its oid
index, where joins with a set of unknown size made the generic plan scan every catalog whole
(0.4 ms of the 1 ms a snapshot of a few relations costs)."""

_PG_RELATIONS_OF = f"""{_OWNERS}
SELECT c.oid, ARRAY(SELECT indexrelid FROM pg_index WHERE indrelid = c.oid
                    UNION ALL SELECT oid FROM pg_trigger WHERE tgrelid = c.oid
                    UNION ALL SELECT oid FROM pg_constraint WHERE conrelid = c.oid
                    UNION ALL SELECT oid FROM pg_attrdef WHERE adrelid = c.oid
                    UNION ALL SELECT oid FROM pg_rewrite WHERE ev_class = c.oid
                    UNION ALL SELECT objid FROM pg_depend WHERE refclassid = 'pg_class'::regclass
                       AND refobjid = c.oid AND classid = 'pg_class'::regclass AND deptype IN ('a', 'i')),
  {_PG_RELATION_COLUMNS}
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f') AND {_USER_SCHEMA}
  AND (CAST(:everything AS boolean) OR c.oid IN (SELECT oid FROM owner))
"""
"""The relations :data:`_OWNERS` names (or all), each with the oids of its parts."""


@dataclass(frozen=True)
class _QueryFunction:
    """A snapshot query kept as a PL/pgSQL function of the DDL schema: PostgreSQL plans a query
    this size in about 2 ms, more than it takes to run it, and a plain query (or a prepared
    statement, whose plans stay custom here) is planned at every snapshot. A PL/pgSQL function's
    plan is kept for the session, and ``plan_cache_mode = force_generic_plan`` on the function
    makes it one plan for all calls.

    The function's definition, its signature (which a snapshot looks up to know the function is
    there) and its call are all derived from here, so that they cannot disagree."""

    name: str
    query: str
    parameters: tuple[tuple[str, str], ...]
    """The query's bound parameters in the function's order, as ``(name, SQL type)``: each
    ``CAST(:name AS type)`` of the query becomes the function's positional argument."""
    returns: str
    """The body of ``RETURNS TABLE (...)``: the output column names must differ from the query's
    own, which PL/pgSQL would otherwise take for variables."""

    @property
    def signature(self) -> str:
        return f"{self.name}({', '.join(sql_type for _, sql_type in self.parameters)})"

    @property
    def call(self) -> str:
        arguments = ", ".join(f"CAST(:{parameter} AS {sql_type})" for parameter, sql_type in self.parameters)
        return f"SELECT * FROM {self.name}({arguments})"

    def create(self) -> str:
        body = self.query
        for position, (parameter, sql_type) in enumerate(self.parameters, start=1):
            body = body.replace(f"CAST(:{parameter} AS {sql_type})", f"${position}")
        assert ":" not in re.sub(r"::|'[^']*'", "", body), "every parameter of the query is one of the function's"
        return f"""CREATE FUNCTION {self.signature}
RETURNS TABLE ({self.returns})
LANGUAGE plpgsql STABLE SET plan_cache_mode = force_generic_plan AS $$
BEGIN
  RETURN QUERY {body.strip()};
END
$$"""


_RELATIONS_OF = _QueryFunction(
    f"{DDL_SCHEMA}.relations_of",
    _PG_RELATIONS_OF.replace(
        "(CAST(:everything AS boolean) OR c.oid IN (SELECT oid FROM owner))", "c.oid IN (SELECT oid FROM owner)"
    ),
    (("touched", "oid[]"), ("extra", "oid[]"), ("schemas", "name[]")),
    'r_oid oid, r_parts oid[], r_kind "char", r_schema name, r_name name, r_columns json,\n'
    "               r_constraints json, r_indexes json, r_triggers json, r_comment text, r_view text",
)
"""The incremental relation read (:data:`_PG_RELATIONS_OF`, touched relations only)."""

_OTHERS = _QueryFunction(
    f"{DDL_SCHEMA}.others",
    _PG_OTHERS,
    (("schemas", "name[]"),),
    "o_oid oid, o_kind text, o_schema text, o_name text, o_detail text, o_definition text",
)
""":data:`_PG_OTHERS`: planned, the query costs 1.9 ms; run from the function's kept plan, 0.8 ms."""


INSTALL = [
    f"CREATE SCHEMA {DDL_SCHEMA}",
    f"COMMENT ON SCHEMA {DDL_SCHEMA} IS 'pytest-migrations: which objects DDL touched, for cheap schema snapshots'",
    f"CREATE SEQUENCE {DDL_SCHEMA}.events",
    f"""CREATE FUNCTION {DDL_SCHEMA}.seen() RETURNS event_trigger LANGUAGE plpgsql
SECURITY DEFINER SET search_path = pg_catalog AS $$
DECLARE
  log text;
  touched text := '';
  r record;
BEGIN
  IF tg_event = 'sql_drop' THEN
    FOR r IN SELECT classid, objid FROM pg_event_trigger_dropped_objects() LOOP
      touched := touched || r.classid::regclass::text || ':' || r.objid || ',';
    END LOOP;
  ELSE
    FOR r IN SELECT classid, objid FROM pg_event_trigger_ddl_commands() LOOP
      touched := touched || coalesce(r.classid::regclass::text, '?') || ':' || coalesce(r.objid, 0) || ',';
    END LOOP;
  END IF;
  log := coalesce(current_setting('{DDL_LOG}', true), '');
  -- Thousands of commands in one step: give up the log (the next snapshot is a full read).
  log := CASE WHEN length(log) > 100000 THEN 'overflow' ELSE log || touched || ';' END;
  PERFORM set_config('{DDL_LOG}', log, false);
  PERFORM nextval('{DDL_SCHEMA}.events');
END
$$""",
    _RELATIONS_OF.create(),
    _OTHERS.create(),
    # A migration may run DDL, and a snapshot read the log, as a role of its own (SET ROLE).
    f"GRANT USAGE ON SCHEMA {DDL_SCHEMA} TO PUBLIC",
    f"GRANT SELECT ON SEQUENCE {DDL_SCHEMA}.events TO PUBLIC",
    f"CREATE EVENT TRIGGER pytest_migrations_ddl_end ON ddl_command_end EXECUTE PROCEDURE {DDL_SCHEMA}.seen()",
    f"CREATE EVENT TRIGGER pytest_migrations_ddl_drop ON sql_drop EXECUTE PROCEDURE {DDL_SCHEMA}.seen()",
    "ALTER EVENT TRIGGER pytest_migrations_ddl_end ENABLE ALWAYS",
    "ALTER EVENT TRIGGER pytest_migrations_ddl_drop ENABLE ALWAYS",
]
"""What :func:`install` runs in a new database (event triggers need a superuser)."""


def install(connection: Connection) -> bool:
    """Install the DDL log in the (new, empty) database of ``connection`` when its user may.

    Returns whether it did. Without it (no superuser, PostgreSQL before 12) every snapshot
    is a full read: slower, the same result.
    """
    allowed = connection.exec_driver_sql(
        "SELECT rolsuper AND current_setting('server_version_num')::int >= 120000 FROM pg_roles"
        " WHERE rolname = current_user"
    ).scalar()
    if not allowed:
        return False
    try:
        for statement in INSTALL:
            connection.execute(sa.text(statement))  # text(): the driver's escaping of the '%' in LIKE patterns
    except sa.exc.DBAPIError:  # a server that restricts event triggers: snapshots are full reads there
        return False
    return True


_SEEN = f"""
WITH seen AS MATERIALIZED (
  SELECT current_setting('{DDL_LOG}', true) AS log,
         CASE WHEN has_sequence_privilege(to_regclass('{DDL_SCHEMA}.events'), 'SELECT')
              THEN coalesce(pg_sequence_last_value(to_regclass('{DDL_SCHEMA}.events')), 0) END AS events,
         (SELECT count(*) FROM pg_event_trigger
           WHERE evtname IN ('pytest_migrations_ddl_end', 'pytest_migrations_ddl_drop')
             AND evtenabled = 'A') AS triggers,
         coalesce(current_setting('event_triggers', true), 'on') AS enabled,
         current_schema()::text AS default_schema,
         to_regprocedure('{_RELATIONS_OF.signature}') IS NOT NULL
           AND to_regprocedure('{_OTHERS.signature}') IS NOT NULL AS fast
)
SELECT log, events, triggers, enabled, default_schema, fast, set_config('{DDL_LOG}', :mark, false) FROM seen
"""
"""What DDL did since the last snapshot, and a new mark for the next one, in one round trip."""

_RELATION_CATALOGS = {"pg_class", "pg_constraint", "pg_trigger", "pg_attrdef", "pg_rewrite"}
_OTHER_CATALOGS = {"pg_type", "pg_proc"}
_IGNORED_CATALOGS = {"pg_policy", "pg_statistic_ext", "pg_default_acl", "pg_publication", "pg_publication_rel"}
"""Touched objects of these catalogs are no part of a snapshot. Any catalog not named in these
three sets (a schema, an extension, a cast, ...) makes the next snapshot a full read."""


@dataclass
class _Known:
    """What the last snapshot of one database read, and the mark it left in the session."""

    mark: str
    events: int
    default: str | None
    relations: dict[int, tuple[ObjectKey, ObjectState]] = field(default_factory=dict)
    parts: dict[int, int] = field(default_factory=dict)
    """The oid of each index, constraint, trigger, default, rule and owned sequence -> its relation."""
    others: list[tuple[ObjectKey, ObjectState]] = field(default_factory=list)
    """Enums, standalone sequences, schemas, extensions and functions, read together."""


@dataclass
class Incremental:
    """Snapshots that re-read only what DDL touched since the last one of the same database.

    Each database the plugin creates carries two event triggers (:data:`INSTALL`) that append
    the objects every DDL command creates, alters or drops to a session setting, and count
    the commands in a sequence. A snapshot reads that log and resets it in one round trip,
    then renders only the relations the touched objects belong to, plus those whose rendering
    names them (a foreign key to a renamed table, a view, a column of a renamed enum), and
    the other objects (enums, sequences, functions) only when one of their kind was touched.

    The log is trusted only when everything agrees: the mark the last snapshot left is still
    there (a rollback restores an older one), the sequence counted exactly the commands
    the log holds (DDL on another connection, or rolled back, counts too), both triggers are
    enabled, the default schema is the same, and every touched catalog is one understood
    here. Otherwise the snapshot is a full read, which then starts a new log.
    """

    known: dict[str, _Known] = field(default_factory=dict)
    unlogged: set[str] = field(default_factory=set)
    """Databases without the DDL log (not created by a superuser): always a full read."""
    reads: dict[str, int] = field(default_factory=lambda: {"full": 0, "incremental": 0})
    _marks: int = 0

    def read(self, connection: Connection, schemas: list[str | None]) -> list[tuple[ObjectKey, ObjectState]]:
        database = str(connection.engine.url.database)
        if database in self.unlogged:
            return list(read(connection, schemas))
        self._marks += 1
        mark = f"{id(self):x}.{self._marks}"
        seen = connection.execute(sa.text(_SEEN), {"mark": mark + "|"}).one()
        log, events, triggers, enabled, default, function, _ = seen
        last = self.known.pop(database, None)
        events = None if events is None else int(events)
        touched = None if last is None else _touched(last, log, events, triggers, enabled, default)
        params = {"schemas": [schema for schema in schemas if schema is not None]}
        if touched is None:
            self.reads["full"] += 1
            known = _Known(mark, events or 0, default)
            self._relations(connection, known, params, [], [], everything=True)
            self._others(connection, known, params, function=function)
        else:
            self.reads["incremental"] += 1
            assert last is not None
            known = last
            known.mark, known.events = mark, events or 0
            relation_oids, other_kinds = touched
            extra = {known.parts[oid] for oid in relation_oids if oid in known.parts}
            extra |= {oid for oid in relation_oids if oid in known.relations}
            if relation_oids or extra:
                self._relations(
                    connection, known, params, sorted(relation_oids), sorted(extra), everything=False, function=function
                )
            # A touched oid that is no relation nor part of one now: a sequence, a dropped table's type...
            if other_kinds or relation_oids - known.relations.keys() - known.parts.keys():
                self._others(connection, known, params, function=function)
        if triggers:
            self.known[database] = known
        else:
            self.unlogged.add(database)
        return [*known.relations.values(), *known.others]

    def forget(self, database: str) -> None:
        """Make the next snapshot of ``database`` a full read."""
        self.known.pop(database, None)

    def _relations(
        self,
        connection: Connection,
        known: _Known,
        params: dict[str, Any],
        touched: list[int],
        extra: list[int],
        *,
        everything: bool,
        function: bool = False,
    ) -> None:
        query = _RELATIONS_OF.call if function else _PG_RELATIONS_OF
        rows = connection.execute(
            sa.text(query), {**params, "touched": touched, "extra": extra, "everything": everything}
        ).all()
        # Asked for and not returned: gone. Returned: read again, parts and all.
        stale = set(known.relations) if everything else (set(touched) | set(extra) | {row[0] for row in rows})
        for oid in stale & known.relations.keys():
            del known.relations[oid]
        known.parts = {part: owner for part, owner in known.parts.items() if owner not in stale}
        for oid, parts, *row in rows:
            known.relations[oid] = _relation_item(row, known.default)
            known.parts.update(dict.fromkeys(parts or (), oid))

    def _others(self, connection: Connection, known: _Known, params: dict[str, Any], *, function: bool) -> None:
        rows = connection.execute(sa.text(_OTHERS.call if function else _PG_OTHERS), params).all()[1:]
        known.others = [_other_item(row, known.default) for row in rows]


def _touched(
    last: _Known, log: str | None, events: int | None, triggers: int, enabled: str, default: str | None
) -> tuple[set[int], bool] | None:
    """``(touched relation-like oids, whether other objects were touched)``, or ``None``: read everything."""
    prefix = last.mark + "|"
    if log is None or events is None or not log.startswith(prefix):
        return None  # a new session, a rollback past the last snapshot, or the log cannot be read
    if triggers != 2 or enabled != "on" or default != last.default:
        return None
    commands = log[len(prefix) :].split(";")[:-1]
    if events - last.events != len(commands):
        return None
    relation_oids: set[int] = set()
    others = False
    for command in commands:
        for entry in filter(None, command.split(",")):
            catalog, _, oid = entry.rpartition(":")
            if catalog in _RELATION_CATALOGS:
                relation_oids.add(int(oid))
            elif catalog in _OTHER_CATALOGS:
                relation_oids.add(int(oid))  # its dependents: a column of the type, a view calling the function
                others = True
            elif catalog not in _IGNORED_CATALOGS:
                return None
    return relation_oids, others
