"""MySQL schemas a history names (``migrations_mysql_schemas``): lent to one database at a time.

On MySQL/MariaDB a "schema" is another database of the server. A migration writing
``op.create_table("events", ..., schema="audit")`` or ``INSERT INTO audit.log`` reaches
a database the plugin did not create, so the run's fenced user (see
:mod:`.backends.server`) is refused by the server. When that is what the history means
to do, the user names those schemas (``migrations_mysql_schemas = audit``) and the plugin
gives the migrations a database of that very name, created and dropped by the plugin:

- **created only where nothing is**: a database ``audit`` that exists without the
  plugin's marker (its comment) is the user's: the item fails, saying so, and the plugin
  never writes or drops it. A marked one is a leftover of a run that ended (its lock is
  free): it is emptied;
- **one database at a time**: a run holds several databases at once (the stairway's
  cursor, checkpoints, the fresh databases of whole walks, xdist workers' own), but
  ``audit`` has one name on the server. So ``audit`` holds a database's content only
  while migrations run on it, under a server-wide named lock (``GET_LOCK``, waited for:
  another process of the run, or another run, has it for the length of a few steps);
  in between, that content sits in a *companion* database of the plugin's
  (``<database>_s<i>_pm``, marked and dropped like any other of its databases), moved
  with ``RENAME TABLE`` (a rename; InnoDB foreign keys into the moved tables follow it),
  views and triggers re-created;
- **fenced still**: the run's user is granted ``audit`` only while it holds it;
- **compared**: the schema's tables and views are part of the snapshot (``audit.events``),
  so a downgrade that leaves one behind is a difference like any other;
- **removed**: a companion with its database; ``audit`` itself at the end of the process.

Not covered: stored routines and events in those schemas (the item fails, saying so),
``--migrations-data`` rows of their tables, and your own tests reading them between
``migration_runner`` calls (the schema holds the database's content only during a call).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.pool import NullPool

from .backends import marker, marker_run, run_id
from .backends.server import RUN_USER, MySQLBackend, requalified
from .exceptions import ConfigurationError, ProviderError, first_line
from .urls import mask_passwords

NAME = re.compile(r"^[A-Za-z0-9_$]{1,64}$")
"""A schema name the setting accepts: an unquoted MySQL identifier."""
RESERVED = frozenset({"mysql", "information_schema", "performance_schema", "sys"})


def check_name(name: str) -> str | None:
    """Why ``name`` cannot be given to migrations as a schema of their own; ``None`` when it can."""
    if not NAME.match(name):
        return f"{name!r} is not a plain MySQL database name (letters, digits, _ and $, at most 64)"
    if name.lower() in RESERVED:
        return f"{name} is a system database of the server"
    if name.lower().startswith("pytest_migrations"):
        return f"{name} is named like the plugin's own databases"
    return None


def lock_name(schema: str) -> str:
    """The server-wide named lock of ``schema``: the same in every process and run."""
    return "pytest_migrations_schema_" + hashlib.sha1(schema.encode()).hexdigest()[:16]


class SharedSchemas:
    """The schemas of ``migrations_mysql_schemas`` on one server, for the databases of one process.

    :param wait: seconds to wait for a schema another process holds.
    """

    def __init__(self, backend: MySQLBackend, names: tuple[str, ...], wait: float) -> None:
        self.backend = backend
        self.names = names
        self.wait = wait
        self.active: str | None = None
        """The database set (its key) whose content the schemas hold now."""
        self._companions: set[str] = set()
        self._engine = sa.create_engine(backend.server_url, poolclass=NullPool, isolation_level="AUTOCOMMIT")
        self._conn: Connection | None = None
        self._hosts: list[str] | None = None
        """The hosts the run's fenced user exists for (read once)."""

    def companion(self, key: str, index: int) -> str:
        """Where the content of schema ``names[index]`` of database set ``key`` sits while it is not lent."""
        return f"{key}_s{index}_pm"

    def renames(self, source: str, target: str) -> dict[str, str]:
        """Companion names a clone of ``source`` as ``target`` must rewrite in copied DDL."""
        return {self.companion(source, i): self.companion(target, i) for i in range(len(self.names))}

    # ------------------------------------------------------------------ lending

    @contextmanager
    def lent(self, key: str) -> Iterator[None]:
        """The schemas hold database set ``key``'s content for the length of the block."""
        self._enter(key)
        try:
            yield
        finally:
            self._exit()

    def _connection(self) -> Connection:
        if self._conn is None or self._conn.closed:
            try:
                self._conn = self._engine.connect()
            except sa.exc.OperationalError as exc:
                raise ProviderError(
                    "cannot connect to the MySQL server to lend migrations_mysql_schemas: "
                    f"{mask_passwords(first_line(exc.orig))}"
                ) from None
            self._conn.exec_driver_sql("SET SESSION foreign_key_checks = 0")
        return self._conn

    def _enter(self, key: str) -> None:
        conn = self._connection()
        taken: list[str] = []
        try:
            for schema in sorted(self.names):
                got = conn.execute(
                    sa.text("SELECT GET_LOCK(:n, :w)"), {"n": lock_name(schema), "w": self.wait}
                ).scalar()
                if got != 1:
                    raise ConfigurationError(
                        f"migrations_mysql_schemas: schema `{schema}` was held by another process for {self.wait:.0f} "
                        "s (another run on this server, or a hung step of another xdist worker of this run); run "
                        "again when it is done, or use a server of the run's own (--migrations-provider container)"
                    )
                taken.append(schema)
            for index, schema in enumerate(self.names):
                self._prepare(conn, schema)
                self._grant(conn, schema, "GRANT ALL PRIVILEGES ON `{s}`.* TO :u@:h")
                source = self.companion(key, index)
                if source in self._companions:
                    self._move(conn, source, schema)
        except BaseException:
            _release(conn, taken)
            raise
        self.active = key

    def _exit(self) -> None:
        key, self.active = self.active, None
        if key is None:
            return
        conn = self._connection()
        problems = []
        try:
            for index, schema in enumerate(self.names):
                self._grant(conn, schema, "REVOKE ALL PRIVILEGES ON `{s}`.* FROM :u@:h")
                routines = conn.execute(
                    sa.text(
                        "SELECT CONCAT(LOWER(ROUTINE_TYPE), ' ', ROUTINE_NAME) FROM information_schema.ROUTINES "
                        "WHERE ROUTINE_SCHEMA = :s UNION ALL SELECT CONCAT('event ', EVENT_NAME) "
                        "FROM information_schema.EVENTS WHERE EVENT_SCHEMA = :s"
                    ),
                    {"s": schema},
                ).scalars()
                found = list(routines)
                if found:
                    problems.append(f"`{schema}` holds {', '.join(found)}")
                    self._empty(conn, schema)
                target = self.companion(key, index)
                if self._objects(conn, schema):
                    if target not in self._companions:
                        self.backend.create(target)
                        self._companions.add(target)
                    self._move(conn, schema, target)
        finally:
            _release(conn, self.names)
        if problems:
            raise ConfigurationError(
                f"migrations_mysql_schemas: {'; '.join(problems)}: stored routines and events in the schemas the "
                "plugin lends cannot be kept apart per database; create them in the database env.py connects to"
            )

    def _prepare(self, conn: Connection, schema: str) -> None:
        """``schema`` exists, carries the marker, and is empty (the lock is held)."""
        exists, comment = _comment(conn, schema)
        if not exists:
            try:
                _create(conn, schema)
            except sa.exc.ProgrammingError as exc:
                raise ConfigurationError(
                    f"migrations_mysql_schemas: `{schema}` cannot be created with the plugin's marker ({exc.orig}); "
                    "lending schemas needs database comments (MariaDB 10.5 or later)"
                ) from None
            return
        if marker_run(comment) is None:
            raise ConfigurationError(
                f"migrations_mysql_schemas names `{schema}`, and the server has a database `{schema}` that the "
                "plugin did not create (it has no pytest-migrations marker): the plugin never migrates, writes or "
                "drops it. Use a server without it (--migrations-provider container or local), or drop it yourself "
                "if it is a leftover of your own"
            )
        if self._objects(conn, schema):
            self._empty(conn, schema)  # a killed process's: the marker says the plugin made it, the lock is ours

    def _objects(self, conn: Connection, schema: str) -> list[tuple[str, str]]:
        query = "SELECT TABLE_NAME, TABLE_TYPE FROM information_schema.TABLES WHERE TABLE_SCHEMA = :s"
        return [(str(n), str(t)) for n, t in conn.execute(sa.text(query), {"s": schema})]

    def _empty(self, conn: Connection, schema: str) -> None:
        conn.exec_driver_sql(f"DROP DATABASE `{schema}`")
        _create(conn, schema)

    def _grant(self, conn: Connection, schema: str, statement: str) -> None:
        """GRANT or REVOKE ``schema`` for the run's fenced user (nothing when migrations run as the admin)."""
        user = self.backend.run_url.username
        if not user or not RUN_USER.match(user) or user == self.backend.server_url.username:
            return
        if self._hosts is None:
            query = sa.text("SELECT Host FROM mysql.user WHERE User = :u")
            self._hosts = [str(host) for (host,) in conn.execute(query, {"u": user})]
        for host in self._hosts:
            try:
                conn.execute(sa.text(statement.format(s=schema)), {"u": user, "h": host})
            except sa.exc.DBAPIError as exc:
                if "REVOKE" not in statement or "1141" not in str(exc.orig):  # 1141: nothing granted to revoke
                    raise

    def _move(self, conn: Connection, source: str, target: str) -> None:
        """Move every table, view and trigger of ``source`` into ``target`` (both exist)."""
        objects = self._objects(conn, source)
        views = [n for n, t in objects if t == "VIEW"]
        tables = [n for n, t in objects if t != "VIEW"]
        view_ddl = [conn.exec_driver_sql(f"SHOW CREATE VIEW `{source}`.`{v}`").one()[1] for v in views]
        trigger_names = conn.execute(
            sa.text("SELECT TRIGGER_NAME FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = :s"), {"s": source}
        ).scalars()
        triggers = [
            (name, conn.exec_driver_sql(f"SHOW CREATE TRIGGER `{source}`.`{name}`").one()[2]) for name in trigger_names
        ]
        for name, _ in triggers:
            conn.exec_driver_sql(f"DROP TRIGGER `{source}`.`{name}`")
        for view in views:
            conn.exec_driver_sql(f"DROP VIEW `{source}`.`{view}`")
        if tables:
            conn.exec_driver_sql("RENAME TABLE " + ", ".join(f"`{source}`.`{t}` TO `{target}`.`{t}`" for t in tables))
        conn.exec_driver_sql(f"USE `{target}`")
        for ddl in [*view_ddl, *(ddl for _, ddl in triggers)]:
            conn.exec_driver_sql(requalified(ddl, {source: target}))

    # ------------------------------------------------------------------ databases

    def cloned(self, source: str, target: str, renames: Mapping[str, str]) -> None:
        """Database set ``target`` was made as a copy of ``source``: copy its companions too."""
        for index in range(len(self.names)):
            companion = self.companion(source, index)
            if companion in self._companions:
                copy = self.companion(target, index)
                self.backend.clone(companion, copy, renames=renames)
                self._companions.add(copy)

    def released(self, key: str) -> None:
        """Database set ``key`` was dropped: drop its companions."""
        for index in range(len(self.names)):
            companion = self.companion(key, index)
            if companion in self._companions:
                self._companions.discard(companion)
                self.backend.drop(companion)

    def close(self) -> None:
        """Drop the schemas when no other process holds them; close the lock connection."""
        try:
            if self._conn is not None and not self._conn.closed:
                conn = self._conn
                for schema in self.names:
                    if conn.execute(sa.text("SELECT GET_LOCK(:n, 0)"), {"n": lock_name(schema)}).scalar() != 1:
                        continue  # another worker of this run is using it: the last one out drops it
                    try:
                        exists, comment = _comment(conn, schema)
                        if exists and marker_run(comment) is not None:
                            conn.exec_driver_sql(f"DROP DATABASE `{schema}`")
                    finally:
                        _release(conn, [schema])
        finally:
            if self._conn is not None:
                self._conn.close()
            self._engine.dispose()


def _comment(conn: Connection, schema: str) -> tuple[bool, str | None]:
    """Whether database ``schema`` exists, and its comment (where the plugin's marker would be)."""
    query = sa.text("SELECT SCHEMA_COMMENT FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = :s")
    row = conn.execute(query, {"s": schema}).first()
    return (row is not None, row[0] if row is not None else None)


def _create(conn: Connection, schema: str) -> None:
    """Create ``schema`` with the plugin's marker, naming this run."""
    conn.exec_driver_sql(f"CREATE DATABASE `{schema}` CHARACTER SET utf8mb4 COMMENT '{marker(run_id())}'")


def _release(conn: Connection, schemas: Iterable[str]) -> None:
    for schema in schemas:
        conn.execute(sa.text("SELECT RELEASE_LOCK(:n)"), {"n": lock_name(schema)})
