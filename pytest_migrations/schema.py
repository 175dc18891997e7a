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

What is *no* difference, dialect by dialect:

* Names the database generated rather than a migration gave. PostgreSQL names unnamed
  constraints and indexes ``<table>_<column>_pkey``/``_key``/``_fkey``/``_check``/``_excl``/
  ``_idx`` and serial columns' sequences ``<table>_<column>_seq``, and keeps those names when
  the table is renamed: a table re-created under its new name gets other names and is the
  same table. Such facts are keyed by their definition, and a sequence owned by a column
  (serial or identity) is a fact of that column, not an object of its own. MySQL/MariaDB
  names an unnamed index after its first column (``team_id``, ``team_id_2``), the index it
  creates for a foreign key after that key (an unnamed key's after its column, a name it
  keeps when the column is renamed), unnamed foreign keys ``<table>_ibfk_<n>`` and
  unnamed checks ``CONSTRAINT_<n>`` or after their column: likewise keyed by definition.
  The name is still shown in the report (a *note* of the fact).
* Equal values spelled differently: SQLite's ``false``/``'0'``/``0`` and
  ``(CURRENT_TIMESTAMP)``/``current_timestamp`` defaults, whitespace in PostgreSQL
  function bodies.
"""

from __future__ import annotations

import difflib
import os
import re
import warnings
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Inspector

if TYPE_CHECKING:
    from . import pg_catalog

ObjectKey = tuple[str, str]
"""``(kind, qualified name)``, e.g. ``("table", "users")`` or ``("view", "reporting.totals")``."""


@dataclass(frozen=True)
class ObjectState:
    """The structure of one schema object, as a set of ``(fact, detail)`` pairs.

    ``notes`` says more about some facts for the report (the name the database gave a
    constraint keyed by its definition, say); it is never compared.
    """

    kind: str
    name: str
    facts: frozenset[tuple[str, str]]
    notes: Mapping[str, str] = field(default_factory=dict, compare=False)

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
    expected_note: str | None = None
    """What the expected snapshot says more about the fact (e.g. ``named users_email_key``)."""
    actual_note: str | None = None

    def render(self, expected_label: str, actual_label: str) -> str:
        """One line; a fact of several lines (a function body) changed is a unified diff below it."""
        what = f'{self.kind} "{self.name}"'
        if self.fact is None:
            if self.actual is None:
                return f"- {what}: missing {actual_label} (it exists {expected_label})"
            return f"+ {what}: present {actual_label} ({self.actual}), absent {expected_label}"
        if self.actual is None:
            note = f"; {self.expected_note}" if self.expected_note else ""
            fact = _fact(self.fact, self.expected)
            return f"- {what}: {fact}: missing {actual_label} (it exists {expected_label}{note})"
        if self.expected is None:
            note = f" ({self.actual_note})" if self.actual_note else ""
            return f"+ {what}: {_fact(self.fact, self.actual)}: present {actual_label}, absent {expected_label}{note}"
        if "\n" in self.expected or "\n" in self.actual:
            return f"~ {what}: {self.fact} differs (- {expected_label}, + {actual_label}):\n" + _unified_diff(
                self.expected, self.actual
            )
        return (
            f"~ {what}: {self.fact}: {self.expected} {expected_label}, but {self.actual} {actual_label}"
            + self._changed_notes(expected_label, actual_label)
        )

    def _changed_notes(self, expected_label: str, actual_label: str) -> str:
        if self.expected_note and self.actual_note and self.expected_note != self.actual_note:
            return f" ({self.expected_note} {expected_label}, {self.actual_note} {actual_label})"
        note = self.actual_note or self.expected_note
        return f" ({note})" if note else ""


def _unified_diff(expected: str, actual: str) -> str:
    """The changed lines with one line of context, indented; hunks are separated by ``...``."""
    lines = difflib.unified_diff(expected.splitlines(), actual.splitlines(), n=1, lineterm="")
    body = ["    ..." if line.startswith("@@") else f"    {line}" for line in list(lines)[2:]]
    return "\n".join(body[1:] if body and body[0] == "    ..." else body)


def _fact(fact: str, detail: str | None) -> str:
    """``column email VARCHAR(120) NULL``; an unnamed constraint's key already is its text
    (``unique constraint (email)``, or ``unique constraint (email) #2`` for a second one), or
    begins it: ``foreign key (team_id) -> teams(id) ...``, ``unique index (email) BTREE``,
    not the columns twice."""
    base = re.sub(r" #\d+$", "", fact)
    number = fact[len(base) :]
    if not detail or base.endswith(detail):
        return fact
    columns = base[base.find(" (") + 1 :] if " (" in base else ""
    if columns and detail.startswith(columns):
        return f"{base}{detail[len(columns) :]}{number}"
    if columns and base.startswith("index ") and detail.startswith(unique := f"UNIQUE {columns}"):
        return f"unique {base}{detail[len(unique) :]}{number}"
    return f"{fact} {detail}"


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
    text = " ".join("; ".join(sorted(d for _, d in state.facts)).split())  # a function body is one line here
    return text if len(text) <= 200 else text[:197] + "..."


def _fact_differences(before: ObjectState, after: ObjectState) -> Iterator[Difference]:
    expected, actual = before.as_dict(), after.as_dict()
    for fact in sorted(expected.keys() | actual.keys()):
        if expected.get(fact) != actual.get(fact):
            yield Difference(
                before.kind,
                before.name,
                fact,
                expected.get(fact),
                actual.get(fact),
                before.notes.get(fact),
                after.notes.get(fact),
            )


def _state(kind: str, name: str, facts: Iterable[tuple[str, str] | tuple[str, str, str | None]]) -> ObjectState:
    """An object's state from ``(fact, detail[, note])``; facts keyed alike are numbered.

    Facts keyed by their definition (a constraint the database named) can be there twice:
    a downgrade that re-adds a unique constraint its upgrade never dropped leaves two. The
    second is ``<fact> #2``, so it is a difference and not lost in the set.
    """
    counts: dict[str, int] = {}
    pairs: set[tuple[str, str]] = set()
    notes: dict[str, str] = {}
    rows = [(fact[0], fact[1], fact[2] if len(fact) > 2 else None) for fact in facts]
    for key, detail, note in sorted(rows, key=lambda row: (row[0], row[1], row[2] or "")):
        counts[key] = counts.get(key, 0) + 1
        if counts[key] > 1:
            key = f"{key} #{counts[key]}"
        pairs.add((key, detail))
        if note:
            notes[key] = note
    return ObjectState(kind, name, frozenset(pairs), notes)


# --------------------------------------------------------------------------- capture


@dataclass
class SnapshotTaker:
    """Takes snapshots, caching detailed object states by fingerprint (one per process)."""

    cache: dict[tuple[str, ObjectKey, Any], ObjectState] = field(default_factory=dict)
    reflections: int = 0
    """How many objects were reflected in detail (the expensive part), for benchmarks."""
    foreign_key_indexes: set[tuple[str, str]] = field(default_factory=set)
    """``(table, index)`` pairs seen backing a foreign key on MySQL: such an index that outlives
    its foreign key was most likely made by MySQL for it, which the report then says."""
    postgresql: pg_catalog.Incremental | None = None
    """PostgreSQL snapshots that re-read only what DDL touched."""
    incremental: bool = field(default_factory=lambda: os.environ.get("PYTEST_MIGRATIONS_FULL_SNAPSHOTS") != "1")
    """``False`` (``PYTEST_MIGRATIONS_FULL_SNAPSHOTS=1``): every PostgreSQL and MariaDB snapshot is a full
    catalog read (see :mod:`.pg_catalog` and :mod:`.mysql_catalog` for the incremental ones)."""
    verify: bool = field(default_factory=lambda: os.environ.get("PYTEST_MIGRATIONS_VERIFY_SNAPSHOTS") == "1")
    """Take every incremental snapshot a second time in full and fail on any difference: the
    plugin's own test suite runs so (``PYTEST_MIGRATIONS_VERIFY_SNAPSHOTS=1``)."""

    def capture(
        self,
        connection: Connection,
        *,
        exclude_tables: Iterable[str] = (),
        schemas: Iterable[str | None] = (None,),
        full: bool = False,
    ) -> SchemaSnapshot:
        """A snapshot of ``connection``'s database; ``full``: not from what an earlier one knew."""
        dialect = connection.dialect.name
        if full and self.postgresql is not None:
            self.postgresql.forget(str(connection.engine.url.database))
        if full and dialect in ("mysql", "mariadb"):
            from . import mysql_catalog

            mysql_catalog.SNAPSHOTS.forget()
        excluded = set(exclude_tables)
        fingerprints = dict(self._fingerprints(connection, list(schemas)))
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

    def _fingerprints(self, connection: Connection, schemas: list[str | None]) -> Iterable[tuple[ObjectKey, Any]]:
        if self.incremental and getattr(connection.dialect, "is_mariadb", False):
            return self._mariadb_fingerprints(connection, schemas)
        if connection.dialect.name != "postgresql" or not self.incremental:
            return _fingerprints(connection, schemas, self.foreign_key_indexes)
        from . import pg_catalog  # at run time: pg_catalog imports this module

        if self.postgresql is None:
            self.postgresql = pg_catalog.Incremental()
        objects = self.postgresql.read(connection, schemas)
        if self.verify:
            _same_as_full(pg_catalog.read(connection, schemas), objects, "postgresql")
        return objects

    def _mariadb_fingerprints(self, connection: Connection, schemas: list[str | None]) -> list[tuple[ObjectKey, Any]]:
        from . import mysql_catalog  # at run time: mysql_catalog imports this module

        incremental = mysql_catalog.SNAPSHOTS
        incremental.trust_recorder = self.verify
        objects: list[tuple[ObjectKey, Any]] = []
        for schema in schemas:
            objects.extend(incremental.read(connection, schema, self.foreign_key_indexes))
        if self.verify:
            _same_as_full(_fingerprints(connection, schemas, set(self.foreign_key_indexes)), objects, "mysql")
        return objects


def _same_as_full(
    full: Iterable[tuple[ObjectKey, Any]], incremental: Iterable[tuple[ObjectKey, Any]], dialect: str
) -> None:
    """Fail, with the difference, when an incremental read is not what the full read gives."""
    expected, actual = SchemaSnapshot(dict(full), dialect), SchemaSnapshot(dict(incremental), dialect)
    if expected != actual:
        lines = expected.diff(actual).render_lines("in the full read", "in the incremental one")
        raise AssertionError("incremental snapshot differs from the full read:\n" + "\n".join(lines))


def _qualified(schema: str | None, name: str) -> str:
    return f"{schema}.{name}" if schema else name


def _split(qualified: str) -> tuple[str | None, str]:
    schema, _, name = qualified.rpartition(".")
    return (schema or None, name)


def _fingerprints(
    connection: Connection, schemas: list[str | None], foreign_key_indexes: set[tuple[str, str]]
) -> Iterator[tuple[ObjectKey, Any]]:
    """One catalog query per schema: every object and its fingerprint (``None`` = always reflect)."""
    if connection.dialect.name == "sqlite":
        for schema in schemas:
            yield from _sqlite_fingerprints(connection, schema)
        return
    if connection.dialect.name == "postgresql":
        from . import pg_catalog

        yield from pg_catalog.read(connection, schemas)
        return
    if connection.dialect.name in ("mysql", "mariadb"):
        for schema in schemas:
            yield from _mysql_fingerprints(connection, schema, foreign_key_indexes)
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


# --------------------------------------------------------------------------- MySQL / MariaDB

_MYSQL_PARTS: dict[str, tuple[Sequence[str], str, str]] = {
    "tables": (("TABLE_NAME", "TABLE_TYPE", "TABLE_COMMENT"), "TABLES WHERE TABLE_SCHEMA = {s}", "0"),
    "columns": (
        "TABLE_NAME COLUMN_NAME COLUMN_TYPE IS_NULLABLE COLUMN_DEFAULT EXTRA COLUMN_COMMENT "
        "GENERATION_EXPRESSION".split(),
        "COLUMNS WHERE TABLE_SCHEMA = {s}",
        "0",
    ),
    "indexes": (
        ("TABLE_NAME", "INDEX_NAME", "NON_UNIQUE", "COLUMN_NAME", "SUB_PART", "INDEX_TYPE"),
        "STATISTICS WHERE TABLE_SCHEMA = {s}",
        "SEQ_IN_INDEX",
    ),
    # key_columns and referential are joined in Python: MariaDB joins the two tables ten times slower.
    "key_columns": (
        "TABLE_NAME CONSTRAINT_NAME COLUMN_NAME REFERENCED_TABLE_SCHEMA REFERENCED_TABLE_NAME "
        "REFERENCED_COLUMN_NAME".split(),
        "KEY_COLUMN_USAGE WHERE TABLE_SCHEMA = {s} AND REFERENCED_TABLE_NAME IS NOT NULL",
        "ORDINAL_POSITION",
    ),
    "referential": (
        ("TABLE_NAME", "CONSTRAINT_NAME", "UPDATE_RULE", "DELETE_RULE"),
        "REFERENTIAL_CONSTRAINTS WHERE CONSTRAINT_SCHEMA = {s}",
        "0",
    ),
    "checks": (
        ("TABLE_NAME", "CONSTRAINT_NAME", "CHECK_CLAUSE"),
        "CHECK_CONSTRAINTS WHERE CONSTRAINT_SCHEMA = {s}",
        "0",
    ),
    "triggers": (
        ("EVENT_OBJECT_TABLE", "TRIGGER_NAME", "ACTION_TIMING", "EVENT_MANIPULATION", "ACTION_STATEMENT"),
        "TRIGGERS WHERE EVENT_OBJECT_SCHEMA = {s}",
        "0",
    ),
    "views": (("TABLE_NAME", "VIEW_DEFINITION"), "VIEWS WHERE TABLE_SCHEMA = {s}", "0"),
}
"""What a MySQL snapshot reads from information_schema: per kind, its columns, table and
condition, and the column that orders rows within a ``(table, name)`` group."""

_MYSQL_WIDTH = max(len(columns) for columns, _, _ in _MYSQL_PARTS.values())
_MYSQL_SNAPSHOT = " UNION ALL ".join(
    f"SELECT '{kind}', "
    + ", ".join([f"CONVERT({c} USING utf8mb4)" for c in columns] + ["NULL"] * (_MYSQL_WIDTH - len(columns)))
    + f", {order} FROM information_schema.{source}"
    for kind, (columns, source, order) in _MYSQL_PARTS.items()
)
"""Every part in one round trip (a stairway takes three snapshots per revision; each round trip
to MariaDB costs about what one small information_schema query does). Unordered: MariaDB sorting
the union costs a third of the query (14 -> 9 ms on 200 tables); the rows are sorted here."""


def _mysql_order(row: Sequence[Any]) -> tuple[Any, ...]:
    """A row's place: its part, table, name, then its position within the ``(table, name)`` group."""
    return (row[0], row[1] or "", row[2] or "", row[-1] or 0)


def _mysql_raw_rows(connection: Connection, schema: str | None) -> list[tuple[Any, ...]]:
    """Every row of :data:`_MYSQL_SNAPSHOT`: ``(part, table, name, ..., position)``, padded to one width."""
    query = _MYSQL_SNAPSHOT.format(s=":schema" if schema else "DATABASE()")
    return [tuple(row) for row in connection.execute(sa.text(query), {"schema": schema} if schema else {})]


def _mysql_parts(raw: Iterable[Sequence[Any]]) -> dict[str, list[tuple[Any, ...]]]:
    """The rows of each of :data:`_MYSQL_PARTS`, as each part's own columns, from :func:`_mysql_raw_rows`."""
    rows: dict[str, list[tuple[Any, ...]]] = {kind: [] for kind in _MYSQL_PARTS}
    for kind, *values in sorted(raw, key=_mysql_order):
        rows[kind].append(tuple(values[: len(_MYSQL_PARTS[kind][0])]))
    rows["indexes"] = [(t, n, int(non_unique), c, s, k) for t, n, non_unique, c, s, k in rows["indexes"]]
    rules = {(table, name): (update, delete) for table, name, update, delete in rows.pop("referential")}
    rows["foreign_keys"] = [(*row, *rules.get((row[0], row[1]), ("", ""))) for row in rows.pop("key_columns")]
    return rows


_MYSQL_GENERATED_CHECK = re.compile(r"CONSTRAINT_\d+|.+_chk_\d+")
"""MariaDB names an unnamed table check ``CONSTRAINT_<n>``, MySQL 8 ``<table>_chk_<n>``; a
column-level check is named after its column. The number changes when one is dropped and re-added."""

_FOREIGN_KEY_INDEX_NOTE = (
    "probably the index MySQL made for a foreign key; dropping the foreign key does not drop it: drop it too"
)


def _mysql_fingerprints(
    connection: Connection,
    schema: str | None,
    foreign_key_indexes: set[tuple[str, str]],
    raw: Iterable[Sequence[Any]] | None = None,
) -> Iterator[tuple[ObjectKey, Any]]:
    """Flat information_schema queries, one per kind: MariaDB answers correlated ones very slowly.

    :param raw: the rows of :func:`_mysql_raw_rows`, when the caller has them (see :mod:`.mysql_catalog`).
    """
    rows = _mysql_parts(_mysql_raw_rows(connection, schema) if raw is None else raw)
    facts: dict[str, list[tuple[str, str, str | None]]] = {}
    columns: dict[str, set[str]] = {}
    views = {name: definition for name, definition in rows["views"]}
    for name, kind, comment in rows["tables"]:
        if kind != "VIEW":
            facts[name] = [("comment", comment, None)] if comment else []
    for table, column, type_, nullable, default, extra, comment, generated in rows["columns"]:
        if table in facts:
            columns.setdefault(table, set()).add(column)
            detail = _mysql_column(type_, nullable, default, extra, comment, generated)
            facts[table].append((f"column {column}", detail, None))
    foreign_keys: dict[str, list[tuple[str, tuple[str, ...]]]] = {}
    for table, name, group in _grouped(rows["foreign_keys"], 2):
        local = tuple(r[2] for r in group)
        foreign_keys.setdefault(table, []).append((name, local))
        target = _cols(r[5] for r in group)
        detail = f"{_cols(local)} -> {group[0][4]}{target} ON UPDATE {group[0][6]} ON DELETE {group[0][7]}"
        key = _constraint_name(name, table)
        facts.setdefault(table, []).append(
            (f"foreign key {key or _cols(local)}", detail, None if key else f"named {name}")
        )
    for table, name, group in _grouped(rows["indexes"], 2):
        unique = "" if group[0][2] else "UNIQUE "
        cols = _cols(f"{r[3]}({r[4]})" if r[4] else r[3] for r in group)
        detail = f"{unique}{cols} {group[0][5]}".strip()
        if name == "PRIMARY":  # unique by being the key: "primary key: UNIQUE (id)" would say it twice
            facts.setdefault(table, []).append(("primary key", detail.removeprefix("UNIQUE "), None))
            continue
        backed = [fk for fk, local in foreign_keys.get(table, ()) if tuple(r[3] for r in group[: len(local)]) == local]
        generated = _mysql_generated_index(name, group[0][3], backed, table, unique=bool(unique))
        note: str | None = None
        if backed and not unique and generated:
            foreign_key_indexes.add((_qualified(schema, table), name))
        elif not backed and not unique and (_qualified(schema, table), name) in foreign_key_indexes:
            note = _FOREIGN_KEY_INDEX_NOTE
        if generated:
            note = f"named {name}" + (f"; {note}" if note else "")
        facts.setdefault(table, []).append((f"index {cols if generated else name}", detail, note))
    for table, name, clause in rows["checks"]:
        text = _normalise_sql(clause)
        if _MYSQL_GENERATED_CHECK.fullmatch(name) or name in columns.get(table, ()):
            facts.setdefault(table, []).append((f"check constraint {text}", text, f"named {name}"))
        else:
            facts.setdefault(table, []).append((f"check constraint {name}", text, None))
    for table, name, timing, event, statement in rows["triggers"]:
        facts.setdefault(table, []).append((f"trigger {name}", _normalise_sql(f"{timing} {event} {statement}"), None))
    for table, table_facts in facts.items():
        qualified = _qualified(schema, table)
        yield ("table", qualified), _state("table", qualified, table_facts)
    for view, definition in views.items():
        qualified = _qualified(schema, view)
        yield (
            ("view", qualified),
            ObjectState("view", qualified, frozenset({("definition", _normalise_sql(definition))})),
        )


def _mysql_generated_index(
    name: str, first_column: str | None, foreign_keys: list[str], table: str, *, unique: bool
) -> bool:
    """Whether MySQL made the index's name: an unnamed index is named after its first column
    (``team_id``, ``team_id_2`` when taken), the index it creates for a foreign key after the
    foreign key (``fk_players_team``, ``players_ibfk_1``) or, for an unnamed foreign key, after
    the column as it was then: a column rename keeps the index's name, so the index of an
    unnamed foreign key (``foreign_keys``: those the index backs) counts as the server's whatever
    its name. ``first_column`` is ``None`` for MySQL 8's functional indexes."""
    if first_column is not None and re.fullmatch(rf"{re.escape(first_column)}(_\d+)?", name):
        return True
    if not unique and foreign_keys and all(_constraint_name(key, table) is None for key in foreign_keys):
        return True
    return name in foreign_keys or _constraint_name(name, table) is None


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


# --------------------------------------------------------------------------- reflection (SQLite and others)

# SQLAlchemy skips expression indexes on SQLite with this warning; they are taken from the
# stored SQL instead, and users run with filterwarnings=error.
_EXPRESSION_INDEX_WARNING = "Skipped unsupported reflection of expression-based index"


def _reflect(inspector: Inspector, key: ObjectKey, fingerprint: Any, connection: Connection) -> ObjectState:
    kind, qualified = key
    schema, name = _split(qualified)
    if kind == "view":
        definition = fingerprint if isinstance(fingerprint, str) else inspector.get_view_definition(name, schema)
        return ObjectState(kind, qualified, frozenset({("definition", _normalise_sql(str(definition or "")))}))
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=_EXPRESSION_INDEX_WARNING, category=sa.exc.SAWarning)
        facts = list(_table_facts(inspector, name, schema, connection.dialect))
    if connection.dialect.name == "sqlite" and isinstance(fingerprint, tuple):
        reflected = {fact.removeprefix("index ") for fact, _ in facts if fact.startswith("index ")}
        facts += _sqlite_stored_facts(fingerprint, reflected)
    return _state(kind, qualified, facts)


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
        parts.append(f"DEFAULT {_normalise_default(str(default), dialect.name)}")
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


def _sqlite_stored_facts(fingerprint: tuple[str, ...], reflected_indexes: set[str]) -> Iterator[tuple[str, str]]:
    """Triggers, and the indexes SQLAlchemy does not reflect (on expressions), from sqlite_master."""
    for part in fingerprint[1:]:
        kind, _, rest = part.partition(":")
        name, _, sql = rest.partition(":")
        if kind == "trigger":
            yield f"trigger {name}", _normalise_sql(sql)
        elif kind == "index" and name not in reflected_indexes and sql != "None":
            yield f"index {name}", _sqlite_index_detail(sql)


def _sqlite_index_detail(sql: str) -> str:
    """``CREATE UNIQUE INDEX ix ON users (lower(email)) WHERE x`` -> ``UNIQUE (lower(email)) sqlite_where=x``,
    the form of a reflected index's detail."""
    text = _normalise_sql(sql)
    match = re.match(r"CREATE\s+(UNIQUE\s+)?INDEX\s+(?:IF\s+NOT\s+EXISTS\s+)?\S+\s+ON\s+[^(\s]+\s*", text, re.I)
    if match is None:
        return text
    rest = text[match.end() :]
    depth, end = 0, len(rest)
    for position, char in enumerate(rest):
        depth += {"(": 1, ")": -1}.get(char, 0)
        if depth == 0:
            end = position + 1
            break
    detail = ("UNIQUE " if match.group(1) else "") + rest[:end]
    where = re.match(r"\s*WHERE\s+(.*)", rest[end:], re.I | re.DOTALL)
    return detail + (f" sqlite_where={where.group(1).strip()}" if where else rest[end:])


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
    """A name the database made up (MySQL's ``<table>_ibfk_<n>``) is no name: it changes on a round trip.

    Any table's: MariaDB renames them with their table, but a migration may have spelled one out.
    """
    if constraint and re.fullmatch(r".+_ibfk_\d+", constraint):
        return None
    return constraint


def _cols(columns: Iterable[Any]) -> str:
    return "(" + ", ".join(str(c) for c in columns) + ")"


def _named(name: str | None) -> str:
    return f" named {name}" if name else ""


_WS = re.compile(r"\s+")


# A string literal (kept as written) or a comment (dropped): ``'a -- b'`` holds no comment.
_LITERAL_OR_COMMENT = re.compile(r"('(?:[^']|'')*')|--[^\n]*|/\*.*?\*/", re.DOTALL)


def _normalise_sql(sql: str) -> str:
    """Whitespace, comments and identifier quoting do not change what SQL means here. SQLite keeps
    a view's or trigger's SQL as written, so a downgrade that re-creates a view without the
    comment its upgrade had leaves the same view."""
    sql = _LITERAL_OR_COMMENT.sub(lambda match: match.group(1) or " ", sql)
    sql = _WS.sub(" ", sql.replace('"', "").replace("`", "")).strip()
    sql = re.sub(r"\(\s+", "(", re.sub(r"\s+\)", ")", sql))
    return sql


# SQLite stores a default as written; these spellings store the same value.
_SQLITE_NUMBER_STRING = re.compile(r"'([+-]?\d+(?:\.\d+)?)'")
_SQLITE_KEYWORDS = {"false": "0", "true": "1"}
_SQLITE_UPPER = {"current_timestamp", "current_date", "current_time", "null"}


def _normalise_default(default: str, dialect: str = "") -> str:
    """A server default in one spelling: outer parentheses go; on SQLite, ``false``/``'0'``/``0``
    are ``0``, ``'-1'`` is ``-1`` and keywords are upper case, as SQLite stores each the same."""
    text = _normalise_sql(default)
    while text.startswith("(") and text.endswith(")") and _balanced(text[1:-1]):
        text = text[1:-1].strip()
    if dialect == "sqlite":
        number = _SQLITE_NUMBER_STRING.fullmatch(text)
        if number:
            return number.group(1)
        if text.lower() in _SQLITE_KEYWORDS:
            return _SQLITE_KEYWORDS[text.lower()]
        if text.lower() in _SQLITE_UPPER:
            return text.upper()
    return text


def _balanced(text: str) -> bool:
    depth = 0
    for char in text:
        depth += {"(": 1, ")": -1}.get(char, 0)
        if depth < 0:
            return False
    return depth == 0
