"""Backends for database servers: the plugin's databases are created through an admin connection.

The admin URL comes from a provider (a URL the user gave, a container, a local
process). Only its host, port and credentials are used: the database it names is never
migrated, altered, written or dropped. Every database made here is named by
:func:`~pytest_migrations.backends.database_name` (:meth:`ServerBackend.drop` refuses any
name not of that exact form) and carries the plugin's marker, a database comment
``pytest-migrations run <run>``:

- PostgreSQL: ``COMMENT ON DATABASE`` after ``CREATE DATABASE``, and again after a
  ``CREATE DATABASE ... TEMPLATE`` clone (templates do not copy comments);
- MySQL/MariaDB: ``CREATE DATABASE ... COMMENT '...'``, read back from
  ``information_schema.SCHEMATA.SCHEMA_COMMENT`` (MariaDB 10.5+). A server without
  database comments (MySQL 8) gets databases without a marker: they are dropped by the
  run that made them, but never by another run's dead-run clean-up, which cannot prove
  they are the plugin's (see :mod:`pytest_migrations.servers`).

**Least privilege on MySQL/MariaDB.** There a "schema" is another database of the
server, reachable from any connection (``schema="victim"``, ``DELETE FROM victim.t``,
``CREATE SCHEMA meow``). So the run's migrations do not run as the admin user: when the
admin may create users, :meth:`MySQLBackend.create_run_user` makes a user ``pm_<run>``
with a random password, granted ALL on the run's databases only
(``pytest\\_migrations\\_<run>\\_%``.*), and :meth:`ServerBackend.url` (what env.py,
migrations and the runner are given) uses it; the admin connection only creates, clones
and drops. The server itself then refuses anything reaching another database.
PostgreSQL needs no such user for that: a connection is confined to its database.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterator, Mapping
from contextlib import contextmanager

import sqlalchemy as sa
from sqlalchemy.engine import URL, Connection
from sqlalchemy.pool import NullPool

from .. import pg_catalog
from ..exceptions import ProviderError, first_line
from ..urls import mask, mask_passwords
from . import OWN_DATABASE, PREFIX, RUN_ID, marker, marker_run, run_of

RUN_USER = re.compile(r"^pm_(?P<run>[0-9a-f]{8})$")
"""The name of a per-run MySQL user: ``pm_<run>``."""

_EXTRAS = {
    "postgresql": "'pytest-migrations[psycopg]' (psycopg 3, SQLAlchemy 2.1's default) or 'pytest-migrations[psycopg2]'",
    "mysql": "'pytest-migrations[mysql]' (PyMySQL)",
}

_PG_INSUFFICIENT_PRIVILEGE = "42501"
_MYSQL_DENIED = frozenset({1044, 1142, 1227})
"""Access denied to a database (1044), to a command on a table (1142), needs a privilege (1227)."""
_MYSQL_SYNTAX = 1064


def requalified(ddl: str, renames: Mapping[str, str]) -> str:
    """``ddl`` with names qualified by a database of ``renames`` (`` `a`.t``, ``a.t``) qualified by its new name.

    SHOW CREATE VIEW quotes every name; SHOW CREATE TRIGGER gives the statement as it was
    written, quoted or not.
    """
    for old, new in renames.items():
        ddl = re.sub(rf"(?<![\w$`])(`?){re.escape(old)}\1\.", f"`{new}`.", ddl)
    return ddl


class ServerBackend:
    """Shared machinery: an AUTOCOMMIT admin engine and the bookkeeping of created names.

    :param run_url: the credentials the run's migrations use (a per-run user), when they
        differ from the admin's; the admin URL's are used otherwise.
    """

    dialect = ""
    maintenance_database: str | None = None

    def __init__(self, admin_url: URL, *, source: str = "url", run_url: URL | None = None) -> None:
        self.server_url = admin_url.set(database=self.maintenance_database)
        self.run_url = (run_url or admin_url).set(database=None)
        self.source = source
        try:
            self._admin = sa.create_engine(self.server_url, poolclass=NullPool, isolation_level="AUTOCOMMIT")
        except (ImportError, sa.exc.NoSuchModuleError) as exc:
            raise ProviderError(
                f"the driver of {mask(self.server_url)} is not installed ({exc}); install it (pytest-migrations' "
                f"extras: pip install {_EXTRAS[self.dialect]}), or name an installed one in the URL, "
                f"e.g. {'postgresql+psycopg' if self.dialect == 'postgresql' else 'mysql+pymysql'}://..."
            ) from None
        self._created: set[str] = set()
        self.failure: ProviderError | None = None
        """Why this server cannot give the run databases (a missing privilege), once seen: raised at once after."""

    @contextmanager
    def admin(self) -> Iterator[Connection]:
        try:
            conn = self._admin.connect()
        except sa.exc.OperationalError as exc:
            raise ProviderError(
                f"cannot connect to the {self.dialect} server at {mask(self.server_url)}: "
                f"{mask_passwords(first_line(exc.orig))}. Check that it runs and that the URL's host, port, user "
                "and password are right (--migrations-url), or let the plugin start a server: --migrations-provider "
                "container or --migrations-provider local"
            ) from None
        try:
            yield conn
        finally:
            conn.close()

    def url(self, name: str) -> URL:
        """The URL the run's migrations use for database ``name`` (the per-run user's, when there is one)."""
        return self.run_url.set(database=name)

    def _check_own(self, name: str) -> None:
        if not OWN_DATABASE.match(name):
            raise ProviderError(f"refusing to touch database {name!r}: it is not one of the plugin's")

    def create(self, name: str) -> URL:
        """Create an empty database, with the marker (dropping a leftover of the same name first).

        :raises ProviderError: the admin user may not create databases: one paragraph
            naming the missing privilege and the fix (and the same one at once after).
        """
        self._check_own(name)
        self._fail_fast()
        try:
            with self.admin() as conn:
                self._drop(conn, name)
                self._create(conn, name)
        except sa.exc.DBAPIError as exc:
            if not self._is_denied(exc):
                raise
            raise self._privilege_error(exc) from None
        self._created.add(name)
        return self.url(name)

    def _fail_fast(self) -> None:
        if self.failure is not None:
            raise self.failure.with_traceback(None)

    def _privilege_error(self, exc: sa.exc.DBAPIError) -> ProviderError:
        """The one-paragraph error for a missing privilege, with the fix; remembered for every later call."""
        try:
            with self.admin() as conn:
                account = str(conn.execute(sa.text(self._current_user_query)).scalar())
        except Exception:
            account = self.server_url.username or "the URL's user"
        user = account.rpartition("@")[0] or account
        self.failure = ProviderError(
            f"the {self.dialect} {'role' if self.dialect == 'postgresql' else 'user'} {user!r} of "
            f"{mask(self.server_url)} may not create databases "
            f"({_reason(exc)}), and the plugin makes a throwaway database for every test. "
            f"{self._privilege_fix(account)}, or give a --migrations-url whose user may create databases"
        )
        return self.failure

    _current_user_query = "SELECT current_user"

    def _is_denied(self, exc: sa.exc.DBAPIError) -> bool:
        raise NotImplementedError

    def _privilege_fix(self, account: str) -> str:
        raise NotImplementedError

    def _create(self, conn: Connection, name: str) -> None:
        raise NotImplementedError

    def clone(self, source: str, name: str) -> URL:
        raise NotImplementedError

    def drop(self, name: str) -> None:
        self._check_own(name)
        with self.admin() as conn:
            self._drop(conn, name)
        self._created.discard(name)

    def _drop(self, conn: Connection, name: str) -> None:
        raise NotImplementedError

    def databases(self, conn: Connection) -> dict[str, str | None]:
        """Databases of the plugin's name form on the server, with the run id their marker names (or ``None``)."""
        raise NotImplementedError

    def unmarked_is_ours(self, name: str) -> bool:
        """Whether a well-formed database without the marker can still be proven the plugin's (never, here)."""
        return False

    def close(self) -> None:
        for name in list(self._created):
            self.drop(name)
        self._admin.dispose()

    def describe(self) -> str:
        return f"{self.dialect} via {self.source} {mask(self.server_url)}"


def _reason(exc: sa.exc.DBAPIError) -> str:
    """What the server said, in one line: ``error 1044: Access denied ...`` on MySQL, the message on PostgreSQL."""
    code = _mysql_code(exc)
    args: tuple[object, ...] = tuple(getattr(exc.orig, "args", ()))
    if code is not None and len(args) > 1:
        return mask_passwords(f"error {code}: {args[1]}")
    return mask_passwords(first_line(exc.orig))


def _mysql_code(exc: sa.exc.DBAPIError) -> int | None:
    args = getattr(exc.orig, "args", ())
    return args[0] if args and isinstance(args[0], int) else None


_PG_USER_OBJECTS = f"""
SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname NOT IN ('pg_catalog', 'information_schema', '{pg_catalog.DDL_SCHEMA}') AND n.nspname NOT LIKE 'pg\\_%'
"""


class PostgreSQLBackend(ServerBackend):
    """``CREATE DATABASE``; a clone is ``CREATE DATABASE ... TEMPLATE`` (a file-level copy)."""

    dialect = "postgresql"
    maintenance_database = "postgres"

    def _create(self, conn: Connection, name: str) -> None:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
        self._mark(conn, name)
        self._mark_inside(name)

    def _mark_inside(self, name: str) -> None:
        """The marker again, inside the database (its public schema's comment), where TEMPLATE copies it.

        CREATE DATABASE and COMMENT ON DATABASE are two statements: a run killed between
        them leaves a database without the outer marker. A clone, which takes long, copies
        this inner one with everything else, so it is the plugin's from its first moment.
        """
        run = run_of(name)
        assert run is not None
        engine = sa.create_engine(self.url(name), poolclass=NullPool, isolation_level="AUTOCOMMIT")
        try:
            with engine.connect() as conn:
                conn.exec_driver_sql(f"COMMENT ON SCHEMA public IS '{marker(run)}'")
                pg_catalog.install(conn)  # the DDL log that makes snapshots cheap; clones copy it
        finally:
            engine.dispose()

    def unmarked_is_ours(self, name: str) -> bool:
        """Whether a well-formed database without the outer marker is still provably the plugin's.

        It is when it carries the inner marker of the run its name names (a clone killed
        before its COMMENT ON DATABASE), or when it holds nothing at all (a CREATE DATABASE
        killed before its markers: dropping an empty database loses nothing).
        """
        run = run_of(name)
        engine = sa.create_engine(self.url(name), poolclass=NullPool)
        try:
            with engine.connect() as conn:
                inner = conn.execute(sa.text("SELECT obj_description('public'::regnamespace, 'pg_namespace')")).scalar()
                objects = conn.execute(sa.text(_PG_USER_OBJECTS)).scalar()
        except sa.exc.DBAPIError:
            return False
        finally:
            engine.dispose()
        return (run is not None and marker_run(inner) == run) or not objects

    def _mark(self, conn: Connection, name: str) -> None:
        run = run_of(name)
        assert run is not None
        conn.exec_driver_sql(f"COMMENT ON DATABASE \"{name}\" IS '{marker(run)}'")

    def _is_denied(self, exc: sa.exc.DBAPIError) -> bool:
        orig = exc.orig  # psycopg2 names the SQLSTATE pgcode, psycopg (3) sqlstate
        return (getattr(orig, "pgcode", None) or getattr(orig, "sqlstate", None)) == _PG_INSUFFICIENT_PRIVILEGE

    def _privilege_fix(self, account: str) -> str:
        role = account if re.fullmatch(r"[a-z_][a-z0-9_$]*", account) else '"' + account.replace('"', '""') + '"'
        return f"Fix: as a superuser, run `ALTER ROLE {role} CREATEDB`"

    def clone(self, source: str, name: str) -> URL:
        self._check_own(name)
        self._fail_fast()
        try:
            with self.admin() as conn:
                self._drop(conn, name)
                self._disconnect(conn, source)
                conn.exec_driver_sql(f'CREATE DATABASE "{name}" TEMPLATE "{source}"')
                self._mark(conn, name)
        except sa.exc.DBAPIError as exc:
            if not self._is_denied(exc):
                raise
            raise self._privilege_error(exc) from None
        self._created.add(name)
        return self.url(name)

    def _disconnect(self, conn: Connection, name: str) -> None:
        conn.execute(
            sa.text(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :n AND pid <> pg_backend_pid()"
            ),
            {"n": name},
        )

    def _drop(self, conn: Connection, name: str) -> None:
        self._disconnect(conn, name)
        conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}"')

    def databases(self, conn: Connection) -> dict[str, str | None]:
        rows = conn.execute(
            sa.text(
                "SELECT datname, shobj_description(oid, 'pg_database') FROM pg_database WHERE starts_with(datname, :p)"
            ),
            {"p": f"{PREFIX}_"},
        )
        return {name: marker_run(comment) for name, comment in rows if OWN_DATABASE.match(name)}

    def marked_roles(self, conn: Connection) -> dict[str, str]:
        """Roles with the plugin's marker (made by a run's migrations, see :mod:`..roles`): name -> run id."""
        rows = conn.execute(
            sa.text(
                "SELECT r.rolname, d.description FROM pg_roles r JOIN pg_shdescription d "
                "ON d.objoid = r.oid AND d.classoid = 'pg_authid'::regclass WHERE starts_with(d.description, :p)"
            ),
            {"p": "pytest-migrations run "},
        )
        return {str(name): run for name, comment in rows if (run := marker_run(comment)) is not None}

    def drop_roles(self, run: str) -> None:
        """Drop the marked roles of ``run`` (after its databases: a role something still depends on stays)."""
        with self.admin() as conn:
            for name, owner in self.marked_roles(conn).items():
                if owner == run:
                    try:
                        conn.exec_driver_sql('DROP ROLE "' + name.replace('"', '""') + '"')
                    except sa.exc.DBAPIError:
                        pass


class MySQLBackend(ServerBackend):
    """``CREATE DATABASE``; MySQL has no templates, so a clone copies each table's DDL and rows."""

    dialect = "mysql"
    comments: bool | None = None
    """Whether the server has database comments (MariaDB 10.5+; not MySQL 8): ``None`` until known."""

    def _create(self, conn: Connection, name: str) -> None:
        statement = f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4"
        if self.comments is not False:
            run = run_of(name)
            assert run is not None
            try:
                conn.exec_driver_sql(f"{statement} COMMENT '{marker(run)}'")
                self.comments = True
                return
            except sa.exc.ProgrammingError as exc:
                if self.comments or _mysql_code(exc) != _MYSQL_SYNTAX:
                    raise
                self.comments = False  # no database comments: databases without a marker (see the module)
        conn.exec_driver_sql(statement)

    def _is_denied(self, exc: sa.exc.DBAPIError) -> bool:
        return _mysql_code(exc) in _MYSQL_DENIED

    _current_user_query = "SELECT CURRENT_USER()"

    def _privilege_fix(self, account: str) -> str:
        user, _, host = account.rpartition("@")
        pattern = PREFIX.replace("_", "\\_") + "\\_%"
        return (
            f"Fix: as an administrator, grant it the plugin's databases only: "
            f"GRANT ALL PRIVILEGES ON `{pattern}`.* TO '{user or account}'@'{host or '%'}'"
        )

    def clone(self, source: str, name: str, renames: Mapping[str, str] | None = None) -> URL:
        """Copy ``source``'s tables (DDL and rows), views and triggers into a new database ``name``.

        :param renames: other databases whose qualified names (`` `a`.t``) the copied DDL
            names, with what the copy's DDL names instead (a foreign key into a companion
            database of :mod:`pytest_migrations.mysql_schemas`); ``source`` itself always
            becomes ``name``.
        """
        self.create(name)
        mapping = {source: name, **(renames or {})}

        def moved(ddl: str) -> str:
            return requalified(ddl, mapping)

        with self.admin() as conn:
            conn.exec_driver_sql("SET SESSION foreign_key_checks = 0")
            rows = conn.execute(
                sa.text(
                    "SELECT TABLE_NAME, TABLE_TYPE FROM information_schema.TABLES WHERE TABLE_SCHEMA = :s "
                    "ORDER BY TABLE_TYPE, TABLE_NAME"
                ),
                {"s": source},
            ).all()
            views = []
            for table, kind in rows:
                if kind == "VIEW":
                    views.append(table)
                    continue
                ddl = conn.exec_driver_sql(f"SHOW CREATE TABLE `{source}`.`{table}`").one()[1]
                conn.exec_driver_sql(f"USE `{name}`")
                conn.exec_driver_sql(moved(ddl))
                conn.exec_driver_sql(f"INSERT INTO `{name}`.`{table}` SELECT * FROM `{source}`.`{table}`")
            for view in views:
                ddl = conn.exec_driver_sql(f"SHOW CREATE VIEW `{source}`.`{view}`").one()[1]
                conn.exec_driver_sql(f"USE `{name}`")
                conn.exec_driver_sql(moved(ddl))
            for (trigger,) in conn.execute(
                sa.text("SELECT TRIGGER_NAME FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = :s"), {"s": source}
            ).all():
                ddl = conn.exec_driver_sql(f"SHOW CREATE TRIGGER `{source}`.`{trigger}`").one()[2]
                conn.exec_driver_sql(f"USE `{name}`")
                conn.exec_driver_sql(moved(ddl))
        return self.url(name)

    def _drop(self, conn: Connection, name: str) -> None:
        conn.exec_driver_sql(f"DROP DATABASE IF EXISTS `{name}`")

    def databases(self, conn: Connection) -> dict[str, str | None]:
        has_comments = conn.execute(
            sa.text(
                "SELECT COUNT(*) FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = 'information_schema' "
                "AND TABLE_NAME = 'SCHEMATA' AND COLUMN_NAME = 'SCHEMA_COMMENT'"
            )
        ).scalar()
        comment = "SCHEMA_COMMENT" if has_comments else "NULL"
        prefix = f"{PREFIX}_"
        rows = conn.execute(
            sa.text(f"SELECT SCHEMA_NAME, {comment} FROM information_schema.SCHEMATA WHERE LEFT(SCHEMA_NAME, :n) = :p"),
            {"p": prefix, "n": len(prefix)},
        )
        return {name: marker_run(comment) for name, comment in rows if OWN_DATABASE.match(name)}

    # ------------------------------------------------------------------ the per-run user

    def create_run_user(self, run: str) -> tuple[URL | None, str]:
        """Create user ``pm_<run>``, granted ALL on the run's databases only; its URL, and a note for the header.

        The user is made for the host the server sees the admin connect from (what
        ``USER()`` says), which also wins over anonymous users of that host. Returns
        ``(None, why)`` when the admin may not create users or the new user cannot log
        in: migrations then run as the admin user, and the note says so.
        """
        if not RUN_ID.match(run):
            raise ValueError(f"not a run id: {run!r}")
        user, password = f"pm_{run}", secrets.token_hex(16)
        pattern = f"{PREFIX}_{run}_".replace("_", "\\_") + "%"
        admin = self.server_url.username or "the URL's user"
        unfenced = "so migrations are not limited to the run's databases and can reach every database it can"
        try:
            with self.admin() as conn:
                host = str(conn.execute(sa.text("SELECT USER()")).scalar()).rpartition("@")[2] or "%"
                self._drop_user(conn, user)  # a leftover of a dead process of this run: the run lock is ours
                conn.execute(sa.text("CREATE USER :u@:h IDENTIFIED BY :p"), {"u": user, "h": host, "p": password})
                try:
                    conn.execute(sa.text(f"GRANT ALL PRIVILEGES ON `{pattern}`.* TO :u@:h"), {"u": user, "h": host})
                except BaseException:
                    self._drop_user(conn, user)
                    raise
        except sa.exc.DBAPIError as exc:
            return None, (
                f"migrations run as {admin}: it may not create users ({mask_passwords(first_line(exc.orig))}), "
                f"{unfenced}"
            )
        url = self.run_url.set(username=user, password=password)
        probe = sa.create_engine(url, poolclass=NullPool)
        try:
            with probe.connect():
                pass
        except sa.exc.DBAPIError as exc:
            self.drop_run_user(run)
            return None, (
                f"migrations run as {admin}: the per-run user {user} could not log in "
                f"({mask_passwords(first_line(exc.orig))}), {unfenced}"
            )
        finally:
            probe.dispose()
        return url, f"migrations run as {user}, a user limited to the run's databases"

    def drop_run_user(self, run: str) -> None:
        """Drop user ``pm_<run>`` (every host it exists for)."""
        if not RUN_ID.match(run):
            raise ValueError(f"not a run id: {run!r}")
        with self.admin() as conn:
            self._drop_user(conn, f"pm_{run}")

    def run_users(self, conn: Connection) -> dict[str, str]:
        """The per-run users ``pm_<run>`` on the server, by run id (none when ``mysql.user`` cannot be read)."""
        try:
            rows = conn.execute(sa.text("SELECT DISTINCT User FROM mysql.user WHERE LEFT(User, 3) = 'pm_'")).all()
        except sa.exc.DBAPIError:
            return {}
        found = {}
        for (user,) in rows:
            match = RUN_USER.match(str(user))
            if match:
                found[match["run"]] = str(user)
        return found

    def _drop_user(self, conn: Connection, user: str) -> None:
        assert RUN_USER.match(user), user
        try:
            query = sa.text("SELECT Host FROM mysql.user WHERE User = :u")
            hosts = [row[0] for row in conn.execute(query, {"u": user})]
        except sa.exc.DBAPIError:  # mysql.user not readable: the host the user was made for
            hosts = [str(conn.execute(sa.text("SELECT USER()")).scalar()).rpartition("@")[2] or "%"]
        for host in hosts:
            conn.execute(sa.text("DROP USER IF EXISTS :u@:h"), {"u": user, "h": host})
