"""Faults end in bounded time: a hanging step is stopped, Ctrl-C ends the run, nothing is left behind.

Every run here is a subprocess with a hard time limit, so that the suite itself can never hang.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from pytest_migrations.providers import containers

from ..conftest import plugin_containers, plugin_databases, server_url, start_pytest, unavailable
from ..helpers import Project, users_table


def _pytest(project: Project, *args: str, limit: float = 90) -> tuple[subprocess.CompletedProcess[str], float]:
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    env.pop("PYTEST_ADDOPTS", None)
    start = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "--migrations", "-p", "no:cacheprovider", "-p", "no:randomly", *args],
        cwd=project.root,
        capture_output=True,
        text=True,
        env=env,
        timeout=limit,
        check=False,
    )
    return done, time.monotonic() - start


def test_a_sleeping_migration_is_stopped_and_the_others_still_run(project: Project) -> None:
    """A step sleeping in Python fails after --migrations-step-timeout; a revision on another branch passes."""
    project.revision(**users_table("a1"))
    project.revision("b2", "a1", "import time\ntime.sleep(120)", "pass", branch_labels="slow")
    project.revision(
        "c3", "a1", 'op.create_index("ix", "users", ["name"])', 'op.drop_index("ix", "users")', branch_labels="fast"
    )
    done, seconds = _pytest(
        project, "--migrations-checks", "stairway", "--migrations-expected-heads", "2", "--migrations-step-timeout", "2"
    )
    assert seconds < 40, done.stdout
    assert "1 failed, 2 passed" in done.stdout, done.stdout
    assert 'upgrade of revision b2 "revision b2" (b2_rev.py) did not finish within 2 s' in done.stdout
    assert "no SQL statement was running: the step was busy or sleeping in Python" in done.stdout


SELF_DEADLOCK = """
import pathlib
op.execute("LOCK TABLE users IN ACCESS EXCLUSIVE MODE")
pathlib.Path("started").touch()
other = op.get_bind().engine.connect()
other.exec_driver_sql("SELECT count(*) FROM users")
"""


def test_a_migration_waiting_on_its_own_lock_is_explained(project: Project) -> None:
    """A second connection waiting on the migration's own lock fails within the timeout, naming the self-deadlock."""
    url = server_url("postgresql")
    project.revision(**users_table("a1"))
    project.revision("b2", "a1", SELF_DEADLOCK, "pass")
    done, seconds = _pytest(
        project, "--migrations-url", url, "--migrations-checks", "stairway", "--migrations-step-timeout", "3"
    )
    assert seconds < 40, done.stdout
    assert "1 failed, 1 passed" in done.stdout, done.stdout
    assert "did not finish within 3 s (--migrations-step-timeout) and was stopped" in done.stdout
    assert "waits for a lock held by another connection of this same migration" in done.stdout
    assert "SELECT count(*) FROM users" in done.stdout
    assert plugin_databases("postgresql") == []


def test_ctrl_c_during_a_self_deadlock_ends_the_run_with_nothing_left(project: Project) -> None:
    """SIGINT while the step waits in the driver ends pytest within 15 s; no database of the run remains."""
    url = server_url("postgresql")
    project.revision(**users_table("a1"))
    project.revision("b2", "a1", SELF_DEADLOCK, "pass")
    proc = start_pytest(project.root, "--migrations-url", url)
    try:
        deadline = time.monotonic() + 60
        while not (project.root / "started").exists():
            assert time.monotonic() < deadline and proc.poll() is None, "the migration never started"
            time.sleep(0.05)
        time.sleep(0.5)  # the second connection is now waiting on the lock
        sent = time.monotonic()
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=15)
        assert time.monotonic() - sent < 15
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == pytest.ExitCode.INTERRUPTED, out
    assert plugin_databases("postgresql") == []


def test_ctrl_c_while_a_container_starts_leaves_no_container(project: Project) -> None:
    """SIGINT during the container's start: the run ends as interrupted and its container is removed."""
    if not containers.docker_available():
        unavailable("Docker does not answer here; run ../shared/ci/docker-up first")
    project.revision(**users_table("a1"))
    args = ["--migrations-db", "postgresql", "--migrations-provider", "container", "--migrations-checks", "stairway"]
    proc = start_pytest(project.root, "-v", *args)
    try:
        deadline = time.monotonic() + 60
        while not plugin_containers(proc.pid):
            assert time.monotonic() < deadline and proc.poll() is None, "no container was started"
            time.sleep(0.05)
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == pytest.ExitCode.INTERRUPTED, out
    time.sleep(0.5)
    assert plugin_containers(proc.pid) == []


def test_a_missing_image_says_it_cannot_be_found(project: Project) -> None:
    """An image that is not here and cannot be pulled is named with the option that sets it, at once."""
    if not containers.docker_available():
        unavailable("Docker does not answer here; run ../shared/ci/docker-up first")
    project.revision(**users_table("a1"))
    done, seconds = _pytest(
        project,
        "--migrations-db",
        "postgresql",
        "--migrations-provider",
        "container",
        "--migrations-postgresql-image",
        "pytest-migrations-no-such-image:1",
        "--migrations-checks",
        "stairway",
    )
    assert seconds < 60
    assert "the image pytest-migrations-no-such-image:1 cannot be found on this Docker engine or pulled" in done.stdout
    assert "--migrations-postgresql-image" in done.stdout


def test_workers_stop_when_their_controller_is_killed(project: Project) -> None:
    """kill -9 of the controller of -n 2: its workers stop within seconds and drop their databases."""
    url = server_url("postgresql")
    project.revision(**users_table("r00"))
    for i in range(1, 30):
        project.revision(
            f"r{i:02d}",
            f"r{i - 1:02d}",
            f'import os, pathlib, time\npathlib.Path(f"started-{{os.getpid()}}").touch()\ntime.sleep(0.3)\n'
            f'op.create_index("ix{i}", "users", ["id"])',
            f'op.drop_index("ix{i}", "users")',
        )
    proc = start_pytest(project.root, "-n", "2", "--migrations-url", url, "--migrations-checks", "stairway", quiet=True)
    try:
        deadline = time.monotonic() + 60
        while len(list(project.root.glob("started-*"))) < 2:  # both workers are migrating
            assert time.monotonic() < deadline and proc.poll() is None, "the migrations never started"
            time.sleep(0.05)
        workers = subprocess.run(["pgrep", "-P", str(proc.pid)], capture_output=True, text=True).stdout.split()
        assert workers
        proc.kill()
        proc.wait()
        time.sleep(1)  # a CREATE DATABASE sent before the kill is committed by now
        existing = set(plugin_databases("postgresql"))
        created: set[str] = set()
        deadline = time.monotonic() + 20
        while any(os.path.exists(f"/proc/{w}") for w in workers) and time.monotonic() < deadline:
            created |= set(plugin_databases("postgresql")) - existing
            time.sleep(0.1)
        alive = [w for w in workers if os.path.exists(f"/proc/{w}")]
    finally:
        os.killpg(proc.pid, signal.SIGKILL) if proc.poll() is None else None
    assert alive == []
    assert created == set()  # no database made after the controller died
    assert plugin_databases("postgresql") == []


def test_ctrl_c_before_the_engine_answers_the_create_leaves_no_container(monkeypatch: pytest.MonkeyPatch) -> None:
    """Ctrl-C after the engine made the container but before its create call answered: the container goes too.

    The engine lists a container while its create call is still on its way back; a start cut
    short in that moment holds no handle on it, and only its label can find it.
    """
    if not containers.docker_available():
        unavailable("Docker does not answer here; run ../shared/ci/docker-up first")
    from testcontainers.core.docker_client import DockerClient

    made = DockerClient.create

    def create_then_interrupted(self: DockerClient, *args: object, **kwargs: object) -> object:
        made(self, *args, **kwargs)  # type: ignore[arg-type]
        raise KeyboardInterrupt

    monkeypatch.setattr(DockerClient, "create", create_then_interrupted)
    with pytest.raises(KeyboardInterrupt):
        containers.start("postgresql", "postgres:15")
    assert plugin_containers() == []
