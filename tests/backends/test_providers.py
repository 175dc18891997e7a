"""Where servers come from: local processes and containers, and the xdist path with each."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

from pytest_migrations.providers import containers, driver_for, local

from ..conftest import plugin_containers, server_url, unavailable
from ..helpers import Project, users_table


def _history(project: Project) -> None:
    project.revision(**users_table("a1"))
    project.revision(
        "b2", "a1", 'op.create_index("ix_users_name", "users", ["name"])', 'op.drop_index("ix_users_name", "users")'
    )


RUNNER_TEST = """
def test_runner(migration_runner):
    migration_runner.upgrade("a1")
    migration_runner.insert("users", [{"id": 1, "name": "Ada"}])
    migration_runner.upgrade("heads")
    assert migration_runner.execute("SELECT name FROM users") == [("Ada",)]
    migration_runner.roundtrip("b2")
"""


def _own_local_servers() -> list[Path]:
    """Local server directories of this test process's runs (their owner.pid), not other runs'."""
    found = []
    for root in Path(tempfile.gettempdir()).glob(f"{local.PREFIX}*"):
        try:
            if int((root / "owner.pid").read_text().strip()) == os.getpid():
                found.append(root)
        except (OSError, ValueError):
            continue
    return found


@pytest.mark.parametrize("dialect", ["postgresql", "mysql"])
def test_local_server_process(project: Project, dialect: str, tmp_path_factory: pytest.TempPathFactory) -> None:
    """--migrations-provider local starts a throwaway server, runs every check on it, and stops it."""
    if not local.binaries_available(dialect):
        unavailable(f"no local {dialect} server binaries on this machine")
    _history(project)
    project.pytester.makepyfile(test_runner=RUNNER_TEST)
    result = project.run("--migrations-db", dialect, "--migrations-provider", "local")
    result.assert_outcomes(passed=6 + 1, skipped=1)
    result.stdout.fnmatch_lines([f"migrations: *database {dialect} via local*"])
    assert _own_local_servers() == []


@pytest.mark.parametrize("dialect", ["postgresql", "mysql"])
def test_container_server(project: Project, dialect: str) -> None:
    """--migrations-provider container runs the checks in a testcontainers container, removed afterwards."""
    if not containers.docker_available():
        unavailable("Docker does not answer here; run ../shared/ci/docker-up first")
    _history(project)
    project.pytester.makepyfile(test_runner=RUNNER_TEST)
    result = project.run("--migrations-db", dialect, "--migrations-provider", "container", "-n", "2")
    result.assert_outcomes(passed=6 + 1, skipped=1)
    assert plugin_containers() == []


def test_missing_docker_is_one_clear_error(project: Project, monkeypatch: pytest.MonkeyPatch) -> None:
    """No Docker: the error says so and names the other two ways."""
    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent/docker.sock")
    _history(project)
    result = project.run("--migrations-db", "postgresql", "--migrations-provider", "container")
    result.assert_outcomes(passed=2, failed=5)
    result.stdout.fnmatch_lines(
        ["*Docker does not answer*pass a server URL with --migrations-url, or use --migrations-provider local*"]
    )


def test_unreachable_server_is_one_clear_error(project: Project) -> None:
    """A URL nobody answers at fails the items that need it with the fix, not a driver traceback."""
    _history(project)
    result = project.run("--migrations-url", "postgresql://postgres:hunter2@127.0.0.1:1/postgres")
    result.assert_outcomes(passed=2, failed=5)
    result.stdout.fnmatch_lines(
        [f"*cannot connect to the postgresql server at {driver_for('postgresql')}://postgres:***@127.0.0.1:1/postgres*"]
    )
    assert "hunter2" not in result.stdout.str()


def test_wrong_credentials_are_one_clear_error(project: Project) -> None:
    server_url("mysql")
    _history(project)
    result = project.run("--migrations-url", "mysql://nobody:wrong@127.0.0.1:3306/")
    result.assert_outcomes(passed=2, failed=5)
    result.stdout.fnmatch_lines(["*cannot connect to the mysql server at *Access denied*Check that it runs*"])


@pytest.mark.parametrize("workers", ["0", "2"])
@pytest.mark.parametrize("dialect", ["sqlite", "postgresql"])
def test_xdist_spreads_items_over_workers(project: Project, dialect: str, workers: str) -> None:
    """-n 2 passes with one shared server: databases carry the worker id, and none are left."""
    args = ["-n", workers, "--migrations-db", dialect]
    if dialect != "sqlite":
        args += ["--migrations-url", server_url(dialect)]
    for i in range(6):
        project.revision(
            f"r{i}",
            f"r{i - 1}" if i else None,
            f'op.create_table("t{i}", sa.Column("id", sa.Integer, primary_key=True))',
            f'op.drop_table("t{i}")',
        )
    project.pytester.makepyfile(
        test_names="""
        def test_name(migration_runner):
            import os
            worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
            assert f"_{worker}_" in repr(migration_runner)
        """
    )
    result = project.run(*args)
    result.assert_outcomes(passed=4 + 6 + 1, skipped=1)


def test_missing_local_binaries_are_named(project: Project, monkeypatch: pytest.MonkeyPatch) -> None:
    """No server binaries: the error names the missing programs and the other two ways."""
    _history(project)
    monkeypatch.setattr(local, "_find", lambda name: None)  # the in-process run shares this module
    result = project.run("--migrations-db", "postgresql", "--migrations-provider", "local")
    result.assert_outcomes(passed=2, failed=5)
    result.stdout.fnmatch_lines(
        ["*cannot start a local postgresql server: initdb, pg_ctl not found*--migrations-url, or use Docker*"]
    )
