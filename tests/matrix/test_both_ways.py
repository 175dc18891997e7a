"""One pytest-alembic project run both ways: the README's mapping holds, and what each plugin sees.

Collected only in the nox session `pytest8` (pytest-alembic 0.13 does not collect on pytest 9.2),
where pytest-alembic is installed: see tests/conftest.py.
"""

from __future__ import annotations

import pytest

from ..helpers import Project, users_table

# pytest-alembic's configuration, and ours naming the same dict (README: Moving from pytest-alembic).
CONFTEST = """
import pytest

alembic_config_data = {
    "before_revision_data": {"b2": {"__tablename__": "users", "id": 100001, "name": "Ada Lovelace"}},
}

@pytest.fixture
def alembic_config():
    return dict(alembic_config_data)
"""
FIRST_NAME = """
op.add_column("users", sa.Column("first", sa.String(50)))
op.execute("UPDATE users SET first = substr(name, 1, instr(name, ' ') - 1) WHERE instr(name, ' ') > 0")
# Whole walks run without the given rows here (pytest-migrations gives them to stairway items only).
assert op.get_bind().exec_driver_sql("SELECT first FROM users WHERE id = 100001").scalar() in (None, "Ada")
"""


def test_one_project_both_ways(project: Project) -> None:
    pytest.importorskip("pytest_alembic")
    project.revision(**users_table("a1"))
    project.revision("b2", "a1", FIRST_NAME, 'with op.batch_alter_table("users") as b:\n    b.drop_column("first")')
    # A downgrade that leaves its column behind: commands run, the schema is not restored.
    project.revision("c3", "b2", 'op.add_column("users", sa.Column("plan", sa.String(10)))', "pass")
    (project.root / "tests").mkdir()
    (project.root / "tests" / "conftest.py").write_text(CONFTEST)  # where pytest-alembic binds its tests
    # pytest-alembic hands env.py an engine in config.attributes, as its docs and alembic's cookbook say.
    project.edit_env(
        "    connectable = engine_from_config(",
        "    connectable = config.attributes.get('connection') or engine_from_config(",
    )
    project.models(
        """
        import sqlalchemy as sa
        metadata = sa.MetaData()
        users = sa.Table(
            "users", metadata,
            sa.Column("id", sa.Integer(), primary_key=True),
            sa.Column("name", sa.String(50), nullable=False),
            sa.Column("first", sa.String(50)),
            sa.Column("plan", sa.String(10)),
        )
        """
    )
    ini = project.root / "alembic.ini"
    ini.write_text(ini.read_text().replace("driver://user:pass@localhost/dbname", "sqlite:///unused.db"))
    theirs = project.pytester.runpytest_subprocess("--test-alembic", "-p", "no:cacheprovider", "-p", "no:randomly")
    theirs.assert_outcomes(passed=4)  # single head, upgrade, model match (no models), up/down consistency
    ours = project.pytester.runpytest_subprocess(
        "--migrations",
        "-p",
        "no:cacheprovider",
        "-p",
        "no:randomly",
        "--migrations-data",
        "--migrations-checks",
        "single_head,upgrade_to_head,stairway",
        "-o",
        "migrations_revision_data=conftest:alembic_config_data",
    )
    ours.assert_outcomes(passed=4, failed=1)
    ours.stdout.fnmatch_lines(["*downgrade of revision c3 * does not undo its upgrade*", "*column plan*"])
