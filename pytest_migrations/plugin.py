"""The pytest11 entry point (``-p no:migrations`` disables it): hooks only, delegating the work."""

from __future__ import annotations

import os
import sys
from collections.abc import Generator
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING

import pytest

from .backends import controller_alive
from .catalog import DATABASES, NOTES_PROPERTY
from .exceptions import MigrationsError
from .fixtures import (
    _migrations_harnesses,
    migration_graph,
    migration_revision,
    migration_runner,
)
from .location import locate_project
from .reporting import ReportHooks
from .rootcause import RootCauseHooks
from .settings import Settings, add_options
from .state import get_pool, get_project, pool_key, settings_key, try_project, worker_id
from .xdist import XdistHooks, distributing

if TYPE_CHECKING:
    from .collection import MigrationsCollector

__all__ = ["_migrations_harnesses", "migration_graph", "migration_revision", "migration_runner"]

# Every module imported above is light: SQLAlchemy and Alembic come in with the checks'
# collection, a fixture, or a hook of an enabled run, never at pytest's start (see .catalog).


def _collection() -> ModuleType | None:
    """The collection module if something imported it; until then no built-in item exists."""
    return sys.modules.get("pytest_migrations.collection")


def pytest_addoption(parser: pytest.Parser) -> None:
    add_options(parser)


def pytest_addhooks(pluginmanager: pytest.PytestPluginManager) -> None:
    from . import hookspecs

    pluginmanager.add_hookspecs(hookspecs)


@pytest.hookimpl(trylast=True)
def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "migrations: a built-in Alembic migration check of pytest-migrations")
    for database in DATABASES:
        config.addinivalue_line("markers", f"{database}: a built-in migration check run on {database}")
    config.addinivalue_line("markers", "migrations_db(name): the database kind migration_runner uses in this test")
    settings = Settings.from_config(config)
    config.stash[settings_key] = settings
    if config.pluginmanager.hasplugin("xdist"):
        config.pluginmanager.register(XdistHooks(config), "migrations-xdist")
    config.pluginmanager.register(ReportHooks(config, settings), "migrations-report")
    if not settings.enabled:
        return
    if worker_id(config) is None:  # the controller, where every report arrives
        config.pluginmanager.register(RootCauseHooks(), "migrations-root-cause")
    try:
        project = get_project(config)
    except MigrationsError as exc:
        raise pytest.UsageError(f"--migrations: {exc.render()}") from exc
    anchor = project.env_path.resolve()
    covered = any(_covers(arg, anchor, config.invocation_params.dir) for arg in config.args)
    if not covered:
        config.args.append(str(anchor))


@pytest.hookimpl(tryfirst=True)
def pytest_sessionstart(session: pytest.Session) -> None:
    """Under xdist, start the servers on the controller, before the workers are told their URLs."""
    config = session.config
    if not distributing(config) or config.option.collectonly:
        return
    for database in config.stash[settings_key].databases:
        if database != "sqlite":
            try:
                get_pool(config).get(database)
            except MigrationsError as exc:
                raise pytest.UsageError(exc.render()) from exc


def pytest_unconfigure(config: pytest.Config) -> None:
    """Stop what the run started (runs after Ctrl-C too); workers own nothing to stop."""
    pool = config.stash.get(pool_key, None)
    if pool is not None and worker_id(config) is None:
        pool.stop()


def _covers(arg: str, anchor: Path, cwd: Path) -> bool:
    path = (cwd / arg.split("::")[0]).resolve()
    return path == anchor or path in anchor.parents


def _is_anchor(config: pytest.Config, file_path: Path) -> bool:
    if file_path.name != "env.py" or not config.stash[settings_key].enabled:
        return False
    project = try_project(config)
    return project is not None and file_path.resolve() == project.env_path.resolve()


def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> bool | None:
    """Never skip the folders leading to env.py: a history may live under ``venv/`` or ``build/``."""
    if not config.stash[settings_key].enabled:
        return None
    project = try_project(config)
    if project is None:
        return None
    anchor = project.env_path.resolve()
    path = collection_path.resolve()
    return False if path == anchor or path in anchor.parents else None


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> MigrationsCollector | None:
    # env.py found while recursing a directory; when it is a command-line argument, pytest's
    # python plugin claims it instead and pytest_pycollect_makemodule below answers.
    if parent.session.isinitpath(file_path) or not _is_anchor(parent.config, file_path):
        return None
    return _collector(parent, file_path)


@pytest.hookimpl(tryfirst=True)
def pytest_pycollect_makemodule(module_path: Path, parent: pytest.Collector) -> MigrationsCollector | None:
    """Collect env.py given on the command line as checks, never import it as a test module."""
    if not _is_anchor(parent.config, module_path):
        return None
    return _collector(parent, module_path)


def _collector(parent: pytest.Collector, env: Path) -> MigrationsCollector:
    """The collector of env.py's checks, with a node id that names the file wherever it lies.

    pytest gives a file outside the rootdir that is itself a command-line argument (the
    plugin adds env.py to the arguments) an empty path, so ids would read ``::graph``.
    Such an env.py gets its path relative to the rootdir instead, as pytest itself writes
    ids outside it: ``../app/migrations/env.py::graph``, which ``--lf`` and a copied id
    (``pytest -c pytest.ini '../app/migrations/env.py::graph'``) find again.
    """
    from .collection import MigrationsCollector

    try:
        relative = os.path.relpath(env, parent.config.rootpath).replace(os.sep, "/")
    except ValueError:  # another drive (Windows): no relative path, pytest's own id
        relative = ""
    nodeid = relative if relative.startswith("../") else None
    return MigrationsCollector.from_parent(parent, path=env, nodeid=nodeid)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "migration_revision" not in metafunc.fixturenames:
        return
    try:
        order = get_project(metafunc.config).graph.order
    except MigrationsError as exc:
        raise pytest.UsageError(f"migration_revision: {exc.render()}") from exc
    metafunc.parametrize("migration_revision", order, ids=[rev.id for rev in order], indirect=True)


def pytest_report_header(config: pytest.Config) -> str | None:
    settings = config.stash.get(settings_key, None)
    if settings is None:
        return None
    if not settings.enabled:
        return _off_header(config, settings)
    project = try_project(config)
    if project is None:
        return None
    try:
        graph = project.graph
        size = f"{len(graph)} revisions, {len(graph.heads)} head(s)"
    except MigrationsError:
        size = "revision history broken (see the graph item)"
    import alembic

    pool = get_pool(config)
    databases = "; ".join("sqlite" if d == "sqlite" else pool.describe(d) for d in settings.databases)
    return (
        f"migrations: alembic {alembic.__version__}, script_location={project.script_location}, {size}, "
        f"database {databases}"
    )


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_protocol(item: pytest.Item) -> bool | None:
    """An xdist worker whose controller is gone runs no more items (and so creates no more databases)."""
    if controller_alive():
        return None
    item.session.shouldstop = "pytest-migrations: the xdist controller is gone"
    return True  # nobody is left to report the item to


def pytest_collection_finish(session: pytest.Session) -> None:
    """Remember which stairway items run: an item a failing upgrade blocks is skipped only if that one runs."""
    if _collection() is None:
        return
    from .collection import MigrationItem, check_key, database_key, revision_key, selected_key

    session.config.stash[selected_key] = frozenset(
        (
            item.stash[database_key],
            item.stash[revision_key].id if revision_key in item.stash else item.stash[check_key].name,
        )
        for item in session.items
        if isinstance(item, MigrationItem)
    )


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """A built-in item's skip is reported at the item (its revision file), not inside the plugin."""
    report = yield
    collection = _collection()
    builtin = collection is not None and isinstance(item, collection.MigrationItem)
    if builtin and report.skipped and isinstance(report.longrepr, tuple):
        path, line, _ = item.reportinfo()
        report.longrepr = (str(path), (line or 0) + 1, report.longrepr[2])
    return report


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """List what built-in items accepted or left untested on purpose, so a pass says what it covered."""
    notes = [
        value
        for reports in terminalreporter.stats.values()
        for report in reports
        if getattr(report, "when", None) == "call"
        for name, value in getattr(report, "user_properties", ())
        if name == NOTES_PROPERTY
    ]
    if notes:
        terminalreporter.write_sep("-", "pytest-migrations: accepted differences and untested downgrades")
        for note in dict.fromkeys(notes):
            terminalreporter.write_line(str(note))
    pool = terminalreporter.config.stash.get(pool_key, None)
    if pool is not None and pool.unproven:
        terminalreporter.write_sep("-", "pytest-migrations: databases left alone")
        terminalreporter.write_line(
            "named like the databases of a killed run, but without the plugin's marker (a run killed between "
            "CREATE DATABASE and its marker leaves one), so they were not dropped; drop them by hand if they "
            "are not yours to keep: " + ", ".join(pool.unproven)
        )


def _off_header(config: pytest.Config, settings: Settings) -> str | None:
    """One line when an Alembic project is here but the checks are off: how to turn them on."""
    try:
        location = locate_project(config.rootpath, settings.config_path, settings.section, config.invocation_params.dir)
    except MigrationsError:
        return None
    return (
        f"migrations: checks off ({location.describe} found); run `pytest --migrations`, or set "
        "migrations_enabled = true in the pytest ini"
    )


def pytest_assertrepr_compare(config: pytest.Config, op: str, left: object, right: object) -> list[str] | None:
    schema = sys.modules.get("pytest_migrations.schema")  # not imported: neither side is a snapshot
    if schema is None:
        return None
    if op == "==" and isinstance(left, schema.SchemaSnapshot) and isinstance(right, schema.SchemaSnapshot):
        diff = left.diff(right)
        return [
            f"database schemas differ ({len(diff)} difference(s)):",
            *diff.render_lines(expected="on the left", actual="on the right"),
        ]
    return None
