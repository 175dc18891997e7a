"""MariaDB snapshots that re-read only the tables DDL named since the last one.

A full MariaDB snapshot reads every table of the database from ``information_schema``
(see :data:`.schema._MYSQL_SNAPSHOT`), which costs about 0.07 ms per table: 15 ms at 200
tables, three times per stairway item. A step names what it changes: ``ALTER TABLE
users ...``, ``CREATE INDEX ix ON users``, ``RENAME TABLE a TO b``. So every statement
sent on a SQLAlchemy engine of this process is seen (an ``Engine`` event, whatever engine
the migration or the plugin made), and a DDL statement's identifiers are kept per
database. The next snapshot of that database re-reads the rows of the tables so named,
filtered by ``TABLE_NAME`` (1.5 ms, whatever the size), and keeps the rest from the last
read. Also re-read: tables whose foreign key refers to a named one (a renamed parent or
column is spelled in the child's key), the table of a named trigger (``DROP TRIGGER``
names no table), and every view (a view over a dropped table reports an error as comment).

A DDL statement no engine event saw (a raw DBAPI cursor, a stored procedure, another
process) must not go unnoticed. The server counts statements by kind (``Com_alter_table``,
``Com_create_index``, ...: global status, read in the same round trip as the rows). When
the server counted another number of any kind than this process saw succeed since the
last read, every database's last read is forgotten and this one is read whole, and so
are the next ones (one round trip each) until a full read finds the server quiet again.
Another process doing DDL on the same server (an xdist worker) therefore costs full
reads, never a wrong one. Also read whole: a database after ``USE``, ``CALL``, ``EXECUTE``, a
version comment (``/*!``), several statements in one string, or DDL naming another
database (``RENAME TABLE a.t TO b.t``: both are forgotten).

Only MariaDB: MySQL 8 keeps its status in ``performance_schema``, whose availability
varies; MySQL reads whole every time. ``PYTEST_MIGRATIONS_FULL_SNAPSHOTS=1`` turns this
off; ``PYTEST_MIGRATIONS_VERIFY_SNAPSHOTS=1`` checks every incremental read against a
full one (then the counters are not consulted, so that the suite exercises the
incremental path while other runs use the server).
"""

from __future__ import annotations

import re
import threading
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from .schema import _MYSQL_PARTS, _MYSQL_SNAPSHOT, _MYSQL_WIDTH, ObjectKey, _mysql_fingerprints

_COUNTED: dict[str, re.Pattern[str]] = {
    counter: re.compile(pattern, re.IGNORECASE)
    for counter, pattern in {
        "com_create_table": r"CREATE\s+(?:OR\s+REPLACE\s+)?(?:TEMPORARY\s+)?TABLE\b",
        "com_alter_table": r"ALTER\s+(?:ONLINE\s+)?(?:IGNORE\s+)?TABLE\b",
        "com_drop_table": r"DROP\s+(?:TEMPORARY\s+)?TABLE\b",
        "com_create_index": r"CREATE\s+(?:OR\s+REPLACE\s+)?(?:(?:UNIQUE|FULLTEXT|SPATIAL)\s+)?INDEX\b",
        "com_drop_index": r"DROP\s+INDEX\b",
        "com_rename_table": r"RENAME\s+TABLES?\b",
        "com_create_db": r"CREATE\s+(?:DATABASE|SCHEMA)\b",
        "com_drop_db": r"DROP\s+(?:DATABASE|SCHEMA)\b",
        "com_create_view": r"CREATE\s+(?:OR\s+REPLACE\s+)?VIEW\b",
        "com_drop_view": r"DROP\s+VIEW\b",
        "com_create_trigger": r"CREATE\s+(?:OR\s+REPLACE\s+)?TRIGGER\b",
        "com_drop_trigger": r"DROP\s+TRIGGER\b",
        "com_create_sequence": r"CREATE\s+(?:OR\s+REPLACE\s+)?SEQUENCE\b",
        "com_alter_sequence": r"ALTER\s+SEQUENCE\b",
        "com_drop_sequence": r"DROP\s+SEQUENCE\b",
    }.items()
}
"""The server's statement counters that can follow a change a snapshot sees, and the head of a
statement each counts. A statement of such a kind that this process did not see (or saw in a
form not matched here) makes the counts differ: a full read, never a wrong one."""

_LEADING_COMMENTS = re.compile(r"(?:\s+|/\*(?!!).*?\*/|--[^\n]*(?:\n|$)|#[^\n]*(?:\n|$))*", re.DOTALL)
_DDL_HEAD = re.compile(r"(?:CREATE|ALTER|DROP|RENAME)\b", re.IGNORECASE)
_DATABASE_DDL = re.compile(r"(?:CREATE|DROP)\s+(?:DATABASE|SCHEMA)\b", re.IGNORECASE)
_OPAQUE_HEAD = re.compile(r"(?:USE|CALL|EXECUTE|EXEC|PREPARE|HANDLER|SOURCE|/\*!)", re.IGNORECASE)
"""What runs DDL this process cannot name (a procedure, a prepared statement, a version comment),
or changes the database the next statements mean (``USE``)."""
_LITERAL = re.compile(r"'(?:[^'\\]|\\.|'')*'")
_IDENT = re.compile(r"`((?:[^`]|``)+)`|([\w$]+)")
_QUALIFIED = re.compile(r"(?:`(?:[^`]|``)+`|[\w$]+)\s*\.\s*(?:`|[A-Za-z_$])")
_SEVERAL = re.compile(r";\s*\S")
_BODY = re.compile(r"\bAS\b|\bFOR\s+EACH\s+ROW\b", re.IGNORECASE)
_WITH_BODY = re.compile(
    (
        r"CREATE\s+(?:OR\s+REPLACE\s+)?(?:ALGORITHM\s*=\s*\w+\s+)?(?:DEFINER\s*=\s*\S+\s+)?"
        r"(?:SQL\s+SECURITY\s+\w+\s+)?(?:VIEW|TRIGGER)\b"
    ),
    re.IGNORECASE,
)
"""``CREATE VIEW ... AS <query>``, ``CREATE TRIGGER ... FOR EACH ROW <body>``: a qualified name in the body
(``NEW.id``, ``users.id``) only refers to a column; the objects created are named before it."""
_CREATED = re.compile(
    r"CREATE\s+(?:OR\s+REPLACE\s+)?(?:TEMPORARY\s+)?(?:ALGORITHM\s*=\s*\w+\s+)?(?:DEFINER\s*=\s*\S+\s+)?"
    r"(?:SQL\s+SECURITY\s+\w+\s+)?(?:TABLE|VIEW|SEQUENCE)\s+(?:IF\s+NOT\s+EXISTS\s+)?(?:`((?:[^`]|``)+)`|([\w$]+))",
    re.IGNORECASE,
)
_RENAME_TABLES = re.compile(r"RENAME\s+TABLES?\b", re.IGNORECASE)
_ALTER = re.compile(r"ALTER\b", re.IGNORECASE)
_NEW_NAME = re.compile(
    r"\bRENAME\s+(?:(?:TO|AS)\s+)?(?:`((?:[^`]|``)+)`|(?!(?:COLUMN|INDEX|KEY)\b)([\w$]+))", re.IGNORECASE
)
"""``ALTER TABLE a RENAME [TO | AS] b``: the table's new name (not ``RENAME COLUMN``, ``INDEX``, ``KEY``)."""
_RENAMING = re.compile(r"RENAME\s+TABLES?\b|ALTER\b.*\b(?:RENAME|CHANGE)\b", re.IGNORECASE | re.DOTALL)
"""A statement that may rename a table or a column: ``RENAME TABLE``, ``ALTER TABLE ... RENAME [COLUMN]``,
``ALTER TABLE ... CHANGE old new``."""
_NEW_RARE_ROWS = re.compile(
    r"^CREATE\s+(?:OR\s+REPLACE\s+)?(?:DEFINER\s*=\s*\S+\s+)?TRIGGER\b|\b(?:CHECK|JSON)\b", re.I
)
"""A statement that may give a table rows of a :data:`_RARE` part it had none of (a view is a new name)."""


@dataclass
class Named:
    """What DDL statements named in one database since its last read."""

    words: set[str] = field(default_factory=set)
    """Every identifier they held."""
    created: set[str] = field(default_factory=set)
    """Those that may name a table, view or sequence the last read did not have (:func:`_created`)."""
    rare: set[str] = field(default_factory=set)
    """The identifiers of statements that may give a table rows of a :data:`_RARE` part (:data:`_NEW_RARE_ROWS`)."""
    renamed: set[str] = field(default_factory=set)
    """The identifiers of statements that may have renamed a table or a column (:data:`_RENAMING`):
    a foreign key to such a table spells the old names."""
    forget: bool = False
    """The database was dropped or created: its last read is void."""


def _created(sql: str, words: set[str]) -> set[str]:
    """The names a DDL statement may give a table, view or sequence that the last read did not have.

    Only these of its words are looked up when not already a table: a nonexistent name in
    the ``TABLE_NAME IN`` list costs MariaDB as much as an existing one (it tries to open it).
    """
    if _RENAME_TABLES.match(sql):
        return words  # RENAME TABLE a TO b, c TO d
    if _ALTER.match(sql):
        return {quoted.replace("``", "`") if quoted else bare for quoted, bare in _NEW_NAME.findall(sql)}
    created = _CREATED.match(sql)
    if created is None:
        return set()
    quoted, bare = created.groups()
    return {quoted.replace("``", "`") if quoted else bare}


def _identifiers(sql: str) -> set[str]:
    """Every identifier of ``sql``, as written (backquotes removed), string literals left out."""
    return {quoted.replace("``", "`") if quoted else bare for quoted, bare in _IDENT.findall(sql)}


def _head(sql: str) -> str:
    """The part of a DDL statement that names what it creates or changes (a view's or trigger's body left out)."""
    if _WITH_BODY.match(sql):
        body = _BODY.search(sql)
        return sql[: body.start()] if body else sql
    return sql


@dataclass
class _Recorder:
    """What DDL this process sent since each database was last read: one per process."""

    named: dict[str, Named] = field(default_factory=dict)
    """Database -> what its DDL statements named since its last read."""
    counted: Counter[str] = field(default_factory=Counter)
    """Counter -> statements of that kind that succeeded since the last read of any database."""
    everything: bool = False
    """A statement whose reach is unknown ran: no last read can be trusted."""
    installed: bool = False
    lock: threading.Lock = field(default_factory=threading.Lock)

    def install(self) -> None:
        with self.lock:
            if not self.installed:
                sa.event.listen(sa.Engine, "before_cursor_execute", self._before)
                sa.event.listen(sa.Engine, "after_cursor_execute", self._after)
                self.installed = True

    def clear(self) -> None:
        """Forget what was named (every database is then read whole next)."""
        self.named.clear()

    def take(self, database: str) -> Named:
        """What DDL named in ``database`` since its last read (and now, nothing)."""
        return self.named.pop(database, None) or Named()

    def _before(self, conn: Connection, cursor: Any, statement: str, *args: Any) -> None:
        if conn.dialect.name not in ("mysql", "mariadb"):
            return
        sql = statement[_LEADING_COMMENTS.match(statement).end() :]  # type: ignore[union-attr]  # it always matches
        if _OPAQUE_HEAD.match(sql):
            self.everything = True
            return
        if not _DDL_HEAD.match(sql):
            return
        bare = _LITERAL.sub("''", sql)
        words = _identifiers(bare)
        database = conn.engine.url.database
        if _DATABASE_DDL.match(sql) and not _SEVERAL.search(bare):
            for name in words:
                self.named.setdefault(name, Named()).forget = True
        elif database is None or _QUALIFIED.search(_head(bare)) or _SEVERAL.search(bare):
            self.everything = True  # another database may be meant, or several statements run
        else:
            named = self.named.setdefault(database, Named())
            named.words |= words
            named.created |= _created(bare, words)
            if _RENAMING.match(bare):
                named.renamed |= words
            if _NEW_RARE_ROWS.search(bare):
                named.rare |= words

    def _after(self, conn: Connection, cursor: Any, statement: str, *args: Any) -> None:
        if conn.dialect.name not in ("mysql", "mariadb"):
            return
        sql = statement[_LEADING_COMMENTS.match(statement).end() :]  # type: ignore[union-attr]
        if not _DDL_HEAD.match(sql):
            return
        for counter, head in _COUNTED.items():
            if head.match(sql):
                self.counted[counter] += 1
                break


RECORDER = _Recorder()
"""The process's recorder: every engine's statements reach it."""

_STATUS = (
    "SELECT 'status', LOWER(VARIABLE_NAME), VARIABLE_VALUE"
    + ", NULL" * (_MYSQL_WIDTH - 2)
    + ", 0 FROM information_schema.GLOBAL_STATUS WHERE VARIABLE_NAME IN ("
    + ", ".join(f"'{c.upper()}'" for c in _COUNTED)
    + ")"
)


def _filtered(kinds: Iterable[str]) -> str:
    """:data:`_MYSQL_SNAPSHOT`'s parts ``kinds``, each restricted to the tables in ``:names_<kind>`` (a part
    is keyed by its first column)."""
    return " UNION ALL ".join(
        f"SELECT '{kind}', "
        + ", ".join([f"CONVERT({c} USING utf8mb4)" for c in columns] + ["NULL"] * (_MYSQL_WIDTH - len(columns)))
        + f", {order} FROM information_schema.{source} AND {columns[0]} IN :names_{kind}"
        for kind, (columns, source, order) in _MYSQL_PARTS.items()
        if kind in kinds
    )


_RARE = ("checks", "triggers", "views")
"""Parts most tables have no rows of, each costing MariaDB about 0.5 ms per table looked up: a table
is looked up in one only when it had such rows at the last read, its name may be new (a table or
view created or renamed, see :func:`_created`), or a statement that may add such rows named it
(:data:`_NEW_RARE_ROWS`: a trigger, a check, a ``JSON`` column, whose check MariaDB adds)."""


_FULL = f"{_STATUS} UNION ALL {_MYSQL_SNAPSHOT}"
"""The counters and every row: one round trip."""


@dataclass
class _Read:
    """The last read of one database: its raw rows, and the objects they gave, by table (or view) name."""

    rows: list[tuple[Any, ...]]
    objects: dict[str, list[tuple[ObjectKey, Any]]]


@dataclass
class Incremental:
    """The last read of each database, kept to re-read only what DDL named (see the module)."""

    trust_recorder: bool = False
    """Do not consult the server's counters (verification against full reads does it instead)."""
    known: dict[str, _Read] = field(default_factory=dict)
    status: dict[str, int] | None = None
    quiet: bool = True
    """Whether the server counted no DDL but this process's between the last two reads. When it did (another
    xdist worker, another run on the server), the next read is a full one at once, in one round trip:
    an incremental attempt would most likely be refused too. A full read that finds the server quiet
    again makes the next one incremental."""
    reads: Counter[str] = field(default_factory=Counter)
    """``full`` and ``incremental`` reads made, for tests and benchmarks."""

    def forget(self) -> None:
        """Read every database whole next time."""
        self.known.clear()

    def read(
        self, connection: Connection, schema: str | None, foreign_key_indexes: set[tuple[str, str]]
    ) -> list[tuple[ObjectKey, Any]]:
        """The objects of ``schema`` (``None``: the connection's database), as a full read gives them."""
        RECORDER.install()
        database = schema or connection.engine.url.database
        if RECORDER.everything:
            RECORDER.everything = False
            self.known.clear()
            RECORDER.clear()
        named = RECORDER.take(database) if database else Named(forget=True)
        last = self.known.get(database) if database and not named.forget else None
        read: _Read | None = None
        if last is not None and self.quiet:
            touched = _touched(named, last.rows)
            status, fresh = self._query(connection, schema, _lookups(touched, named, last.rows))
            if self._unchanged_elsewhere(status):
                rows = [row for row in last.rows if row[1] not in touched] + fresh
                objects = {name: found for name, found in last.objects.items() if name not in touched}
                objects.update(_by_table(_mysql_fingerprints(connection, schema, foreign_key_indexes, fresh), schema))
                read = _Read(rows, objects)
                self.reads["incremental"] += 1
            else:
                self.known.clear()
                RECORDER.clear()
        if read is None:
            status, rows = self._query(connection, schema, None)
            self.quiet = self.status is None or self._unchanged_elsewhere(status)  # the first: nothing to compare
            if not self.quiet:
                self.known.clear()
                RECORDER.clear()
            read = _Read(rows, _by_table(_mysql_fingerprints(connection, schema, foreign_key_indexes, rows), schema))
            self.reads["full"] += 1
        self.status = status
        RECORDER.counted.clear()
        if database:
            self.known[database] = read
        return [item for found in read.objects.values() for item in found]

    def _query(
        self, connection: Connection, schema: str | None, lookups: dict[str, set[str]] | None
    ) -> tuple[dict[str, int], list[tuple[Any, ...]]]:
        """The counters and the rows of every table (``lookups`` ``None``) or of the tables in
        ``lookups[part]`` for each part: one round trip."""
        params: dict[str, Any] = {"schema": schema} if schema else {}
        where = ":schema" if schema else "DATABASE()"
        if lookups is None:
            query = sa.text(_FULL.format(s=where))
        elif lookups:
            query = sa.text(f"{_STATUS} UNION ALL {_filtered(lookups)}".format(s=where)).bindparams(
                *(sa.bindparam(f"names_{kind}", expanding=True) for kind in lookups)
            )
            params.update({f"names_{kind}": sorted(names) for kind, names in lookups.items()})
        else:
            query = sa.text(_STATUS)
            params = {}
        status: dict[str, int] = {}
        rows: list[tuple[Any, ...]] = []
        for row in connection.execute(query, params):
            if row[0] == "status":
                status[row[1]] = int(row[2])
            else:
                rows.append(tuple(row))
        return status, rows

    def _unchanged_elsewhere(self, status: dict[str, int]) -> bool:
        """Whether the server counted exactly the DDL this process saw succeed since the last read."""
        if self.trust_recorder:
            return True
        if self.status is None or not status:
            return False
        return all(status.get(c, 0) - self.status.get(c, 0) == RECORDER.counted.get(c, 0) for c in _COUNTED)


def _by_table(objects: Iterable[tuple[ObjectKey, Any]], schema: str | None) -> dict[str, list[tuple[ObjectKey, Any]]]:
    """Objects by the name of their table or view (without ``schema``), as rows are keyed."""
    out: dict[str, list[tuple[ObjectKey, Any]]] = {}
    skip = len(schema) + 1 if schema else 0
    for key, state in objects:
        out.setdefault(key[1][skip:], []).append((key, state))
    return out


def _touched(named: Named, known: Sequence[tuple[Any, ...]]) -> set[str]:
    """The table names to re-read: tables named (any case), names that may be new tables, the
    foreign-key children of tables a renaming statement named, the tables of named triggers,
    and every view when anything was named."""
    if not named.words:
        return set()
    lowered = {name.lower() for name in named.words}
    renamed = {name.lower() for name in named.renamed}
    touched = set(named.created)
    views: set[str] = set()
    for row in known:
        kind, table = row[0], row[1]
        if table.lower() in lowered:
            touched.add(table)
        if kind == "key_columns" and (row[5] or "").lower() in renamed:
            touched.add(table)  # its foreign key spells the parent's (and its columns') names
        elif kind == "triggers" and (row[2] or "").lower() in lowered:
            touched.add(table)
        elif kind == "views" or (kind == "tables" and row[2] == "VIEW"):
            views.add(table)
    return touched | views


def _lookups(touched: set[str], named: Named, known: Sequence[tuple[Any, ...]]) -> dict[str, set[str]]:
    """The tables to look up in each part: every touched one, but in :data:`_RARE` parts only those
    that had rows of the part at the last read, whose name may be new, or that a statement which
    may add such rows named. Parts with none are left out."""
    if not touched:
        return {}
    had: dict[str, set[str]] = {kind: set() for kind in _RARE}
    for row in known:
        if row[0] in had:
            had[row[0]].add(row[1])
    lookups = {
        kind: touched if kind not in had else touched & (had[kind] | named.created | named.rare)
        for kind in _MYSQL_PARTS
    }
    return {kind: names for kind, names in lookups.items() if names}


SNAPSHOTS = Incremental()
"""The process's last reads: one set, as the recorder is one (two takers each keeping their own
would each take the other's named identifiers)."""
