"""User-facing fixtures. Each is documented for ``pytest --fixtures``."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

from .catalog import DATABASES
from .exceptions import MigrationsError
from .state import get_pool, get_project, settings_key, worker_id

if TYPE_CHECKING:
    from .history import Revision, RevisionGraph
    from .runner import MigrationRunner
    from .servers import Harnesses

# What runs migrations is imported by the fixture that needs it, never at pytest's start:
# a run whose tests use none of these must not pay for importing SQLAlchemy (see .catalog).

__all__ = ["_migrations_harnesses", "migration_graph", "migration_revision", "migration_runner"]


@pytest.fixture(scope="session")
def _migrations_harnesses(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Harnesses]:
    """This process's workbenches of throwaway databases, one per database kind; all dropped at the end."""
    from .checks import load_models
    from .servers import Harnesses

    settings = request.config.stash[settings_key]
    try:
        project = get_project(request.config)
        baseline = load_models(settings.baseline, "migrations_baseline") if settings.baseline else None
    except MigrationsError as exc:
        pytest.fail(exc.render(), pytrace=False)
    harnesses = Harnesses(
        project,
        get_pool(request.config),
        tmp_path_factory.mktemp("migrations"),
        worker_id(request.config),
        baseline,
        settings.policy,
        settings.step_timeout,
        settings.data,
        settings.mysql_schemas,
    )
    try:
        yield harnesses
    finally:
        harnesses.close()


@pytest.fixture(scope="session")
def migration_graph(_migrations_harnesses: Harnesses) -> RevisionGraph:
    """The revision graph of the project's Alembic history: order, heads, bases, branch points."""
    try:
        return _migrations_harnesses.project.graph
    except MigrationsError as exc:
        pytest.fail(exc.render(), pytrace=False)


@pytest.fixture
def migration_runner(request: pytest.FixtureRequest, _migrations_harnesses: Harnesses) -> Iterator[MigrationRunner]:
    """A :class:`~pytest_migrations.MigrationRunner` on a fresh, empty database of its own.

    The database is of the first ``--migrations-db`` kind (SQLite by default), or the
    one a ``@pytest.mark.migrations_db("postgresql")`` marker names. Upgrade and
    downgrade it to any revision, insert rows, run SQL, snapshot the schema, run one
    revision's round trip or the whole stairway. It is dropped after the test.
    """
    marker = request.node.get_closest_marker("migrations_db")
    dialect = marker.args[0] if marker and marker.args else request.config.stash[settings_key].databases[0]
    dialect = "mysql" if dialect == "mariadb" else dialect
    if dialect not in DATABASES:
        pytest.fail(f"migrations_db({dialect!r}): choose one of {', '.join(DATABASES)}", pytrace=False)
    try:
        harness = _migrations_harnesses.get(dialect)
        databases = harness.create()
    except MigrationsError as exc:
        pytest.fail(exc.render(), pytrace=False)
    from .runner import MigrationRunner

    runner = MigrationRunner(harness, databases, _ispytest=True)
    try:
        yield runner
    finally:
        runner._dispose()


@pytest.fixture
def migration_revision(request: pytest.FixtureRequest) -> Revision:
    """The revision a test is parametrized with: a test using it runs once per revision, in order."""
    from .history import Revision

    param = getattr(request, "param", None)
    if not isinstance(param, Revision):
        pytest.fail("migration_revision is parametrized by the plugin; do not override its params", pytrace=False)
    return param
