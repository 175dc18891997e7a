"""--migrations-data on PostgreSQL and MariaDB: rows of every column kind, and the failures rows reveal."""

from __future__ import annotations

import pytest

from ..conftest import plugin_databases, server_url
from ..helpers import Project, users_table
from ..plugin.test_data import DROP_PLAN, PEOPLE, RECREATE_DOWN, SPLIT_DOWN_LOSING_VALUES, SPLIT_UP, kinds_history

ADD_PLAN = 'op.add_column("users", sa.Column("plan", sa.String(10), nullable=False))'

pytestmark = pytest.mark.parametrize("dialect", ["postgresql", "mysql"])


def test_a_correct_history_passes_on_rows(project: Project, dialect: str) -> None:
    """Every column kind, a self-reference, a composite key and a CHECK get rows; every item passes."""
    url = server_url(dialect)
    kinds_history(project)
    result = project.run(
        "--migrations-url", url, "--migrations-data", "--migrations-checks", "upgrade_to_head,stairway"
    )
    result.assert_outcomes(passed=5)
    assert plugin_databases(dialect) == []


def test_a_downgrade_that_re_creates_a_table_loses_its_rows(project: Project, dialect: str) -> None:
    """The rows a re-created table lost are listed, on the server as on SQLite."""
    url = server_url(dialect)
    project.revision(**users_table("a1"))
    project.revision("b2", "a1", 'op.create_index("ix_name", "users", ["name"])', RECREATE_DOWN)
    result = project.run("--migrations-url", url, "--migrations-data", "--migrations-checks", "stairway")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(['downgrade of revision b2 * does not give back the rows *: table "users" (*lost)'])


def test_a_downgrade_that_restores_a_column_but_not_its_values(project: Project, dialect: str) -> None:
    """A column restored empty by the downgrade shows its changed values."""
    url = server_url(dialect)
    project.revision("a1", None, PEOPLE, 'op.drop_table("people")')
    project.revision("b2", "a1", SPLIT_UP, SPLIT_DOWN_LOSING_VALUES)
    result = project.run("--migrations-url", url, "--migrations-data", "--migrations-checks", "stairway")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["*changed: bio: * before the upgrade, None after the downgrade"])


def test_not_null_column_without_default(project: Project, dialect: str) -> None:
    """PostgreSQL refuses a NOT NULL column without default on a table with rows, and the failure gives the fix.

    MariaDB in its default strict mode does not refuse it: it fills the new column with the type's implicit
    default (the empty string), so the item passes there, as `alembic upgrade` would in production.
    """
    url = server_url(dialect)
    project.revision(**users_table("a1"))
    project.revision("b2", "a1", ADD_PLAN, DROP_PLAN)
    result = project.run("--migrations-url", url, "--migrations-data", "--migrations-checks", "stairway")
    if dialect == "mysql":
        result.assert_outcomes(passed=2)
        return
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(
        [
            'upgrade of revision b2 * raised IntegrityError: *column "plan" of relation "users" contains null values',
            "*b2_rev.py makes column `plan` of `users` NOT NULL while the table has rows*add a server_default*",
            "*rows (--migrations-data):",
            '*table "users": 5 row(s), generated for this revision*',
        ]
    )
