"""Histories whose revision files import what only env.py makes importable collect with no option.

The ``alembic`` command runs env.py before it loads any revision file; these projects rely
on it (a ``sys.path`` insert, a URL read from the environment), and so must collection.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.pool import NullPool

from pytest_migrations.providers import with_driver

from ..conftest import server_url
from ..helpers import Project

SRC_ON_PATH = """\
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "src"))
"""

TYPES = """\
import sqlalchemy as sa


class Thing(sa.types.TypeDecorator):
    impl = sa.String(40)
    cache_ok = True
"""


def _app_in_src(project: Project, package: str) -> None:
    """A package under src/, importable only once env.py has put src/ on sys.path."""
    folder = project.root / "src" / package
    folder.mkdir(parents=True)
    (folder / "__init__.py").write_text("")
    (folder / "types.py").write_text(TYPES)


def _revisions_using(project: Project, package: str) -> None:
    project.revision(
        "a1",
        None,
        'op.create_table("things", sa.Column("id", sa.Integer, primary_key=True), sa.Column("thing", Thing()))',
        'op.drop_table("things")',
        extra=f"from {package}.types import Thing",
    )
    project.revision(
        "b1",
        "a1",
        'op.add_column("things", sa.Column("other", Thing()))',
        'op.drop_column("things", "other")',
        extra=f"from {package}.types import Thing",
    )


def test_revisions_importing_from_a_folder_env_py_adds_to_sys_path(project: Project) -> None:
    """env.py puts src/ on sys.path and the revisions import from it: every item passes, with no option."""
    _app_in_src(project, "zero_app_a")
    project.edit_env("from alembic import context\n", "from alembic import context\n" + SRC_ON_PATH)
    _revisions_using(project, "zero_app_a")
    result = project.run()
    result.assert_outcomes(passed=3 + 2 + 1, skipped=1)  # drift: no models

    collected = project.run("--collect-only", "-q")
    assert collected.ret == 0
    collected.stdout.fnmatch_lines(["*env.py::graph", "*env.py::stairway?a1?", "*env.py::stairway?b1?"])


def test_env_py_connecting_at_import_never_reaches_a_database(project: Project) -> None:
    """env.py that connects to a database at module level is never connected at collection, which still works."""
    victim = project.root / "victim.db"
    _app_in_src(project, "zero_app_b")
    project.edit_env(
        "from alembic import context\n",
        "from alembic import context\n"
        + SRC_ON_PATH
        + f"import sqlalchemy as sa\nsa.create_engine({f'sqlite:///{victim}'!r}).connect()\n",
    )
    _revisions_using(project, "zero_app_b")
    result = project.run("--collect-only", "-q")
    assert result.ret == 0
    result.stdout.fnmatch_lines(["*env.py::stairway?a1?", "*env.py::stairway?b1?"])
    assert not victim.exists()


def test_imports_set_up_in_the_online_branch_and_a_hard_coded_database_left_untouched(
    project: Project, user_database: Callable[[str], str]
) -> None:
    """env.py sets up the imports in run_migrations_online, then writes to its own database: collection works, nothing is written."""
    server_url("postgresql")
    victim = user_database("pm_probe_victim")
    _app_in_src(project, "zero_app_c")
    project.edit_env(
        '    connectable = engine_from_config(\n        config.get_section(config.config_ini_section, {}),\n        prefix="sqlalchemy.",\n        poolclass=pool.NullPool,\n    )',
        "\n".join(
            [
                *("    " + line for line in SRC_ON_PATH.splitlines()),
                "    import sqlalchemy as sa",
                f"    connectable = sa.create_engine({victim!r})",
                "    with connectable.begin() as conn:",
                '        conn.exec_driver_sql("CREATE TABLE written_at_collection (id int)")',
            ]
        ),
    )
    _revisions_using(project, "zero_app_c")
    result = project.run("--collect-only", "-q")
    assert result.ret == 0
    result.stdout.fnmatch_lines(["*env.py::stairway?a1?", "*env.py::stairway?b1?"])
    engine = sa.create_engine(with_driver(sa.make_url(victim)), poolclass=NullPool)
    try:
        assert not sa.inspect(engine).get_table_names()
    finally:
        engine.dispose()


def test_module_importable_nowhere_still_fails_the_graph_item(project: Project) -> None:
    """A revision importing a module that exists nowhere fails the graph item, naming the file and line."""
    project.revision("a1", None, extra="from nowhere_to_be_found import thing")
    result = project.run()
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "*a1_rev.py raised while being imported: ModuleNotFoundError: No module named 'nowhere_to_be_found' "
            "(line 9: from nowhere_to_be_found import thing), even after running env.py first as the alembic "
            "command does. Make the module importable*",
        ]
    )


def test_graph_failure_says_where_env_py_stopped(project: Project, monkeypatch: pytest.MonkeyPatch) -> None:
    """When env.py itself raises before it sets up the imports, the graph failure says so, with env.py's line."""
    monkeypatch.delenv("APP_SETTINGS", raising=False)
    _app_in_src(project, "zero_app_d")
    project.edit_env(
        "from alembic import context\n",
        'from alembic import context\nimport os\nos.environ["APP_SETTINGS"]\n' + SRC_ON_PATH,
    )
    _revisions_using(project, "zero_app_d")
    result = project.run("--migrations-checks", "graph")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "*No module named 'zero_app_d'*, even after running env.py first as the alembic command does; "
            "env.py itself stopped with KeyError: 'APP_SETTINGS' (line 8: os.environ??APP_SETTINGS??)*",
        ]
    )


def test_revision_reading_the_url_variable_at_import(project: Project, monkeypatch: pytest.MonkeyPatch) -> None:
    """A revision reading os.environ["DATABASE_URL"] at import collects and passes with --migrations-url-variable."""
    monkeypatch.delenv("DATABASE_URL", raising=False)
    seen = project.root / "seen.txt"
    project.revision(
        "a1",
        None,
        'op.create_table("t", sa.Column("name", sa.String(20, collation=COLLATION)))',
        'op.drop_table("t")',
        extra=f"""
        import os
        _URL = os.environ["DATABASE_URL"]
        with open({str(seen)!r}, "a") as seen:
            seen.write(_URL + "\\n")
        COLLATION = "utf8mb4_bin" if _URL.startswith("mysql") else None
        """,
    )
    result = project.run("--migrations-url-variable", "DATABASE_URL")
    result.assert_outcomes(passed=3 + 1 + 1, skipped=1)
    first = seen.read_text().splitlines()[0]
    assert first.startswith("sqlite:") and "pytest_migrations_collect" in first
    assert "DATABASE_URL" not in os.environ

    seen.unlink()
    Path(first.removeprefix("sqlite:///")).unlink(missing_ok=True)
    collected = project.run("--migrations-url-variable", "DATABASE_URL", "--collect-only", "-q")
    assert collected.ret == 0
    assert not Path(first.removeprefix("sqlite:///")).exists()  # a placeholder, never connected to
    assert "DATABASE_URL" not in os.environ


def test_probe_leaves_the_users_loggers_alone(project: Project) -> None:
    """Loggers made before the run keep their level and stay enabled although env.py's fileConfig ran first."""
    _app_in_src(project, "zero_app_e")
    project.edit_env(
        "from alembic import context\n",
        'from alembic import context\nimport logging\nlogging.getLogger("myapp.audit").setLevel(logging.ERROR)\n'
        + SRC_ON_PATH,
    )
    _revisions_using(project, "zero_app_e")
    project.pytester.makeconftest(
        """
        import logging
        logging.getLogger("myapp.audit").setLevel(logging.INFO)
        """
    )
    project.pytester.makepyfile(
        test_logs="""
        import logging

        def test_logger_untouched():
            audit = logging.getLogger("myapp.audit")
            assert audit.disabled is False
            assert audit.level == logging.INFO
        """
    )
    # Only the checks that run no env.py of their own: the probe at collection is what is tested.
    result = project.run("--migrations-checks", "graph,single_head")
    result.assert_outcomes(passed=3)


def test_async_env_py_setting_up_imports_in_its_online_branch(pytester: pytest.Pytester) -> None:
    """The async template with the sys.path insert in run_migrations_online collects and passes every item."""
    project = Project(pytester, template="async")
    _app_in_src(project, "zero_app_f")
    project.edit_env(
        '    """Run migrations in \'online\' mode."""\n',
        '    """Run migrations in \'online\' mode."""\n'
        + "".join("    " + line + "\n" for line in SRC_ON_PATH.splitlines()),
    )
    _revisions_using(project, "zero_app_f")
    result = project.run()
    result.assert_outcomes(passed=3 + 2 + 1, skipped=1)
