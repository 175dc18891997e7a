"""The servers of one run: reached or started once, shared by every worker, stopped at the end.

The controller process (the only process without xdist) owns a :class:`ServerPool`: it
starts servers, holds a *run lock* on each (a PostgreSQL advisory lock, a MySQL named
lock) for as long as the run lives, removes databases that runs which died left behind
(their lock is free), and stops what it started. xdist workers receive the admin URLs
through ``workerinput`` and never start or stop anything.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import MetaData
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.pool import NullPool

from .backends import PREFIX, Backend, run_id
from .backends.server import MySQLBackend, PostgreSQLBackend, ServerBackend
from .backends.sqlite import SQLiteBackend
from .exceptions import ProviderError
from .harness import Harness
from .policy import Policy
from .project import AlembicProject
from .providers import Server, start_server
from .urls import mask

BACKENDS: dict[str, type[ServerBackend]] = {"postgresql": PostgreSQLBackend, "mysql": MySQLBackend}
_LOCK_CLASS = 0x706D  # first key of the PostgreSQL advisory lock: "pm"


def backend_for(server: Server) -> ServerBackend:
    return BACKENDS[server.dialect](server.admin_url, source=server.source)


def _pg_key(run: str) -> int:
    return int(run, 16) % (2**31) if all(c in "0123456789abcdef" for c in run) else abs(hash(run)) % (2**31)


@dataclass
class ServerPool:
    """Servers by dialect. ``owner`` pools (the controller) start, lock, clean and stop them."""

    urls: dict[str, str]
    provider: str
    images: dict[str, str]
    timeout: float = 60.0
    workdir: Path | None = None
    owner: bool = True
    servers: dict[str, Server] = field(default_factory=dict)
    removed_leftovers: int = 0
    _locks: list[Connection] = field(default_factory=list)
    _engines: list[sa.Engine] = field(default_factory=list)

    def get(self, dialect: str) -> Server:
        if dialect not in self.servers:
            if not self.owner:
                raise ProviderError(
                    f"no {dialect} server was started for this xdist run: add --migrations-db {dialect} "
                    "(or migrations_db in the ini) so that the controller starts one and shares it with the workers"
                )
            server = start_server(
                dialect, self.provider, self.urls.get(dialect), self.images[dialect], self.workdir, self.timeout
            )
            self.servers[dialect] = server
            try:
                self._lock_and_clean(server)
            except BaseException:
                self.stop()
                raise
        return self.servers[dialect]

    def describe(self, dialect: str) -> str:
        server = self.servers.get(dialect)
        if server is not None:
            return f"{dialect} via {server.source} {server.detail or mask(server.admin_url)}".strip()
        if dialect in self.urls:
            return f"{dialect} via url {mask(self.urls[dialect])}"
        how = self.provider if self.provider != "auto" else "container if Docker answers, else local"
        return f"{dialect} via {how} ({self.images[dialect]})"

    def _lock_and_clean(self, server: Server) -> None:
        backend = backend_for(server)
        engine = sa.create_engine(backend.server_url, poolclass=NullPool, isolation_level="AUTOCOMMIT")
        self._engines.append(engine)
        with backend.admin():  # a clear ProviderError when the server cannot be reached
            pass
        lock = engine.connect()
        self._locks.append(lock)
        run = run_id()
        if not _try_lock(lock, server.dialect, run):
            return
        for name in _own_databases(lock, server.dialect):
            other = name[len(PREFIX) + 1 :].split("_", 1)[0]
            if other == run:
                continue
            probe = engine.connect()
            try:
                if _try_lock(probe, server.dialect, other):
                    backend.drop(name)
                    self.removed_leftovers += 1
            finally:
                probe.close()
        backend.close()

    def stop(self) -> None:
        """Drop what this run left (a killed worker's, an interrupted walk's), release the locks, stop servers."""
        if self.owner:
            for server in self.servers.values():
                try:
                    self._drop_run_databases(server)
                except Exception:
                    pass
        for lock in self._locks:
            try:
                lock.close()
            except Exception:
                pass
        self._locks.clear()
        for engine in self._engines:
            engine.dispose()
        self._engines.clear()
        for server in self.servers.values():
            if self.owner and server.stop is not None:
                server.stop()
        self.servers.clear()

    def _drop_run_databases(self, server: Server) -> None:
        backend = backend_for(server)
        run = run_id()
        try:
            with backend.admin() as conn:
                names = [n for n in _own_databases(conn, server.dialect) if n.startswith(f"{PREFIX}_{run}_")]
            for name in names:
                backend.drop(name)
        finally:
            backend.close()

    def to_workerinput(self) -> dict[str, Any]:
        return {
            "run": run_id(),
            "servers": {
                d: [s.admin_url.render_as_string(hide_password=False), s.source, s.detail]
                for d, s in self.servers.items()
            },
        }

    @classmethod
    def from_workerinput(cls, data: dict[str, Any], base: ServerPool) -> ServerPool:
        pool = cls(base.urls, base.provider, base.images, base.timeout, base.workdir, owner=False)
        os.environ["PYTEST_MIGRATIONS_RUN_ID"] = data["run"]  # database names carry the controller's run id
        for dialect, (url, source, detail) in data.get("servers", {}).items():
            pool.servers[dialect] = Server(dialect, make_url(url), source, detail)
        return pool


def _try_lock(conn: Connection, dialect: str, run: str) -> bool:
    """Take the run lock of ``run`` on ``conn``; ``False`` when another session holds it."""
    if dialect == "postgresql":
        query = sa.text("SELECT pg_try_advisory_lock(:c, :k)")
        return bool(conn.execute(query, {"c": _LOCK_CLASS, "k": _pg_key(run)}).scalar())
    return conn.execute(sa.text("SELECT GET_LOCK(:n, 0)"), {"n": f"{PREFIX}_{run}"}).scalar() == 1


def _own_databases(conn: Connection, dialect: str) -> list[str]:
    if dialect == "postgresql":
        query = sa.text("SELECT datname FROM pg_database WHERE starts_with(datname, :p)")
    else:
        query = sa.text("SELECT SCHEMA_NAME FROM information_schema.SCHEMATA WHERE LEFT(SCHEMA_NAME, :n) = :p")
    prefix = f"{PREFIX}_"
    return [row[0] for row in conn.execute(query, {"p": prefix, "n": len(prefix)})]


CHECKPOINT_EVERY = {"sqlite": 8, "postgresql": 64, "mysql": 64}
"""Positions between checkpoints: a clone is a file copy on SQLite, costlier on servers."""


class Harnesses:
    """One :class:`~pytest_migrations.harness.Harness` per database kind, made on first use."""

    def __init__(
        self,
        project: AlembicProject,
        pool: ServerPool,
        sqlite_dir: Path,
        worker: str | None,
        baseline: MetaData | None = None,
        policy: Policy | None = None,
        step_timeout: float | None = None,
    ) -> None:
        self.project = project
        self.baseline = baseline
        self.policy = policy
        self.step_timeout = step_timeout
        self.pool = pool
        self.sqlite_dir = sqlite_dir
        self.worker = worker
        self._harnesses: dict[str, Harness] = {}

    def get(self, dialect: str) -> Harness:
        if dialect not in self._harnesses:
            if dialect == "sqlite":
                backend: Backend = SQLiteBackend(self.sqlite_dir)
            else:
                backend = backend_for(self.pool.get(dialect))
            self._harnesses[dialect] = Harness(
                self.project,
                backend,
                worker=self.worker,
                checkpoint_every=CHECKPOINT_EVERY[dialect],
                baseline=self.baseline,
                policy=self.policy,
                step_timeout=self.step_timeout,
            )
        return self._harnesses[dialect]

    def close(self) -> None:
        for harness in self._harnesses.values():
            harness.close()
        self._harnesses.clear()
