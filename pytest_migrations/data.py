"""Rows for the migrations to run on: generated from the schema, kept, and compared.

On empty tables most of the migrations that break production pass: a NOT NULL column
added without a default, a downgrade that drops and re-creates a table and loses its
rows, a downgrade that restores a column but not its values. With ``--migrations-data``
the stairway gives every table of a revision's parent state that has no rows yet a few
generated rows before the upgrade, and compares the rows around the round trip.

The rows are generated from the schema reflected from the live connection (SQLAlchemy's
``MetaData.reflect``, the default schema only, Alembic's version table left out), so
they need nothing from the user:

- parents before children, so that foreign keys hold: a child row takes the key of a
  parent row that exists; a self-reference is NULL (when it may be) or an earlier row of
  the same table; in a cycle of foreign keys the tables are seeded in an order that
  works when a nullable foreign key breaks it (a table that got no rows is tried again
  once its parents have some);
- NOT NULL, primary and unique keys (composite too) distinct, string lengths, numeric
  precision and scale, enum labels, booleans, dates and times, JSON;
- each row is inserted on its own inside a SAVEPOINT (``connection.begin_nested()``), and
  a row the database refuses (a CHECK constraint, a collation that calls two strings
  equal, a character set without ``☃``) is dropped, never a failure. On MySQL/MariaDB
  DDL commits implicitly, but the rows are inserted between steps, where no DDL runs,
  so the SAVEPOINT holds there too.

The values are the ones that find bugs, as property-based testing picks them: the
longest string a column allows, the empty string, unicode, zero, negative numbers,
boundary dates, NULL in every nullable column in one row, and values repeated across
rows in the columns that are not unique. They are deterministic: the random generator
of a table is seeded from the revision id and the table name, so a failure reproduces
exactly, wherever the item runs.

Nothing here imports pytest.
"""

from __future__ import annotations

import datetime as dt
import json
import random
import re
import uuid
import warnings
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from .catalog import DEFAULT_ROWS
from .exceptions import first_line

if TYPE_CHECKING:
    from .schema import SchemaSnapshot

MAX_SHOWN = 10
"""Rows shown per table in a failure."""

UNICODE = "Zoë ☃ 北京 — ñ"
"""Accents, a symbol outside Latin-1 and CJK: what an ASCII-only assumption breaks on."""

WORDS = ("alpha", "beta", "gamma", "delta", "epsilon", "zeta")


@dataclass(frozen=True)
class DataSettings:
    """How the stairway seeds tables (``--migrations-data``)."""

    rows: int = DEFAULT_ROWS
    """Rows generated per table that has none (``migrations_data_rows``)."""
    user_rows: UserRows | None = field(default=None, compare=False)
    """The user's own rows per revision and table (the ``pytest_migrations_seed_data`` hook), inserted first."""
    revision_data: str | None = None
    """``module:attribute`` of rows in pytest-alembic's form (``migrations_revision_data``): :class:`RevisionData`."""
    lossy: Mapping[str, str] = field(default_factory=dict)
    """Revisions (id or prefix) whose downgrade loses rows on purpose, with why (``migrations_lossy_downgrade``)."""


UserRows = Callable[[str, Mapping[str, sa.Table]], Mapping[str, Sequence[Mapping[str, Any]]]]
"""``(revision id, tables of the parent state) -> {table: rows}``: what the user gives before a revision."""


def insert_user_rows(
    connection: Connection,
    metadata: sa.MetaData,
    given: Mapping[str, Sequence[Mapping[str, Any]]],
    source: str = "pytest_migrations_seed_data",
) -> dict[str, Seeded]:
    """Insert the user's rows, parents first, next to any rows the tables hold; a refused row is the user's to fix.

    :param source: where the rows come from, for the messages.
    """
    from .exceptions import ConfigurationError

    done: dict[str, Seeded] = {}
    unknown = set(given) - set(metadata.tables)
    if unknown:
        raise ConfigurationError(
            f"{source} gave rows for {', '.join(sorted(unknown))}, which the database does not "
            f"have at this revision (tables: {', '.join(sorted(metadata.tables)) or 'none'})"
        )
    for table in _order(metadata):
        rows = list(given.get(table.name, ()))
        if not rows:
            continue
        held = not _empty(connection, table)
        try:
            with connection.begin_nested():
                connection.execute(table.insert(), rows)
        except sa.exc.DBAPIError as exc:
            already = (
                " The table already held rows (generated or given for an earlier revision): give keys and unique "
                "values that cannot collide with them (ids above 100000, say)"
                if held
                else ""
            )
            raise ConfigurationError(
                f"{source}: the database refused the rows given for table {table.name}: "
                f"{first_line(exc.orig or exc)}; fix the rows it gives.{already}"
            ) from None
        done[table.name] = Seeded(inserted=len(rows), seed=f"your rows ({source})")
    return done


@dataclass(frozen=True)
class RevisionData:
    """Rows given per revision in pytest-alembic's form: ``{revision: [{"__tablename__": "t", ...}, ...]}``.

    ``before`` rows go in before the revision's upgrade (with the hook's), ``at`` rows
    right after its stairway item, for the revisions above it to run on. A revision's
    value may be one row (a dict) or a list of rows; each row names its table in
    ``__tablename__``.
    """

    before: Mapping[str, Mapping[str, Sequence[Mapping[str, Any]]]] = field(default_factory=dict)
    at: Mapping[str, Mapping[str, Sequence[Mapping[str, Any]]]] = field(default_factory=dict)

    @classmethod
    def load(cls, path: str) -> RevisionData:
        """``module:attribute`` (a dict with ``before_revision_data``/``at_revision_data``, or an object with them)."""
        from .exceptions import ConfigurationError
        from .project import import_object

        try:
            obj = import_object(path)
        except (ImportError, AttributeError) as exc:
            raise ConfigurationError(
                f"cannot load migrations_revision_data {path!r}: {type(exc).__name__}: {exc}; it takes "
                "module.path or module.path:attribute, holding before_revision_data and/or at_revision_data"
            ) from exc
        if isinstance(obj, Mapping):
            before, at = obj.get("before_revision_data"), obj.get("at_revision_data")
        else:
            before, at = getattr(obj, "before_revision_data", None), getattr(obj, "at_revision_data", None)
        if before is None and at is None:
            raise ConfigurationError(
                f"migrations_revision_data {path!r} has neither before_revision_data nor at_revision_data"
            )
        return cls(_by_table(before or {}, path), _by_table(at or {}, path))

    def rows_before(self, revision: str) -> Mapping[str, Sequence[Mapping[str, Any]]]:
        return _for(self.before, revision)

    def rows_at(self, revision: str) -> Mapping[str, Sequence[Mapping[str, Any]]]:
        return _for(self.at, revision)


def _by_table(spec: Mapping[str, Any], path: str) -> dict[str, dict[str, list[Mapping[str, Any]]]]:
    """``{rev: row | [rows]}`` (rows naming ``__tablename__``) as ``{rev: {table: [rows without it]}}``."""
    from .exceptions import ConfigurationError

    out: dict[str, dict[str, list[Mapping[str, Any]]]] = {}
    for revision, value in spec.items():
        rows = [value] if isinstance(value, Mapping) else list(value)
        for row in rows:
            if not isinstance(row, Mapping) or "__tablename__" not in row:
                raise ConfigurationError(
                    f"migrations_revision_data {path!r}: a row for revision {revision} has no __tablename__ "
                    f"(each row is a dict such as {{'__tablename__': 'users', 'id': 1}}): {row!r}"
                )
            fields = {k: v for k, v in row.items() if k != "__tablename__"}
            out.setdefault(str(revision), {}).setdefault(str(row["__tablename__"]), []).append(fields)
    return out


def _for(spec: Mapping[str, Mapping[str, Sequence[Mapping[str, Any]]]], revision: str) -> dict[str, list[Any]]:
    """The rows given for ``revision`` (by id, or a prefix of it as pytest-alembic allows)."""
    merged: dict[str, list[Any]] = {}
    for key, tables in spec.items():
        if revision == key or (len(key) >= 4 and revision.startswith(key)):
            for table, rows in tables.items():
                merged.setdefault(table, []).extend(rows)
    return merged


@dataclass
class Seeded:
    """What seeding did to one table."""

    inserted: int = 0
    refused: int = 0
    first_refusal: str | None = None
    """The database's reason for the first row it refused, one line."""
    seed: str = ""


@dataclass(frozen=True)
class TableRows:
    """All rows of one table at one moment, as sorted tuples in the order of ``columns``."""

    columns: tuple[str, ...]
    rows: tuple[tuple[Any, ...], ...]
    key: tuple[str, ...] = ()
    """The primary key's columns: a lost row and a new row with the same key are one changed row."""

    def project(self, columns: Sequence[str]) -> TableRows:
        """The rows with only ``columns`` (those of them this table has), in that order."""
        keep = [c for c in columns if c in self.columns]
        index = [self.columns.index(c) for c in keep]
        rows = tuple(sorted((tuple(r[i] for i in index) for r in self.rows), key=_row_key))
        return TableRows(tuple(keep), rows, tuple(k for k in self.key if k in keep))


RowSnapshot = dict[str, TableRows]
"""Table name -> its rows."""


@dataclass(frozen=True)
class RowDifference:
    """How the rows of one table differ from the expected ones."""

    table: str
    columns: tuple[str, ...]
    lost: tuple[tuple[Any, ...], ...] = ()
    changed: tuple[tuple[tuple[Any, ...], tuple[Any, ...]], ...] = ()
    """``(expected, actual)`` pairs of rows with the same primary key."""
    added: tuple[tuple[Any, ...], ...] = ()
    table_gone: bool = False

    def render_lines(self, expected: str, actual: str) -> list[str]:
        head = f'table "{self.table}" ({", ".join(self.columns)})'
        if self.table_gone:
            return [f"{head}: {len(self.lost)} row(s) {expected}, but the table is gone {actual}"]
        lines = [f"{head}:"]
        for row in self.lost[:MAX_SHOWN]:
            lines.append(f"  - {_render_row(row)}  lost: {expected}, missing {actual}")
        for old, new in self.changed[:MAX_SHOWN]:
            what = "; ".join(
                f"{c}: {_render(a)} {expected}, {_render(b)} {actual}"
                for c, a, b in zip(self.columns, old, new, strict=True)
                if a != b
            )
            lines.append(f"  ~ {_render_row(old)}  changed: {what}")
        for row in self.added[:MAX_SHOWN]:
            lines.append(f"  + {_render_row(row)}  present {actual} only")
        hidden = max(0, len(self.lost) - MAX_SHOWN) + max(0, len(self.changed) - MAX_SHOWN)
        if hidden:
            lines.append(f"  ... and {hidden} more")
        return lines

    @property
    def counts(self) -> str:
        parts = [
            f"{len(self.lost)} lost" if self.lost else "",
            f"{len(self.changed)} changed" if self.changed else "",
            f"{len(self.added)} new" if self.added and (self.lost or self.changed) else "",
        ]
        return ", ".join(p for p in parts if p)


# ---------------------------------------------------------------------------- reflection


def reflect(connection: Connection, exclude: Iterable[str] = ()) -> sa.MetaData:
    """The tables of the connection's default schema, reflected, without ``exclude`` (the version table)."""
    excluded = set(exclude)
    metadata = sa.MetaData()
    with warnings.catch_warnings():
        # Reflection warns about what it cannot represent (an expression index, an unknown type): no concern here.
        warnings.simplefilter("ignore", sa.exc.SAWarning)
        metadata.reflect(connection, only=lambda name, _: name not in excluded and not name.startswith("sqlite_"))
    return metadata


@dataclass
class ReflectionCache:
    """Reflected tables by their schema facts: a table the step did not change is not reflected again.

    The stairway already knows each table's structure from its schema snapshot (see
    :mod:`pytest_migrations.schema`); a table whose facts are unchanged since it was last
    reflected is copied from the cache, so a step costs the reflection of the tables it
    changed, not of the whole schema.
    """

    tables: dict[tuple[str, frozenset[tuple[str, str]]], sa.Table] = field(default_factory=dict)

    def metadata(self, connection: Connection, schema: SchemaSnapshot) -> sa.MetaData:
        """The default schema's tables as ``schema`` describes them, in one MetaData (foreign keys resolve).

        Its version table is already left out. Copying costs: :meth:`tables_of` serves
        what needs no foreign key resolved (reading rows).
        """
        found = self.tables_of(connection, data_tables(schema))
        metadata = sa.MetaData()
        for table in found.values():
            table.to_metadata(metadata)
        return metadata

    def tables_of(
        self,
        connection: Connection,
        tables: Mapping[str, frozenset[tuple[str, str]]],
        only: Iterable[str] | None = None,
    ) -> dict[str, sa.Table]:
        """``tables`` (:func:`data_tables`; just ``only``, when given) reflected at their facts: shared, not copied."""
        wanted = dict(tables)
        if only is not None:
            keep = set(only)
            wanted = {name: facts for name, facts in wanted.items() if name in keep}
        missing = [name for name, facts in wanted.items() if (name, facts) not in self.tables]
        if missing:
            fresh = sa.MetaData()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", sa.exc.SAWarning)
                # Not the tables they refer to: every table referring to a core one ("users") would reflect
                # it again. Foreign keys resolve by name where :meth:`metadata` copies the tables together.
                fresh.reflect(connection, only=missing, resolve_fks=False)
            for name in missing:
                self.tables[(name, wanted[name])] = fresh.tables[name]
        return {name: self.tables[(name, facts)] for name, facts in wanted.items()}


def data_tables(schema: SchemaSnapshot) -> dict[str, frozenset[tuple[str, str]]]:
    """The tables rows are generated for, with their schema facts: the default schema's, SQLite's own left out."""
    return {
        name: state.facts
        for (kind, name), state in schema.objects.items()
        if kind == "table" and "." not in name and not name.startswith("sqlite_")
    }


@dataclass
class RowCache:
    """The rows of one database as the stairway last read them, table by table.

    Rows stay in the database as the walk moves on, and a step changes only the tables
    it touches (see :mod:`pytest_migrations.changes`): the next step's "before" is this
    cache, and only what a step touched is read again. Valid for one database while the
    stairway alone moves it (:meth:`continues`).
    """

    database: str | None = None
    applied: frozenset[str] = frozenset()
    rows: RowSnapshot = field(default_factory=dict)
    facts: dict[str, frozenset[tuple[str, str]]] = field(default_factory=dict)
    """The schema facts of each table when its rows were read: other facts, other rows."""
    tried: dict[str, frozenset[tuple[str, str]]] = field(default_factory=dict)
    """Tables seeding got no rows into, at these facts: not tried again until their schema changes."""

    def continues(self, database: str | None, applied: frozenset[str]) -> bool:
        return database is not None and database == self.database and applied == self.applied

    def restart(self, database: str | None, applied: frozenset[str]) -> None:
        """Forget everything: another database, or one moved by something else than the stairway."""
        self.database, self.applied = database, applied
        self.rows, self.facts, self.tried = {}, {}, {}

    def keep(self, tables: Mapping[str, frozenset[tuple[str, str]]], taken: RowSnapshot) -> None:
        """The tables now (anything else is gone) and the rows just read of some of them."""
        for name in [n for n in self.rows if tables.get(n) != self.facts.get(n)]:
            del self.rows[name]
        self.rows.update(taken)
        self.facts = {name: tables[name] for name in self.rows if name in tables}

    def unread(self, tables: Mapping[str, frozenset[tuple[str, str]]]) -> list[str]:
        """Tables whose rows are not known at their present facts."""
        return [name for name, facts in tables.items() if name not in self.rows or self.facts.get(name) != facts]


def _empty(connection: Connection, table: sa.Table) -> bool:
    return connection.execute(sa.select(sa.literal(1)).select_from(table).limit(1)).first() is None


# ---------------------------------------------------------------------------- seeding


def seed(
    connection: Connection,
    metadata: sa.MetaData,
    revision: str,
    rows: int = DEFAULT_ROWS,
    only: Iterable[str] | None = None,
) -> dict[str, Seeded]:
    """Insert ``rows`` generated rows into every table of ``metadata`` that has none; what was done, by table.

    Tables with rows are left as they are: rows are generated once per table, and the
    walk keeps them. The random generator of each table is seeded from ``revision``
    and the table's name.

    :param only: look at just these tables (the others are known to have rows).
    """
    candidates = None if only is None else set(only)
    empty = [t for t in _order(metadata) if (candidates is None or t.name in candidates) and _empty(connection, t)]
    done: dict[str, Seeded] = {}
    retry: list[sa.Table] = []
    for table in empty:
        done[table.name] = _seed_table(connection, table, revision, rows)
        if not done[table.name].inserted and _has_parents(table):
            retry.append(table)
    for table in retry:  # a cycle seeded in the wrong order: its parents have rows now
        done[table.name] = _seed_table(connection, table, revision, rows)
    return done


def _order(metadata: sa.MetaData) -> list[sa.Table]:
    """Tables, parents first (the foreign keys of a cycle do not order it: :func:`seed` tries again)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", sa.exc.SAWarning)  # "cannot sort tables ... cycle": handled
        return list(metadata.sorted_tables)


def _has_parents(table: sa.Table) -> bool:
    return any(fk.referred_table is not table for fk in table.foreign_key_constraints)


def _seed_table(connection: Connection, table: sa.Table, revision: str, rows: int) -> Seeded:
    key = f"{revision}/{table.name}"
    rng = random.Random(key)
    report = Seeded(seed=key)
    generator = _RowGenerator(connection, table, rng)
    for index in range(rows):
        # A refused row is replaced once by a plain one (random values, no negatives): a CHECK such as
        # `balance >= 0` then still leaves the table its rows; refused again, the row is dropped.
        for row in (generator.row(index), generator.row(4, plain=True)):
            if row is None:
                continue
            try:
                with warnings.catch_warnings():
                    # SQLite stores Decimal as float and says so on every value: the values are chosen to fit.
                    warnings.simplefilter("ignore", sa.exc.SAWarning)
                    with connection.begin_nested():
                        result = connection.execute(table.insert().values(row))
            except sa.exc.StatementError as exc:
                report.refused += 1
                if report.first_refusal is None:
                    report.first_refusal = first_line(exc.orig if exc.orig is not None else exc)
                continue
            report.inserted += 1
            inserted = dict(row)
            for column, value in zip(table.primary_key.columns, result.inserted_primary_key or (), strict=False):
                inserted.setdefault(column.name, value)
            generator.accepted(inserted)
            break
    return report


@dataclass
class _RowGenerator:
    """Makes the rows of one table, one at a time; remembers which it inserted for uniqueness and self-references."""

    connection: Connection
    table: sa.Table
    rng: random.Random
    made: list[dict[str, Any]] = field(default_factory=list)
    seen: set[tuple[tuple[str, ...], tuple[Any, ...]]] = field(default_factory=set)
    parents: dict[sa.ForeignKeyConstraint, list[tuple[Any, ...]]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        table = self.table
        omitted = {c.name for c in table.columns if _generated_by_database(c)}
        self.columns = [c for c in table.columns if c.name not in omitted]
        self.unique_sets = [s for s in _unique_sets(table) if not set(s) & omitted]
        self.unique_columns = {c for s in self.unique_sets for c in s}
        self.foreign = [fk for fk in table.foreign_key_constraints if not {c.name for c in fk.columns} & omitted]
        for fk in self.foreign:
            if fk.referred_table is not table:
                self.parents[fk] = self._parent_keys(fk)

    def _parent_keys(self, fk: sa.ForeignKeyConstraint) -> list[tuple[Any, ...]]:
        referred = [element.column for element in fk.elements]
        query = sa.select(*referred).where(*(c.is_not(None) for c in referred)).distinct().limit(50)
        try:
            with self.connection.begin_nested():
                found = [tuple(r) for r in self.connection.execute(query)]
        except sa.exc.StatementError:
            return []
        return sorted(found, key=_row_key)

    def accepted(self, row: dict[str, Any]) -> None:
        self.made.append(row)
        for names in self.unique_sets:
            self.seen.add((names, tuple(row.get(n) for n in names)))

    def row(self, index: int, *, plain: bool = False) -> dict[str, Any] | None:
        """Row ``index``: 0 the largest values, 1 NULLs and empties, 2 unicode and negatives, 3 repeats row 2.

        ``plain``: random values without negative numbers, the replacement of a refused row.
        """
        for attempt in range(20):
            kind = min(index, 4) if attempt == 0 else 4
            candidate = self._candidate(kind, plain)
            if self._distinct(candidate):
                return candidate
        return None

    def _distinct(self, row: Mapping[str, Any]) -> bool:
        for names in self.unique_sets:
            values = tuple(row.get(n) for n in names)
            if (names, values) in self.seen:
                return False
        return True

    def _candidate(self, kind: int, plain: bool = False) -> dict[str, Any]:
        row: dict[str, Any] = {}
        previous = self.made[-1] if self.made else None
        for column in self.columns:
            if kind == 1 and column.nullable and not column.primary_key:
                row[column.name] = None  # NULL in every nullable column, in one row
            elif kind == 1 and column.server_default is not None:
                continue  # the server default fills it: the default is tried too
            elif kind == 3 and previous is not None and column.name not in self.unique_columns:
                row[column.name] = previous.get(column.name)  # repeated values where repeats are allowed
            else:
                value = _value(column, kind, self.rng, len(self.made), column.name in self.unique_columns)
                row[column.name] = abs(value) if plain and isinstance(value, (int, float, Decimal)) else value
        for fk in self.foreign:
            names = [c.name for c in fk.columns]
            nullable = all(c.nullable for c in fk.columns)
            if fk.referred_table is self.table:
                referred = [e.column.name for e in fk.elements]
                earlier = [tuple(r.get(n) for n in referred) for r in self.made]
                earlier = [t for t in earlier if None not in t]
                if (not earlier or kind == 1) and nullable:
                    values: tuple[Any, ...] | None = None
                elif earlier:
                    values = self.rng.choice(earlier)
                else:  # a NOT NULL self-reference, first row: it refers to itself
                    values = tuple(row.get(n) for n in referred)
            else:
                keys = self.parents.get(fk, [])
                if (kind == 1 and nullable) or (not keys and nullable):
                    values = None
                elif not keys:
                    values = None  # no parent row: the database refuses the row, and it is dropped
                elif kind == 0:
                    values = keys[0]
                elif kind == 3 and previous is not None:
                    values = tuple(previous.get(n) for n in names)
                else:
                    values = self.rng.choice(keys)
            for position, name in enumerate(names):
                row[name] = None if values is None else values[position]
        return row


def _generated_by_database(column: sa.Column[Any]) -> bool:
    """Columns the database fills itself: computed, identity, the autoincrement key (its sequence stays right)."""
    if column.computed is not None or column.identity is not None:
        return True
    table = column.table
    if not isinstance(table, sa.Table):
        return False
    # Public from SQLAlchemy 2.0.? on; 2.0.0 has only the private name.
    name = "autoincrement_column" if hasattr(table, "autoincrement_column") else "_autoincrement_column"
    return getattr(table, name, None) is column


def _unique_sets(table: sa.Table) -> list[tuple[str, ...]]:
    sets: list[tuple[str, ...]] = []
    if table.primary_key.columns:
        sets.append(tuple(c.name for c in table.primary_key.columns))
    for constraint in table.constraints:
        if isinstance(constraint, sa.UniqueConstraint):
            sets.append(tuple(c.name for c in constraint.columns))
    for index in table.indexes:
        if index.unique:
            names = tuple(c.name for c in index.columns if isinstance(c, sa.Column))
            if names:
                sets.append(names)
    return list(dict.fromkeys(sets))


# ---------------------------------------------------------------------------- values


def _value(column: sa.Column[Any], kind: int, rng: random.Random, serial: int, unique: bool) -> Any:
    """A value of ``column``'s type for a row of ``kind`` (see :meth:`_RowGenerator.row`); ``None``: no idea."""
    t = column.type
    if isinstance(t, sa.Enum) and t.enums:
        labels = list(t.enums)
        return labels[-1] if kind == 0 else labels[0] if kind == 1 else rng.choice(labels)
    if isinstance(t, sa.Boolean) or (type(t).__name__ == "TINYINT" and getattr(t, "display_width", None) == 1):
        flag = kind == 0 if kind < 2 else rng.random() < 0.5
        return int(flag) if not isinstance(t, sa.Boolean) else flag
    if isinstance(t, sa.Integer):
        low, high = _integer_range(t)
        if kind == 0:
            return high
        if kind == 1:
            return 0
        if kind == 2:
            return max(low, -rng.randint(1, 1000))
        return rng.randint(max(low, -1000), min(high, 100_000))
    if isinstance(t, sa.Float):
        return [1.0e15, 0.0, -rng.uniform(1, 1000), 0.0, rng.uniform(-1000, 1000)][kind]
    if isinstance(t, sa.Numeric):
        return _numeric(t, kind, rng)
    if isinstance(t, sa.DateTime):
        value = [
            dt.datetime(2037, 12, 31, 23, 59, 59),  # inside MySQL's TIMESTAMP range, which ends in 2038
            dt.datetime(1970, 1, 2, 0, 0, 0),
            dt.datetime(2000, 2, 29, 12, 30, 45),
            dt.datetime(1970, 1, 2, 0, 0, 0),
            dt.datetime(1971, 1, 1) + dt.timedelta(seconds=rng.randint(0, 2_000_000_000)),
        ][kind]
        return value.replace(tzinfo=dt.timezone.utc) if t.timezone else value
    if isinstance(t, sa.Date):
        return (
            [dt.date(2099, 12, 31), dt.date(1970, 1, 1), dt.date(2000, 2, 29), dt.date(1970, 1, 1)][kind]
            if (kind < 4)
            else dt.date(1971, 1, 1) + dt.timedelta(days=rng.randint(0, 25_000))
        )
    if isinstance(t, sa.Time):
        return (
            [dt.time(23, 59, 59), dt.time(0, 0), dt.time(12, 30), dt.time(0, 0)][kind]
            if kind < 4
            else dt.time(rng.randint(0, 23), rng.randint(0, 59), rng.randint(0, 59))
        )
    if isinstance(t, sa.Interval):
        return dt.timedelta(days=[9999, 0, -1, 0, rng.randint(-100, 100)][kind])
    if isinstance(t, sa.JSON) or _mariadb_json(t):
        document = [
            {"nested": {"list": [1, 2.5, None, "é"]}, "text": "x" * 40},
            {},
            [UNICODE, -1, True],
            {},
            {"n": rng.randint(0, 100), "word": rng.choice(WORDS)},
        ][kind]
        return document if isinstance(t, sa.JSON) else json.dumps(document)
    if isinstance(t, sa.Uuid):
        return uuid.UUID(int=rng.getrandbits(128))
    if isinstance(t, sa.String) and _uuid_storage(column):
        made = uuid.UUID(int=rng.getrandbits(128))
        return made.hex if t.length == 32 else str(made)
    if isinstance(t, sa.String):
        return _string(t.length, kind, rng, serial, unique)
    if isinstance(t, sa.LargeBinary):
        return [b"\xff" * min(getattr(t, "length", None) or 64, 64), b"", b"\x00\x01", b"", rng.randbytes(8)][kind]
    return None


def _uuid_storage(column: sa.Column[Any]) -> bool:
    """Whether a string column holds UUIDs: ``CHAR(32)``/``CHAR(36)``, or ``VARCHAR`` of that length named as an id.

    Where the database has no UUID type, SQLAlchemy's ``sa.Uuid`` and the GUID recipe of its
    documentation store the hex in ``CHAR(32)``, and many apps keep ``str(uuid4())`` in
    ``CHAR(36)``; reflection sees only the string. The app reads them back through its UUID
    type, so a data migration would rightly fail on ``''`` there: such columns get UUIDs.
    """
    t = column.type
    if getattr(t, "length", None) not in (32, 36):
        return False
    if isinstance(t, (sa.CHAR, sa.NCHAR)):
        return True
    name = column.name.lower()
    return name in ("id", "uuid", "guid") or name.endswith(("_id", "_uuid", "_guid"))


def _mariadb_json(t: sa.types.TypeEngine[Any]) -> bool:
    """MariaDB's JSON is LONGTEXT in utf8mb4_bin with a column CHECK (json_valid) that reflection does not see."""
    return type(t).__name__ == "LONGTEXT" and getattr(t, "collation", None) == "utf8mb4_bin"


def _integer_range(t: sa.types.TypeEngine[Any]) -> tuple[int, int]:
    name = type(t).__name__.upper()
    bits = 8 if "TINY" in name else 16 if isinstance(t, sa.SmallInteger) else 64 if isinstance(t, sa.BigInteger) else 32
    bits = 24 if "MEDIUM" in name else bits
    if getattr(t, "unsigned", False):
        return 0, 2**bits - 1
    return -(2 ** (bits - 1)), 2 ** (bits - 1) - 1


def _numeric(t: sa.Numeric[Any], kind: int, rng: random.Random) -> Any:
    precision, scale = t.precision or 12, t.scale if t.scale is not None else 2
    whole = max(precision - scale, 0)
    unit = Decimal(1).scaleb(-scale)
    largest = (Decimal(10) ** whole - unit).quantize(unit)
    value = [
        largest,
        Decimal(0).quantize(unit),
        -(unit * rng.randint(1, 999)).quantize(unit).min(largest).max(-largest) if largest > 0 else Decimal(0),
        Decimal(0).quantize(unit),
        (unit * rng.randint(-(10 ** min(precision, 6)) + 1, 10 ** min(precision, 6) - 1)).max(-largest).min(largest),
    ][kind]
    return value if t.asdecimal else float(value)


def _string(length: int | None, kind: int, rng: random.Random, serial: int, unique: bool) -> str:
    """A string within ``length``; in a unique column it starts with a token no other row has."""
    size = length or 200
    token = _token(serial) if unique else ""
    if kind == 0:
        text = "x" * size  # the longest value the column allows
    elif kind == 1:
        text = ""
    elif kind == 2:
        text = UNICODE
    else:
        text = " ".join(rng.choice(WORDS) for _ in range(3))
    if unique and kind != 1:
        # Case and accents may not tell strings apart under the server's collation: the token does.
        text = (token + "-" + text) if size > len(token) else token
    return text[:size] if kind != 0 else (text + "x" * size)[:size]


def _token(serial: int) -> str:
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    out = ""
    serial += 1
    while serial:
        serial, rest = divmod(serial, len(digits))
        out = digits[rest] + out
    return out


# ---------------------------------------------------------------------------- snapshots and diffs


def snapshot(connection: Connection, tables: sa.MetaData | Mapping[str, sa.Table]) -> RowSnapshot:
    """Every row of every table given, as sorted tuples (cheap for the few rows seeding makes).

    On SQLite the values are read as stored: a column's declared type says little there (a
    ``CREATE TABLE ... AS SELECT`` declares copied DATETIME columns ``NUM`` and keeps their
    text), and SQLAlchemy's conversion for the reflected type would raise on them.
    """
    taken: RowSnapshot = {}
    given = tables.tables if isinstance(tables, sa.MetaData) else tables
    stored = connection.dialect.name == "sqlite"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", sa.exc.SAWarning)
        for name, table in given.items():
            columns = tuple(c.name for c in table.columns)
            query = (
                sa.select(*(sa.type_coerce(c, sa.types.NullType()).label(c.name) for c in table.columns))
                if stored
                else sa.select(table)
            )
            rows = tuple(sorted((tuple(_normal(v) for v in r) for r in connection.execute(query)), key=_row_key))
            taken[name] = TableRows(columns, rows, tuple(c.name for c in table.primary_key.columns))
    return taken


def volatile_columns(tables: sa.MetaData | Mapping[str, sa.Table]) -> dict[str, set[str]]:
    """Columns whose values a re-run need not repeat: database-made keys and clock or random defaults.

    A data migration that inserts a row into an existing table gets a new key from the
    sequence when it runs again after its downgrade deleted the row; a column added with
    ``server_default=now()`` gets the time of the re-upgrade. Neither is a defect.
    """
    volatile: dict[str, set[str]] = {}
    for name, table in (tables.tables if isinstance(tables, sa.MetaData) else tables).items():
        for column in table.columns:
            default = column.server_default
            arg = getattr(default, "arg", None)
            text = "" if arg is None else str(arg).lower()
            clock = any(word in text for word in ("now", "current_", "random", "uuid", "nextval", "sysdate"))
            if _generated_by_database(column) or clock:
                volatile.setdefault(name, set()).add(column.name)
    return volatile


_UUID_TEXT = re.compile(r"[0-9a-f]{32}|[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", re.IGNORECASE)


def made_afresh(
    expected: RowSnapshot, actual: RowSnapshot, differences: Iterable[RowDifference]
) -> dict[str, set[str]]:
    """Columns of the differing tables that hold UUIDs made anew in each run, and only them differ.

    A data migration that fills a table it creates with ``id=uuid.uuid4()``, or gives the
    duplicates of a column new random UUIDs (Galaxy's dedup of ``dataset.uuid``), gives the
    re-upgrade other values than the first upgrade, as any second run would. Such a column
    is set aside when every value is a distinct, non-null UUID in both runs and the rows are
    equal without it, so a column a downgrade left NULL, or set to one value, or a row that
    differs elsewhere too, is still compared.
    """
    fresh: dict[str, set[str]] = {}
    for difference in differences:
        before, after = expected.get(difference.table), actual.get(difference.table)
        if difference.table_gone or before is None or after is None:
            continue
        for column in difference.columns:
            if column not in after.columns:
                continue
            old = [row[before.columns.index(column)] for row in before.rows]
            new = [row[after.columns.index(column)] for row in after.rows]
            if not (_distinct_uuids(old) and _distinct_uuids(new)):
                continue
            rest = [c for c in difference.columns if c != column]
            if Counter(before.project(rest).rows) == Counter(after.project(rest).rows):
                fresh.setdefault(difference.table, set()).add(column)
    return fresh


def _distinct_uuids(values: Sequence[Any]) -> bool:
    return (
        bool(values)
        and all(isinstance(v, uuid.UUID) or (isinstance(v, str) and _UUID_TEXT.fullmatch(v)) for v in values)
        and len(set(values)) == len(values)
    )


def compare(
    expected: RowSnapshot, actual: RowSnapshot, ignore: Mapping[str, set[str]] | None = None
) -> list[RowDifference]:
    """The rows of ``expected`` that ``actual`` does not have, table by table, on ``expected``'s columns.

    Rows are compared as multisets; a lost row and a new row with the same primary key
    are shown as one changed row. Rows only ``actual`` has are shown next to a loss,
    but alone are no difference (a downgrade may leave rows its upgrade inserted).
    """
    out: list[RowDifference] = []
    for name, before in sorted(expected.items()):
        if not before.rows:
            continue
        columns = [c for c in before.columns if c not in (ignore or {}).get(name, set())]
        before = before.project(columns)
        now = actual.get(name)
        if now is None:
            out.append(RowDifference(name, before.columns, lost=before.rows, table_gone=True))
            continue
        after = now.project(before.columns)
        if after.columns != before.columns:
            before = before.project(after.columns)
        missing = Counter(before.rows) - Counter(after.rows)
        if not missing:
            continue
        extra = Counter(after.rows) - Counter(before.rows)
        lost = sorted(missing.elements(), key=_row_key)
        added = sorted(extra.elements(), key=_row_key)
        changed: list[tuple[tuple[Any, ...], tuple[Any, ...]]] = []
        if before.key:
            index = [before.columns.index(k) for k in before.key]
            by_key = {tuple(r[i] for i in index): r for r in added}
            for row in list(lost):
                match = by_key.pop(tuple(row[i] for i in index), None)
                if match is not None:
                    changed.append((row, match))
                    lost.remove(row)
                    added.remove(match)
        out.append(RowDifference(name, before.columns, tuple(lost), tuple(changed), tuple(added)))
    return out


def describe(rows: RowSnapshot, seeded: Mapping[str, Seeded], tables: Iterable[str] | None = None) -> str:
    """Which tables had rows, and where they came from: the context of a failure on rows.

    ``tables``: the ones that matter (the step named them); the others with rows are counted
    in one line, not listed (a history of 50 tables gave 50 lines before the one that mattered).
    """
    lines = []
    wanted = None if tables is None else set(tables)
    others = 0
    for name, table in sorted(rows.items()):
        if not table.rows:
            continue
        if wanted is not None and name not in wanted:
            others += 1
            continue
        made = seeded.get(name)
        if made is not None and made.inserted:
            origin = f"generated for this revision (seed {made.seed!r})"
            if made.refused:
                origin += f"; {made.refused} generated row(s) refused by the database, replaced or dropped: "
                origin += str(made.first_refusal)
        else:
            origin = "kept from earlier revisions' seeding"
        lines.append(f'table "{name}": {len(table.rows)} row(s), {origin}')
    if others:
        lines.append(f"{others} {'other ' if lines else ''}table(s) the step did not name had rows too")
    return "\n".join(lines) or "no table had rows"


MAX_TABLES_SHOWN = 5
"""Tables whose rows a failed step shows, when the failing statement does not say which."""


def render_rows(rows: RowSnapshot, tables: Iterable[str] | None = None) -> list[str]:
    """The rows of ``tables`` (of every table with rows, up to :data:`MAX_TABLES_SHOWN`, when ``None``)."""
    names = sorted(tables) if tables is not None else [n for n, t in sorted(rows.items()) if t.rows][:MAX_TABLES_SHOWN]
    lines = []
    for name in names:
        table = rows.get(name)
        if table is None or not table.rows:
            continue
        lines.append(f'table "{name}" ({", ".join(table.columns)}):')
        lines += [f"  {_render_row(row)}" for row in table.rows[:MAX_SHOWN]]
        if len(table.rows) > MAX_SHOWN:
            lines.append(f"  ... and {len(table.rows) - MAX_SHOWN} more")
    return lines


def _normal(value: Any) -> Any:
    """A hashable, comparable form of a value read back (JSON documents become their canonical text)."""
    if isinstance(value, (dict, list)):
        return json.dumps(value, sort_keys=True, default=str)
    if isinstance(value, memoryview):
        return bytes(value)
    return value


def _row_key(row: tuple[Any, ...]) -> tuple[tuple[bool, str, str], ...]:
    return tuple((v is None, type(v).__name__, str(v)) for v in row)


def _render(value: Any) -> str:
    if isinstance(value, (dt.date, dt.time, Decimal, uuid.UUID)):
        return str(value)
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _render_row(row: tuple[Any, ...]) -> str:
    return "(" + ", ".join(_render(v) for v in row) + ")"
