"""What is and is not a difference on each database: names the database made up, spellings, coverage.

Every false positive fixed here has two tests: a correct history that must pass, and a real
difference of the same kind that must still be reported.
"""

from __future__ import annotations

import pytest

from ..conftest import server_url
from ..helpers import Project

# ----------------------------------------------------------------------------- PostgreSQL

_REGIONS = """
    op.create_table("countries", sa.Column("id", sa.Integer, primary_key=True))
    op.create_table(
        "regions",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("name", sa.String(50), nullable=False, unique=True),
        sa.Column("population", sa.Integer, sa.CheckConstraint("population >= 0")),
        sa.Column("country_id", sa.Integer, sa.ForeignKey("countries.id")),
    )
    op.create_table("tickets", sa.Column("id", sa.Integer, sa.Identity(), primary_key=True))
    op.execute("CREATE INDEX ON regions (lower(name))")
"""

_ZONES = """
    op.create_table(
        "zones",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("name", sa.String(50), nullable=False, unique=True),
        sa.Column("population", sa.Integer, sa.CheckConstraint("population >= 0")),
        sa.Column("country_id", sa.Integer, sa.ForeignKey("countries.id")),
    )
    op.create_table("issues", sa.Column("id", sa.Integer, sa.Identity(), primary_key=True))
    op.execute("CREATE INDEX ON zones (lower(name))")
"""


def _renamed_regions(project: Project, recreate: str) -> None:
    project.revision(
        "a1", None, _REGIONS, 'op.drop_table("regions")\nop.drop_table("tickets")\nop.drop_table("countries")'
    )
    project.revision(
        "b2",
        "a1",
        'op.rename_table("regions", "zones")\nop.rename_table("tickets", "issues")',
        'op.rename_table("zones", "regions")\nop.rename_table("issues", "tickets")',
    )
    project.revision("c3", "b2", 'op.drop_table("zones")\nop.drop_table("issues")', recreate)


def test_postgresql_names_kept_from_a_renamed_table_are_no_difference(project: Project) -> None:
    """A table re-created under its new name gets new generated names (zones_pkey, zones_id_seq): it passes."""
    url = server_url("postgresql")
    _renamed_regions(project, _ZONES)
    result = project.run("--migrations-url", url, "--migrations-checks", "stairway")
    result.assert_outcomes(passed=3)


def test_postgresql_constraints_with_generated_names_are_still_compared(project: Project) -> None:
    """A re-created table that lacks a unique constraint or has another check fails, whatever the names."""
    url = server_url("postgresql")
    _renamed_regions(
        project,
        _ZONES.replace("nullable=False, unique=True", "nullable=False").replace("population >= 0", "population > 0"),
    )
    result = project.run("--migrations-url", url, "--migrations-checks", "stairway")
    result.assert_outcomes(passed=2, failed=1)
    result.stdout.fnmatch_lines_random(
        [
            '*- table "zones": unique constraint (name): missing after the downgrade*',
            '*- table "zones": check constraint ((population >= 0)): missing after the downgrade*',
            '*+ table "zones": check constraint ((population > 0)): present after the downgrade*',
        ]
    )


def test_postgresql_constraint_added_twice_under_generated_names_is_a_difference(project: Project) -> None:
    """A downgrade that re-adds a unique constraint its upgrade never dropped leaves a second one, and fails."""
    url = server_url("postgresql")
    project.revision(
        "a1", None, _REGIONS, 'op.drop_table("regions")\nop.drop_table("tickets")\nop.drop_table("countries")'
    )
    project.revision("b2", "a1", "pass", 'op.create_unique_constraint(None, "regions", ["name"])')
    result = project.run("--migrations-url", url, "--migrations-checks", "stairway")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(
        [
            '*+ table "regions": unique constraint (name) #2: present after the downgrade, absent before the upgrade'
            " (named regions_name_key1)"
        ]
    )


def test_postgresql_serial_sequence_is_compared_with_its_column(project: Project) -> None:
    """A column re-created without its serial sequence, or with another identity, is a difference."""
    url = server_url("postgresql")
    _renamed_regions(
        project,
        _ZONES.replace(
            'sa.Column("id", sa.Integer, primary_key=True)',
            'sa.Column("id", sa.Integer, primary_key=True, autoincrement=False)',
        ).replace("sa.Identity()", "sa.Identity(start=100)"),
    )
    result = project.run("--migrations-url", url, "--migrations-checks", "stairway")
    result.assert_outcomes(passed=2, failed=1)
    result.stdout.fnmatch_lines_random(
        [
            '*~ table "zones": column id: integer NOT NULL DEFAULT nextval(<owned sequence>) before the upgrade, but integer NOT NULL after the downgrade*',
            '*~ table "issues": owned sequence of column id: integer START 1 *, but integer START 100 *',
        ]
    )


_TOUCH = '''
op.execute("""
    CREATE FUNCTION touch() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        NEW.updated_at = now();
        RETURN NEW;
    END
    $$
""")
'''

_TOUCH_REFORMATTED = '''
op.execute("""CREATE FUNCTION touch() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN

  NEW.updated_at   = now();  RETURN NEW;
END $$""")
'''


def test_postgresql_function_bodies_differing_in_whitespace_are_equal(project: Project) -> None:
    """A function re-created by a downgrade with other indentation and blank lines is the same function."""
    url = server_url("postgresql")
    project.revision("a1", None, _TOUCH, 'op.execute("DROP FUNCTION touch()")')
    project.revision("b2", "a1", 'op.execute("DROP FUNCTION touch()")', _TOUCH_REFORMATTED)
    result = project.run("--migrations-url", url, "--migrations-checks", "stairway")
    result.assert_outcomes(passed=2)


def test_postgresql_function_body_that_differs_is_shown_as_a_diff(project: Project) -> None:
    """A function re-created with another body fails, and the report shows the changed lines of the body."""
    url = server_url("postgresql")
    project.revision("a1", None, _TOUCH, 'op.execute("DROP FUNCTION touch()")')
    project.revision(
        "b2", "a1", 'op.execute("DROP FUNCTION touch()")', _TOUCH_REFORMATTED.replace("RETURN NEW", "RETURN NULL")
    )
    result = project.run("--migrations-url", url, "--migrations-checks", "stairway")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(
        [
            '*~ function "touch()": definition differs (- before the upgrade, + after the downgrade):',
            "*     NEW.updated_at = now();",
            "*    -RETURN NEW;",
            "*    +RETURN NULL;",
            "*     END",
        ]
    )
    assert "md5" not in result.stdout.str()


# ----------------------------------------------------------------------------- MariaDB

_PLAYERS = """
    op.create_table("teams", sa.Column("id", sa.Integer, primary_key=True))
    op.create_table(
        "players",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("team_id", sa.Integer),
        sa.Column("captain_id", sa.Integer),
        sa.Column("mentor_id", sa.Integer),
        sa.Column("age", sa.Integer, sa.CheckConstraint("age >= 0")),
        sa.Column("rating", sa.Integer),
        sa.ForeignKeyConstraint(["team_id"], ["teams.id"], name="fk_players_team"),
        sa.ForeignKeyConstraint(["captain_id"], ["players.id"]),
        sa.CheckConstraint("rating < 100"),
        sa.CheckConstraint("rating > 0"),
    )
"""

# How autogenerate writes the downgrade of a drop_table: every name spelled out, MariaDB's too.
_PLAYERS_RECREATED = """
    op.create_table(
        "players",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("team_id", sa.Integer),
        sa.Column("captain_id", sa.Integer),
        sa.Column("mentor_id", sa.Integer),
        sa.Column("age", sa.Integer),
        sa.Column("rating", sa.Integer),
        sa.ForeignKeyConstraint(["team_id"], ["teams.id"], name="fk_players_team"),
        sa.ForeignKeyConstraint(["captain_id"], ["players.id"], name=op.f("players_ibfk_1")),
        sa.CheckConstraint("age >= 0"),
        sa.CheckConstraint("rating > 0"),
    )
"""


def test_mariadb_names_made_for_foreign_key_indexes_and_checks_are_no_difference(project: Project) -> None:
    """MariaDB names a foreign key's index after the key or its column and numbers unnamed checks: no difference."""
    url = server_url("mysql")
    project.revision("a1", None, _PLAYERS, 'op.drop_table("players")\nop.drop_table("teams")')
    project.revision(
        "b2",
        "a1",
        'op.drop_constraint("CONSTRAINT_1", "players", type_="check")',
        'op.create_check_constraint(None, "players", "rating < 100")',
    )
    project.revision("c3", "b2", 'op.drop_table("players")', _PLAYERS_RECREATED)
    result = project.run("--migrations-url", url, "--migrations-checks", "stairway")
    result.assert_outcomes(passed=3)


def test_mariadb_checks_with_made_up_names_are_still_compared(project: Project) -> None:
    """A re-created table missing a column-level and an unnamed check fails, naming both checks."""
    url = server_url("mysql")
    project.revision("a1", None, _PLAYERS, 'op.drop_table("players")\nop.drop_table("teams")')
    project.revision(
        "b2",
        "a1",
        'op.drop_table("players")',
        _PLAYERS_RECREATED.replace('        sa.CheckConstraint("age >= 0"),\n', ""),
    )
    result = project.run("--migrations-url", url, "--migrations-checks", "stairway")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines_random(
        [
            '*- table "players": check constraint age >= 0: missing after the downgrade (it exists before the upgrade; named age)',
            '*- table "players": check constraint rating < 100: missing after the downgrade (it exists before the upgrade; named CONSTRAINT_1)',
        ]
    )


def test_mariadb_index_left_by_a_dropped_foreign_key_is_reported_as_such(project: Project) -> None:
    """The index MariaDB made for a foreign key outlives it: the report names the index and says why it is there."""
    url = server_url("mysql")
    project.revision("a1", None, _PLAYERS, 'op.drop_table("players")\nop.drop_table("teams")')
    project.revision(
        "b2",
        "a1",
        'op.create_foreign_key("fk_players_mentor", "players", "players", ["mentor_id"], ["id"])',
        'op.drop_constraint("fk_players_mentor", "players", type_="foreignkey")',
    )
    result = project.run("--migrations-url", url, "--migrations-checks", "stairway")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(
        [
            '*+ table "players": index fk_players_mentor (mentor_id) BTREE: present after the downgrade, absent before the upgrade'
            " (probably the index MySQL made for a foreign key; dropping the foreign key does not drop it: drop it too)",
        ]
    )


# ----------------------------------------------------------------------------- SQLite

_FLAGS = """
    op.create_table(
        "flags",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("active", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("score", sa.Integer, server_default="-1"),
        sa.Column("created", sa.DateTime, server_default=sa.text("CURRENT_TIMESTAMP")),
    )
"""


def test_sqlite_batch_mode_keeps_defaults_equal(project: Project) -> None:
    """Batch mode re-creating a table respells its defaults (false, '-1', CURRENT_TIMESTAMP): no difference."""
    project.revision("a1", None, _FLAGS, 'op.drop_table("flags")')
    project.revision(
        "b2",
        "a1",
        'with op.batch_alter_table("flags", recreate="always") as b:\n    b.add_column(sa.Column("note", sa.String(20)))',
        'with op.batch_alter_table("flags", recreate="always") as b:\n    b.drop_column("note")',
    )
    result = project.run("--migrations-checks", "stairway")
    result.assert_outcomes(passed=2)


def test_sqlite_defaults_spelled_differently_are_equal(project: Project) -> None:
    """`false`, `'0'` and `0`, `'-1'` and `-1`, `(current_timestamp)` and `CURRENT_TIMESTAMP` are the same default."""
    project.revision("a1", None, _FLAGS, 'op.drop_table("flags")')
    project.revision(
        "b2",
        "a1",
        'op.drop_table("flags")',
        _FLAGS.replace("sa.false()", 'sa.text("false")')
        .replace('server_default="-1"', 'server_default=sa.text("-1")')
        .replace('sa.text("CURRENT_TIMESTAMP")', 'sa.text("(current_timestamp)")'),
    )
    result = project.run("--migrations-checks", "stairway")
    result.assert_outcomes(passed=2)


def test_sqlite_default_that_really_changed_is_reported(project: Project) -> None:
    """A downgrade that restores a column with another default fails, showing both defaults."""
    project.revision("a1", None, _FLAGS, 'op.drop_table("flags")')
    project.revision(
        "b2", "a1", 'op.drop_table("flags")', _FLAGS.replace("sa.false()", "sa.true()").replace('"-1"', '"-2"')
    )
    result = project.run("--migrations-checks", "stairway")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines_random(
        [
            '*~ table "flags": column active: BOOLEAN NOT NULL DEFAULT 0 before the upgrade, but BOOLEAN NOT NULL DEFAULT 1 after*',
            '*~ table "flags": column score: INTEGER NULL DEFAULT -1 before the upgrade, but INTEGER NULL DEFAULT -2 after*',
        ]
    )


def _view(columns: str, comment: str = "") -> str:
    return f'op.execute("DROP VIEW IF EXISTS named_users")\nop.execute("CREATE VIEW named_users AS {comment}SELECT {columns} FROM users")'


def _named_users(project: Project, downgrade_columns: str) -> None:
    """b2 re-creates a1's commented view with a name column; its downgrade re-creates it uncommented."""
    project.revision(
        "a1",
        None,
        'op.create_table("users", sa.Column("id", sa.Integer, primary_key=True), sa.Column("name", sa.String(20)))\n'
        + _view("id", "/* one row per user */ "),
        'op.execute("DROP VIEW named_users")\nop.drop_table("users")',
    )
    project.revision("b2", "a1", _view("id, name", "-- with names\\n "), _view(downgrade_columns))


def test_sqlite_view_re_created_without_its_comments_is_the_same_view(project: Project) -> None:
    """SQLite keeps a view's SQL as written: a downgrade that re-creates the view without the
    upgrade's comments leaves the same view (Galaxy)."""
    _named_users(project, "id")
    project.run("--migrations-checks", "stairway").assert_outcomes(passed=2)


def test_sqlite_view_left_with_another_column_is_reported(project: Project) -> None:
    _named_users(project, "id, name")
    result = project.run("--migrations-checks", "stairway")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(['*~ view "named_users": definition*'])


_POSTS = (
    'op.create_table("users", sa.Column("id", sa.Integer, primary_key=True))\n'
    'op.create_table("posts", sa.Column("id", sa.Integer, primary_key=True), '
    'sa.Column("user_id", sa.Integer, sa.ForeignKey("users.id", ondelete="CASCADE")))'
)
_RESTORE_USER_ID = {
    "named": 'with op.batch_alter_table("posts") as b:\n'
    '    b.add_column(sa.Column("user_id", sa.Integer))\n'
    '    b.create_foreign_key("fk_posts_user", "users", ["user_id"], ["id"], ondelete="CASCADE")',
    # What the report advises, on each database.
    "sqlite": 'op.add_column("posts", sa.Column("user_id", sa.Integer))\n'
    'with op.batch_alter_table("posts", recreate="always", reflect_args=[sa.ForeignKeyConstraint(["user_id"], '
    '["users.id"], ondelete="CASCADE")]):\n    pass',
    "mysql": 'op.add_column("posts", sa.Column("user_id", sa.Integer))\n'
    'op.create_foreign_key(None, "posts", "users", ["user_id"], ["id"], ondelete="CASCADE")',
}
_UNNAMED_ADVICE = {
    "sqlite": '*with op.batch_alter_table("posts", recreate="always", reflect_args=[sa.ForeignKeyConstraint(?"user_id"?, '
    '?"users.id"?, ondelete="CASCADE")?):',
    "mysql": '*op.create_foreign_key(None, "posts", "users", ?"user_id"?, ?"id"?, onupdate="RESTRICT", ondelete="CASCADE")',
}


_DROP_USER_ID = {
    "sqlite": 'with op.batch_alter_table("posts", recreate="always") as b:\n    b.drop_column("user_id")',
    "mysql": 'op.drop_constraint("posts_ibfk_1", "posts", type_="foreignkey")\nop.drop_column("posts", "user_id")',
}


def _unnamed_foreign_key(project: Project, dialect: str, restore: str) -> list[str]:
    """b2 drops posts.user_id, with the unnamed foreign key a1 gave it; its downgrade restores both as ``restore``."""
    project.revision("a1", None, _POSTS, 'op.drop_table("posts")\nop.drop_table("users")')
    project.revision("b2", "a1", _DROP_USER_ID[dialect], _RESTORE_USER_ID[restore])
    url = [] if dialect == "sqlite" else ["--migrations-url", server_url(dialect)]
    return ["--migrations-checks", "stairway", *url]


@pytest.mark.parametrize("dialect", ["sqlite", "mysql"])
def test_foreign_key_brought_back_named_is_advised_unnamed_not_dropped(project: Project, dialect: str) -> None:
    """A downgrade that re-creates an unnamed foreign key under a name is a difference; dropping the
    named one would remove the foreign key (Galaxy), so the advice is to create it as it was."""
    result = project.run(*_unnamed_foreign_key(project, dialect, "named"))
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(
        [
            '*foreign key (user_id) -> users(id) *CASCADE of table "posts" came back named fk_posts_user, '
            "but before the upgrade it had no name: create it without one, in place of the named one*",
            _UNNAMED_ADVICE[dialect],
        ]
    )
    assert "drop_constraint" not in result.stdout.str()


@pytest.mark.parametrize("dialect", ["sqlite", "mysql"])
def test_foreign_key_re_created_as_the_advice_says_passes(project: Project, dialect: str) -> None:
    project.run(*_unnamed_foreign_key(project, dialect, dialect)).assert_outcomes(passed=2)


# As users run: filterwarnings=error. pytest's own warning about this already imported plugin is not theirs.
_WARNINGS_AS_ERRORS = ("-W", "error", "-W", "ignore::pytest.PytestAssertRewriteWarning")


def test_sqlite_expression_index_left_behind_is_caught(project: Project) -> None:
    """An expression index a downgrade forgets is a difference, without SQLAlchemy's reflection warning."""
    project.revision(
        "a1",
        None,
        'op.create_table("users", sa.Column("id", sa.Integer, primary_key=True), sa.Column("email", sa.String(100)))',
        'op.drop_table("users")',
    )
    project.revision("b2", "a1", 'op.create_index("ix_lower_email", "users", [sa.text("lower(email)")])', "pass")
    result = project.run("--migrations-checks", "stairway", *_WARNINGS_AS_ERRORS)
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(['*+ table "users": index ix_lower_email (lower(email)): present after the downgrade*'])


def test_sqlite_expression_index_dropped_by_the_downgrade_passes(project: Project) -> None:
    """A correct revision adding an expression index passes with warnings as errors."""
    project.revision(
        "a1",
        None,
        'op.create_table("users", sa.Column("id", sa.Integer, primary_key=True), sa.Column("email", sa.String(100)))',
        'op.drop_table("users")',
    )
    project.revision(
        "b2",
        "a1",
        'op.create_index("ix_lower_email", "users", [sa.text("lower(email)")], unique=True)',
        'op.drop_index("ix_lower_email", table_name="users")',
    )
    result = project.run("--migrations-checks", "stairway", *_WARNINGS_AS_ERRORS)
    result.assert_outcomes(passed=2)
