"""Correct migrations pass on PostgreSQL and MariaDB, and failures there are reported as they happened."""

from __future__ import annotations

import pytest

from ..conftest import plugin_databases, server_url
from ..helpers import Project, users_table

ENUM_TABLE = """
op.create_table(
    "orders",
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("status", sa.Enum("new", "paid", name="order_status"), nullable=False),
)
"""
ENUM_DOWN = 'op.drop_table("orders")\nsa.Enum(name="order_status").drop(op.get_bind())'


def test_postgresql_enum_survives_the_re_upgrade(project: Project) -> None:
    """A table with a named Enum, dropped with its type by the downgrade, is re-created on the re-upgrade."""
    url = server_url("postgresql")
    project.revision(**users_table("a1"))
    project.revision("b2", "a1", ENUM_TABLE, ENUM_DOWN)
    project.revision("c3", "b2", 'op.create_index("ix_status", "orders", ["status"])', 'op.drop_index("ix_status")')
    result = project.run("--migrations-url", url, "--migrations-checks", "upgrade_to_head,stairway,downgrade_to_base")
    result.assert_outcomes(passed=5)
    assert plugin_databases("postgresql") == []


def test_postgresql_enum_left_by_a_downgrade_still_fails(project: Project) -> None:
    """The fix hides nothing: a downgrade that drops the table but not its type is still a difference."""
    url = server_url("postgresql")
    project.revision(**users_table("a1"))
    project.revision("b2", "a1", ENUM_TABLE, 'op.drop_table("orders")')
    result = project.run("--migrations-url", url, "--migrations-checks", "stairway")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(['*+ enum "order_status": present after the downgrade*'])


def test_postgresql_enum_label_a_downgrade_keeps_gets_advice_that_leads_to_a_pass(project: Project) -> None:
    """PostgreSQL cannot drop an enum label (Mealie's OIDC): the fix says how to re-create the type, or to accept
    the label and add it with IF NOT EXISTS; following the second gives a passing item, as the fix promises."""
    url = server_url("postgresql")
    project.revision("a1", None, ENUM_TABLE, ENUM_DOWN)
    project.revision("b2", "a1", "op.execute(\"ALTER TYPE order_status ADD VALUE 'void'\")", "pass")
    result = project.run("--migrations-url", url, "--migrations-checks", "stairway", "-k", "b2")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "*PostgreSQL cannot drop a label of enum order_status: downgrade() must re-create the type without it*"
            "accept it and make upgrade() add it with ALTER TYPE ... ADD VALUE IF NOT EXISTS*"
        ]
    )
    project.revision(
        "b2",
        "a1",
        "op.execute(\"ALTER TYPE order_status ADD VALUE IF NOT EXISTS 'void'\")",
        "pass",
        extra='stairway_accept = ["enum order_status: labels"]',
    )
    project.run("--migrations-url", url, "--migrations-checks", "stairway", "-k", "b2").assert_outcomes(passed=1)


def test_postgresql_env_py_that_never_commits_fails(project: Project) -> None:
    """Without begin_transaction() on SQLAlchemy 2, `alembic upgrade` commits nothing: the items say so."""
    url = server_url("postgresql")
    project.revision(**users_table("a1"))
    project.revision("b2", "a1", 'op.create_index("ix", "users", ["name"])', 'op.drop_index("ix", "users")')
    project.edit_env(
        "        with context.begin_transaction():\n            context.run_migrations()\n\n\nif",
        "        context.run_migrations()\n\n\nif",
    )
    result = project.run("--migrations-url", url, "--migrations-checks", "upgrade_to_head,stairway")
    result.assert_outcomes(failed=3)
    result.stdout.fnmatch_lines(["*env.py did not commit its migrations*", "*begin_transaction()*"])


def test_postgresql_commit_inside_a_step_is_not_reported_as_rolled_back(project: Project) -> None:
    """op.execute("COMMIT") then a failing statement: the report says the work before the COMMIT stays."""
    url = server_url("postgresql")
    project.revision(**users_table("a1"))
    project.revision(
        "b2",
        "a1",
        'op.add_column("users", sa.Column("x", sa.Integer))\nop.execute("COMMIT")\nop.execute("SELECT no_such_fn()")',
        "pass",
    )
    result = project.run("--migrations-url", url, "--migrations-checks", "stairway")
    result.assert_outcomes(passed=1, failed=1)
    out = result.stdout.str()
    assert "was rolled back, so nothing" not in out
    result.stdout.fnmatch_lines(
        [
            "*statement that failed: SELECT no_such_fn()",
            "*the step committed part of its work (a COMMIT after statement 2)*",
            "*as a new connection sees it after the failure, the schema differs from before the step in 1 way(s):",
            '*+ table "users": column x integer NULL: present after the failure*',
        ]
    )


def test_postgresql_failure_names_what_the_rollback_of_the_walk_took_in_one_line(project: Project) -> None:
    """env.py's one transaction held the plugin's walk to c4's parent too: the failure's rollback takes those
    tables with it. That is said in one line, not as a "missing after the failure" line per object, which
    blamed the failing step for them and buried its one error (Mealie: 45 to 72 lines per item)."""
    url = server_url("postgresql")
    for number, parent in enumerate([None, "t1", "t2"], 1):
        project.revision(
            f"t{number}",
            parent,
            f'op.create_table("t{number}", sa.Column("id", sa.Integer, primary_key=True))',
            f'op.drop_table("t{number}")',
        )
    project.revision("c4", "t3", 'op.add_column("t1", sa.Column("x", sa.Integer))', 'raise RuntimeError("no")')
    result = project.run("--migrations-url", url, "--migrations-checks", "stairway", "-k", "c4")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "*the transaction of this walk was rolled back (env.py runs every step in one transaction: the 4 earlier "
            "step(s) of this env.py run, the plugin's walk to this revision included, are gone too)*",
            "*as a new connection sees it after the failure, the schema lacks what the 4 earlier step(s) of this "
            'env.py run made, gone with the rollback: table "t1", table "t2", table "t3". The failing step did not '
            "remove them*",
        ]
    )
    assert "missing after the failure" not in result.stdout.str()


def test_postgresql_extension_left_with_an_index_using_it_gets_a_fix_that_works_as_pasted(project: Project) -> None:
    """pg_trgm and a gin_trgm_ops index left by a `pass` downgrade (Mealie): the accept hint has an entry for each
    difference, and the extension's drop is said to come after the index's (before it, PostgreSQL refuses)."""
    url = server_url("postgresql")
    project.revision(
        "a1",
        None,
        'op.create_table("recipes", sa.Column("id", sa.Integer, primary_key=True), sa.Column("name", sa.String(50)))',
        'op.drop_table("recipes")',
    )
    project.revision(
        "b2",
        "a1",
        'op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")\n'
        'op.create_index("ix_gin", "recipes", ["name"], postgresql_using="gin", '
        'postgresql_ops={"name": "gin_trgm_ops"})',
        "pass",
    )
    result = project.run("--migrations-url", url, "--migrations-checks", "stairway", "-k", "b2")
    result.assert_outcomes(failed=1)
    assert (
        'one entry per difference (2 entries for all of them): stairway_accept = ["extension pg_trgm", '
        '"table recipes: index ix_gin"]'
    ) in result.stdout.str()
    result.stdout.fnmatch_lines(
        [
            "*downgrade() probably needs, after the code autogenerate gives below*",
            '*op.execute("DROP EXTENSION pg_trgm")',
            "*what autogenerate says downgrade() is missing*",
            "*op.drop_index(op.f('ix_gin')*",
        ]
    )


def test_mariadb_index_a_foreign_key_needs_gets_the_hint(project: Project) -> None:
    """Error 1553 (dropping an index a foreign key needs) names the order to drop things in."""
    url = server_url("mysql")
    project.revision(
        "a1",
        None,
        'op.create_table("teams", sa.Column("id", sa.Integer, primary_key=True))\n'
        'op.create_table("users", sa.Column("id", sa.Integer, primary_key=True),'
        ' sa.Column("team_id", sa.Integer, sa.ForeignKey("teams.id", name="fk_users_team")))',
        'op.drop_table("users")\nop.drop_table("teams")',
    )
    project.revision(
        "b2",
        "a1",
        'op.create_index("ix_users_team", "users", ["team_id"])',
        'op.drop_index("ix_users_team", table_name="users")',
    )
    result = project.run("--migrations-url", url, "--migrations-checks", "stairway")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["*1553*", "*fix:", "*drop the foreign key first*"])


UNNAMED_FK = {
    "rev": "a1",
    "upgrade": 'op.create_table("teams", sa.Column("id", sa.Integer, primary_key=True))\n'
    'op.create_table("users", sa.Column("id", sa.Integer, primary_key=True), sa.Column("team_id", sa.Integer))',
    "downgrade": 'op.drop_table("users")\nop.drop_table("teams")',
}
LOOKED_UP_FK = """
name = next(
    c["name"]
    for c in sa.inspect(op.get_bind()).get_foreign_keys("users")
    if c["constrained_columns"] == ["team_id"]
)
op.drop_constraint(name, "users", type_="foreignkey")
"""


@pytest.mark.parametrize(("dialect", "generated"), [("postgresql", "users_team_id_fkey"), ("mysql", "users_ibfk_1")])
def test_dropping_a_constraint_by_no_name_names_the_one_the_database_gave(
    project: Project, dialect: str, generated: str
) -> None:
    """``op.drop_constraint(None, ...)`` (CTFd's downgrades): MariaDB's bare assert keeps its line, both get a fix.

    The fix names the database's own name for the foreign key and how to look it up;
    followed (with MySQL's leftover index, which the next report names), the downgrade passes.
    """
    url = server_url(dialect)
    project.revision(**UNNAMED_FK)
    upgrade = 'op.create_foreign_key(None, "users", "teams", ["team_id"], ["id"])'
    path = project.revision("b2", "a1", upgrade, 'op.drop_constraint(None, "users", type_="foreignkey")')
    result = project.run("--migrations-url", url, "--migrations-checks", "stairway")
    result.assert_outcomes(passed=1, failed=1)
    out = result.stdout.str()
    if dialect == "mysql":
        assert "in format_constraint\n        assert name is not None" in out
    assert "b2_rev.py calls op.drop_constraint(None, 'users', type_='foreignkey')" in out
    assert f"The database named the foreign key of `users` itself: {generated} ((team_id)" in out
    assert "sa.inspect(op.get_bind()).get_foreign_keys('users')" in out

    path.unlink()
    # MySQL keeps the index it made for the foreign key; the next report says so, and this is its fix.
    index = '\nop.drop_index("team_id", table_name="users")' if dialect == "mysql" else ""
    project.revision("b2", "a1", upgrade, LOOKED_UP_FK + index)
    project.run("--migrations-url", url, "--migrations-checks", "stairway").assert_outcomes(passed=2)
