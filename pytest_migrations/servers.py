"""The servers of one run: reached or started once, shared by every worker, stopped at the end.

The controller process (the only process without xdist) owns a :class:`ServerPool`: it
starts servers, holds a *run lock* on each (a PostgreSQL advisory lock, a MySQL named
lock) for as long as the run lives, removes what runs which died left behind, and stops
what it started. xdist workers receive the admin URLs (and the per-run user's, see
below) through ``workerinput`` and never start, clean or stop anything.

**Dead-run clean-up** drops a database only when all of these hold: its name has the
plugin's exact form (:data:`~pytest_migrations.backends.OWN_DATABASE`), it carries the
plugin's marker (:func:`~pytest_migrations.backends.marker`) naming the same run id as
the name, and that run's lock is free. A user database that merely starts with
``pytest_migrations_``, a well-formed name without the marker (made by hand, or on a
server without database comments such as MySQL 8), a marker of another run: all are
left alone. Lock keys are computed from the run id alone (8 hex characters), the same
in every process.

**MySQL/MariaDB** migrations run as a per-run user ``pm_<run>`` limited to the run's
databases (see :mod:`pytest_migrations.backends.server`), made by the controller after
it took the run lock and dropped at :meth:`ServerPool.stop`; users ``pm_<run>`` of runs
whose lock is free are dropped by the dead-run clean-up. When the URL's user may not
create users, migrations run as that user, and the report header says so.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import MetaData
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.pool import NullPool

from .backends import PREFIX, RUN_ID, Backend, run_id, run_of
from .backends.server import MySQLBackend, PostgreSQLBackend, ServerBackend
from .backends.sqlite import SQLiteBackend
from .data import DataSettings
from .exceptions import ProviderError
from .harness import Harness
from .policy import Policy
from .project import AlembicProject
from .providers import Server, start_server, with_driver
from .urls import mask

BACKENDS: dict[str, type[ServerBackend]] = {"postgresql": PostgreSQLBackend, "mysql": MySQLBackend}
_LOCK_CLASS = 0x706D  # first key of the PostgreSQL advisory lock: "pm"


def backend_for(server: Server) -> ServerBackend:
    """The backend of ``server``: admin work on its admin URL, databases handed out with its run user's."""
    return BACKENDS[server.dialect](server.admin_url, source=server.source, run_url=server.run_url)


def run_lock_key(run: str) -> int:
    """The second key of run ``run``'s PostgreSQL advisory lock: its 32 bits as a signed int4, the same everywhere."""
    if not RUN_ID.match(run):
        raise ValueError(f"not a run id: {run!r}")
    value = int(run, 16)
    return value - 2**32 if value >= 2**31 else value


def run_lock_name(run: str) -> str:
    """The MySQL named lock of run ``run``."""
    if not RUN_ID.match(run):
        raise ValueError(f"not a run id: {run!r}")
    return f"{PREFIX}_{run}"


@dataclass(repr=False)
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
    unproven: list[str] = field(default_factory=list)
    """Databases named like a dead run's but without the plugin's marker: never dropped, only reported."""
    _locks: list[Connection] = field(default_factory=list)
    _engines: list[sa.Engine] = field(default_factory=list)
    _run_users: set[str] = field(default_factory=set)
    """Dialects on whose server this pool made the per-run user (dropped by :meth:`stop`)."""

    def __repr__(self) -> str:
        urls = {dialect: mask(url) for dialect, url in self.urls.items()}
        return f"<ServerPool urls={urls} provider={self.provider!r} owner={self.owner} servers={self.servers}>"

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
            line = f"{dialect} via {server.source} {server.detail or mask(server.admin_url)}".strip()
            return f"{line} ({server.run_user_note})" if server.run_user_note else line
        if dialect in self.urls:
            shown: str | sa.URL = self.urls[dialect]
            with contextlib.suppress(sa.exc.ArgumentError):
                shown = with_driver(make_url(shown))  # the driver the migrations will use, named
            return f"{dialect} via url {mask(shown)}"
        how = self.provider if self.provider != "auto" else "container if Docker answers, else local"
        return f"{dialect} via {how} ({self.images[dialect]})"

    def _lock_and_clean(self, server: Server) -> None:
        backend = backend_for(server)
        try:
            engine = sa.create_engine(backend.server_url, poolclass=NullPool, isolation_level="AUTOCOMMIT")
            self._engines.append(engine)
            with backend.admin():  # a clear ProviderError when the server cannot be reached
                pass
            lock = engine.connect()
            self._locks.append(lock)
            run = run_id()
            if not _try_lock(lock, server.dialect, run):
                # Another pool of this very run (same run id) holds it: it cleans, and owns the per-run user.
                if isinstance(backend, MySQLBackend):
                    server.run_user_note = (
                        f"migrations run as {server.admin_url.username or 'the URL user'}: another process of run "
                        f"{run} holds its lock and its per-run user"
                    )
                return
            self._remove_dead_databases(backend, engine, run)
            if isinstance(backend, PostgreSQLBackend):
                self._remove_dead_roles(backend, engine, run)
            if isinstance(backend, MySQLBackend):
                self._remove_dead_users(backend, engine, run)
                server.run_url, server.run_user_note = backend.create_run_user(run)
                if server.run_url is not None:
                    self._run_users.add(server.dialect)
        finally:
            backend.close()

    def _remove_dead_databases(self, backend: ServerBackend, engine: sa.Engine, run: str) -> None:
        """Drop the databases of dead runs: exact name form, the marker of the name's run, that run's lock free."""
        with backend.admin() as conn:
            found = backend.databases(conn)
        for name, marked in sorted(found.items()):
            other = run_of(name)
            if other is None or other == run or (marked is not None and marked != other):
                continue
            probe = engine.connect()
            try:
                # A database without a marker may be reported as left alone: a dead run's lock that another
                # run's sweep holds for the moment it probes the same name must not hide it.
                if _try_lock(probe, backend.dialect, other) or (
                    marked is None and _try_lock_again(probe, backend.dialect, other)
                ):
                    if marked is None and not backend.unmarked_is_ours(name):
                        # Not provably ours (no inner marker, and it holds something): left alone, reported.
                        self.unproven.append(f"{backend.dialect} {name}")
                        continue
                    backend.drop(name)
                    self.removed_leftovers += 1
            except sa.exc.DBAPIError:
                pass  # not ours to drop after all (another role owns it): left alone
            finally:
                probe.close()

    def _remove_dead_roles(self, backend: PostgreSQLBackend, engine: sa.Engine, run: str) -> None:
        """Drop the roles dead runs' migrations created (the plugin's marker names the run; its lock is free)."""
        with backend.admin() as conn:
            runs = set(backend.marked_roles(conn).values())
        _for_dead_runs(engine, backend.dialect, runs - {run}, backend.drop_roles)

    def _remove_dead_users(self, backend: MySQLBackend, engine: sa.Engine, run: str) -> None:
        """Drop the per-run users ``pm_<run>`` of runs whose lock is free."""
        with backend.admin() as conn:
            runs = set(backend.run_users(conn))
        _for_dead_runs(engine, backend.dialect, runs - {run}, backend.drop_run_user)

    def stop(self) -> None:
        """Drop what this run left (a killed worker's, an interrupted walk's) and its user; unlock; stop servers."""
        if self.owner:
            for server in self.servers.values():
                try:
                    self._drop_run_databases(server)
                except Exception:
                    pass
                if server.dialect in self._run_users:
                    try:
                        self._drop_run_user(server)
                    except Exception:
                        pass
            self._run_users.clear()
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
        """Drop every database of this run: the exact name form with this run's id (the run lock is ours)."""
        backend = backend_for(server)
        run = run_id()
        try:
            with backend.admin() as conn:
                names = [n for n in backend.databases(conn) if run_of(n) == run]
            for name in names:
                backend.drop(name)
            if isinstance(backend, PostgreSQLBackend):
                backend.drop_roles(run)  # what a killed worker's migrations created
        finally:
            backend.close()

    def _drop_run_user(self, server: Server) -> None:
        backend = backend_for(server)
        try:
            if isinstance(backend, MySQLBackend):
                backend.drop_run_user(run_id())
        finally:
            backend.close()

    def to_workerinput(self) -> dict[str, Any]:
        return {
            "run": run_id(),
            "servers": {
                d: {
                    "admin_url": s.admin_url.render_as_string(hide_password=False),
                    "source": s.source,
                    "detail": s.detail,
                    "run_url": s.run_url.render_as_string(hide_password=False) if s.run_url is not None else None,
                    "run_user_note": s.run_user_note,
                }
                for d, s in self.servers.items()
            },
        }

    @classmethod
    def from_workerinput(cls, data: dict[str, Any], base: ServerPool) -> ServerPool:
        pool = cls(base.urls, base.provider, base.images, base.timeout, base.workdir, owner=False)
        os.environ["PYTEST_MIGRATIONS_RUN_ID"] = data["run"]  # database names carry the controller's run id
        for dialect, given in data.get("servers", {}).items():
            run_url = given.get("run_url")
            pool.servers[dialect] = Server(
                dialect,
                make_url(given["admin_url"]),
                given["source"],
                given.get("detail", ""),
                run_url=make_url(run_url) if run_url else None,
                run_user_note=given.get("run_user_note", ""),
            )
        return pool


def _for_dead_runs(engine: sa.Engine, dialect: str, runs: set[str], action: Callable[[str], None]) -> None:
    """``action(run)`` for each of ``runs`` whose run lock is free (the run is dead); errors leave it alone."""
    for other in sorted(runs):
        probe = engine.connect()
        try:
            if _try_lock(probe, dialect, other):
                action(other)
        except sa.exc.DBAPIError:
            pass
        finally:
            probe.close()


def _try_lock(conn: Connection, dialect: str, run: str) -> bool:
    """Take the run lock of ``run`` on ``conn``; ``False`` when another session holds it."""
    if dialect == "postgresql":
        query = sa.text("SELECT pg_try_advisory_lock(:c, :k)")
        return bool(conn.execute(query, {"c": _LOCK_CLASS, "k": run_lock_key(run)}).scalar())
    return conn.execute(sa.text("SELECT GET_LOCK(:n, 0)"), {"n": run_lock_name(run)}).scalar() == 1


def _try_lock_again(conn: Connection, dialect: str, run: str, attempts: int = 5, wait: float = 0.05) -> bool:
    """:func:`_try_lock` for a quarter of a second: another run sweeping dead runs holds a dead
    run's lock only while it probes one of its databases; a live run holds it throughout."""
    for _ in range(attempts):
        time.sleep(wait)
        if _try_lock(conn, dialect, run):
            return True
    return False


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
        data: DataSettings | None = None,
        mysql_schemas: tuple[str, ...] = (),
    ) -> None:
        self.project = project
        self.data = data
        self.mysql_schemas = mysql_schemas
        self.baseline = baseline
        self.policy = policy
        self.step_timeout = step_timeout
        self.pool = pool
        self.sqlite_dir = sqlite_dir
        self.worker = worker
        self._harnesses: dict[str, Harness] = {}
        self._errors: dict[str, ProviderError] = {}
        """Why a database kind cannot be had in this process, once seen: every later item fails with it at once."""

    def get(self, dialect: str) -> Harness:
        """The harness of ``dialect``.

        :raises ProviderError: its server cannot be had, or its user may not create
            databases; remembered, so every later call raises the same one at once.
        """
        error = self._errors.get(dialect)
        harness = self._harnesses.get(dialect)
        if error is None and harness is not None:
            error = getattr(harness.backend, "failure", None)
            if error is not None:
                self._errors[dialect] = error
        if error is not None:
            raise error.with_traceback(None)
        if harness is None:
            if dialect == "sqlite":
                backend: Backend = SQLiteBackend(self.sqlite_dir)
            else:
                try:
                    backend = backend_for(self.pool.get(dialect))
                except ProviderError as exc:
                    self._errors[dialect] = exc
                    raise
            self._harnesses[dialect] = Harness(
                self.project,
                backend,
                worker=self.worker,
                checkpoint_every=CHECKPOINT_EVERY[dialect],
                baseline=self.baseline,
                policy=self.policy,
                step_timeout=self.step_timeout,
                data=self.data,
                mysql_schemas=self.mysql_schemas,
            )
        return self._harnesses[dialect]

    def close(self) -> None:
        for harness in self._harnesses.values():
            harness.close()
        self._harnesses.clear()
