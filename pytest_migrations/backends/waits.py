"""What a stuck step waits on, and how to stop it, on PostgreSQL and MySQL/MariaDB.

Used by the watchdog (see :mod:`pytest_migrations.watchdog`) through the admin
connection of a :class:`~pytest_migrations.backends.server.ServerBackend`: only
sessions connected to the run's own throwaway databases are looked at or cancelled.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa

_PG_SESSIONS = """
SELECT pid, state, wait_event_type, wait_event, left(query, 300), pg_blocking_pids(pid), datname
FROM pg_stat_activity WHERE datname = ANY(CAST(:names AS name[])) AND pid <> pg_backend_pid()
"""
_PG_BLOCKERS = (
    "SELECT pid, datname, state, left(query, 300) FROM pg_stat_activity WHERE pid = ANY(CAST(:pids AS int[]))"
)
_PG_CANCEL = (
    "SELECT pg_cancel_backend(pid) FROM pg_stat_activity WHERE datname = ANY(CAST(:names AS name[])) "
    "AND state = 'active' AND pid <> pg_backend_pid()"
)
_MYSQL_SESSIONS = (
    "SELECT ID, DB, COMMAND, TIME, STATE, LEFT(INFO, 300) FROM information_schema.PROCESSLIST "
    "WHERE DB IN :names AND ID <> CONNECTION_ID()"
)


class ServerCanceller:
    """Cancels and explains what runs on some databases of one server (the watchdog's :class:`Canceller`)."""

    def __init__(self, backend: Any, names: Sequence[str]) -> None:
        self.backend = backend
        self.names = list(names)

    def describe_waits(self) -> str | None:
        with self.backend.admin() as conn:
            if self.backend.dialect == "postgresql":
                return _pg_waits(conn, self.names)
            return _mysql_waits(conn, self.names)

    def cancel(self) -> None:
        with self.backend.admin() as conn:
            if self.backend.dialect == "postgresql":
                conn.execute(sa.text(_PG_CANCEL), {"names": self.names})
                return
            query = sa.text(_MYSQL_SESSIONS).bindparams(sa.bindparam("names", expanding=True))
            for row in conn.execute(query, {"names": self.names}):
                if row[2] == "Query":
                    conn.exec_driver_sql(f"KILL QUERY {int(row[0])}")


def _pg_waits(conn: sa.Connection, names: list[str]) -> str | None:
    sessions = conn.execute(sa.text(_PG_SESSIONS), {"names": names}).all()
    lines = []
    for pid, state, wait_type, wait_event, query, blockers, database in sessions:
        if state != "active":
            continue
        what = f"`{query}` (server pid {pid})"
        if wait_type == "Lock" and blockers:
            for bpid, bdb, bstate, bquery in conn.execute(sa.text(_PG_BLOCKERS), {"pids": list(blockers)}):
                if bdb == database:
                    lines.append(
                        f"{what} waits for a lock held by another connection of this same migration (server pid "
                        f"{bpid}, {bstate}, last statement `{bquery}`): a migration that opens a second connection "
                        "(op.get_bind().engine.connect(), a new engine) and waits on it while its own transaction "
                        "holds the lock deadlocks itself; run everything on op.get_bind()"
                    )
                else:
                    lines.append(f"{what} waits for a lock held by server pid {bpid} of database {bdb} ({bstate})")
        elif wait_type:
            lines.append(f"{what} waits on {wait_type}/{wait_event}")
        else:
            lines.append(f"{what} is running")
    return "\n".join(lines) or None


def _mysql_waits(conn: sa.Connection, names: list[str]) -> str | None:
    query = sa.text(_MYSQL_SESSIONS).bindparams(sa.bindparam("names", expanding=True))
    rows = conn.execute(query, {"names": names}).all()
    waiting = [r for r in rows if r[2] == "Query" and r[4] and "wait" in str(r[4]).lower()]
    others = [r for r in rows if r not in waiting]
    lines = [f"`{r[5]}` (connection {r[0]}) is {r[4]} for {r[3]} s" for r in waiting]
    if waiting and others:
        held = ", ".join(f"connection {r[0]} ({r[2]}{': ' + str(r[5]) if r[5] else ''})" for r in others)
        lines.append(
            f"other connections to this throwaway database, opened by this same migration: {held}; a migration "
            "that waits on a second connection while its own transaction holds the lock deadlocks itself: run "
            "everything on op.get_bind()"
        )
    if not lines:
        lines = [f"`{r[5]}` (connection {r[0]}) is running: {r[4] or r[2]}" for r in rows if r[2] == "Query"]
    return "\n".join(lines) or None
