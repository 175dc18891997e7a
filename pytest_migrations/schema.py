"""Schema snapshots: what a database's structure is at one moment, cheap to take and compare.

A :class:`SchemaSnapshot` maps every schema object (table, view, ...) to an
:class:`ObjectState`: a set of *facts* such as ``column email -> VARCHAR(120) NOT NULL``
or ``index ix_users_email -> UNIQUE (email)``. Two snapshots are equal when every object
has the same facts. Facts are a set, so what nobody cares about is no difference: the
order of columns (a downgrade that re-adds a dropped column puts it last), the spelling
of SQLite's stored DDL after batch mode recreated a table, or names the database made up
for unnamed constraints.

Taking a snapshot is made cheap the way the issue asked for: one catalog query returns a
*fingerprint* per object (on SQLite, the stored DDL of a table, its indexes and
triggers), and only objects whose fingerprint was never seen before are reflected in
detail with SQLAlchemy's Inspector. The detailed states are cached by fingerprint, so a
step that alters one table reflects one table.

Dialects without a fingerprint query fall back to reflecting every table.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Inspector

ObjectKey = tuple[str, str]
"""``(kind, qualified name)``, e.g. ``("table", "users")`` or ``("view", "reporting.totals")``."""


@dataclass(frozen=True)
class ObjectState:
    """The structure of one schema object, as a set of ``(fact, detail)`` pairs."""

    kind: str
    name: str
    facts: frozenset[tuple[str, str]]

    def as_dict(self) -> dict[str, str]:
        return dict(self.facts)


@dataclass(frozen=True)
class Difference:
    """One way two snapshots differ. ``expected``/``actual`` are ``None`` where the thing is absent."""

    kind: str
    name: str
    fact: str | None
    """``None`` when the whole object is missing or extra."""
    expected: str | None
    actual: str | None

    def render(self, expected_label: str, actual_label: str) -> str:
        what = f'{self.kind} "{self.name}"'
        if self.fact is None:
            if self.actual is None:
                return f"- {what}: missing {actual_label} (it exists {expected_label})"
            return f"+ {what}: present {actual_label} ({self.actual}), absent {expected_label}"
        if self.actual is None:
            return f"- {what}: {_fact(self.fact, self.expected)}: missing {actual_label} (it exists {expected_label})"
        if self.expected is None:
            return f"+ {what}: {_fact(self.fact, self.actual)}: present {actual_label}, absent {expected_label}"
        return f"~ {what}: {self.fact}: {self.expected} {expected_label}, but {self.actual} {actual_label}"


def _fact(fact: str, detail: str | None) -> str:
    """``column email VARCHAR(120) NULL``; an unnamed constraint's key already is its text."""
    return fact if not detail or fact.endswith(detail) else f"{fact} {detail}"


@dataclass(frozen=True)
class SchemaDiff:
    """The differences between an expected and an actual snapshot; empty means equal."""

    differences: tuple[Difference, ...]

    def __bool__(self) -> bool:
        return bool(self.differences)

    def __len__(self) -> int:
        return len(self.differences)

    def __iter__(self) -> Iterator[Difference]:
        return iter(self.differences)

    @property
    def object_names(self) -> tuple[str, ...]:
        return tuple(sorted({d.name for d in self.differences}))

    def render_lines(self, expected: str = "in the expected schema", actual: str = "in the actual schema") -> list[str]:
        return [d.render(expected, actual) for d in self.differences]


@dataclass(frozen=True, eq=False)
class SchemaSnapshot:
    """The structure of a database at one moment. Compare with ``==``; see :meth:`diff`."""

    objects: Mapping[ObjectKey, ObjectState]
    dialect: str = ""

    def diff(self, actual: SchemaSnapshot) -> SchemaDiff:
        """How ``actual`` differs from this snapshot, taken as the expected one."""
        out: list[Difference] = []
        for key in sorted(self.objects.keys() | actual.objects.keys()):
            kind, name = key
            before, after = self.objects.get(key), actual.objects.get(key)
            if before is None and after is not None:
                out.append(Difference(kind, name, None, None, _summary(after)))
            elif after is None and before is not None:
                out.append(Difference(kind, name, None, _summary(before), None))
            elif before is not None and after is not None and before.facts != after.facts:
                out.extend(_fact_differences(before, after))
        return SchemaDiff(tuple(out))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, SchemaSnapshot):
            return NotImplemented
        return not self.diff(other)

    __hash__ = None  # type: ignore[assignment]

    @property
    def tables(self) -> tuple[str, ...]:
        return tuple(sorted(name for kind, name in self.objects if kind == "table"))

    def table(self, name: str) -> dict[str, str]:
        """The facts of one table, e.g. ``snapshot.table("users")["column email"]``."""
        return self.objects[("table", name)].as_dict()

    def __repr__(self) -> str:
        return f"<SchemaSnapshot {self.dialect}: {len(self.objects)} objects>"


def _summary(state: ObjectState) -> str:
    columns = sorted(f for f, _ in state.facts if f.startswith("column "))
    if columns:
        return "columns " + ", ".join(c.removeprefix("column ") for c in columns)
    return "; ".join(sorted(d for _, d in state.facts))[:200]


def _fact_differences(before: ObjectState, after: ObjectState) -> Iterator[Difference]:
    expected, actual = before.as_dict(), after.as_dict()
    for fact in sorted(expected.keys() | actual.keys()):
        if expected.get(fact) != actual.get(fact):
            yield Difference(before.kind, before.name, fact, expected.get(fact), actual.get(fact))


# --------------------------------------------------------------------------- capture


@dataclass
class SnapshotTaker:
    """Takes snapshots, caching detailed object states by fingerprint (one per process)."""

    cache: dict[tuple[str, ObjectKey, Any], ObjectState] = field(default_factory=dict)
    reflections: int = 0
    """How many objects were reflected in detail (the expensive part), for benchmarks."""

    def capture(
        self, connection: Connection, *, exclude_tables: Iterable[str] = (), schemas: Iterable[str | None] = (None,)
    ) -> SchemaSnapshot:
        dialect = connection.dialect.name
        excluded = set(exclude_tables)
        fingerprints = dict(_fingerprints(connection, list(schemas)))
        inspector: Inspector | None = None
        objects: dict[ObjectKey, ObjectState] = {}
        for key, fingerprint in fingerprints.items():
            if key[0] == "table" and key[1] in excluded:
                continue
            if isinstance(fingerprint, ObjectState):
                objects[key] = fingerprint  # the catalog row said everything: nothing to reflect
                continue
            cache_key = (dialect, key, fingerprint)
            state = self.cache.get(cache_key) if fingerprint is not None else None
            if state is None:
                inspector = inspector or sa.inspect(connection)
                state = _reflect(inspector, key, fingerprint, connection)
                self.reflections += 1
                if fingerprint is not None:
                    self.cache[cache_key] = state
            objects[key] = state
        return SchemaSnapshot(objects, dialect)


def _qualified(schema: str | None, name: str) -> str:
    return f"{schema}.{name}" if schema else name


def _split(qualified: str) -> tuple[str | None, str]:
    schema, _, name = qualified.rpartition(".")
    return (schema or None, name)


def _fingerprints(connection: Connection, schemas: list[str | None]) -> Iterator[tuple[ObjectKey, Any]]:
    """One catalog query per schema: every object and its fingerprint (``None`` = always reflect)."""
    if connection.dialect.name == "sqlite":
        for schema in schemas:
            yield from _sqlite_fingerprints(connection, schema)
        return
    if connection.dialect.name == "postgresql":
        yield from _postgresql_fingerprints(connection, schemas)
        return
    if connection.dialect.name in ("mysql", "mariadb"):
        for schema in schemas:
            yield from _mysql_fingerprints(connection, schema)
        return
    inspector = sa.inspect(connection)
    for schema in schemas:
        for name in inspector.get_table_names(schema=schema):
            yield ("table", _qualified(schema, name)), None
        for name in inspector.get_view_names(schema=schema):
            yield ("view", _qualified(schema, name)), None


def _sqlite_fingerprints(connection: Connection, schema: str | None) -> Iterator[tuple[ObjectKey, Any]]:
    master = f'"{schema}".sqlite_master' if schema else "sqlite_master"
    rows = connection.exec_driver_sql(f"SELECT type, name, tbl_name, sql FROM {master} ORDER BY type, name").all()
    per_table: dict[str, list[str]] = {}
    for kind, name, table, sql in rows:
        if name.startswith("sqlite_"):
            continue
        if kind == "view":
            yield ("view", _qualified(schema, name)), sql
        elif kind == "table":
            per_table.setdefault(name, []).insert(0, sql or "")
        else:
            per_table.setdefault(table, []).append(f"{kind}:{name}:{sql}")
    for table, parts in per_table.items():
        yield ("table", _qualified(schema, table)), tuple(parts)


_PG_RELATIONS = """
SELECT c.relkind, n.nspname, c.relname,
  (SELECT json_agg(json_build_array(a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull,
                                    pg_get_expr(d.adbin, d.adrelid), a.attidentity, a.attgenerated,
                                    col_description(c.oid, a.attnum)))
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
WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f') AND n.nspname = ANY(CAST(:schemas AS name[]))
"""

_PG_CONSTRAINTS = {
    "p": "primary key",
    "f": "foreign key",
    "u": "unique constraint",
    "c": "check constraint",
    "x": "exclusion constraint",
    "t": "constraint trigger",
}

_PG_ENUMS = """
SELECT n.nspname, t.typname, string_agg(e.enumlabel, ', ' ORDER BY e.enumsortorder)
FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace JOIN pg_enum e ON e.enumtypid = t.oid
WHERE n.nspname = ANY(CAST(:schemas AS name[])) GROUP BY n.nspname, t.typname
"""

_PG_SEQUENCES = """
SELECT schemaname, sequencename, concat_ws(' ', data_type, 'START', start_value, 'INCREMENT', increment_by,
       'MIN', min_value, 'MAX', max_value, CASE WHEN cycle THEN 'CYCLE' END)
FROM pg_sequences WHERE schemaname = ANY(CAST(:schemas AS name[]))
"""


_PG_DATABASE_OBJECTS = """
SELECT 'schema', nspname, '' FROM pg_namespace
 WHERE nspname NOT LIKE 'pg\\_%' AND nspname NOT IN ('information_schema', 'public')
UNION ALL
SELECT 'extension', extname, extversion FROM pg_extension WHERE extname <> 'plpgsql'
"""

_PG_FUNCTIONS = """
SELECT n.nspname, p.proname || '(' || pg_get_function_identity_arguments(p.oid) || ')',
       md5(pg_get_functiondef(p.oid))
FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
WHERE n.nspname = ANY(CAST(:schemas AS name[])) AND p.prokind IN ('f', 'p')
  AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.objid = p.oid AND d.deptype = 'e')
"""


def _postgresql_fingerprints(connection: Connection, schemas: list[str | None]) -> Iterator[tuple[ObjectKey, Any]]:
    """Every user schema of the database, not only the default one: the database is ours alone,
    and a migration that creates tables elsewhere must be checked there too."""
    default = connection.exec_driver_sql("SELECT current_schema()").scalar()
    names = [schema or default for schema in schemas]
    names += [
        name
        for (name,) in connection.execute(
            sa.text(
                "SELECT nspname FROM pg_namespace WHERE nspname NOT LIKE 'pg\\_%' AND nspname <> 'information_schema'"
            )
        )
        if name not in names
    ]

    def key_name(schema: str, name: str) -> str:
        return name if schema == default else f"{schema}.{name}"

    params = {"schemas": names}
    for relkind, schema, name, columns, constraints, indexes, triggers, comment, view in connection.execute(
        sa.text(_PG_RELATIONS), params
    ):
        qualified = key_name(schema, name)
        if relkind in ("v", "m"):
            yield ("view", qualified), ObjectState("view", qualified, frozenset({("definition", _normalise_sql(view))}))
            continue
        facts = {(f"column {col}", _pg_column(*rest)) for col, *rest in columns or ()}
        facts |= {
            (f"{_PG_CONSTRAINTS.get(kind, kind)} {con}", _normalise_sql(text)) for con, kind, text in constraints or ()
        }
        facts |= {(f"index {index}", _pg_index(text)) for index, text in indexes or ()}
        facts |= {(f"trigger {trigger}", _normalise_sql(text)) for trigger, text in triggers or ()}
        if comment:
            facts.add(("comment", comment))
        yield ("table", qualified), ObjectState("table", qualified, frozenset(facts))
    for schema, name, labels in connection.execute(sa.text(_PG_ENUMS), params):
        qualified = key_name(schema, name)
        yield ("enum", qualified), ObjectState("enum", qualified, frozenset({("labels", labels)}))
    for schema, name, detail in connection.execute(sa.text(_PG_SEQUENCES), params):
        qualified = key_name(schema, name)
        yield ("sequence", qualified), ObjectState("sequence", qualified, frozenset({("definition", detail)}))
    # Schemas, extensions and functions (a trigger's function, say) are left behind by downgrades too.
    for kind, name, detail in connection.execute(sa.text(_PG_DATABASE_OBJECTS)):
        yield (kind, name), ObjectState(kind, name, frozenset({("version", detail)} if detail else ()))
    for schema, signature, digest in connection.execute(sa.text(_PG_FUNCTIONS), params):
        qualified = key_name(schema, signature)
        yield ("function", qualified), ObjectState("function", qualified, frozenset({("definition md5", digest)}))


def _pg_column(
    type_: str, not_null: bool, default: str | None, identity: str, generated: str, comment: str | None
) -> str:
    parts = [type_, "NOT NULL" if not_null else "NULL"]
    if generated:
        parts.append(f"GENERATED ALWAYS AS {default}")
    elif default is not None:
        parts.append(f"DEFAULT {default}")
    if identity:
        parts.append("GENERATED " + ("ALWAYS" if identity == "a" else "BY DEFAULT") + " AS IDENTITY")
    if comment:
        parts.append(f"COMMENT {comment!r}")
    return " ".join(parts)


def _pg_index(definition: str) -> str:
    """``CREATE UNIQUE INDEX ix ON public.t USING btree (c)`` -> ``UNIQUE USING btree (c)``."""
    text = re.sub(r"^CREATE (UNIQUE )?INDEX \S+ ON (ONLY )?\S+ ", r"\1", definition)
    return _normalise_sql(text)


_MYSQL_QUERIES = {
    "tables": "SELECT TABLE_NAME, TABLE_TYPE, TABLE_COMMENT FROM information_schema.TABLES WHERE TABLE_SCHEMA = {s}",
    "columns": "SELECT TABLE_NAME, COLUMN_NAME, COLUMN_TYPE, IS_NULLABLE, COLUMN_DEFAULT, EXTRA, COLUMN_COMMENT, "
    "GENERATION_EXPRESSION FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = {s}",
    "indexes": "SELECT TABLE_NAME, INDEX_NAME, NON_UNIQUE, COLUMN_NAME, SUB_PART, INDEX_TYPE FROM "
    "information_schema.STATISTICS WHERE TABLE_SCHEMA = {s} ORDER BY TABLE_NAME, INDEX_NAME, SEQ_IN_INDEX",
    "foreign_keys": "SELECT k.TABLE_NAME, k.CONSTRAINT_NAME, k.COLUMN_NAME, k.REFERENCED_TABLE_SCHEMA, "
    "k.REFERENCED_TABLE_NAME, k.REFERENCED_COLUMN_NAME, r.UPDATE_RULE, r.DELETE_RULE "
    "FROM information_schema.KEY_COLUMN_USAGE k JOIN information_schema.REFERENTIAL_CONSTRAINTS r "
    "ON r.CONSTRAINT_SCHEMA = k.CONSTRAINT_SCHEMA AND r.CONSTRAINT_NAME = k.CONSTRAINT_NAME "
    "AND r.TABLE_NAME = k.TABLE_NAME WHERE k.TABLE_SCHEMA = {s} ORDER BY k.TABLE_NAME, k.CONSTRAINT_NAME, "
    "k.ORDINAL_POSITION",
    "checks": "SELECT TABLE_NAME, CONSTRAINT_NAME, CHECK_CLAUSE FROM information_schema.CHECK_CONSTRAINTS "
    "WHERE CONSTRAINT_SCHEMA = {s}",
    "triggers": "SELECT EVENT_OBJECT_TABLE, TRIGGER_NAME, ACTION_TIMING, EVENT_MANIPULATION, ACTION_STATEMENT "
    "FROM information_schema.TRIGGERS WHERE EVENT_OBJECT_SCHEMA = {s}",
    "views": "SELECT TABLE_NAME, VIEW_DEFINITION FROM information_schema.VIEWS WHERE TABLE_SCHEMA = {s}",
}


def _mysql_fingerprints(connection: Connection, schema: str | None) -> Iterator[tuple[ObjectKey, Any]]:
    """Flat information_schema queries, one per kind: MariaDB answers correlated ones very slowly."""
    where = ":schema" if schema else "DATABASE()"
    rows = {
        kind: connection.execute(sa.text(query.format(s=where)), {"schema": schema} if schema else {}).all()
        for kind, query in _MYSQL_QUERIES.items()
    }
    facts: dict[str, set[tuple[str, str]]] = {}
    views = {name: definition for name, definition in rows["views"]}
    for name, kind, comment in rows["tables"]:
        if kind != "VIEW":
            facts[name] = {("comment", comment)} if comment else set()
    for table, column, type_, nullable, default, extra, comment, generated in rows["columns"]:
        if table in facts:
            facts[table].add((f"column {column}", _mysql_column(type_, nullable, default, extra, comment, generated)))
    for table, name, group in _grouped(rows["indexes"], 2):
        unique = "" if group[0][2] else "UNIQUE "
        cols = _cols(f"{r[3]}({r[4]})" if r[4] else r[3] for r in group)
        key = "primary key" if name == "PRIMARY" else f"index {_constraint_name(name, table) or cols}"
        facts.setdefault(table, set()).add((key, f"{unique}{cols} {group[0][5]}".strip()))
    for table, name, group in _grouped(rows["foreign_keys"], 2):
        target = _cols(r[5] for r in group)
        detail = (
            f"{_cols(r[2] for r in group)} -> {group[0][4]}{target} ON UPDATE {group[0][6]} ON DELETE {group[0][7]}"
        )
        facts.setdefault(table, set()).add(
            (f"foreign key {_constraint_name(name, table) or _cols(r[2] for r in group)}", detail)
        )
    for table, name, clause in rows["checks"]:
        facts.setdefault(table, set()).add((f"check constraint {name}", _normalise_sql(clause)))
    for table, name, timing, event, statement in rows["triggers"]:
        facts.setdefault(table, set()).add((f"trigger {name}", _normalise_sql(f"{timing} {event} {statement}")))
    for table, table_facts in facts.items():
        qualified = _qualified(schema, table)
        yield ("table", qualified), ObjectState("table", qualified, frozenset(table_facts))
    for view, definition in views.items():
        qualified = _qualified(schema, view)
        yield (
            ("view", qualified),
            ObjectState("view", qualified, frozenset({("definition", _normalise_sql(definition))})),
        )


def _grouped(rows: Sequence[Any], width: int) -> Iterator[tuple[str, str, list[Any]]]:
    """Consecutive rows sharing their first ``width`` values, as ``(table, name, rows)``."""
    group: list[Any] = []
    for row in rows:
        if group and tuple(row[:width]) != tuple(group[0][:width]):
            yield group[0][0], group[0][1], group
            group = []
        group.append(row)
    if group:
        yield group[0][0], group[0][1], group


def _mysql_column(
    type_: str, nullable: str, default: str | None, extra: str, comment: str, generated: str | None
) -> str:
    parts = [type_, "NULL" if nullable == "YES" else "NOT NULL"]
    if generated:
        parts.append(f"GENERATED ALWAYS AS ({generated})")
    elif default is not None and default != "NULL":
        parts.append(f"DEFAULT {default}")
    if extra:
        parts.append(extra.upper())
    if comment:
        parts.append(f"COMMENT {comment!r}")
    return " ".join(parts)


def _reflect(inspector: Inspector, key: ObjectKey, fingerprint: Any, connection: Connection) -> ObjectState:
    kind, qualified = key
    schema, name = _split(qualified)
    if kind == "view":
        definition = fingerprint if isinstance(fingerprint, str) else inspector.get_view_definition(name, schema)
        return ObjectState(kind, qualified, frozenset({("definition", _normalise_sql(str(definition or "")))}))
    facts = set(_table_facts(inspector, name, schema, connection.dialect))
    if connection.dialect.name == "sqlite" and isinstance(fingerprint, tuple):
        facts.update(_sqlite_trigger_facts(fingerprint))
    return ObjectState(kind, qualified, frozenset(facts))


def _table_facts(inspector: Inspector, name: str, schema: str | None, dialect: sa.Dialect) -> Iterator[tuple[str, str]]:
    for column in inspector.get_columns(name, schema=schema):
        yield f"column {column['name']}", _column_detail(column, dialect)
    pk = inspector.get_pk_constraint(name, schema=schema)
    if pk and pk.get("constrained_columns"):
        yield "primary key", _cols(pk["constrained_columns"]) + _named(pk.get("name"))
    for fk in inspector.get_foreign_keys(name, schema=schema):
        target = _qualified(fk.get("referred_schema"), fk["referred_table"]) + _cols(fk["referred_columns"])
        options = " ".join(f"{k.upper()} {v}" for k, v in sorted((fk.get("options") or {}).items()) if v)
        detail = f"{_cols(fk['constrained_columns'])} -> {target}" + (f" {options}" if options else "")
        yield f"foreign key {_constraint_name(fk.get('name'), name) or _cols(fk['constrained_columns'])}", detail
    for index in inspector.get_indexes(name, schema=schema):
        yield f"index {index.get('name')}", _index_detail(index)
    for unique in _safe(inspector.get_unique_constraints, name, schema):
        yield f"unique constraint {unique.get('name') or _cols(unique['column_names'])}", _cols(unique["column_names"])
    for check in _safe(inspector.get_check_constraints, name, schema):
        text = _normalise_sql(str(check.get("sqltext", "")))
        yield f"check constraint {check.get('name') or text}", text
    comment = _safe_comment(inspector, name, schema)
    if comment:
        yield "comment", comment


def _column_detail(column: Mapping[str, Any], dialect: sa.Dialect) -> str:
    try:
        type_ = column["type"].compile(dialect=dialect)
    except Exception:
        type_ = repr(column["type"])
    parts = [str(type_), "NULL" if column.get("nullable", True) else "NOT NULL"]
    default = column.get("default")
    if default is not None:
        parts.append(f"DEFAULT {_normalise_default(str(default))}")
    if column.get("computed"):
        parts.append(f"GENERATED {_normalise_sql(str(column['computed'].get('sqltext')))}")
    if column.get("comment"):
        parts.append(f"COMMENT {column['comment']!r}")
    return " ".join(parts)


def _index_detail(index: Mapping[str, Any]) -> str:
    expressions = index.get("expressions") or [None] * len(index["column_names"])
    names = [n if n is not None else e for n, e in zip(index["column_names"], expressions, strict=True)]
    detail = ("UNIQUE " if index.get("unique") else "") + _cols(names)
    for option, value in sorted((index.get("dialect_options") or {}).items()):
        if value not in (None, "", [], {}):
            detail += f" {option}={_normalise_sql(str(value))}"
    return detail


def _sqlite_trigger_facts(fingerprint: tuple[str, ...]) -> Iterator[tuple[str, str]]:
    for part in fingerprint[1:]:
        kind, _, rest = part.partition(":")
        if kind == "trigger":
            name, _, sql = rest.partition(":")
            yield f"trigger {name}", _normalise_sql(sql)


def _safe(method: Any, name: str, schema: str | None) -> list[dict[str, Any]]:
    try:
        return list(method(name, schema=schema))
    except NotImplementedError:
        return []


def _safe_comment(inspector: Inspector, name: str, schema: str | None) -> str | None:
    try:
        return inspector.get_table_comment(name, schema=schema).get("text")
    except NotImplementedError:
        return None


def _constraint_name(constraint: str | None, table: str) -> str | None:
    """A name the database made up (MySQL's ``<table>_ibfk_<n>``) is no name: it changes on a round trip."""
    if constraint and re.fullmatch(rf"{re.escape(table)}_ibfk_\d+", constraint):
        return None
    return constraint


def _cols(columns: Iterable[Any]) -> str:
    return "(" + ", ".join(str(c) for c in columns) + ")"


def _named(name: str | None) -> str:
    return f" named {name}" if name else ""


_WS = re.compile(r"\s+")


def _normalise_sql(sql: str) -> str:
    """Whitespace and identifier quoting do not change what SQL means here."""
    sql = _WS.sub(" ", sql.replace('"', "").replace("`", "")).strip()
    sql = re.sub(r"\(\s+", "(", re.sub(r"\s+\)", ")", sql))
    return sql


def _normalise_default(default: str) -> str:
    text = _normalise_sql(default)
    while text.startswith("(") and text.endswith(")") and _balanced(text[1:-1]):
        text = text[1:-1].strip()
    return text


def _balanced(text: str) -> bool:
    depth = 0
    for char in text:
        depth += {"(": 1, ")": -1}.get(char, 0)
        if depth < 0:
            return False
    return depth == 0
