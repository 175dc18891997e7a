"""Backends for database servers: the plugin's databases are created through an admin connection.

The admin URL comes from a provider (a URL the user gave, a container, a local
process). Only its host, port and credentials are used: the database it names is never
migrated, altered, written or dropped. Every database made here is named by
:func:`~pytest_migrations.backends.database_name`; :meth:`ServerBackend.drop` refuses any
other name.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager

import sqlalchemy as sa
from sqlalchemy.engine import URL, Connection
from sqlalchemy.pool import NullPool

from ..exceptions import ProviderError
from ..urls import mask
from . import PREFIX

_OWN_NAME = re.compile(rf"^{PREFIX}_[a-z0-9_]+$")


class ServerBackend:
    """Shared machinery: an AUTOCOMMIT admin engine and the bookkeeping of created names."""

    dialect = ""
    maintenance_database: str | None = None

    def __init__(self, admin_url: URL, *, source: str = "url") -> None:
        self.server_url = admin_url.set(database=self.maintenance_database)
        self.source = source
        try:
            self._admin = sa.create_engine(self.server_url, poolclass=NullPool, isolation_level="AUTOCOMMIT")
        except (ImportError, sa.exc.NoSuchModuleError) as exc:
            raise ProviderError(
                f"the driver of {mask(self.server_url)} is not installed ({exc}); install it (pytest-migrations' "
                f"extras: pip install 'pytest-migrations[{self.dialect}]'), or name an installed one in the URL, "
                f"e.g. {'postgresql+psycopg2' if self.dialect == 'postgresql' else 'mysql+pymysql'}://..."
            ) from None
        self._created: set[str] = set()

    @contextmanager
    def admin(self) -> Iterator[Connection]:
        try:
            conn = self._admin.connect()
        except sa.exc.OperationalError as exc:
            raise ProviderError(
                f"cannot connect to the {self.dialect} server at {mask(self.server_url)}: "
                f"{_first_line(exc.orig)}. Check that it runs and that the URL's host, port, user and password "
                "are right (--migrations-url), or let the plugin start a server: --migrations-provider container "
                "or --migrations-provider local"
            ) from None
        try:
            yield conn
        finally:
            conn.close()

    def url(self, name: str) -> URL:
        return self.server_url.set(database=name)

    def _check_own(self, name: str) -> None:
        if not _OWN_NAME.match(name):
            raise ProviderError(f"refusing to touch database {name!r}: it is not one of the plugin's")

    def create(self, name: str) -> URL:
        """Create an empty database (dropping a leftover of the same name first)."""
        self._check_own(name)
        with self.admin() as conn:
            self._drop(conn, name)
            conn.exec_driver_sql(self._create_statement(name))
        self._created.add(name)
        return self.url(name)

    def _create_statement(self, name: str) -> str:
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

    def close(self) -> None:
        for name in list(self._created):
            self.drop(name)
        self._admin.dispose()

    def describe(self) -> str:
        return f"{self.dialect} via {self.source} {mask(self.server_url)}"


def _first_line(exc: BaseException | None) -> str:
    return str(exc).strip().splitlines()[0] if exc is not None and str(exc).strip() else type(exc).__name__


class PostgreSQLBackend(ServerBackend):
    """``CREATE DATABASE``; a clone is ``CREATE DATABASE ... TEMPLATE`` (a file-level copy)."""

    dialect = "postgresql"
    maintenance_database = "postgres"

    def _create_statement(self, name: str) -> str:
        return f'CREATE DATABASE "{name}"'

    def clone(self, source: str, name: str) -> URL:
        self._check_own(name)
        with self.admin() as conn:
            self._drop(conn, name)
            self._disconnect(conn, source)
            conn.exec_driver_sql(f'CREATE DATABASE "{name}" TEMPLATE "{source}"')
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


class MySQLBackend(ServerBackend):
    """``CREATE DATABASE``; MySQL has no templates, so a clone copies each table's DDL and rows."""

    dialect = "mysql"

    def _create_statement(self, name: str) -> str:
        return f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4"

    def clone(self, source: str, name: str) -> URL:
        self.create(name)
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
                conn.exec_driver_sql(ddl)
                conn.exec_driver_sql(f"INSERT INTO `{name}`.`{table}` SELECT * FROM `{source}`.`{table}`")
            for view in views:
                ddl = conn.exec_driver_sql(f"SHOW CREATE VIEW `{source}`.`{view}`").one()[1]
                conn.exec_driver_sql(f"USE `{name}`")
                conn.exec_driver_sql(ddl.replace(f"`{source}`.", f"`{name}`."))
            for (trigger,) in conn.execute(
                sa.text("SELECT TRIGGER_NAME FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = :s"), {"s": source}
            ).all():
                ddl = conn.exec_driver_sql(f"SHOW CREATE TRIGGER `{source}`.`{trigger}`").one()[2]
                conn.exec_driver_sql(f"USE `{name}`")
                conn.exec_driver_sql(ddl)
        return self.url(name)

    def _drop(self, conn: Connection, name: str) -> None:
        conn.exec_driver_sql(f"DROP DATABASE IF EXISTS `{name}`")
