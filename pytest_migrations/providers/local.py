"""Throwaway server processes for machines with the database installed but no Docker.

PostgreSQL: ``initdb`` then ``pg_ctl start`` in a temporary directory, on a free port,
with durability off (``fsync=off``): a test server needs none. MariaDB/MySQL:
``mariadb-install-db`` then ``mariadbd``. Each directory holds ``owner.pid`` (the pytest
process); :func:`remove_stale` stops the servers of runs that died and removes their
directories. As root, the server runs as the ``postgres``/``mysql`` user, as initdb
refuses root.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import URL
from sqlalchemy.pool import NullPool

from ..exceptions import ProviderError
from . import Server, driver_for

PREFIX = "pytest-migrations-"
_BINARIES = {"postgresql": ("initdb", "pg_ctl"), "mysql": ("mariadb-install-db", "mariadbd")}
_ALTERNATIVES = {"mariadb-install-db": ("mysql_install_db",), "mariadbd": ("mysqld",)}


def _find(name: str) -> str | None:
    for candidate in (name, *_ALTERNATIVES.get(name, ())):
        found = shutil.which(candidate)
        if found:
            return str(found)
        for directory in (
            "/usr/sbin",
            "/usr/local/sbin",
            *sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True),
        ):
            path = Path(directory, candidate)
            if path.is_file() and os.access(path, os.X_OK):
                return str(path)
    return None


def binaries_available(dialect: str) -> bool:
    return all(_find(b) for b in _BINARIES[dialect])


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _service_user(dialect: str) -> pwd.struct_passwd | None:
    """As root, the account the server runs as; otherwise ``None`` (run as ourselves)."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody") if dialect == "postgresql" else ("mysql", "root"):
        try:
            return pwd.getpwnam(name)
        except KeyError:
            continue
    return None


def _run(args: list[str], user: pwd.struct_passwd | None, log: Path) -> None:
    def demote() -> None:
        if user is not None and user.pw_uid != 0:
            os.setgid(user.pw_gid)
            os.setuid(user.pw_uid)

    with log.open("ab") as out:
        result = subprocess.run(args, stdout=out, stderr=subprocess.STDOUT, preexec_fn=demote, check=False, timeout=120)
    if result.returncode != 0:
        raise ProviderError(f"{Path(args[0]).name} failed (exit {result.returncode}):\n{_tail(log)}")


def _tail(log: Path, size: int = 2000) -> str:
    try:
        return log.read_text(errors="replace")[-size:]
    except OSError:
        return "(no log)"


def _wait(url: URL, log: Path, timeout: float = 60.0) -> None:
    engine = sa.create_engine(url, poolclass=NullPool)
    deadline = time.monotonic() + timeout
    try:
        while True:
            try:
                with engine.connect():
                    return
            except sa.exc.OperationalError:
                if time.monotonic() > deadline:
                    raise ProviderError(
                        f"the local server did not accept connections within {timeout:.0f} s; log tail:\n{_tail(log)}"
                    ) from None
                time.sleep(0.2)
    finally:
        engine.dispose()


def start(dialect: str, workdir: Path | None = None, timeout: float = 60.0) -> Server:
    missing = [b for b in _BINARIES[dialect] if _find(b) is None]
    if missing:
        package = "postgresql (e.g. apt-get install postgresql)" if dialect == "postgresql" else "mariadb-server"
        raise ProviderError(
            f"cannot start a local {dialect} server: {', '.join(missing)} not found on PATH or in the usual places; "
            f"install {package}, or pass a server URL with --migrations-url, or use Docker"
        )
    remove_stale()
    root = Path(tempfile.mkdtemp(prefix=f"{PREFIX}{dialect}-", dir=workdir))
    (root / "owner.pid").write_text(str(os.getpid()))
    user = _service_user(dialect)
    if user is not None:
        os.chmod(root, 0o755)
        os.chown(root, user.pw_uid, user.pw_gid)
    try:
        if dialect == "postgresql":
            return _start_postgresql(root, user, timeout)
        return _start_mysql(root, user, timeout)
    except BaseException:
        _stop_dir(root)
        raise


def _start_postgresql(root: Path, user: pwd.struct_passwd | None, timeout: float) -> Server:
    initdb, pg_ctl = _find("initdb"), _find("pg_ctl")
    assert initdb and pg_ctl
    # commands.log is ours (root may own it); postgres.log must be writable by the server's user.
    data, log, server_log, port = root / "data", root / "commands.log", root / "postgres.log", _free_port()
    _run([initdb, "-D", str(data), "-U", "postgres", "-A", "trust", "-E", "UTF8", "--no-sync", "--locale=C"], user, log)
    options = (
        f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off "
        "-c full_page_writes=off -c max_connections=200"
    )
    try:
        _run(
            [pg_ctl, "-D", str(data), "-l", str(server_log), "-o", options, "-w", "-t", str(int(timeout)), "start"],
            user,
            log,
        )
    except ProviderError as exc:
        raise ProviderError(f"{exc}\npostgres log tail:\n{_tail(server_log)}") from None
    url = URL.create(driver_for("postgresql"), username="postgres", host="127.0.0.1", port=port, database="postgres")
    _wait(url, server_log, timeout)

    def stop() -> None:
        _stop_dir(root)

    return Server("postgresql", url.set(database=None), "local", f"pg_ctl on port {port}", stop=stop)


def _start_mysql(root: Path, user: pwd.struct_passwd | None, timeout: float) -> Server:
    install, server = _find("mariadb-install-db"), _find("mariadbd")
    assert install and server
    data, log, port = root / "data", root / "server.log", _free_port()
    run_as = user.pw_name if user is not None else pwd.getpwuid(os.getuid()).pw_name
    _run(
        [
            install,
            "--no-defaults",
            f"--datadir={data}",
            f"--user={run_as}",
            "--auth-root-authentication-method=normal",
            "--skip-test-db",
        ],
        None,
        log,
    )
    args = [
        server,
        "--no-defaults",
        f"--datadir={data}",
        f"--socket={root / 'mysql.sock'}",
        f"--port={port}",
        "--bind-address=127.0.0.1",
        f"--pid-file={root / 'server.pid'}",
        f"--user={run_as}",
        f"--log-error={log}",
        "--innodb-flush-log-at-trx-commit=0",
        "--skip-log-bin",
        "--innodb-buffer-pool-size=64M",
    ]
    process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    (root / "server.pid.owner").write_text(str(process.pid))
    url = URL.create(driver_for("mysql"), username="root", host="127.0.0.1", port=port)
    try:
        _wait(url, log, timeout)
    except ProviderError:
        process.kill()
        raise

    def stop() -> None:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
        _stop_dir(root)

    return Server("mysql", url, "local", f"mariadbd on port {port}", stop=stop)


def _stop_dir(root: Path) -> None:
    """Stop whatever server runs in ``root`` and remove it."""
    data = root / "data"
    pg_ctl = _find("pg_ctl")
    if (data / "postmaster.pid").exists() and pg_ctl:
        user = _service_user("postgresql")
        try:
            _run([pg_ctl, "-D", str(data), "-m", "immediate", "-w", "stop"], user, root / "stop.log")
        except ProviderError:
            pass
    for pidfile in (root / "server.pid.owner", root / "server.pid"):
        try:
            os.kill(int(pidfile.read_text().strip()), signal.SIGKILL)
        except (OSError, ValueError):
            pass
    shutil.rmtree(root, ignore_errors=True)


def remove_stale(tmp: Path | None = None) -> int:
    """Stop and remove the local servers of runs whose pytest process has died."""
    removed = 0
    for root in Path(tmp or tempfile.gettempdir()).glob(f"{PREFIX}*"):
        try:
            owner = int((root / "owner.pid").read_text().strip())
        except (OSError, ValueError):
            continue
        try:
            os.kill(owner, 0)
        except ProcessLookupError:
            _stop_dir(root)
            removed += 1
        except PermissionError:
            continue
    return removed
