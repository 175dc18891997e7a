"""Broken histories and model drift: each ends in one clear failure naming the file and the fix."""

from __future__ import annotations

from ..helpers import Project, users_table


def test_dangling_down_revision_is_a_failing_graph_item(project: Project) -> None:
    """A down_revision that names nothing fails the graph item with the file and a did-you-mean."""
    project.revision(**users_table("a1b2c3"))
    project.revision("d4e5f6", "a1b2cX", "pass", "pass")
    result = project.run()
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "*_ graph _*",
            "the revision history is broken (1 problem(s)):",
            "*d4e5f6_rev.py (revision d4e5f6) points at down_revision/depends_on 'a1b2cX', which no revision "
            "file declares; did you mean a1b2c3? Fix the id*",
        ]
    )


def test_cycle_is_reported(project: Project) -> None:
    """Revisions that point at each other are named as a cycle."""
    project.revision("a1", "b1", "pass", "pass")
    project.revision("b1", "a1", "pass", "pass")
    result = project.run()
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*the revisions * form a cycle through down_revision/depends_on*"])


def test_duplicate_revision_id_names_both_files(project: Project) -> None:
    """Two files declaring one id: the failure names both and says what to do."""
    project.revision(**users_table("a1"))
    project.revision("a1", None, "pass", "pass", filename="a1_copy.py")
    result = project.run()
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*revision id a1 is declared by more than one file (a1_copy.py, a1_rev.py)*"])


def test_syntax_error_names_the_file_and_line(project: Project) -> None:
    """A migration file that does not compile is reported by file and line, not a traceback."""
    project.revision(**users_table("a1"))
    project.revision("b2", "a1", "op.add_column(", "pass")
    result = project.run()
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*b2_rev.py does not compile: *(line *)*"])


def test_import_error_names_the_file(project: Project) -> None:
    """A migration that raises on import is reported with its file and line."""
    project.revision(**users_table("a1"))
    project.revision("b2", "a1", extra="import not_a_module_anywhere")
    result = project.run()
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*b2_rev.py raised while being imported: ModuleNotFoundError*"])


def test_revision_without_upgrade(project: Project) -> None:
    """A revision file with no upgrade() is a graph problem, not an AttributeError mid-walk."""
    project.revision(**users_table("a1"))
    path = project.revision("b2", "a1")
    path.write_text(path.read_text().replace("def upgrade():\n    pass", ""))
    result = project.run()
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*revision b2 has no upgrade() function*"])


MODELS = """
import sqlalchemy as sa
metadata = sa.MetaData()
users = sa.Table(
    "users", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("name", sa.String(50), nullable=False),
    {extra}
)
"""


def test_drift_passes_when_models_match(project: Project) -> None:
    project.revision(**users_table("a1"))
    project.models(MODELS.format(extra=""))
    result = project.run("--migrations-checks", "drift")
    result.assert_outcomes(passed=1)


def test_drift_shows_the_missing_migration_as_op_code(project: Project) -> None:
    """A model change with no migration fails drift, showing the op.* code and what was not compared."""
    project.revision(**users_table("a1"))
    project.models(MODELS.format(extra='sa.Column("email", sa.String(120), nullable=True),'))
    result = project.run("--migrations-checks", "drift")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "the models do not match the schema at head: a migration is missing",
            "*the missing migration*",
            "*op.add_column('users', sa.Column('email', sa.String(length=120), nullable=True))*",
            "*NOT compared: server defaults (compare_server_default is off)*",
        ]
    )


def test_drift_models_option_overrides_env(project: Project) -> None:
    """--migrations-models points the drift check at another MetaData."""
    project.revision(**users_table("a1"))
    project.pytester.makepyfile(other_models=MODELS.format(extra='sa.Column("age", sa.Integer),'))
    result = project.run("--migrations-checks", "drift", "--migrations-models", "other_models:metadata")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*op.add_column('users', sa.Column('age', sa.Integer()*"])


def test_drift_without_models_skips_saying_how_to_enable_it(project: Project) -> None:
    project.revision(**users_table("a1"))
    result = project.run("--migrations-checks", "drift")
    result.assert_outcomes(skipped=1)
    result.stdout.fnmatch_lines(["*no models to compare: env.py passes no target_metadata*migrations_models*"])


def test_public_drift_assertion_in_a_user_test(project: Project) -> None:
    """The same drift assertion is a runner method, for one drift test in a team's own suite."""
    project.revision(**users_table("a1"))
    project.models(MODELS.format(extra='sa.Column("email", sa.String(120)),'))
    project.pytester.makepyfile(
        test_drift="""
        import pytest
        from pytest_migrations import MigrationCheckFailed

        def test_no_drift(migration_runner):
            with pytest.raises(MigrationCheckFailed, match="a migration is missing"):
                migration_runner.assert_no_drift()
        """
    )
    result = project.pytester.runpytest("-p", "no:cacheprovider", "test_drift.py")
    result.assert_outcomes(passed=1)


def test_revision_without_down_revision_names_the_file(project: Project) -> None:
    project.revision(**users_table("a1"))
    path = project.revision("b2", "a1")
    path.write_text(path.read_text().replace("down_revision = 'a1'\n", ""))
    result = project.run()
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*b2_rev.py sets no down_revision; add down_revision = None for a base revision*"])


def test_revision_without_downgrade_is_upgrade_only(project: Project) -> None:
    """A revision with no downgrade() at all (a team policy) has its upgrade tested and says the downgrade is not."""
    project.revision(**users_table("a1"))
    path = project.revision("b2", "a1", 'op.create_index("ix", "users", ["name"])')
    path.write_text(path.read_text().replace("def downgrade():\n    pass", ""))
    result = project.run("--migrations-checks", "stairway,downgrade_to_base")
    result.assert_outcomes(passed=1, skipped=2)
    result.stdout.fnmatch_lines(
        [
            "SKIPPED *b2_rev.py:1: upgrade of b2 passed; its downgrade is not tested: upgrade-only: b2_rev.py "
            "defines no downgrade()",
            "SKIPPED *env.py:1: nothing to downgrade: every revision is one whose downgrade is not tested, or lies below one "
            "(b2: upgrade-only*",
        ]
    )


def test_assert_no_drift_is_a_plain_function(project: Project) -> None:
    """pytest_migrations.assert_no_drift works outside the fixtures, on a throwaway database."""
    project.revision(**users_table("a1"))
    project.models(MODELS.format(extra=""))
    # A module name of its own: under pytest 8.0 with two workers, an earlier test's `models`
    # (with an email column) was still what `import models` found here; see the issue 11 note.
    (project.root / "models.py").rename(project.root / "plain_models.py")
    project.edit_env("from models import metadata", "from plain_models import metadata")
    project.pytester.makepyfile(
        test_plain="""
        import pytest
        from pytest_migrations import MigrationCheckFailed, assert_no_drift

        def test_matches():
            assert_no_drift("alembic.ini")

        def test_other_models_drift():
            with pytest.raises(MigrationCheckFailed, match="a migration is missing"):
                assert_no_drift("alembic.ini", models="other:metadata")
        """,
        other=MODELS.format(extra='sa.Column("age", sa.Integer),'),
    )
    project.pytester.runpytest("-p", "no:cacheprovider", "test_plain.py").assert_outcomes(passed=2)
