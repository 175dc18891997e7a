"""The sandbox: while user code runs, every database connection is checked where it lands.

env.py and migrations are arbitrary code. Handing env.py the URL of a throwaway database
and checking the URL of the connection it configures (see :func:`.envrun.guard`) is not
enough: an engine can be built with ``connect_args={"dbname": "victim"}``, env.py can
write through an engine of its own before it configures the context, and a migration can
open an engine on ``os.environ["OTHER_URL"]``. So while env.py runs (and every migration
inside it), each new DBAPI connection made through SQLAlchemy, by any engine, is asked
*by the server* which database it is in (``current_database()``, ``DATABASE()``,
``PRAGMA database_list``) before any statement of the user's runs on it; anything but
the run's own throwaway databases is refused with :class:`UnsafeConnection`.

The check is per thread of execution (a context variable), so the user's other tests,
running in the main thread while an env.py run stays open in its own thread, connect
wherever they like.

On SQLite an authorizer also refuses ``ATTACH`` of any file outside the plugin's own
directories. What is not covered: connections made outside SQLAlchemy (a raw
``psycopg2.connect()``), and statements that reach other databases over an allowed
connection on PostgreSQL (``dblink``) — on MySQL/MariaDB those are fenced by the
server, see :mod:`.backends.server`.

Statements of user code that create or drop PostgreSQL roles (server-wide objects) are
also followed here, for :mod:`.roles`.
"""

from __future__ import annotations

import functools
import os
import sqlite3
import sysconfig
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import URL, Engine

from . import roles
from .exceptions import UnsafeTargetError
from .probe import PLACEHOLDER_DATABASE


class UnsafeConnection(UnsafeTargetError):
    """User code connected to a database the plugin did not create; refused before any statement ran."""


@dataclass(frozen=True)
class Allowed:
    """Where connections made by user code may land."""

    names: frozenset[str]
    """Server database names (PostgreSQL, MySQL) of the run's throwaway databases."""
    files: frozenset[str]
    """Real paths of its SQLite database files."""
    directories: frozenset[str]
    """Folders whose SQLite files are the plugin's (``ATTACH`` of those is allowed)."""

    @classmethod
    def of(cls, urls: Iterator[URL] | list[URL], directories: frozenset[str] = frozenset()) -> Allowed:
        names, files = set(), set()
        for url in urls:
            if url.get_backend_name() == "sqlite":
                files.add(os.path.realpath(url.database or ""))
            elif url.database:
                names.add(url.database)
        return cls(frozenset(names), frozenset(files), directories)


_allowed: ContextVar[Allowed | None] = ContextVar("pytest_migrations_sandbox", default=None)
_installed = False


@contextmanager
def sandboxed(allowed: Allowed) -> Iterator[None]:
    """Check every connection made in this thread of execution against ``allowed`` until the block ends."""
    install()
    token = _allowed.set(allowed)
    try:
        yield
    finally:
        _allowed.reset(token)


def install() -> None:
    """Listen to every engine's new connections (once per process)."""
    global _installed
    if not _installed:
        event.listen(Engine, "do_connect", _check_sqlite_target)
        event.listen(Engine, "connect", _check_landing)
        event.listen(Engine, "checkout", _check_checkout)
        event.listen(Engine, "before_cursor_execute", _before_statement, retval=True)
        event.listen(Engine, "after_cursor_execute", _after_statement)
        _installed = True


_ROLES_PENDING = "pytest_migrations_roles"


_observer: ContextVar[Callable[[Any], None] | None] = ContextVar("pytest_migrations_observer", default=None)


@contextmanager
def observing(callback: Callable[[Any], None]) -> Iterator[None]:
    """Call ``callback(connection)`` before each statement user code sends in this thread of execution."""
    install()
    token = _observer.set(callback)
    try:
        yield
    finally:
        _observer.reset(token)


def _before_statement(conn: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> tuple[str, Any]:
    """Statements of user code that create or drop PostgreSQL roles go through the ledger (see :mod:`.roles`)."""
    observer = _observer.get()
    if observer is not None:
        observer(conn)
    if _allowed.get() is None or conn.dialect.name != "postgresql" or not roles.mentions_roles(statement):
        return statement, parameters
    cursor = conn.connection.cursor()
    try:
        statement, pending = roles.LEDGER.before(cursor, statement)
    finally:
        cursor.close()
    if pending is not None:
        conn.info[_ROLES_PENDING] = pending
    return statement, parameters


def _after_statement(conn: Any, *_: Any) -> None:
    pending = conn.info.pop(_ROLES_PENDING, None) if conn.info else None
    if pending is not None:
        cursor = conn.connection.cursor()
        try:
            roles.LEDGER.after(cursor, pending)
        finally:
            cursor.close()


def _kind(dbapi_connection: Any) -> str:
    module = type(dbapi_connection).__module__.lower()
    if isinstance(dbapi_connection, sqlite3.Connection) or "sqlite" in module:
        return "sqlite"
    if "mysql" in module or "maria" in module:
        return "mysql"
    return "postgresql"


def _ask(dbapi_connection: Any, query: str) -> list[tuple[Any, ...]]:
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute(query)
        return [tuple(row) for row in cursor.fetchall()]
    finally:
        cursor.close()


_CHECKED = "pytest_migrations_checked"


def _check_checkout(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
    """A pooled connection made before the sandbox began is checked when user code takes it."""
    allowed = _allowed.get()
    if allowed is not None and record.info.get(_CHECKED) is not allowed:
        _check_landing(dbapi_connection, record)


def _check_sqlite_target(dialect: Any, _record: Any, cargs: Any, cparams: dict[str, Any]) -> None:
    """A SQLite file outside the run is refused before the driver opens it: sqlite3 creates a missing
    file when it connects, and a refused connection must not leave an empty database behind (an
    application's own ``app.db`` where there was none). A ``file:`` URI is left to
    :func:`_check_landing`, which asks the connection where it landed."""
    allowed = _allowed.get()
    if allowed is None or dialect.name != "sqlite":
        return
    path = cparams.get("database", cargs[0] if cargs else "")
    if not isinstance(path, str) or path in ("", ":memory:") or cparams.get("uri") or path.startswith("file:"):
        return
    real = os.path.realpath(path)
    if real not in allowed.files:
        _refuse(f"the SQLite file {real}")


def _check_landing(dbapi_connection: Any, record: Any) -> None:
    allowed = _allowed.get()
    if allowed is None:
        return
    record.info[_CHECKED] = allowed
    kind = _kind(dbapi_connection)
    if kind == "sqlite":
        rows = _ask(dbapi_connection, "PRAGMA database_list")
        main = next((row[2] for row in rows if row[1] == "main"), "")
        if main and os.path.realpath(main) not in allowed.files:
            if PLACEHOLDER_DATABASE in Path(main).name and os.path.getsize(main) == 0:
                os.unlink(main)  # sqlite3 made the collection placeholder's file when it connected: never keep it
            _refuse(f"the SQLite file {main}")
        if isinstance(dbapi_connection, sqlite3.Connection):
            dbapi_connection.set_authorizer(_sqlite_authorizer(allowed))
        return
    query = "SELECT current_database()" if kind == "postgresql" else "SELECT DATABASE()"
    try:
        landed = _ask(dbapi_connection, query)[0][0]
    finally:
        dbapi_connection.rollback()  # the question must not open the user's transaction
    if landed not in allowed.names:
        _refuse(f"{kind} database {landed!r}" if landed else f"a {kind} connection with no database selected")


def _sqlite_authorizer(allowed: Allowed) -> Any:
    """Deny ATTACH of files outside ``allowed``, while a sandbox is active in the thread running the statement.

    A pooled connection keeps its authorizer after the sandbox ends: it then allows everything again.
    """

    def authorize(action: int, arg1: str | None, arg2: str | None, database: str | None, trigger: str | None) -> int:
        if action != sqlite3.SQLITE_ATTACH or not arg1 or arg1 == ":memory:" or _allowed.get() is None:
            return sqlite3.SQLITE_OK
        path = os.path.realpath(arg1)
        if path in allowed.files or os.path.dirname(path) in allowed.directories:
            return sqlite3.SQLITE_OK
        return sqlite3.SQLITE_DENY

    return authorize


def _refuse(where: str) -> None:
    if PLACEHOLDER_DATABASE in where:
        raise UnsafeConnection(
            f"{_culprit()} connected to {where}: the placeholder URL pytest-migrations gives env.py (and the "
            "migrations_url_variable) while it loads the revision files at collection. Something kept that URL "
            "from then, typically application settings read once at import and cached: make env.py build its "
            "engine from config.get_main_option('sqlalchemy.url') on every run, or reset the cached settings in "
            "the pytest_migrations_configure_alembic hook"
        )
    raise UnsafeConnection(
        f"{_culprit()} connected to {where}, which is not one of the throwaway databases pytest-migrations "
        "created for this run; the connection was refused before any statement ran on it, so that database is "
        "untouched. Make every connection use the URL the plugin gives env.py (config sqlalchemy.url, or "
        "config.attributes['connection']): no connect_args naming another database, no engine of its own on "
        "DATABASE_URL or a hard-coded URL (name the variable in migrations_url_variable instead), and in "
        "migrations use op.get_bind() rather than a new engine"
    )


def library_file(filename: str) -> bool:
    """Whether a stack frame's file is Alembic's, SQLAlchemy's, the plugin's, the standard library's or installed.

    By the packages' own folders, not by a folder name: ``alembic init alembic`` puts the
    user's env.py and revision files in a folder named ``alembic`` too.
    """
    if "site-packages" in filename or filename.startswith(("<frozen", "<string>")):
        return True
    return filename.startswith(_library_folders())


@functools.cache
def _library_folders() -> tuple[str, ...]:
    import alembic
    import sqlalchemy

    packages = [Path(module.__file__).parent for module in (alembic, sqlalchemy) if module.__file__]
    paths = sysconfig.get_paths()
    folders = {*map(str, packages), str(Path(__file__).parent), paths["stdlib"], paths["platstdlib"]}
    return tuple(folder.rstrip(os.sep) + os.sep for folder in folders)


def _culprit() -> str:
    """The innermost user file on the stack (a revision file or env.py), as ``path:line``."""
    for frame in reversed(traceback.extract_stack()):
        if not library_file(frame.filename):
            name = Path(frame.filename).name
            what = "env.py" if name == "env.py" else f"revision file {name}"
            return f"{what} (line {frame.lineno}: {frame.line})"
    return "user code"
