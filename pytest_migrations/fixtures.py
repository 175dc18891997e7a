"""User-facing fixtures. Each is documented for ``pytest --fixtures``."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from .backends.sqlite import SQLiteBackend
from .exceptions import MigrationsError
from .harness import Harness
from .history import Revision, RevisionGraph
from .runner import MigrationRunner
from .state import get_project, worker_id

__all__ = ["_migrations_harness", "migration_graph", "migration_revision", "migration_runner"]


@pytest.fixture(scope="session")
def _migrations_harness(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Harness]:
    """The process's workbench of throwaway databases; dropped at the end of the session."""
    try:
        project = get_project(request.config)
    except MigrationsError as exc:
        pytest.fail(exc.render(), pytrace=False)
    backend = SQLiteBackend(tmp_path_factory.mktemp("migrations"))
    harness = Harness(project, backend, worker=worker_id(request.config))
    try:
        yield harness
    finally:
        harness.close()


@pytest.fixture(scope="session")
def migration_graph(_migrations_harness: Harness) -> RevisionGraph:
    """The revision graph of the project's Alembic history: order, heads, bases, branch points."""
    try:
        return _migrations_harness.graph
    except MigrationsError as exc:
        pytest.fail(exc.render(), pytrace=False)


@pytest.fixture
def migration_runner(_migrations_harness: Harness) -> Iterator[MigrationRunner]:
    """A :class:`~pytest_migrations.MigrationRunner` on a fresh, empty database of its own.

    Upgrade and downgrade it to any revision, insert rows, run SQL, snapshot the schema,
    run one revision's round trip or the whole stairway. The database is dropped after
    the test.
    """
    databases = _migrations_harness.create()
    runner = MigrationRunner(_migrations_harness, databases, _ispytest=True)
    try:
        yield runner
    finally:
        runner.close()
        _migrations_harness.drop(databases)


@pytest.fixture
def migration_revision(request: pytest.FixtureRequest) -> Revision:
    """The revision a test is parametrized with: a test using it runs once per revision, in order."""
    param = getattr(request, "param", None)
    if not isinstance(param, Revision):
        pytest.fail("migration_revision is parametrized by the plugin; do not override its params", pytrace=False)
    return param
