"""Safety: the plugin migrates only databases it created, whatever env.py does."""

from __future__ import annotations

import sqlite3

import pytest

from ..helpers import Project, users_table


@pytest.mark.parametrize("folder", ["migrations", "alembic"])
def test_env_py_that_ignores_the_url_is_stopped_before_any_migration(project: Project, folder: str) -> None:
    """env.py reading its own URL is refused before Alembic touches that database: it stays as it was. The
    report names env.py's line also in the folder `alembic init alembic` makes (Mealie), named as the package."""
    precious = project.root / "production.db"
    with sqlite3.connect(precious) as conn:
        conn.execute("CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT)")
        conn.execute("INSERT INTO customers VALUES (1, 'Ada')")
    before = precious.read_bytes()
    project.revision(**users_table("a1"))
    project.edit_env(
        "    connectable = engine_from_config(\n        config.get_section(config.config_ini_section, {}),",
        f"    connectable = engine_from_config(\n        {{'sqlalchemy.url': 'sqlite:///{precious}'}},",
    )
    if folder != "migrations":
        (project.root / "migrations").rename(project.root / folder)
        ini = project.root / "alembic.ini"
        ini.write_text(ini.read_text().replace(f"{project.root / 'migrations'}\n", f"{project.root / folder}\n"))
    result = project.run()
    result.assert_outcomes(passed=2, failed=4)
    result.stdout.fnmatch_lines(
        [
            "*env.py (line *connectable.connect()*) connected to the SQLite file *production.db, which is not one of "
            "the throwaway databases pytest-migrations created for this run; the connection was refused before any "
            "statement ran on it*config.attributes*"
        ]
    )
    assert precious.read_bytes() == before
    with sqlite3.connect(precious) as conn:
        tables = [row[0] for row in conn.execute("SELECT name FROM sqlite_master")]
    assert tables == ["customers"]


def test_throwaway_databases_are_removed_after_the_run(project: Project) -> None:
    """No database file of the plugin's is left after a run, passing or failing."""
    project.revision(**users_table("a1"))
    project.revision("b2", "a1", 'op.create_index("ix", "users", ["name"])', "pass")
    basetemp = project.root / "basetemp"
    project.run(f"--basetemp={basetemp}")
    leftovers = list(basetemp.rglob("pytest_migrations_*.db"))
    assert leftovers == []


def test_env_py_reading_a_variable_is_pointed_at_the_test_database(project: Project) -> None:
    """migrations_url_variable: env.py that reads DATABASE_URL gets the throwaway database's URL."""
    project.revision(**users_table("a1"))
    project.edit_env(
        "    connectable = engine_from_config(\n        config.get_section(config.config_ini_section, {}),",
        "    import os\n    connectable = engine_from_config(\n        {'sqlalchemy.url': os.environ['DATABASE_URL']},",
    )
    result = project.run("--migrations-url-variable", "DATABASE_URL")
    result.assert_outcomes(passed=5, skipped=1)
    result = project.run()
    result.assert_outcomes(passed=2, errors=0, failed=4)
    result.stdout.fnmatch_lines(["*KeyError: 'DATABASE_URL'*"])
