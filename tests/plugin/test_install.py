"""The core install: pytest, alembic and SQLAlchemy only, and the plugin runs on SQLite with them."""

from __future__ import annotations

import json
import os
import subprocess
import venv
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def core_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh virtual environment with `pip install pytest-migrations` (no extras) from this checkout."""
    where = tmp_path_factory.mktemp("core-venv")
    venv.create(where, with_pip=True)
    python = where / "bin" / "python"
    _pip_install(python, str(ROOT))
    return python


def _pip_install(python: Path, *requirements: str) -> None:
    done = subprocess.run(
        [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", *requirements],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        pytest.fail(f"pip install {' '.join(requirements)} failed:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")


def test_the_core_install_has_no_docker_or_xdist_packages(core_venv: Path) -> None:
    listed = subprocess.run(
        [str(core_venv), "-m", "pip", "list", "--format=json", "--disable-pip-version-check"],
        capture_output=True,
        text=True,
        check=True,
    )
    names = {d["name"].lower() for d in json.loads(listed.stdout)}
    assert {"pytest-migrations", "pytest", "alembic", "sqlalchemy"} <= names
    assert not names & {"testcontainers", "docker", "pytest-xdist", "execnet", "requests", "psycopg2-binary", "pymysql"}


def test_the_core_install_runs_a_new_alembic_project(core_venv: Path, tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_ADDOPTS", "PYTEST_MIGRATIONS_URL"))}
    bindir = str(core_venv.parent)
    env["PATH"] = bindir + os.pathsep + env.get("PATH", "")
    subprocess.run([f"{bindir}/alembic", "init", "migrations"], cwd=tmp_path, check=True, capture_output=True)
    (tmp_path / "migrations" / "versions" / "a1_users.py").write_text(
        'from alembic import op\nimport sqlalchemy as sa\nrevision = "a1"\ndown_revision = None\n'
        'def upgrade():\n    op.create_table("users", sa.Column("id", sa.Integer, primary_key=True))\n'
        'def downgrade():\n    op.drop_table("users")\n'
    )
    run = subprocess.run(
        [str(core_venv), "-m", "pytest", "--migrations", "-p", "no:cacheprovider"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert run.returncode == 0, run.stdout[-3000:]
    assert "5 passed, 1 skipped" in run.stdout  # drift: the new project has no models
    container = subprocess.run(
        [
            str(core_venv),
            "-m",
            "pytest",
            "--migrations",
            "-p",
            "no:cacheprovider",
            "--migrations-db",
            "postgresql",
            "--migrations-provider",
            "container",
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert "pip install 'pytest-migrations[containers]'" in container.stdout + container.stderr, container.stdout[
        -3000:
    ]
    assert "Traceback" not in container.stdout + container.stderr


def test_pytest_alembic_installed_beside_it_changes_nothing(core_venv: Path, tmp_path: Path) -> None:
    """Teams move over gradually: with pytest-alembic in the same environment, `pytest --migrations` still runs."""
    _pip_install(core_venv, "pytest-alembic")
    bindir = str(core_venv.parent)
    subprocess.run([f"{bindir}/alembic", "init", "migrations"], cwd=tmp_path, check=True, capture_output=True)
    run = subprocess.run(
        [str(core_venv), "-m", "pytest", "--migrations", "-p", "no:cacheprovider"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
    )
    assert run.returncode == 0, run.stdout[-3000:]
    assert "alembic-" in run.stdout and "migrations-" in run.stdout  # both plugins loaded (the header's plugins line)
