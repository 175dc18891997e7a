"""Faults: interrupted runs, crashed workers, servers that never come up, env.py aiming elsewhere."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Callable

import pytest
import sqlalchemy as sa

from pytest_migrations.providers import containers

from ..conftest import plugin_containers, plugin_databases, server_url, start_pytest, unavailable
from ..helpers import Project, users_table


def test_container_that_never_becomes_ready_is_a_bounded_wait_with_logs(project: Project) -> None:
    """A container that never answers as PostgreSQL fails after --migrations-timeout, showing its log."""
    if not containers.docker_available():
        unavailable("Docker does not answer here; run ../shared/ci/docker-up first")
    project.revision(**users_table("a1"))
    start = time.monotonic()
    result = project.run(
        "--migrations-db",
        "postgresql",
        "--migrations-provider",
        "container",
        "--migrations-postgresql-image",
        "mariadb:10.11",
        "--migrations-timeout",
        "4",
        "--migrations-checks",
        "stairway",
    )
    assert time.monotonic() - start < 60
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "*the mariadb:10.11 container did not become ready within 4 s*is it a postgresql image?*",
            "*container log tail:*",
        ]
    )
    assert plugin_containers() == []


def _interrupt(project: Project, args: list[str], marker: str) -> tuple[subprocess.CompletedProcess[str], int]:
    """Run pytest in a subprocess and press Ctrl-C once the migration under test is running."""
    proc = start_pytest(project.root, "-s", *args)
    deadline = time.monotonic() + 60
    while not (project.root / marker).exists():
        assert time.monotonic() < deadline, "the migration never started"
        assert proc.poll() is None, proc.stdout.read() if proc.stdout else ""
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    out, _ = proc.communicate(timeout=60)
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, ""), proc.pid


SLOW = """
import pathlib, time
pathlib.Path("started").touch()
time.sleep(30)
"""


@pytest.mark.parametrize("provider", ["url", "container"])
def test_ctrl_c_during_a_walk_leaves_nothing_behind(project: Project, provider: str) -> None:
    """Ctrl-C mid-migration: pytest stops as interrupted; no database and no container of the plugin remain."""
    args = ["--migrations-db", "postgresql", "--migrations-checks", "stairway"]
    if provider == "url":
        args += ["--migrations-url", server_url("postgresql")]
    else:
        if not containers.docker_available():
            unavailable("Docker does not answer here; run ../shared/ci/docker-up first")
        args += ["--migrations-provider", "container"]
    project.revision(**users_table("a1"))
    project.revision("b2", "a1", SLOW, "pass")
    result, pid = _interrupt(project, args, "started")
    assert result.returncode == pytest.ExitCode.INTERRUPTED, result.stdout
    assert "KeyboardInterrupt" in result.stdout
    if provider == "url":
        assert plugin_databases("postgresql") == []
    assert plugin_containers(pid) == []


def test_a_killed_xdist_worker_leaves_no_database(project: Project) -> None:
    """A worker that dies mid-item is reported by xdist; its databases are dropped at the end of the run."""
    url = server_url("postgresql")
    project.revision(**users_table("a1"))
    project.revision(
        "b2",
        "a1",
        'import os\nif os.environ.get("PYTEST_XDIST_WORKER") and not os.path.exists("crashed"):\n'
        '    open("crashed", "w").close()\n    os._exit(3)\nop.create_index("ix", "users", ["name"])',
        'op.drop_index("ix", "users")',
    )
    result = project.run("--migrations-url", url, "-n", "2", "--migrations-checks", "stairway,upgrade_to_head")
    assert (project.root / "crashed").exists()
    result.stdout.fnmatch_lines(["*crashed*"])
    assert plugin_databases("postgresql") == []


def test_env_py_aiming_at_another_postgresql_database_is_refused_and_it_is_untouched(
    project: Project, user_database: Callable[[str], str]
) -> None:
    """env.py that reads DATABASE_URL is stopped before any migration; that database keeps its data and tables."""
    url = server_url("postgresql")
    production = user_database("pm_production")
    engine = sa.create_engine(production)
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE orders (id int primary key)")
        conn.exec_driver_sql("INSERT INTO orders VALUES (1), (2)")
    project.revision(**users_table("a1"))
    project.edit_env(
        "    connectable = engine_from_config(\n        config.get_section(config.config_ini_section, {}),",
        "    import os\n    connectable = engine_from_config(\n        {'sqlalchemy.url': os.environ['DATABASE_URL']},",
    )
    os.environ["DATABASE_URL"] = production
    try:
        result = project.run("--migrations-url", url)
    finally:
        del os.environ["DATABASE_URL"]
    result.assert_outcomes(passed=2, failed=4)
    result.stdout.fnmatch_lines(
        ["*env.py (line *) connected to postgresql database 'pm_production_*', which is not one of the throwaway*"]
    )
    with engine.connect() as conn:
        tables = [r[0] for r in conn.exec_driver_sql("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")]
        rows = conn.exec_driver_sql("SELECT count(*) FROM orders").scalar()
    engine.dispose()
    assert tables == ["orders"]  # not even alembic_version was created
    assert rows == 2


def test_connection_lost_mid_migration_fails_that_item_and_the_run_goes_on(project: Project) -> None:
    """The server drops the connection during a step: that item fails saying so, later items run, nothing is left."""
    url = server_url("postgresql")
    project.revision(**users_table("a1"))
    project.revision("b2", "a1", 'op.execute("SELECT pg_terminate_backend(pg_backend_pid())")', "pass")
    project.revision(
        "c3",
        None,
        'op.create_table("other", sa.Column("id", sa.Integer, primary_key=True))',
        'op.drop_table("other")',
        branch_labels="other",
    )
    result = project.run("--migrations-url", url, "--migrations-checks", "stairway", "-v")
    result.stdout.fnmatch_lines(
        [
            "*stairway?a1? PASSED*",
            "*stairway?b2? FAILED*",
            "*stairway?c3? *",
            "upgrade of revision b2 * raised OperationalError*",
        ]
    )
    assert plugin_databases("postgresql") == []
