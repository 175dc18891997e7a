"""Options, ini keys, the report header, collection, disabling, and configuration errors."""

from __future__ import annotations

import importlib.util
import re

import pytest

from ..helpers import Project, users_table


def test_without_the_flag_no_items_but_fixtures_work(project: Project) -> None:
    project.revision(**users_table("a1"))
    project.pytester.makepyfile(test_x="def test_x(migration_runner):\n    migration_runner.upgrade()\n")
    result = project.pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)


def test_a_run_without_the_flag_does_not_import_sqlalchemy_or_alembic(project: Project) -> None:
    """Installed is not enabled: a team's plain test runs (and every xdist worker) start as fast as without it."""
    project.revision(**users_table("a1"))
    project.pytester.makepyfile(
        test_plain="""
        import sys

        def test_plain():
            heavy = [m for m in ("sqlalchemy", "alembic") if m in sys.modules]
            assert not heavy, f"imported at start: {heavy}"
        """
    )
    result = project.pytester.runpytest_subprocess("-p", "no:cacheprovider", "-p", "no:randomly")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["migrations: checks off (*alembic.ini found)*"])  # the plugin is loaded
    if importlib.util.find_spec("xdist"):
        workers = project.pytester.runpytest_subprocess("-p", "no:cacheprovider", "-p", "no:randomly", "-n", "2")
        workers.assert_outcomes(passed=1)


def test_ini_switch_enables_the_checks(project: Project) -> None:
    project.revision(**users_table("a1"))
    project.pytester.makeini("[pytest]\nmigrations_enabled = true\nmigrations_checks =\n    graph\n    stairway\n")
    result = project.pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(passed=2)


def test_plugin_can_be_disabled(project: Project) -> None:
    project.revision(**users_table("a1"))
    result = project.pytester.runpytest("-p", "no:migrations", "--migrations")
    assert result.ret == pytest.ExitCode.USAGE_ERROR  # --migrations is unknown without the plugin
    result = project.pytester.runpytest("-p", "no:migrations", "-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.NO_TESTS_COLLECTED


def test_collect_only_lists_node_ids_without_a_database(project: Project) -> None:
    project.revision(**users_table("a1b2c3d4e5f6a7"))
    result = project.run("--collect-only", "-q")
    result.stdout.fnmatch_lines(
        [
            "migrations/env.py::graph",
            "migrations/env.py::single_head",
            "migrations/env.py::upgrade_to_head",
            "migrations/env.py::stairway[a1b2c3d4e5f6a7]",
            "migrations/env.py::downgrade_to_base",
            "migrations/env.py::drift",
        ]
    )


def test_report_header_says_what_is_tested(project: Project) -> None:
    project.revision(**users_table("a1"))
    result = project.run("--collect-only")
    result.stdout.fnmatch_lines(
        ["migrations: alembic *, script_location=*migrations, 1 revisions, 1 head(s), database sqlite"]
    )


def test_skip_revisions_option(project: Project) -> None:
    project.revision(**users_table("a1"))
    project.revision("b2", "a1", 'op.create_index("ix", "users", ["name"])', "pass")
    result = project.run("--migrations-checks", "stairway", "--migrations-skip", "b2")
    result.assert_outcomes(passed=1, skipped=1)
    result.stdout.fnmatch_lines(["*b2 is listed in migrations_skip*"])


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--migrations-checks", "stairway,nope"], "*unknown migration check(s) nope; choose from graph, single_head*"),
        (["--migrations-expected-heads", "zero"], "*migrations_expected_heads must be a whole number*'zero'*"),
        (["--migrations-db", "oracle"], "*--migrations-db oracle is not supported; choose from*"),
        (["--migrations-config", "nowhere.ini"], "*the Alembic config */nowhere.ini does not exist*"),
        (
            ["--migrations-provider", "cloud"],
            "*--migrations-provider cloud is unknown; choose from auto, url, container, local*",
        ),
        (["--migrations-timeout", "-1"], "*migrations_timeout must be a positive number of seconds, not '-1'*"),
        (["--migrations-url", "sqlite:///x.db"], "*sqlite is not a server the plugin can use*"),
        (["--migrations-url", "not a url"], "*--migrations-url not a url is not a database URL*"),
        (["--migrations-section", "missing"], "*alembic.ini has no ?missing? section (sections: *alembic*)*"),
    ],
)
def test_bad_options_are_usage_errors_with_the_fix(project: Project, args: list[str], message: str) -> None:
    project.revision(**users_table("a1"))
    result = project.run(*args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([message])


def test_missing_alembic_ini_is_a_usage_error(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest("--migrations")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        ["*no alembic.ini and no ?tool.alembic? in pyproject.toml under *--migrations-config PATH*"]
    )


def test_missing_script_location_directory(project: Project) -> None:
    ini = project.root / "alembic.ini"
    ini.write_text(re.sub(r"(?m)^script_location = .*$", "script_location = %(here)s/nope", ini.read_text()))
    result = project.run()
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*script_location */nope (from *alembic.ini) is not a directory*alembic init*"])


def test_env_py_that_raises_fails_with_its_line(project: Project) -> None:
    """A broken env.py fails every item that runs it, pointing at env.py's line; graph checks still pass."""
    project.revision(**users_table("a1"))
    project.edit_env("target_metadata = None", 'raise RuntimeError("env.py is broken")')
    result = project.run()
    result.assert_outcomes(passed=2, failed=4)
    result.stdout.fnmatch_lines(["env.py (*env.py) raised RuntimeError: env.py is broken", "*env.py:* in <module>*"])


def test_empty_history_is_not_a_head_problem(project: Project) -> None:
    result = project.run("--migrations-checks", "single_head,stairway")
    result.assert_outcomes(skipped=1)
    result.stdout.fnmatch_lines(["*the history has no revisions yet*"])


def test_missing_config_names_configs_found_below(pytester: pytest.Pytester) -> None:
    """An alembic.ini in a subfolder is named in the error, with the option to point at it."""
    (pytester.path / "backend").mkdir()
    (pytester.path / "backend" / "alembic.ini").write_text("[alembic]\nscript_location = migrations\n")
    result = pytester.runpytest("--migrations")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        ["*found backend/alembic.ini; point the plugin at your Alembic config with --migrations-config*"]
    )


def test_relative_script_location_works_from_another_directory(
    project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    """script_location = migrations (relative) still works when pytest runs from a subfolder."""
    ini = project.root / "alembic.ini"
    ini.write_text(re.sub(r"(?m)^script_location = .*$", "script_location = migrations", ini.read_text()))
    project.revision(**users_table("a1"))
    (project.root / "sub").mkdir()
    (project.root / "pytest.ini").write_text("[pytest]\n")
    monkeypatch.chdir(project.root / "sub")
    result = project.pytester.runpytest(
        "--migrations",
        "-p",
        "no:cacheprovider",
        "--rootdir",
        str(project.root),
        "-c",
        str(project.root / "pytest.ini"),
        "--migrations-checks",
        "stairway",
    )
    result.assert_outcomes(passed=1)


def test_missing_driver_is_one_clear_error(project: Project) -> None:
    """A URL naming a driver that is not installed fails the items with the install hint."""
    project.revision(**users_table("a1"))
    result = project.run(
        "--migrations-url", "mysql+mariadbconnector://root@127.0.0.1:9/", "--migrations-checks", "stairway"
    )
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        ["*the driver of mysql+mariadbconnector://root@127.0.0.1:9/ is not installed*pytest-migrations[[]mysql]*"]
    )


def test_x_arguments_and_the_configure_hook_reach_env_py(project: Project) -> None:
    """env.py reading context.get_x_argument() and config.attributes gets what the options and hook give."""
    project.revision(**users_table("a1"))
    project.edit_env(
        "def run_migrations_online() -> None:",
        "def run_migrations_online() -> None:\n"
        "    assert context.get_x_argument(as_dictionary=True) == {'tenant': 'acme'}, context.get_x_argument()\n"
        "    assert config.attributes['from_hook'] == 'yes'\n",
    )
    project.pytester.makeconftest(
        "def pytest_migrations_configure_alembic(alembic_config, urls):\n"
        "    assert list(urls) == ['alembic']\n"
        "    alembic_config.attributes['from_hook'] = 'yes'\n"
    )
    result = project.run("--migrations-x", "tenant=acme", "--migrations-checks", "upgrade_to_head,stairway")
    result.assert_outcomes(passed=2)


def test_env_py_that_never_runs_migrations_cannot_pass(project: Project) -> None:
    """An env.py that skips run_migrations() makes the items fail: nothing tested is not a pass."""
    project.revision(**users_table("a1"))
    project.edit_env("            context.run_migrations()\n\n\nif context", "            pass\n\n\nif context")
    result = project.run("--migrations-checks", "upgrade_to_head,stairway")
    result.assert_outcomes(failed=2)
    result.stdout.fnmatch_lines(["*env.py finished without calling context.run_migrations(), so nothing was migrated*"])


def test_custom_ids_with_a_common_prefix_get_distinct_items(project: Project) -> None:
    """Date-style revision ids longer than alembic's 12 characters stay distinct in node ids."""
    project.revision(**users_table("2024_01_15_users"))
    project.revision(
        "2024_01_15_posts",
        "2024_01_15_users",
        'op.create_index("ix", "users", ["name"])',
        'op.drop_index("ix", "users")',
    )
    result = project.run("--collect-only", "-q", "--migrations-checks", "stairway")
    result.stdout.fnmatch_lines(["*::stairway[[]2024_01_15_users]", "*::stairway[[]2024_01_15_posts]"])


def test_last_failed_reruns_only_the_failed_revision(project: Project) -> None:
    """--lf finds stairway[<rev>] items: only the failed revision runs again."""
    project.revision(**users_table("a1"))
    project.revision("b2", "a1", 'op.create_index("ix", "users", ["name"])', "pass")
    project.revision("c3", "b2", 'op.create_index("iy", "users", ["id"])', 'op.drop_index("iy", "users")')
    first = project.pytester.runpytest("--migrations", "--migrations-checks", "stairway")
    first.assert_outcomes(passed=2, failed=1)
    again = project.pytester.runpytest("--migrations", "--migrations-checks", "stairway", "--lf", "-v")
    again.assert_outcomes(failed=1)  # and nothing passed: a1 and c3 did not run again
    again.stdout.fnmatch_lines(["run-last-failure: rerun previous 1 failure*", "*stairway?b2? FAILED*"])


def test_ids_name_an_env_py_outside_the_rootdir(project: Project, monkeypatch: pytest.MonkeyPatch) -> None:
    """The pytest ini lies in another folder than the Alembic project: the ids read ``../migrations/env.py::...``
    (not ``::stairway[b2]``), and --lf and an id copied from the report find the item again."""
    project.revision(**users_table("a1"))
    project.revision("b2", "a1", 'op.create_index("ix", "users", ["name"])', "pass")
    runner = project.root / "tests_of_migrations"
    runner.mkdir()
    (runner / "pytest.ini").write_text("[pytest]\nmigrations_config = ../alembic.ini\n")
    monkeypatch.chdir(runner)
    first = project.pytester.runpytest("--migrations", "--migrations-checks", "stairway", "-v")
    first.assert_outcomes(passed=1, failed=1)
    first.stdout.fnmatch_lines(
        ["../migrations/env.py::stairway?a1? PASSED*", "../migrations/env.py::stairway?b2? FAILED*"]
    )
    again = project.pytester.runpytest("--migrations", "--migrations-checks", "stairway", "--lf", "-v")
    again.assert_outcomes(failed=1)
    again.stdout.fnmatch_lines(["../migrations/env.py::stairway?b2? FAILED*"])
    copied = project.pytester.runpytest("-c", "pytest.ini", "--migrations", "../migrations/env.py::stairway[a1]")
    copied.assert_outcomes(passed=1)
