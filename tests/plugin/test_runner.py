"""The migration_runner fixture: the revision engine as a harness for the user's own tests."""

from __future__ import annotations

from ..helpers import Project, users_table

HISTORY = [
    users_table("a1"),
    {
        "rev": "b2",
        "down": "a1",
        "upgrade": 'op.add_column("users", sa.Column("email", sa.String(100)))',
        "downgrade": 'with op.batch_alter_table("users") as b:\n    b.drop_column("email")',
    },
    {
        "rev": "c3",
        "down": "b2",
        "upgrade": "op.execute(\"UPDATE users SET email = lower(name) || '@example.com'\")",
        "downgrade": 'op.execute("UPDATE users SET email = NULL")',
    },
]


def _history(project: Project) -> None:
    for rev in HISTORY:
        project.revision(**rev)


def test_data_migration_test_with_the_runner(project: Project) -> None:
    """Go to the revision before a data migration, insert rows, upgrade, assert, downgrade, assert."""
    _history(project)
    project.pytester.makepyfile(
        test_data="""
        def test_emails_are_filled(migration_runner):
            assert migration_runner.upgrade("b2") == ("b2",)
            migration_runner.insert("users", [{"id": 1, "name": "Ada", "email": None}])
            assert migration_runner.upgrade("+1") == ("c3",)
            assert migration_runner.current() == ("c3",)
            assert migration_runner.execute("SELECT email FROM users") == [("ada@example.com",)]
            migration_runner.downgrade("-1")
            assert migration_runner.execute("SELECT email FROM users") == [(None,)]
            migration_runner.downgrade("base")
            assert migration_runner.current() == ()
            assert migration_runner.snapshot().tables == ()
        """
    )
    result = project.pytester.runpytest("-p", "no:cacheprovider", "test_data.py")
    result.assert_outcomes(passed=1)


def test_runner_roundtrip_stairway_and_snapshot_comparison(project: Project) -> None:
    """Snapshots compare with ==, and pytest shows their difference readably."""
    _history(project)
    project.pytester.makepyfile(
        test_snap="""
        def test_stairway(migration_runner):
            migration_runner.stairway()
            migration_runner.roundtrip("b2")

        def test_snapshots_differ(migration_runner):
            migration_runner.upgrade("a1")
            before = migration_runner.snapshot()
            migration_runner.upgrade("b2")
            assert before == migration_runner.snapshot()

        def test_reflected_table(migration_runner):
            migration_runner.upgrade("b2")
            assert set(migration_runner.table("users").c.keys()) == {"id", "name", "email"}
        """
    )
    result = project.pytester.runpytest("-p", "no:cacheprovider", "test_snap.py")
    result.assert_outcomes(passed=2, failed=1)
    result.stdout.fnmatch_lines(
        [
            "*database schemas differ (1 difference(s)):*",
            '*+ table "users": column email VARCHAR(100) NULL: present on the right, absent on the left*',
        ]
    )


def test_runner_roundtrip_catches_a_bad_downgrade(project: Project) -> None:
    project.revision(**users_table("a1"))
    project.revision("b2", "a1", 'op.create_index("ix", "users", ["name"])', "pass")
    project.pytester.makepyfile(
        test_rt="""
        import pytest
        from pytest_migrations import SchemaMismatch

        def test_roundtrip(migration_runner):
            with pytest.raises(SchemaMismatch, match="does not undo its upgrade"):
                migration_runner.roundtrip("b2")
        """
    )
    project.pytester.runpytest("-p", "no:cacheprovider", "test_rt.py").assert_outcomes(passed=1)


def test_migration_revision_parametrizes_a_user_test_per_revision(project: Project) -> None:
    """A test using migration_revision runs once per revision, with the revision id in the test id."""
    _history(project)
    project.pytester.makepyfile(
        test_each="""
        def test_each(migration_revision, migration_runner):
            migration_runner.roundtrip(migration_revision.id)
        """
    )
    result = project.pytester.runpytest("-p", "no:cacheprovider", "-v", "test_each.py")
    result.stdout.fnmatch_lines(["*test_each?a1? PASSED*", "*test_each?b2? PASSED*", "*test_each?c3? PASSED*"])


def test_bad_target_is_a_clear_error(project: Project) -> None:
    _history(project)
    project.pytester.makepyfile(
        test_bad="""
        import pytest
        from pytest_migrations import ConfigurationError

        def test_bad(migration_runner):
            with pytest.raises(ConfigurationError, match="'zz' is not a revision of this history"):
                migration_runner.upgrade("zz")
            with pytest.raises(ConfigurationError, match="only 0 revision"):
                migration_runner.downgrade("-1")
        """
    )
    project.pytester.runpytest("-p", "no:cacheprovider", "test_bad.py").assert_outcomes(passed=1)


def test_runner_repr_masks_nothing_secret_and_names_the_database(project: Project) -> None:
    _history(project)
    project.pytester.makepyfile(
        test_repr="""
        def test_repr(migration_runner):
            assert "pytest_migrations_" in repr(migration_runner)
            assert migration_runner.url().get_backend_name() == "sqlite"
        """
    )
    project.pytester.runpytest("-p", "no:cacheprovider", "test_repr.py").assert_outcomes(passed=1)


def test_later_runners_reuse_a_template_instead_of_walking(project: Project) -> None:
    """The second runner going to the same revision gets a clone: env.py does not run at all.

    The fresh database it was given and did not use serves the next runner (no CREATE, no DROP)."""
    _history(project)
    project.pytester.makepyfile(
        test_tpl="""
        import pytest

        given = []

        @pytest.mark.parametrize("n", range(3))
        def test_runner(migration_runner, n):
            given.append(migration_runner.url().database)
            if n == 2:  # test 1's fresh database went unused (it got a clone): test 2 is given it, not a new one
                assert given[2] == given[1] != given[0]
            env_runs = []
            original = migration_runner._harness.run
            migration_runner._harness.run = lambda *a, **k: env_runs.append(1) or original(*a, **k)
            assert migration_runner.upgrade("c3") == ("c3",)
            assert migration_runner.current() == ("c3",)
            assert len(env_runs) == (2 if n == 0 else 1)  # first: walk + current(); later: current() only
            migration_runner.insert("users", [{"id": n, "name": "x"}])
            assert migration_runner.execute("SELECT count(*) FROM users") == [(1,)]
        """
    )
    project.pytester.runpytest("-p", "no:cacheprovider", "test_tpl.py").assert_outcomes(passed=3)
