"""--migrations-data on PostgreSQL and MariaDB: rows of every column kind, and the failures rows reveal."""

from __future__ import annotations

import pytest

from ..conftest import plugin_databases, server_url
from ..helpers import Project, users_table
from ..plugin.test_data import (
    DROP_PLAN,
    NARROW_DOWN,
    NARROW_UP,
    PEOPLE,
    RECREATE_DOWN,
    SPLIT_DOWN_LOSING_VALUES,
    SPLIT_UP,
    kinds_history,
)

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


def test_a_unique_constraint_over_repeated_values(project: Project, dialect: str) -> None:
    """The server refuses the constraint over the generated repeats; the fix and the rows are shown."""
    url = server_url(dialect)
    project.revision(**users_table("a1"))
    project.revision(
        "b2",
        "a1",
        'op.create_unique_constraint("uq_users_name", "users", ["name"])',
        'op.drop_constraint("uq_users_name", "users", type_="unique")',
    )
    result = project.run("--migrations-url", url, "--migrations-data", "--migrations-checks", "stairway")
    result.assert_outcomes(passed=1, failed=1)
    key = (
        "`name` (key uq_users_name)"
        if dialect == "postgresql"
        else "key uq_users_name (repeated value 'Zoë ☃ 北京 — ñ')"
    )
    result.stdout.fnmatch_lines(
        [
            f"*b2_rev.py requires {key} to be unique while the table's rows repeat values in it*",
            '*table "users" (id, name):',
            "*(4, 'Zoë ☃ 北京 — ñ')",
        ]
    )


def test_narrowing_a_column_below_its_values(project: Project, dialect: str) -> None:
    """PostgreSQL, and MariaDB in its default strict mode, refuse to cut the longest generated value."""
    url = server_url(dialect)
    project.revision(**users_table("a1"))
    project.revision("b2", "a1", NARROW_UP, NARROW_DOWN)
    result = project.run("--migrations-url", url, "--migrations-data", "--migrations-checks", "stairway")
    result.assert_outcomes(passed=1, failed=1)
    what = "a column to character varying(5)" if dialect == "postgresql" else "column `name`"
    result.stdout.fnmatch_lines([f"*b2_rev.py narrows {what} below the values its rows hold*"])
    project.run("--migrations-url", url, "--migrations-checks", "stairway").assert_outcomes(passed=2)


CASCADE = """
op.create_table("parents", sa.Column("id", sa.Integer, primary_key=True), sa.Column("name", sa.String(20)))
op.create_table(
    "children",
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("parent_id", sa.Integer, sa.ForeignKey("parents.id", ondelete="CASCADE"), nullable=False),
)
"""


def test_rows_a_cascade_deletes_are_seen_though_no_statement_names_their_table(project: Project, dialect: str) -> None:
    """A downgrade's DELETE FROM parents empties children through ON DELETE CASCADE: children's loss is reported."""
    url = server_url(dialect)
    project.revision("a1", None, CASCADE, 'op.drop_table("children")\nop.drop_table("parents")')
    project.revision(
        "b2",
        "a1",
        'op.add_column("parents", sa.Column("flag", sa.Boolean))',
        'op.execute("DELETE FROM parents")\nop.drop_column("parents", "flag")',
    )
    result = project.run("--migrations-url", url, "--migrations-data", "--migrations-checks", "stairway")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(
        ['downgrade of revision b2 * does not give back the rows *: table "children" (5 lost), "parents" (5 lost)']
    )


def test_rows_a_database_routine_deletes_are_seen(project: Project, dialect: str) -> None:
    """A downgrade calling the database's own code (a function, a procedure) may write anything: all is compared."""
    url = server_url(dialect)
    project.revision(**users_table("a1"))
    if dialect == "postgresql":
        create = "CREATE FUNCTION wipe_users() RETURNS void LANGUAGE sql AS 'DELETE FROM users'"
        call, drop = "SELECT wipe_users()", "DROP FUNCTION wipe_users()"
    else:
        create = "CREATE PROCEDURE wipe_users() DELETE FROM users"
        call, drop = "CALL wipe_users()", "DROP PROCEDURE wipe_users"
    project.revision("b2", "a1", f'op.execute("{create}")', f'op.execute("{call}")\nop.execute("{drop}")')
    result = project.run("--migrations-url", url, "--migrations-data", "--migrations-checks", "stairway")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(['downgrade of revision b2 * does not give back the rows *: table "users" (5 lost)'])
