"""Servers in containers (testcontainers): one per run, removed at the end.

Without Ryuk (registries unreachable, or ``TESTCONTAINERS_RYUK_DISABLED``), nothing
reaps a container whose run died, so every container the plugin starts carries the
label ``pytest-migrations.pid=<pid of the run>``; :func:`remove_stale` removes those whose
process is gone, and runs before a new container starts.

Each start also carries a label of its own (``pytest-migrations.start``), so that a start cut
short (Ctrl-C, or a container that never became ready) removes its container by that label:
the engine lists a container while the create call that made it has not yet answered, and a
start interrupted then has no handle on it.
"""

from __future__ import annotations

import os
import secrets
import socket
import time
from typing import Any

from sqlalchemy.engine import URL

from ..exceptions import ProviderError, first_line
from . import Server, driver_for

LABEL = "pytest-migrations.pid"
START_LABEL = "pytest-migrations.start"


def _client() -> Any:
    import docker  # type: ignore[import-untyped]  # installed with testcontainers; it ships no types

    return docker.from_env(timeout=5)


def docker_available() -> bool:
    try:
        _client().ping()
    except Exception:
        return False
    return True


def remove_stale() -> int:
    """Remove the plugin's containers whose run (a process on this host) has died."""
    removed = 0
    client = _client()
    host = socket.gethostname()
    for container in client.containers.list(all=True, filters={"label": LABEL}):
        labels = container.labels
        pid = int(labels.get(LABEL, "0") or 0)
        if labels.get("pytest-migrations.host") == host and not _alive(pid):
            container.remove(force=True)
            removed += 1
    return removed


def _alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _remove_start(token: str, settle: float = 0.2, limit: float = 3.0) -> None:
    """Remove every container of the start labelled ``token``, until two lists ``settle`` s apart find none.

    The second look catches a container whose create call was still on its way to the engine
    when the start was cut short. Nothing here raises: it runs while another error is on its way.
    """
    try:
        client = _client()
        try:
            deadline = time.monotonic() + limit
            quiet = 0
            while quiet < 2 and time.monotonic() < deadline:
                found = client.containers.list(all=True, filters={"label": f"{START_LABEL}={token}"})
                for container in found:
                    container.remove(force=True, v=True)
                quiet = 0 if found else quiet + 1
                if quiet < 2:
                    time.sleep(settle)
        finally:
            client.close()
    except BaseException:
        pass


def _check_image(image: str, dialect: str) -> None:
    """Fail at once, naming the image and the option, when it is neither here nor pullable."""
    import docker

    client = _client()
    try:
        client.images.get(image)
        return
    except docker.errors.ImageNotFound:
        pass
    try:
        client.images.pull(image)
    except docker.errors.DockerException as exc:
        raise ProviderError(
            f"the image {image} cannot be found on this Docker engine or pulled ({first_line(exc)}); pull or build "
            f"it, or name another {dialect} image with --migrations-{dialect}-image (migrations_{dialect}_image)"
        ) from None


def start(dialect: str, image: str, timeout: float = 60.0) -> Server:
    os.environ.setdefault("TESTCONTAINERS_RYUK_DISABLED", "true")
    try:
        from testcontainers.core.config import testcontainers_config
    except ImportError:
        raise ProviderError(
            "--migrations-provider container needs testcontainers, which is not installed: "
            "pip install 'pytest-migrations[containers]'; or pass a server URL with --migrations-url, "
            "or use --migrations-provider local"
        ) from None

    # Wait strategies read their startup timeout from this configuration when they are made.
    testcontainers_config.max_tries = max(1, int(timeout / testcontainers_config.sleep_time))
    try:
        from testcontainers.community.mysql import MySqlContainer
        from testcontainers.community.postgres import PostgresContainer
    except ImportError:  # testcontainers < 4.14
        from testcontainers.mysql import MySqlContainer  # type: ignore[no-redef,unused-ignore]
        from testcontainers.postgres import PostgresContainer  # type: ignore[no-redef,unused-ignore]
    if not docker_available():
        raise ProviderError(
            "Docker does not answer (is the engine running, and DOCKER_HOST right?), so no container can start. "
            "Start Docker, pass a server URL with --migrations-url, or use --migrations-provider local"
        )
    remove_stale()
    _check_image(image, dialect)
    password = secrets.token_hex(12)
    token = secrets.token_hex(8)
    labels = {LABEL: str(os.getpid()), "pytest-migrations.host": socket.gethostname(), START_LABEL: token}
    container: Any
    if dialect == "postgresql":
        container = PostgresContainer(image, username="postgres", password=password, dbname="postgres")
    else:
        container = MySqlContainer(image, username="root", root_password=password, password=password, dialect="pymysql")
    container.with_kwargs(labels=labels)
    if dialect == "postgresql":
        container.with_command("postgres -c fsync=off -c synchronous_commit=off -c full_page_writes=off")
    try:
        container.start()
        host = container.get_container_host_ip()
        port = int(container.get_exposed_port(5432 if dialect == "postgresql" else 3306))
    except BaseException as exc:
        if not isinstance(exc, Exception):  # Ctrl-C while the container starts: remove it, then stop
            _remove_start(token)
            raise
        try:
            logs = container.get_logs()
            tail = b"".join(part or b"" for part in logs).decode(errors="replace")[-2000:]
        except Exception:
            tail = "(no logs)"
        _remove_start(token)
        raise ProviderError(
            f"the {image} container did not become ready within {timeout:.0f} s ({type(exc).__name__}: {exc}); "
            f"is it a {dialect} image? Raise --migrations-timeout if the machine is slow.\ncontainer log tail:\n{tail}"
        ) from None
    driver = driver_for(dialect)
    user = "postgres" if dialect == "postgresql" else "root"
    url = URL.create(driver, username=user, password=password, host=host, port=port)
    return Server(dialect, url, "container", image, stop=container.stop)
