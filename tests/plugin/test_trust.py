"""Correct migrations pass and broken ones fail once, with a true account (classes seen on real histories)."""

from __future__ import annotations

import re

import pytest
from alembic import command
from alembic.config import Config

from ..helpers import Project, users_table


class TestStepsAreFreshCommands:
    def test_a_module_that_consumes_its_own_state_runs_again(self, project: Project) -> None:
        """A script whose upgrade() pops module-level state works as under `alembic`, which imports it afresh."""
        project.revision(**users_table("a1"))
        project.revision(
            "b2",
            "a1",
            'name = PENDING.pop()\nop.create_table(name, sa.Column("id", sa.Integer, primary_key=True))',
            'op.drop_table("audit")',
            extra='PENDING = ["audit"]',
        )
        result = project.run("--migrations-checks", "upgrade_to_head,stairway,downgrade_to_base")
        result.assert_outcomes(passed=4)


class TestOneRootCauseOneFailure:
    def _branches(self, project: Project) -> None:
        project.revision(**users_table("a1"))
        project.revision("b2", "a1", 'raise RuntimeError("b2 is broken")', "pass", branch_labels="left")
        project.revision("c3", "b2", 'op.create_index("ix_c", "users", ["name"])', 'op.drop_index("ix_c", "users")')
        project.revision(
            "d4",
            "a1",
            'op.add_column("users", sa.Column("age", sa.Integer))',
            'with op.batch_alter_table("users") as b:\n    b.drop_column("age")',
            branch_labels="right",
        )

    def test_a_failing_revision_blocks_only_its_descendants(self, project: Project) -> None:
        """b2 fails; c3 (on top of it) is skipped naming b2; d4 on the other branch is tested and passes."""
        self._branches(project)
        result = project.run("--migrations-checks", "stairway", "--migrations-expected-heads", "2", "-v")
        result.assert_outcomes(passed=2, failed=1, skipped=1)
        result.stdout.fnmatch_lines(["*stairway?d4? PASSED*"])
        result.stdout.fnmatch_lines(["*stairway?b2? FAILED*"])
        result.stdout.fnmatch_lines(
            ["SKIPPED *c3_rev.py:1: blocked: the stairway of c3 is not tested: it needs revision b2 *RuntimeError*"]
        )
        assert len(re.findall(r"b2_rev.py:\d+ in upgrade", result.stdout.str())) == 1  # one traceback: b2's item

    def test_blocked_items_fail_when_the_blocker_is_not_selected(self, project: Project) -> None:
        """With b2's item deselected, c3 fails (briefly, naming b2): nothing is silently untested."""
        self._branches(project)
        result = project.run("--migrations-checks", "stairway", "-k", "c3 or d4")
        result.assert_outcomes(passed=1, failed=1)
        result.stdout.fnmatch_lines(["the stairway of c3 is not tested: it needs revision b2 *"])

    def test_whole_walks_fail_once_and_drift_is_blocked(self, project: Project) -> None:
        """upgrade_to_head fails at b2; downgrade_to_base and drift skip naming it rather than failing again."""
        self._branches(project)
        project.models("import sqlalchemy as sa\nmetadata = sa.MetaData()\n")
        result = project.run("--migrations-checks", "upgrade_to_head,downgrade_to_base,drift")
        result.assert_outcomes(failed=1, skipped=2)
        result.stdout.fnmatch_lines(["upgrade of revision b2 * raised RuntimeError: b2 is broken"])
        assert result.stdout.str().count("SKIPPED") == 2
        result.stdout.fnmatch_lines(["SKIPPED *env.py:1: blocked: drift is not tested: it needs revision b2 *"])

    def test_upgrade_to_head_fails_where_alembic_upgrade_heads_fails(self, project: Project) -> None:
        """Two broken branches: the whole walk fails at the revision the `alembic` command stops at."""
        project.revision(**users_table("a1"))
        project.revision("zz", "a1", 'raise RuntimeError("zz is broken")', "pass", branch_labels="one")
        project.revision("bb", "a1", 'raise RuntimeError("bb is broken")', "pass", branch_labels="two")
        config = Config(str(project.root / "alembic.ini"))
        config.set_main_option("sqlalchemy.url", f"sqlite:///{project.root / 'alembic.db'}")
        try:
            command.upgrade(config, "heads")
        except RuntimeError as exc:
            first = str(exc).split()[0]
        result = project.run("--migrations-checks", "upgrade_to_head")
        result.assert_outcomes(failed=1)
        result.stdout.fnmatch_lines([f"upgrade of revision {first} * raised RuntimeError: {first} is broken"])

    @pytest.mark.parametrize("workers", ["0", "2"])
    def test_a_walk_failing_where_the_revisions_item_fails_is_shown_in_full_once(
        self, project: Project, workers: str
    ) -> None:
        """b2's upgrade and c3's downgrade raise: each fails its stairway item in full, and the whole walk
        that repeats it fails with the headline, naming that item, without a second traceback (also when
        the items ran on two xdist workers)."""
        project.revision(**users_table("a1"))
        project.revision("b2", "a1", 'raise RuntimeError("b2 is broken")', "pass")
        result = project.run("--migrations-checks", "upgrade_to_head,stairway", "-n", workers)
        result.assert_outcomes(passed=1, failed=2)
        result.stdout.fnmatch_lines(
            [
                "*_ upgrade_to_head _*",
                "upgrade of revision b2 * raised RuntimeError: b2 is broken",
                "  reported in full by stairway?b2?:",
                "    the same upgrade, run on its own, fails there with the same error at the same line; *",
            ]
        )
        assert len(re.findall(r"b2_rev.py:\d+ in upgrade", result.stdout.str())) == 1

        project.revision("b2", "a1", 'op.create_index("ix_n", "users", ["name"])', 'op.drop_index("ix_n", "users")')
        project.revision("c3", "b2", 'op.add_column("users", sa.Column("age", sa.Integer))', 'raise ValueError("no")')
        result = project.run("--migrations-checks", "stairway,downgrade_to_base", "-n", workers)
        result.assert_outcomes(passed=2, failed=2)
        result.stdout.fnmatch_lines(
            ["*_ downgrade_to_base _*", "downgrade of revision c3 *", "  reported in full by *"]
        )
        assert len(re.findall(r"c3_rev.py:\d+ in downgrade", result.stdout.str())) == 1

    @pytest.mark.parametrize("workers", ["0", "2"])
    def test_downgrade_to_base_names_the_revisions_whose_downgrades_leave_what_it_finds(
        self, project: Project, workers: str
    ) -> None:
        """b2 leaves its audit table behind and c3 its index on it: downgrade_to_base finds the table at base, and
        names stairway[b2], whose own report shows the same table, instead of 'the stairway items show which'."""
        project.revision(**users_table("a1"))
        project.revision("b2", "a1", 'op.create_table("audit", sa.Column("id", sa.Integer, primary_key=True))', "pass")
        project.revision("c3", "b2", 'op.create_index("ix_n", "users", ["name"])', 'op.drop_index("ix_n", "users")')
        result = project.run("--migrations-checks", "stairway,downgrade_to_base", "-n", workers)
        result.assert_outcomes(passed=2, failed=2)
        result.stdout.fnmatch_lines(
            [
                "*_ downgrade_to_base _*",
                "downgrading every revision to base leaves 1 difference(s) from a fresh database",
                "*the revisions to fix:",
                "*every one of these differences is also a failure of a revision's own item; fix those downgrades "
                "first:",
                "*stairway?b2?: 1 of them",
            ]
        )
        assert "stairway[c3]" not in result.stdout.str()

    def test_a_walk_failing_differently_from_the_revisions_item_keeps_its_full_report(self, project: Project) -> None:
        """When the walk's error is not the item's (here a new random token each time), both stay whole."""
        project.revision(**users_table("a1"))
        project.revision("b2", "a1", "import uuid\nraise RuntimeError(uuid.uuid4().hex)", "pass")
        result = project.run("--migrations-checks", "upgrade_to_head,stairway")
        result.assert_outcomes(passed=1, failed=2)
        assert len(re.findall(r"b2_rev.py:\d+ in upgrade", result.stdout.str())) == 2
        assert "reported in full by" not in result.stdout.str()

    def test_a_walk_keeps_its_full_report_when_the_revisions_item_is_deselected(self, project: Project) -> None:
        """With stairway[b2] not in the run, upgrade_to_head is the only report of b2's failure: in full."""
        project.revision(**users_table("a1"))
        project.revision("b2", "a1", 'raise RuntimeError("b2 is broken")', "pass")
        result = project.run("--migrations-checks", "upgrade_to_head,stairway", "-k", "not b2")
        result.assert_outcomes(passed=1, failed=1)
        result.stdout.fnmatch_lines(["*b2_rev.py:* in upgrade", "*database state:*"])
        assert "reported in full by" not in result.stdout.str()


class TestEnvPyThatHidesFailures:
    def test_an_env_py_that_swallows_a_migrations_error_fails_where_it_stopped(self, project: Project) -> None:
        """env.py catches what context.run_migrations() raises (Galaxy catches OperationalError): `alembic upgrade`
        exits 0 stopped at b2, and every item used to pass with c3 never run. b2 now fails, saying env.py hid it,
        and what needs b2 is blocked by it."""
        project.revision(**users_table("a1"))
        project.revision("b2", "a1", 'op.execute("ALTER TABLE missing ADD COLUMN x INTEGER")', "pass")
        project.revision("c3", "b2", 'op.create_index("ix_n", "users", ["name"])', 'op.drop_index("ix_n", "users")')
        project.edit_env(
            "            context.run_migrations()",
            "            try:\n                context.run_migrations()\n            except Exception:\n"
            "                pass  # logged and forgotten",
        )
        result = project.run("--migrations-checks", "upgrade_to_head,stairway,downgrade_to_base", "-v")
        result.assert_outcomes(passed=1, failed=2, skipped=2)
        result.stdout.fnmatch_lines(["*::stairway?a1? PASSED*", "*::stairway?b2? FAILED*"])
        result.stdout.fnmatch_lines(
            [
                "upgrade of revision b2 * raised OperationalError: *no such table: missing",
                "  swallowed by env.py:",
                "    *env.py caught this exception and returned normally, so `alembic upgrade` would exit 0 with the "
                "database stopped here*re-raise in the except block*",
            ]
        )
        result.stdout.fnmatch_lines(["SKIPPED *c3_rev.py:1: blocked: the stairway of c3 is not tested*"])


class TestWhatTeamsDecide:
    def test_accepting_one_known_difference(self, project: Project) -> None:
        """stairway_accept keeps exactly one difference; it is listed as accepted and the item passes."""
        project.revision(**users_table("a1"))
        project.revision(
            "b2",
            "a1",
            'with op.batch_alter_table("users") as b:\n    b.alter_column("name", type_=sa.String(100))',
            "pass",  # the team keeps the wider column on purpose
            extra='stairway_accept = ["table users: column name"]',
        )
        result = project.run("--migrations-checks", "stairway")
        result.assert_outcomes(passed=2)
        result.stdout.fnmatch_lines(
            [
                "*accepted differences*",
                'b2 downgrade: accepted ~ table "users": column name: VARCHAR(50) NOT NULL before, but VARCHAR(100)*',
            ]
        )

    def test_an_accepted_difference_does_not_hide_another(self, project: Project) -> None:
        """Everything not accepted is still checked: a second leftover fails, the accepted one is shown apart."""
        project.revision(**users_table("a1"))
        project.revision(
            "b2",
            "a1",
            'op.add_column("users", sa.Column("legacy", sa.Integer))\nop.create_index("ix_n", "users", ["name"])',
            "pass",
        )
        project.pytester.makeini("[pytest]\nmigrations_stairway_accept = b2: table users: column legacy\n")
        result = project.run("--migrations-checks", "stairway")
        result.assert_outcomes(passed=1, failed=1)
        result.stdout.fnmatch_lines(
            [
                "*1 difference(s) from the schema before the upgrade",
                '*+ table "users": index ix_n (name)*',
                "*accepted (stairway_accept):",
                '*+ table "users": column legacy*',
            ]
        )

    def test_the_accept_entry_the_failure_proposes_accepts_that_difference_only(self, project: Project) -> None:
        """The fix names one difference (``table users: index ix_n``), not the table: pasted into the file, it
        accepts that leftover, and the other one the downgrade forgets still fails."""
        project.revision(**users_table("a1"))
        up = 'op.create_index("ix_n", "users", ["name"])\nop.add_column("users", sa.Column("legacy", sa.Integer))'
        project.revision("b2", "a1", up, 'op.drop_column("users", "legacy")')
        result = project.run("--migrations-checks", "stairway")
        result.assert_outcomes(passed=1, failed=1)
        entry = 'one entry per difference: stairway_accept = ["table users: index ix_n"] in b2_rev.py'
        assert entry in result.stdout.str()

        project.revision("b2", "a1", up, "pass", extra='stairway_accept = ["table users: index ix_n"]')
        result = project.run("--migrations-checks", "stairway")
        result.assert_outcomes(passed=1, failed=1)
        result.stdout.fnmatch_lines(
            [
                "*1 difference(s) from the schema before the upgrade",
                '*+ table "users": column legacy*',
                "*accepted (stairway_accept):",
                '*+ table "users": index ix_n (name)*',
            ]
        )
        assert 'stairway_accept = ["table users: column legacy"] in b2_rev.py' in result.stdout.str()

    def test_a_bad_accept_line_is_a_usage_error(self, project: Project) -> None:
        """An ini accept line without `REV:` says the form it takes."""
        project.revision(**users_table("a1"))
        project.pytester.makeini("[pytest]\nmigrations_stairway_accept = table users\n")
        result = project.run()
        result.stderr.fnmatch_lines(["*migrations_stairway_accept line 'table users' is not `REVISION: <kind>*"])

    def test_every_downgrade_can_be_declared_untested(self, project: Project) -> None:
        """migrations_irreversible = * tests every upgrade and no downgrade, saying so."""
        project.revision(**users_table("a1"))
        project.revision("b2", "a1", 'op.create_index("ix", "users", ["name"])', "pass")
        project.pytester.makeini("[pytest]\nmigrations_irreversible = *\n")
        result = project.run("--migrations-checks", "stairway,downgrade_to_base")
        result.assert_outcomes(skipped=3)
        result.stdout.fnmatch_lines(["*upgrade of b2 passed; its downgrade is not tested: migrations_irreversible = *"])

    def test_a_downgrade_floor_stops_testing_old_downgrades(self, project: Project) -> None:
        """Downgrades at or below the floor are not tested; above it they are, down to the floor."""
        project.revision(**users_table("a1"))
        project.revision("b2", "a1", 'op.create_index("ix", "users", ["name"])', "pass")
        project.revision("c3", "b2", 'op.create_index("iy", "users", ["id"])', 'op.drop_index("iy", "users")')
        result = project.run("--migrations-checks", "stairway,downgrade_to_base", "--migrations-downgrade-floor", "b2")
        result.assert_outcomes(passed=2, skipped=2)
        result.stdout.fnmatch_lines(
            ["SKIPPED *b2_rev.py:1: upgrade of b2 passed; its downgrade is not tested: at or below*"]
        )
        result = project.run("--migrations-checks", "stairway", "--migrations-downgrade-floor", "a1")
        result.assert_outcomes(passed=1, failed=1, skipped=1)  # b2's leftover index is above the floor

    def test_a_downgrade_that_drops_too_much_is_not_called_a_leftover_by_the_whole_walk(self, project: Project) -> None:
        """Down to a floor, a column missing is a difference, and the fix says downgrade() does not undo its
        upgrade(), not that it fails to drop something."""
        project.revision(**users_table("a1"))
        project.revision(
            "b2",
            "a1",
            'op.add_column("users", sa.Column("x", sa.Integer))',
            'with op.batch_alter_table("users") as b:\n    b.drop_column("x")\n    b.drop_column("name")',
        )
        result = project.run("--migrations-checks", "downgrade_to_base", "--migrations-downgrade-floor", "a1")
        result.assert_outcomes(failed=1)
        result.stdout.fnmatch_lines(
            [
                "*downgrading every revision to the downgrade floor (1 revision(s) kept) leaves 1 difference(s)*",
                "*differences:",
                '*- table "users": column name *: missing after the downgrades*',
                "*fix:",
                "*some downgrade() does not undo its upgrade() (+ was left behind, - was dropped or not restored*",
            ]
        )
        assert "does not drop what its upgrade() creates" not in result.stdout.str()


class TestTrueMessages:
    def test_sqlite_alter_of_constraints_gets_the_batch_mode_hint(self, project: Project) -> None:
        """Alembic's 'No support for ALTER of constraints in SQLite' says to use batch mode."""
        project.revision(**users_table("a1"))
        project.revision(
            "b2", "a1", 'op.create_unique_constraint("uq_name", "users", ["name"])', 'op.drop_constraint("uq_name")'
        )
        result = project.run("--migrations-checks", "stairway")
        result.assert_outcomes(passed=1, failed=1)
        result.stdout.fnmatch_lines(["*No support for ALTER of constraints*", "*fix:", "*op.batch_alter_table*"])

    @pytest.mark.parametrize(
        "downgrade",
        [
            'op.drop_constraint("uq_name", "users", type_="unique")',  # NotImplementedError from Alembic
            'op.alter_column("users", "name", type_=sa.String(50))',  # ALTER COLUMN: SQLite's syntax error
        ],
    )
    def test_sqlite_alter_in_a_downgrade_gets_the_batch_mode_hint_not_irreversible(
        self, project: Project, downgrade: str
    ) -> None:
        """The same in a downgrade (Mealie): batch mode is the fix, not declaring the revision irreversible."""
        project.revision(**users_table("a1"))
        project.revision(
            "b2",
            "a1",
            'with op.batch_alter_table("users") as b:\n'
            '    b.create_unique_constraint("uq_name", ["name"])\n'
            '    b.alter_column("name", type_=sa.String(80))',
            downgrade,
        )
        result = project.run("--migrations-checks", "stairway")
        result.assert_outcomes(passed=1, failed=1)
        result.stdout.fnmatch_lines(["downgrade of revision b2 *", "*fix:", "*SQLite cannot ALTER * in place*"])
        assert "irreversible = True" not in result.stdout.str()

    @pytest.mark.parametrize("batch", [False, True])
    def test_sqlite_drop_of_an_unnamed_constraint_gets_the_naming_convention_recipe(
        self, project: Project, batch: bool
    ) -> None:
        """``drop_constraint(None, ...)`` on SQLite: batch mode alone cannot help, the recipe given leads to a pass."""
        project.revision(
            "a1",
            None,
            'op.create_table("teams", sa.Column("id", sa.Integer, primary_key=True))',
            'op.drop_table("teams")',
        )
        users = (
            'op.create_table("users", sa.Column("id", sa.Integer, primary_key=True), '
            'sa.Column("team_id", sa.Integer, sa.ForeignKey("teams.id")))'
        )
        drop = (
            'with op.batch_alter_table("users") as b:\n    b.drop_constraint(None, type_="foreignkey")'
            if batch
            else 'op.drop_constraint(None, "users", type_="foreignkey")'
        )
        path = project.revision("b2", "a1", users, drop + '\nop.drop_table("users")')
        result = project.run("--migrations-checks", "stairway")
        result.assert_outcomes(passed=1, failed=1)
        out = result.stdout.str()
        assert "b2_rev.py calls op.drop_constraint(None, 'users', type_='foreignkey')" in out
        assert "with op.batch_alter_table('users', naming_convention=" in out
        assert "SQLite cannot ALTER" not in out

        path.unlink()
        recipe = (
            'with op.batch_alter_table("users", naming_convention='
            '{"fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s"}) as b:\n'
            '    b.drop_constraint("fk_users_team_id_teams", type_="foreignkey")'
        )
        project.revision("b2", "a1", users, recipe + '\nop.drop_table("users")')
        project.run("--migrations-checks", "stairway").assert_outcomes(passed=2)

    def test_sqlite_batch_constraint_without_a_name_gets_told_to_name_it(self, project: Project) -> None:
        """Batch mode's bare "Constraint must have a name" says which constraint and how; named, it passes."""
        project.revision(**users_table("a1"))
        project.revision(
            "b2",
            "a1",
            'op.create_table("teams", sa.Column("id", sa.Integer, primary_key=True))',
            'op.drop_table("teams")',
        )
        column = 'sa.Column("team_id", sa.Integer, sa.ForeignKey("teams.id"{name}))'
        down = 'with op.batch_alter_table("users") as b:\n    b.drop_column("team_id")'
        up = 'with op.batch_alter_table("users") as b:\n    b.add_column(' + column + ")"
        path = project.revision("c3", "b2", up.format(name=""), down)
        result = project.run("--migrations-checks", "stairway")
        result.assert_outcomes(passed=2, failed=1)
        result.stdout.fnmatch_lines(
            ["upgrade of revision c3 * raised ValueError: Constraint must have a name", "*fix:", "*give it one*"]
        )

        path.unlink()
        project.revision("c3", "b2", up.format(name=', name="fk_users_team_id_teams"'), down)
        project.run("--migrations-checks", "stairway").assert_outcomes(passed=3)

    def test_sys_exit_in_a_migration_is_an_item_failure(self, project: Project) -> None:
        """sys.exit() inside upgrade() fails that item, naming revision and line; the run goes on."""
        project.revision(**users_table("a1"))
        project.revision("b2", "a1", "import sys\nsys.exit(1)", "pass")
        result = project.run("--migrations-checks", "stairway")
        result.assert_outcomes(passed=1, failed=1)
        result.stdout.fnmatch_lines(["upgrade of revision b2 * raised SystemExit: 1", "*must not call sys.exit()*"])

    def test_python_error_after_sql_lists_the_sql_as_accepted(self, project: Project) -> None:
        """A Python raise after an ALTER reports the ALTER as accepted, and what a new connection sees."""
        project.revision(**users_table("a1"))
        project.revision(
            "b2", "a1", 'op.add_column("users", sa.Column("x", sa.Integer))\nraise ValueError("late")', "pass"
        )
        result = project.run("--migrations-checks", "stairway")
        result.assert_outcomes(passed=1, failed=1)
        result.stdout.fnmatch_lines(
            [
                "*statements the database accepted (1):",
                "*1. ALTER TABLE users ADD COLUMN x INTEGER",
                "*every statement succeeded; the step raised in Python after its last one",
                "*as a new connection sees it after the failure*",
            ]
        )

    def test_autogenerate_hint_names_only_what_differs(self, project: Project) -> None:
        """At a checkpoint position, the hint is drop_column alone: no create_table for tables in both states."""
        project.revision(**users_table("r00"))
        for i in range(1, 9):
            project.revision(
                f"r{i:02d}",
                f"r{i - 1:02d}",
                f'op.create_index("ix_{i}", "users", ["name", "id"])',
                f'op.drop_index("ix_{i}", "users")',
            )
        project.revision("r09", "r08", 'op.add_column("users", sa.Column("nickname", sa.String(30)))', "pass")
        result = project.run("--migrations-checks", "stairway")
        result.assert_outcomes(passed=9, failed=1)
        result.stdout.fnmatch_lines(["*what autogenerate says downgrade() is missing (applied to a copy*"])
        assert "batch_op.drop_column('nickname')" in result.stdout.str()
        assert "create_table" not in result.stdout.str()


class TestEnvPyMistakes:
    def test_run_migrations_called_twice_fails_instead_of_hanging(self, project: Project) -> None:
        """An env.py calling run_migrations() twice fails saying so, within seconds, instead of hanging."""
        project.revision(**users_table("a1"))
        project.edit_env("            context.run_migrations()\n", "            context.run_migrations()\n" * 2)
        result = project.pytester.runpytest_subprocess(
            "--migrations", "-p", "no:cacheprovider", "--migrations-checks", "stairway,downgrade_to_base", timeout=120
        )
        result.assert_outcomes(failed=2)
        result.stdout.fnmatch_lines(["*env.py called context.run_migrations() 2 times in one run*"])

    def test_models_with_no_tables_say_the_models_look_empty(self, project: Project) -> None:
        """A target_metadata with no tables next to a migrated database is named, not a drop_table per table."""
        project.revision(**users_table("a1"))
        project.models("import sqlalchemy as sa\nmetadata = sa.MetaData()\n")
        result = project.run("--migrations-checks", "drift")
        result.assert_outcomes(failed=1)
        result.stdout.fnmatch_lines(["*the models look empty: env.py's target_metadata has no tables*"])
        assert "drop_table" not in result.stdout.str()

    def test_multidb_drift_names_the_engine(self, pytester: pytest.Pytester) -> None:
        """In the multidb template, a drift failure says which engine's models differ."""
        project = Project(pytester, template="multidb")
        project.revision(
            "a1",
            None,
            "globals()[f'upgrade_{engine_name}']()",
            "globals()[f'downgrade_{engine_name}']()",
            extra="""
            def upgrade_engine1():
                op.create_table("one", sa.Column("id", sa.Integer, primary_key=True))
            def downgrade_engine1():
                op.drop_table("one")
            def upgrade_engine2():
                op.create_table("two", sa.Column("id", sa.Integer, primary_key=True))
            def downgrade_engine2():
                op.drop_table("two")
            """,
        )
        path = project.versions / "a1_rev.py"
        text = path.read_text().replace("def upgrade():", "def upgrade(engine_name):")
        path.write_text(text.replace("def downgrade():", "def downgrade(engine_name):"))
        (project.root / "models.py").write_text(
            "import sqlalchemy as sa\n"
            "one = sa.MetaData()\nsa.Table('one', one, sa.Column('id', sa.Integer, primary_key=True))\n"
            "two = sa.MetaData()\nsa.Table('two', two, sa.Column('id', sa.Integer, primary_key=True),"
            " sa.Column('title', sa.String(20)))\n"
        )
        project.edit_env(
            "target_metadata = {}", "import models\ntarget_metadata = {'engine1': models.one, 'engine2': models.two}"
        )
        result = project.run("--migrations-checks", "drift")
        result.assert_outcomes(failed=1)
        result.stdout.fnmatch_lines(["*# engine engine2", "*op.add_column('two', sa.Column('title'*"])
        assert "# engine engine1" not in result.stdout.str()


class TestMessagesFromRealHistories:
    def test_autogenerate_hint_leaves_out_tables_only_referenced(self, project: Project) -> None:
        """A difference on `child` proposes nothing for `parent`, the table its foreign key points to."""
        project.revision(
            "a1",
            None,
            'op.create_table("parent", sa.Column("id", sa.Integer, primary_key=True))\n'
            'op.create_table("child", sa.Column("id", sa.Integer, primary_key=True),'
            ' sa.Column("parent_id", sa.Integer, sa.ForeignKey("parent.id")), sa.Column("name", sa.String(20)))\n'
            'op.create_index("ix_child_name", "child", ["name"], unique=True)',
            'op.drop_table("child")\nop.drop_table("parent")',
        )
        project.revision(
            "b2",
            "a1",
            'op.drop_index("ix_child_name", "child")\nop.create_index("uq_child_name", "child", ["name"], unique=True)',
            'op.drop_index("uq_child_name", "child")\nop.create_index("ix_child_name", "child", ["name"], unique=False)',
        )
        result = project.run("--migrations-checks", "stairway")
        result.assert_outcomes(passed=1, failed=1)
        result.stdout.fnmatch_lines(["*what autogenerate says downgrade() is missing (applied to a copy*"])
        assert "create_table" not in result.stdout.str()

    def test_migrations_installed_in_site_packages_still_show_their_line(self, project: Project) -> None:
        """A history shipped in a wheel (under site-packages) gets the revision file's own line in the report."""
        project.revision(**users_table("a1"))
        project.revision("b2", "a1", 'raise RuntimeError("broken in the wheel")', "pass")
        installed = project.root / "venv" / "lib" / "site-packages" / "app"  # norecursedirs has venv
        installed.mkdir(parents=True)
        (project.root / "migrations").rename(installed / "migrations")
        ini = project.root / "alembic.ini"
        ini.write_text(
            re.sub(r"(?m)^script_location = .*$", f"script_location = {installed}/migrations", ini.read_text())
        )
        result = project.run("--migrations-checks", "stairway")
        result.assert_outcomes(passed=1, failed=1)
        result.stdout.fnmatch_lines(["*site-packages/app/migrations/versions/b2_rev.py:* in upgrade"])

    def test_a_url_cached_at_collection_is_named_as_such(
        self, project: Project, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """Settings that cached the collection-time placeholder URL are named, not reported as a foreign database."""
        monkeypatch.delenv("DATABASE_URL", raising=False)
        (project.root / "app_settings.py").write_text("import os\nURL = os.environ['DATABASE_URL']\n")
        project.revision(**users_table("a1"), extra="import app_settings")
        project.edit_env(
            "    connectable = engine_from_config(\n        config.get_section(config.config_ini_section, {}),",
            "    import app_settings\n    connectable = engine_from_config(\n        {'sqlalchemy.url': app_settings.URL},",
        )
        result = project.run("--migrations-checks", "stairway", "--migrations-url-variable", "DATABASE_URL")
        result.assert_outcomes(failed=1)
        result.stdout.fnmatch_lines(["*the placeholder URL pytest-migrations gives env.py*cached*"])


def test_skipping_a_broken_revision_skips_what_it_blocks_instead_of_failing(project: Project) -> None:
    """--migrations-skip REV: REV's items and everything its failing upgrade blocks skip, saying why; nothing fails."""
    project.revision(**users_table("a1"))
    project.revision("b2", "a1", 'raise RuntimeError("known broken, already in production")', "pass")
    project.revision("c3", "b2", 'op.create_index("ix", "users", ["name"])', 'op.drop_index("ix", "users")')
    result = project.run("--migrations-skip", "b2", "--migrations-checks", "upgrade_to_head,stairway,downgrade_to_base")
    result.assert_outcomes(passed=1, skipped=4)
    result.stdout.fnmatch_lines(["*the walk stops at b2, which is listed in migrations_skip*"])
    assert "known broken" in result.stdout.str()


def test_env_py_file_config_leaves_the_users_loggers_alone(project: Project) -> None:
    """env.py's fileConfig() (every alembic template has one) no longer disables the application's loggers."""
    project.revision(**users_table("a1"))
    project.pytester.makepyfile(
        test_logs="""
        import logging

        app = logging.getLogger("myapp.service")

        def test_runner_then_logging(migration_runner, caplog):
            migration_runner.upgrade("heads")
            assert not app.disabled
            with caplog.at_level(logging.INFO, logger="myapp"):
                app.info("still heard")
            assert "still heard" in caplog.text
        """
    )
    result = project.run("--migrations-checks", "stairway", "-p", "no:randomly")
    result.assert_outcomes(passed=2)


def test_plain_pytest_next_to_alembic_ini_says_how_to_turn_the_checks_on(project: Project) -> None:
    """Without --migrations, one header line says the checks are off and how to run them."""
    project.revision(**users_table("a1"))
    project.pytester.makepyfile(test_x="def test_x():\n    pass\n")
    result = project.pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["migrations: checks off (*alembic.ini found); run `pytest --migrations`*"])
