"""PostgreSQL roles that migrations create: kept with the database that made them, removed at the end.

A role is not in a database: it belongs to the whole server. A migration running
``CREATE ROLE app_reader`` on one of the run's throwaway databases changes every
database of the server, and a run holds several at once (the stairway's cursor, its
checkpoints, the fresh databases of whole walks). Left alone, the second database to
reach that revision fails with ``role "app_reader" already exists`` (a correct migration
reported broken), a downgrade that forgets ``DROP ROLE`` goes unseen, and the role stays
on the server after the run.

So while user code runs (see :mod:`.sandbox`), statements that create or drop roles
are followed, and the :class:`RoleLedger` of the process keeps, for each role user code
created, the databases whose state includes it (the one that created it, and its
clones). A role is thus treated like a schema object of those databases:

- **noticed**: a role that did not exist before a statement mentioning ``CREATE ROLE``
  (``USER``, ``GROUP``; also inside a ``DO`` block) and exists after it is the run's. It
  gets the plugin's marker as its comment (``pytest-migrations run <run>``), in the
  same transaction, so a later run can prove it is the plugin's;
- **compared**: it is part of the snapshot of the databases that hold it (its
  attributes: login, superuser, createdb, ...), so a downgrade that leaves it behind is
  a difference like a left-behind table;
- **kept apart**: before a database's migrations run, the roles of the process that
  database does not hold are renamed out of the way (``pm_<run>_r<oid>``), and its own
  get their names back. A role keeps its OID, and with it every grant, through a rename;
  a ``CREATE ROLE`` of the same name then makes the database's own role, and a
  ``DROP ROLE`` of a role other databases still hold (with nothing depending on it in
  this one) only takes it out of this database;
- **removed**: when the last database holding it is dropped, and at the end of the run
  (with the dead-run clean-up of :mod:`.servers` for killed runs, by the marker).

Not covered: roles two processes create under one name at once (two xdist workers
running the same revision): the second one's ``CREATE ROLE`` fails, and its report
says why.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from .backends import marker, run_id
from .schema import ObjectState

_NAME = r'"(?:[^"]|"")+"|[A-Za-z_][\w$]*'
_CREATES = re.compile(rf"\bCREATE\s+(?:ROLE|USER|GROUP)\s+(?P<name>{_NAME})", re.IGNORECASE)
_DROP = re.compile(
    rf"^\s*DROP\s+(?:ROLE|USER|GROUP)\s+(?P<exists>IF\s+EXISTS\s+)?(?P<names>(?:{_NAME})(?:\s*,\s*(?:{_NAME}))*)\s*;?\s*$",
    re.IGNORECASE,
)
_NAMES = re.compile(_NAME)
_NOT_ROLES = {"mapping"}  # CREATE USER MAPPING FOR ...

_ROLE_ATTRIBUTES = """
SELECT oid, rolname, concat_ws(' ', CASE WHEN rolsuper THEN 'superuser' END,
       CASE WHEN rolcanlogin THEN 'login' ELSE 'nologin' END, CASE WHEN rolcreatedb THEN 'createdb' END,
       CASE WHEN rolcreaterole THEN 'createrole' END,
       CASE WHEN NOT rolinherit THEN 'noinherit' END, CASE WHEN rolreplication THEN 'replication' END,
       CASE WHEN rolbypassrls THEN 'bypassrls' END,
       CASE WHEN rolconnlimit <> -1 THEN 'connection limit ' || rolconnlimit END)
FROM pg_roles WHERE oid = ANY(CAST(:oids AS oid[]))
"""


def mentions_roles(statement: str) -> bool:
    """A cheap first test: could this statement create or drop a role?"""
    upper = statement.upper()
    return ("ROLE" in upper or "USER" in upper or "GROUP" in upper) and ("CREATE" in upper or "DROP" in upper)


def _unquote(name: str) -> str:
    return name[1:-1].replace('""', '"') if name.startswith('"') else name.lower()


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def parked_name(oid: int) -> str:
    """The name a role has while the database in use does not hold it."""
    return f"pm_{run_id()}_r{oid}"


@dataclass
class Role:
    """A role user code created: its OID, the name the migration gave it, the databases holding it."""

    oid: int
    name: str
    holders: set[str] = field(default_factory=set)


@dataclass
class _Pending:
    database: str
    created: list[str]
    before: dict[str, int]


class RoleLedger:
    """The roles user code created in this process, and which of the process's databases hold each."""

    def __init__(self) -> None:
        self.roles: dict[int, Role] = {}
        self._lock = threading.Lock()

    def __bool__(self) -> bool:
        return bool(self.roles)

    # ------------------------------------------------------------------ statements of user code

    def before(self, cursor: Any, statement: str) -> tuple[str, _Pending | None]:
        """Called before a statement of user code that :func:`mentions_roles`; returns the statement to run.

        ``cursor`` is a DBAPI cursor on the statement's connection (in its transaction).
        """
        created = [n for m in _CREATES.finditer(statement) if (n := _unquote(m["name"])) not in _NOT_ROLES]
        drop = _DROP.match(statement)
        if not created and not drop:
            return statement, None
        database = _scalar(cursor, "SELECT current_database()")
        names = created + ([_unquote(n) for n in _NAMES.findall(drop["names"])] if drop else [])
        before = _oids(cursor, names)
        with self._lock:
            for name in created:
                # Another database's role of that name steps aside: this database makes its own.
                role = self.roles.get(before.get(name, -1))
                if role is not None and database not in role.holders:
                    _rename(cursor, name, parked_name(role.oid))
                    del before[name]
            if drop:
                statement = self._drop_shared(cursor, drop, database, before)
        return statement, _Pending(database, created, before) if created else None

    def _drop_shared(self, cursor: Any, drop: re.Match[str], database: str, oids: dict[str, int]) -> str:
        """A role other databases still hold leaves only this one: renamed away, not dropped."""
        kept = []
        for quoted in _NAMES.findall(drop["names"]):
            role = self.roles.get(oids.get(_unquote(quoted), -1))
            if role is None or database not in role.holders or role.holders == {database}:
                kept.append(quoted)
                continue
            depends = _scalar(
                cursor,
                "SELECT count(*) FROM pg_shdepend d JOIN pg_database db ON db.oid = d.dbid "
                f"WHERE d.refobjid = {role.oid} AND db.datname = current_database()",
            )
            if depends:
                kept.append(quoted)  # the DROP fails as it would in production: something here still needs it
                continue
            _rename(cursor, role.name, parked_name(role.oid))
            role.holders.discard(database)
        if not kept:
            return "SELECT 1"
        return f"DROP ROLE {'IF EXISTS ' if drop['exists'] else ''}{', '.join(kept)}"

    def after(self, cursor: Any, pending: _Pending) -> None:
        """Called after the statement ran: roles that are new are the run's (marked, held by this database)."""
        now = _oids(cursor, pending.created)
        with self._lock:
            for name, oid in now.items():
                if pending.before.get(name) == oid or oid in self.roles:
                    continue
                self.roles[oid] = Role(oid, name, {pending.database})
                _comment(cursor, name)

    # ------------------------------------------------------------------ the harness's databases

    def enter(self, admin: Connection, databases: Iterable[str]) -> None:
        """Before migrations run on ``databases``: their roles under their own names, the others out of the way."""
        if not self.roles:
            return
        using = set(databases)
        with self._lock:
            current = self._names(admin)
            mine = [role for role in self.roles.values() if role.holders & using and current.get(role.oid)]
            for role in mine:
                if current[role.oid] == role.name:
                    continue
                taken = next((oid for oid, name in current.items() if name == role.name), None)
                if taken is not None:
                    if taken not in self.roles:
                        continue  # a role that is not the run's has the name now: left as it is
                    admin.exec_driver_sql(f"ALTER ROLE {_quote(role.name)} RENAME TO {parked_name(taken)}")
                    current[taken] = parked_name(taken)
                admin.exec_driver_sql(f"ALTER ROLE {_quote(current[role.oid])} RENAME TO {_quote(role.name)}")
                current[role.oid] = role.name

    def cloned(self, source: str, clone: str) -> None:
        """A clone holds what its source holds."""
        with self._lock:
            for role in self.roles.values():
                if source in role.holders:
                    role.holders.add(clone)

    def released(self, admin: Connection, database: str) -> None:
        """``database`` was dropped: roles no database holds any more are dropped too."""
        with self._lock:
            for role in list(self.roles.values()):
                role.holders.discard(database)
                if not role.holders:
                    self._drop(admin, role)

    def close(self, admin: Connection) -> None:
        """Drop every role of the ledger (the process's databases are gone)."""
        with self._lock:
            for role in list(self.roles.values()):
                self._drop(admin, role)

    def _drop(self, admin: Connection, role: Role) -> None:
        name = self._names(admin).get(role.oid)
        if name is None:
            del self.roles[role.oid]
            return
        try:
            admin.exec_driver_sql(f"DROP ROLE {_quote(name)}")
        except sa.exc.DBAPIError:
            return  # still needed somewhere (a database not dropped yet): the run's end drops it
        del self.roles[role.oid]

    def _names(self, conn: Connection) -> dict[int, str]:
        query = sa.text("SELECT oid, rolname FROM pg_roles WHERE oid = ANY(CAST(:o AS oid[]))")
        rows = conn.execute(query, {"o": list(self.roles)})
        return {int(oid): str(name) for oid, name in rows}

    # ------------------------------------------------------------------ snapshots

    def states(self, connection: Connection) -> Iterator[tuple[tuple[str, str], ObjectState]]:
        """The roles the database of ``connection`` holds, as schema objects (by the name the migration gave)."""
        if not self.roles:
            return
        database = connection.exec_driver_sql("SELECT current_database()").scalar()
        with self._lock:
            held = {oid: role for oid, role in self.roles.items() if database in role.holders}
        if not held:
            return
        for oid, _name, attributes in connection.execute(sa.text(_ROLE_ATTRIBUTES), {"oids": list(held)}):
            name = held[int(oid)].name
            yield ("role", name), ObjectState("role", name, frozenset({("attributes", attributes)}))


LEDGER = RoleLedger()
"""The roles of this process (one per process, like the sandbox's listeners)."""


def _scalar(cursor: Any, query: str) -> Any:
    cursor.execute(query)
    return cursor.fetchone()[0]


def _oids(cursor: Any, names: list[str]) -> dict[str, int]:
    if not names:
        return {}
    literals = ", ".join("'" + name.replace("'", "''") + "'" for name in names)  # no paramstyle: any driver
    cursor.execute(f"SELECT rolname, oid FROM pg_roles WHERE rolname IN ({literals})")
    return {str(name): int(oid) for name, oid in cursor.fetchall()}


def _rename(cursor: Any, old: str, new: str) -> None:
    cursor.execute(f"ALTER ROLE {_quote(old)} RENAME TO {_quote(new)}")


def _comment(cursor: Any, name: str) -> None:
    """The plugin's marker on the role, in a savepoint: a role we may not comment on stays unmarked."""
    try:
        cursor.execute("SAVEPOINT pytest_migrations_role")
    except Exception:  # no transaction (autocommit): a failure aborts nothing
        try:
            cursor.execute(f"COMMENT ON ROLE {_quote(name)} IS '{marker(run_id())}'")
        except Exception:
            pass
        return
    try:
        cursor.execute(f"COMMENT ON ROLE {_quote(name)} IS '{marker(run_id())}'")
        cursor.execute("RELEASE SAVEPOINT pytest_migrations_role")
    except Exception:
        cursor.execute("ROLLBACK TO SAVEPOINT pytest_migrations_role")
