"""Histories as users write them: branches, merges, several bases, depends_on, labels, templates."""

from __future__ import annotations

from pathlib import Path

import alembic
import pytest

from ..helpers import Project, users_table


def _table(name: str) -> tuple[str, str]:
    return (
        f'op.create_table("{name}", sa.Column("id", sa.Integer(), primary_key=True))',
        f'op.drop_table("{name}")',
    )


def test_branch_and_merge(project: Project) -> None:
    """A branch point, two branches and a merge revision: every item passes, the merge too."""
    project.revision(*("a1", None, *_table("root")))
    project.revision(*("b1", "a1", *_table("left")))
    project.revision(*("c1", "a1", *_table("right")))
    project.revision("m1", ["b1", "c1"], "pass", "pass", doc="merge")
    project.revision(*("d1", "m1", *_table("after_merge")))
    result = project.run("-v")
    result.assert_outcomes(passed=3 + 5 + 1, skipped=1)  # drift: no models
    result.stdout.fnmatch_lines(["*stairway?m1? PASSED*"])


def test_two_bases_and_depends_on(project: Project) -> None:
    """Two independent bases, one branch depending on the other: all checks pass with 2 heads expected."""
    project.revision(*("a1", None, *_table("app")), branch_labels="app")
    project.revision(*("x1", None, *_table("audit")), branch_labels="audit")
    project.revision(
        "a2",
        "a1",
        'op.create_table("app_audit", sa.Column("id", sa.Integer, sa.ForeignKey("audit.id"), primary_key=True))',
        'op.drop_table("app_audit")',
        depends_on="audit",
    )
    result = project.run("--migrations-expected-heads", "2")
    result.assert_outcomes(passed=3 + 3 + 1, skipped=1)


def test_two_heads_fail_single_head_with_the_fix(project: Project) -> None:
    """Two heads after a merge that never happened: single_head fails and names both heads."""
    project.revision(*("a1", None, *_table("root")))
    project.revision(*("b1", "a1", *_table("left")), doc="left branch")
    project.revision(*("c1", "a1", *_table("right")), doc="right branch")
    result = project.run("--migrations-checks", "single_head")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "the history has 2 heads, expected 1",
            '*b1 "left branch" (b1_rev.py)*',
            '*c1 "right branch" (c1_rev.py)*',
            "*alembic merge heads*",
        ]
    )


def test_custom_version_table_and_transaction_per_migration(project: Project) -> None:
    """env.py options hold: a custom version table is used and never mistaken for a schema difference."""
    project.revision(**users_table("a1"))
    project.edit_env(
        "target_metadata=target_metadata\n        )",
        'target_metadata=target_metadata, version_table="schema_history", transaction_per_migration=True\n        )',
    )
    project.pytester.makepyfile(
        test_version="""
        def test_version_table_is_custom(migration_runner):
            migration_runner.upgrade("heads")
            assert migration_runner.execute("SELECT version_num FROM schema_history") == [("a1",)]
        """
    )
    result = project.run()
    result.assert_outcomes(passed=5 + 1, skipped=1)


# The templates of the installed alembic: pyproject_async came with alembic 1.16.3.
TEMPLATES = [
    t for t in ("pyproject", "async", "pyproject_async") if (Path(alembic.__file__).parent / "templates" / t).is_dir()
]


@pytest.mark.parametrize("template", TEMPLATES)
def test_init_templates_work_unchanged(pytester: pytest.Pytester, template: str) -> None:
    """Projects made by `alembic init -t <template>` run as they are (async ones on aiosqlite)."""
    project = Project(pytester, template=template)
    project.revision(**users_table("a1"))
    project.revision("b2", "a1", 'op.create_index("ix_n", "users", ["name"])', 'op.drop_index("ix_n", "users")')
    result = project.run("-p", "no:randomly")
    result.assert_outcomes(passed=6, skipped=1)


def test_multidb_template(pytester: pytest.Pytester) -> None:
    """The multidb template: one throwaway database per engine, each compared on its own."""
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
            pass
        """,
    )
    text = project.versions.joinpath("a1_rev.py").read_text()
    text = text.replace("def upgrade():", "def upgrade(engine_name):").replace(
        "def downgrade():", "def downgrade(engine_name):"
    )
    project.versions.joinpath("a1_rev.py").write_text(text)
    result = project.run("--migrations-checks", "stairway")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*does not undo its upgrade (database 1)*", '*+ table "two": present after*'])


def test_baseline_schema_for_histories_that_start_from_create_all(project: Project) -> None:
    """Like MLflow's: the first revision alters tables made by metadata.create_all; a baseline provides them."""
    project.pytester.makepyfile(
        baseline="""
        import sqlalchemy as sa
        metadata = sa.MetaData()
        sa.Table("metrics", metadata, sa.Column("key", sa.String(50), primary_key=True))
        """
    )
    project.revision(
        "a1",
        None,
        'op.add_column("metrics", sa.Column("step", sa.Integer))',
        'with op.batch_alter_table("metrics") as b:\n    b.drop_column("step")',
    )
    result = project.run("--migrations-checks", "upgrade_to_head,stairway,downgrade_to_base")
    result.assert_outcomes(failed=2, skipped=1)  # downgrade_to_base is blocked by a1, not a third failure
    result.stdout.fnmatch_lines(["*no such table: metrics*"])
    result = project.run(
        "--migrations-checks",
        "upgrade_to_head,stairway,downgrade_to_base",
        "--migrations-baseline",
        "baseline:metadata",
    )
    result.assert_outcomes(passed=3)


def test_a_baseline_the_database_refuses_is_one_line_naming_the_setting(project: Project) -> None:
    """A baseline whose DDL fails (Galaxy's pg_dump replay) gave every item a traceback through the plugin, with
    the whole DDL in it (44 MB on Galaxy): each item now says in one line that the baseline failed, and why."""
    project.pytester.makepyfile(
        baseline="""
        import sqlalchemy as sa
        metadata = sa.MetaData()
        sa.Table("legacy", metadata, sa.Column("id", sa.Integer, primary_key=True),
                 sa.CheckConstraint("this is not sql", name="bad"))
        """
    )
    project.revision(**users_table("a1"))
    result = project.run(
        "--migrations-checks", "upgrade_to_head,stairway", "--migrations-baseline", "baseline:metadata"
    )
    result.assert_outcomes(failed=2)
    result.stdout.fnmatch_lines(
        [
            "the baseline (migrations_baseline) could not be created on sqlite: OperationalError: * at: CREATE "
            "TABLE legacy (*). Fix the baseline's DDL for sqlite*"
        ]
    )
    out = result.stdout.str()
    assert "Traceback" not in out and "harness.py" not in out
    assert list(project.root.rglob("pytest_migrations_*.db")) == []


def test_downgrade_to_base_compares_with_a_fresh_database(project: Project) -> None:
    """Something left at base is named, compared with a fresh database."""
    project.revision("a1", None, 'op.create_table("keep", sa.Column("id", sa.Integer, primary_key=True))', "pass")
    result = project.run("--migrations-checks", "downgrade_to_base")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        ["downgrading every revision to base leaves 1 difference(s) from a fresh database", '*+ table "keep"*']
    )


def _branchy_history(project: Project, count: int, seed: int) -> int:
    """A seeded random history: new bases, branches, merges and depends_on; returns the number of heads."""
    import random

    rnd = random.Random(seed)
    heads: list[str] = []
    revs: list[str] = []
    for i in range(count):
        rid = f"r{i:03d}"
        roll = rnd.random()
        down: str | tuple[str, ...] | None
        if not revs or roll < 0.05:
            down = None
        elif roll < 0.25:
            down = rnd.choice(revs)
        elif roll < 0.40 and len(heads) >= 2:
            down = tuple(sorted(rnd.sample(heads, 2)))
        else:
            down = rnd.choice(heads)
        depends = rnd.choice(revs) if revs and rnd.random() < 0.1 else None
        parents = set(down) if isinstance(down, tuple) else {down} if down else set()
        heads = [h for h in heads if h not in parents] + [rid]
        revs.append(rid)
        project.revision(
            rid,
            list(down) if isinstance(down, tuple) else down,
            f'op.create_table("t{i}", sa.Column("id", sa.Integer, primary_key=True))\n'
            f'op.create_index("ix_t{i}", "t{i}", ["id"])',
            f'op.drop_index("ix_t{i}", table_name="t{i}")\nop.drop_table("t{i}")',
            depends_on=depends,
        )
    return len(heads)


def test_large_branched_history_in_random_order(project: Project) -> None:
    """Bases, branches, merges and depends_on, items shuffled: every item still passes on its own."""
    heads = _branchy_history(project, 40, seed=11)
    project.pytester.makeconftest(
        "import random\n\ndef pytest_collection_modifyitems(items):\n    random.Random(3).shuffle(items)\n"
    )
    result = project.run("--migrations-expected-heads", str(heads))
    result.assert_outcomes(passed=4 + 40, skipped=1)  # drift: no models


def test_async_env_py_using_get_event_loop(pytester: pytest.Pytester) -> None:
    """Older async env.py files drive the loop with get_event_loop().run_until_complete(); they work too."""
    project = Project(pytester, template="async")
    project.revision(**users_table("a1"))
    project.revision("b2", "a1", 'op.create_index("ix_n", "users", ["name"])', 'op.drop_index("ix_n", "users")')
    project.edit_env(
        "    asyncio.run(run_async_migrations())",
        "    asyncio.get_event_loop().run_until_complete(run_async_migrations())",
    )
    # A subprocess: asyncio.run() in earlier in-process runs leaves this thread without a loop to get.
    result = project.pytester.runpytest_subprocess(
        "--migrations", "-p", "no:cacheprovider", "-W", "ignore::DeprecationWarning"
    )
    result.assert_outcomes(passed=6, skipped=1)


def test_env_py_sees_the_callers_context_variables(project: Project) -> None:
    """State env.py finds in context variables (an app context) is there in every run, threaded or not."""
    project.revision(**users_table("a1"))
    project.revision("b2", "a1", 'op.create_index("ix_n", "users", ["name"])', 'op.drop_index("ix_n", "users")')
    project.pytester.makepyfile(appctx="import contextvars\ncurrent_app = contextvars.ContextVar('current_app')\n")
    project.pytester.makeconftest("import appctx\nappctx.current_app.set('blog')\n")
    project.edit_env(
        "def run_migrations_online() -> None:",
        "def run_migrations_online() -> None:\n    import appctx\n    assert appctx.current_app.get() == 'blog'\n",
    )
    result = project.run("--migrations-checks", "upgrade_to_head,stairway")
    result.assert_outcomes(passed=3)


def test_pyproject_only_project_without_alembic_ini(pytester: pytest.Pytester) -> None:
    """[tool.alembic] alone (no alembic.ini) is found and run; the URL lives only in the plugin's config."""
    project = Project(pytester, template="pyproject")
    (project.root / "alembic.ini").unlink()
    project.revision(**users_table("a1"))
    result = project.run("--migrations-checks", "graph,upgrade_to_head,stairway,downgrade_to_base")
    result.assert_outcomes(passed=4)
