"""The stairway item: per revision, upgrade / downgrade / compare / re-upgrade / compare."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..helpers import Project, users_table


def test_linear_history_passes_with_one_item_per_revision(project: Project) -> None:
    """A correct linear history gives a passing stairway item per revision, named by revision id."""
    project.revision(**users_table("a1"))
    project.revision(
        "b2",
        "a1",
        'op.add_column("users", sa.Column("email", sa.String(100)))\nop.create_index("ix_email", "users", ["email"])',
        'op.drop_index("ix_email", table_name="users")\nwith op.batch_alter_table("users") as b:\n    b.drop_column("email")',
    )
    result = project.run("-v", "--migrations-checks", "stairway")
    result.stdout.fnmatch_lines(["*env.py::stairway?a1? PASSED*", "*env.py::stairway?b2? PASSED*"])
    result.assert_outcomes(passed=2)


def test_downgrade_that_leaves_a_column_fails_at_that_revision(project: Project) -> None:
    """The peer misses this: a downgrade that forgets a column fails its own item, naming the column."""
    project.revision(**users_table("a1"))
    project.revision("b2", "a1", 'op.add_column("users", sa.Column("nickname", sa.String(30)))', "pass")
    result = project.run("--migrations-checks", "stairway")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(
        [
            "*stairway?b2?*",
            "downgrade of revision b2 *(b2_rev.py) does not undo its upgrade*",
            '*+ table "users": column nickname VARCHAR(30) NULL: present after the downgrade, absent before*',
            "*make downgrade() in b2_rev.py reverse every operation of upgrade()*",
            "*what autogenerate says downgrade() is missing (applied to a copy of the database, it removes them):",
            "*with op.batch_alter_table('users', schema=None) as batch_op:",  # SQLite alters in batch mode
            "*batch_op.drop_column('nickname')",
        ]
    )


def test_downgrade_that_leaves_an_index_fails(project: Project) -> None:
    """An index left behind is a difference, reported with its columns."""
    project.revision(**users_table("a1"))
    project.revision("b2", "a1", 'op.create_index("ix_users_name", "users", ["name"])', "pass")
    result = project.run("--migrations-checks", "stairway")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(
        [
            '*+ table "users": index ix_users_name (name): present after the downgrade*',
            "*batch_op.drop_index(batch_op.f('ix_users_name'))",
        ]
    )


def test_downgrade_that_is_pass_fails_naming_the_table(project: Project) -> None:
    """A `pass` downgrade of a create_table leaves the whole table behind."""
    project.revision("a1", None, users_table()["upgrade"], "pass")
    result = project.run("--migrations-checks", "stairway")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(['*+ table "users": present after the downgrade (columns id, name)*'])


def test_downgrade_that_drops_too_much_fails(project: Project) -> None:
    """A downgrade that removes something its upgrade did not add is a '-' difference."""
    project.revision(**users_table("a1"))
    project.revision(
        "b2",
        "a1",
        'op.create_index("ix_a", "users", ["name"])',
        'op.drop_index("ix_a", table_name="users")\nop.drop_table("users")',
    )
    result = project.run("--migrations-checks", "stairway")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(
        ['*- table "users": missing after the downgrade (it exists before the upgrade)*', "*op.create_table('users',*"]
    )


def test_changed_column_is_reported_with_both_values(project: Project) -> None:
    """A downgrade that restores a column with another type shows expected and actual."""
    project.revision(**users_table("a1"))
    project.revision(
        "b2",
        "a1",
        'with op.batch_alter_table("users") as b:\n    b.alter_column("name", type_=sa.String(200))',
        'with op.batch_alter_table("users") as b:\n    b.alter_column("name", type_=sa.String(100))',
    )
    result = project.run("--migrations-checks", "stairway")
    result.stdout.fnmatch_lines(
        ['*~ table "users": column name: VARCHAR(50) NOT NULL before the upgrade, but VARCHAR(100) NOT NULL after*']
    )


def test_batch_mode_recreating_tables_is_not_a_difference(project: Project) -> None:
    """Batch mode rewrites SQLite's stored DDL and moves re-added columns last: no false positive."""
    project.revision(**users_table("a1"))
    project.revision(
        "b2",
        "a1",
        'with op.batch_alter_table("users", recreate="always") as b:\n    b.drop_column("name")',
        'with op.batch_alter_table("users", recreate="always") as b:\n'
        '    b.add_column(sa.Column("name", sa.String(50), nullable=False, server_default=""))\n'
        'with op.batch_alter_table("users", recreate="always") as b:\n'
        '    b.alter_column("name", server_default=None)',
    )
    result = project.run("--migrations-checks", "stairway")
    result.assert_outcomes(passed=2)


def test_upgrade_that_raises_names_revision_step_and_line(project: Project) -> None:
    """A migration that raises fails its item with the revision, the step and the line in the file."""
    project.revision(**users_table("a1"))
    project.revision("b2", "a1", 'raise RuntimeError("boom in b2")', "pass")
    result = project.run("--migrations-checks", "stairway")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(
        ["upgrade of revision b2 *(b2_rev.py) raised RuntimeError: boom in b2", "*b2_rev.py:*in upgrade*"]
    )


def test_a_step_refused_at_its_first_statement_leaves_nothing_even_without_transactional_ddl(
    project: Project,
) -> None:
    """SQLite keeps every DDL statement it accepted, but this step had none accepted: the report says nothing of
    it stays (no "half-migrated" advice), and names the last of the many steps walked before it, not all."""
    project.revision(**users_table("a1"))
    for number, (rev, parent) in enumerate(zip("bcdef", "abcde", strict=True), 2):
        project.revision(
            f"{rev}{number}",
            f"{parent}{number - 1}",
            f'op.add_column("users", sa.Column("c{rev}", sa.Integer))',
            f'op.drop_column("users", "c{rev}")',
        )
    project.revision("g7", "f6", 'op.execute("SELECT * FROM no_such_table")', "pass")
    result = project.run("--migrations-checks", "stairway", "-k", "g7")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "*statements the database accepted (0):",
            "*statement that failed: SELECT * FROM no_such_table",
            "*sqlite has no transactional DDL, but the database accepted no statement of this step: nothing g7 ran "
            "stays. Steps completed earlier in this walk: 6 steps, the last 3: *f6",
        ]
    )
    assert "half-migrated" not in result.stdout.str()


def test_a_step_that_set_a_pragma_and_reflected_before_failing_changed_nothing(project: Project) -> None:
    """Galaxy sets PRAGMA legacy_alter_table=1 around batch mode, which reflects the table in many PRAGMAs and
    SELECTs, then fails before any DDL: the report says nothing changed (no "half-migrated" advice) and lists
    only the statements that could write, not every reflection query."""
    project.revision(**users_table("a1"))
    project.revision(
        "b2",
        "a1",
        'op.execute("PRAGMA legacy_alter_table=1")\n'
        'with op.batch_alter_table("users") as b:\n'
        '    b.drop_constraint("no_such_fk", type_="foreignkey")',
        "pass",
    )
    result = project.run("--migrations-checks", "stairway", "-k", "b2")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "*statements the database accepted (*); the * that change nothing (queries, connection settings) are "
            "not listed:",
            "*sqlite has no transactional DDL, but the statements the database accepted change nothing*",
        ]
    )
    out = result.stdout.str()
    assert "half-migrated" not in out
    assert "PRAGMA main.table_xinfo" not in out


def test_undeclared_not_implemented_downgrade_fails_with_the_hint(project: Project) -> None:
    """NotImplementedError in downgrade fails, telling how to declare the revision irreversible."""
    project.revision(**users_table("a1"))
    project.revision("b2", "a1", 'op.create_index("ix_a", "users", ["name"])', "raise NotImplementedError()")
    result = project.run("--migrations-checks", "stairway")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["downgrade of revision b2 * raised NotImplementedError*", "*irreversible = True*"])


def test_declared_irreversible_revision_skips_its_downgrade_with_the_reason(project: Project) -> None:
    """`irreversible = "..."` in the file makes the item skip its downgrade, showing why."""
    project.revision(**users_table("a1"))
    project.revision(
        "b2",
        "a1",
        'op.create_index("ix_a", "users", ["name"])',
        "raise NotImplementedError()",
        extra='irreversible = "drops customer data"',
    )
    project.revision("c3", "b2", 'op.create_index("ix_b", "users", ["id", "name"])', 'op.drop_index("ix_b", "users")')
    result = project.run("--migrations-checks", "stairway,downgrade_to_base")
    result.assert_outcomes(passed=3, skipped=1)
    result.stdout.fnmatch_lines(
        [
            "*pytest-migrations: accepted differences and untested downgrades*",
            "downgrade_to_base stopped at the downgrades that are not tested: b2 (drops customer data)",
            "SKIPPED *b2_rev.py:1: upgrade of b2 passed; its downgrade is not tested: drops customer data",
        ]
    )


def test_irreversible_can_be_declared_in_the_ini(project: Project) -> None:
    """migrations_irreversible lists revisions without touching their files."""
    project.revision(**users_table("a1"))
    project.revision("b2", "a1", 'op.create_index("ix_a", "users", ["name"])', "raise NotImplementedError()")
    project.pytester.makeini("[pytest]\nmigrations_irreversible = b2\n")
    result = project.run("--migrations-checks", "stairway")
    result.assert_outcomes(passed=1, skipped=1)


def test_a_broken_earlier_revision_is_named_by_later_items(project: Project) -> None:
    """An item behind a failing upgrade says which revision blocks it, not a confusing error."""
    project.revision(**users_table("a1"))
    project.revision("b2", "a1", 'raise RuntimeError("b2 is broken")', "pass")
    project.revision("c3", "b2", 'op.create_index("ix_a", "users", ["name"])', 'op.drop_index("ix_a", "users")')
    result = project.run("--migrations-checks", "stairway", "-k", "c3")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "the stairway of c3 is not tested: it needs revision b2 *, whose upgrade fails: RuntimeError: b2 is broken",
            "*run stairway?b2? to see its failure in full",
        ]
    )


def test_items_are_correct_in_any_order_and_alone(project: Project) -> None:
    """Each item brings its own database to its parent revision: reversed order and -k work."""
    project.revision(**users_table("a1"))
    for i, (rev, down) in enumerate([("b2", "a1"), ("c3", "b2"), ("d4", "c3"), ("e5", "d4")]):
        project.revision(
            rev,
            down,
            f'op.add_column("users", sa.Column("c{i}", sa.Integer()))',
            f'with op.batch_alter_table("users") as b:\n    b.drop_column("c{i}")',
        )
    project.pytester.makeconftest("def pytest_collection_modifyitems(items):\n    items.reverse()\n")
    result = project.run("--migrations-checks", "stairway")
    result.assert_outcomes(passed=5)
    result = project.run("--migrations-checks", "stairway", "-k", "d4")
    result.assert_outcomes(passed=1)


def test_downgrade_that_raises_names_the_step(project: Project) -> None:
    """A downgrade that raises fails its stairway item and downgrade_to_base, each naming the downgrade."""
    project.revision(**users_table("a1"))
    project.revision("b2", "a1", 'op.create_index("ix_a", "users", ["name"])', 'raise ValueError("no way back")')
    result = project.run("--migrations-checks", "stairway,downgrade_to_base")
    result.assert_outcomes(passed=1, failed=2)
    result.stdout.fnmatch_lines(
        [
            "downgrade of revision b2 * raised ValueError: no way back",
            "*b2_rev.py:* in downgrade*",
            "downgrade of revision b2 * raised ValueError: no way back",
        ]
    )


def test_a_history_without_revisions_yet(project: Project) -> None:
    """Right after `alembic init`: nothing fails, and the items say there is nothing to walk."""
    result = project.run()
    result.assert_outcomes(passed=2, skipped=3)  # single_head, downgrade_to_base, drift (no models)
    result.stdout.fnmatch_lines(["*nothing to downgrade: the history has no revisions yet*"])


def test_checkpoints_are_kept_only_once_the_cursor_is_lost(project: Project, tmp_path: Path) -> None:
    """In history order with every item passing, no database is copied (a copy ends the open env.py run
    and, on a server, costs dozens of steps); once an item runs behind the cursor, copies are kept, and
    an item far behind restores one instead of walking from the start."""
    from pytest_migrations.backends.sqlite import SQLiteBackend
    from pytest_migrations.checks import check_stairway
    from pytest_migrations.harness import Harness
    from pytest_migrations.location import ProjectLocation
    from pytest_migrations.project import AlembicProject

    revisions = [f"r{n:02d}" for n in range(12)]
    for n, rev in enumerate(revisions):
        project.revision(
            rev,
            revisions[n - 1] if n else None,
            f'op.create_table("t{n}", sa.Column("id", sa.Integer, primary_key=True))',
            f'op.drop_table("t{n}")',
        )
    alembic_project = AlembicProject(ProjectLocation(project.root / "alembic.ini", None))
    backend = SQLiteBackend(tmp_path)
    clones: list[str] = []
    real_clone = backend.clone

    def clone(source: str, name: str) -> Any:
        clones.append(name)
        return real_clone(source, name)

    backend.clone = clone  # type: ignore[method-assign]
    harness = Harness(alembic_project, backend, checkpoint_every=4)
    order = alembic_project.graph.order
    try:
        for revision in order:
            assert check_stairway(harness, revision) is None
        assert clones == [] and not harness.checkpointing
        assert check_stairway(harness, order[1]) is None  # behind the cursor: walks from the start, once
        assert harness.checkpointing
        for revision in order[2:]:
            assert check_stairway(harness, revision) is None
        assert len(clones) == 3  # the cursor copied at positions 4, 8 and 12
        assert check_stairway(harness, order[9]) is None
        assert len(clones) == 4  # item r09 started from a copy of the one at position 8
    finally:
        harness.close()


def test_tables_with_a_foreign_key_cycle_get_the_autogenerate_fix_without_warnings(project: Project) -> None:
    """The plugin's own reflection of two tables that point at each other warns in SQLAlchemy: under
    filterwarnings=error, as users run, the failure still shows autogenerate's fix, and no warning."""
    project.revision(
        "a1",
        None,
        'op.create_table("a", sa.Column("id", sa.Integer, primary_key=True), sa.Column("b_id", sa.Integer))\n'
        'op.create_table("b", sa.Column("id", sa.Integer, primary_key=True), '
        'sa.Column("a_id", sa.Integer, sa.ForeignKey("a.id")))\n'
        'with op.batch_alter_table("a") as batch_op:\n'
        '    batch_op.create_foreign_key("fk_a_b", "b", ["b_id"], ["id"])',
        'op.drop_table("b")\nop.drop_table("a")',
    )
    project.revision("b2", "a1", 'op.add_column("a", sa.Column("x", sa.Integer))', "pass")
    result = project.run(
        "--migrations-checks", "stairway", "-W", "error", "-W", "ignore::pytest.PytestAssertRewriteWarning"
    )
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["*what autogenerate says downgrade() is missing*", "*batch_op.drop_column('x')"])
    assert "Warning" not in result.stdout.str()
