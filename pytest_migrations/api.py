"""Plain-Python entry points: the checks without pytest, for scripts and other test runners."""

from __future__ import annotations

import tempfile
from pathlib import Path

from .backends import Backend
from .backends.sqlite import SQLiteBackend
from .catalog import DEFAULT_IMAGES
from .checks import check_drift
from .exceptions import MigrationCheckFailed
from .harness import Harness
from .location import locate_project
from .project import AlembicProject, ensure_importable
from .providers import dialect_of
from .servers import ServerPool, backend_for


def assert_no_drift(
    config: str | Path = "alembic.ini",
    *,
    server_url: str | None = None,
    models: str | None = None,
    section: str = "alembic",
) -> None:
    """Fail when the models differ from the schema the migrations build: the ``drift`` check, anywhere.

    A throwaway database is created (on the server of ``server_url``, or as a SQLite file
    when none is given), migrated to head through the project's env.py, compared with
    the models (env.py's ``target_metadata``, or ``models`` as ``module:attr``), and
    dropped. The server's own databases are never touched.

    :raises MigrationCheckFailed: with the missing migration as ``op.*`` code.

    Example, in any test suite or a CI script::

        from pytest_migrations import assert_no_drift

        def test_models_match_migrations():
            assert_no_drift("alembic.ini", server_url=os.environ["DATABASE_SERVER_URL"])
    """
    path = Path(config).resolve()
    project = AlembicProject(locate_project(path.parent, path, section))
    project.check_layout()
    ensure_importable(project)
    with tempfile.TemporaryDirectory(prefix="pytest-migrations-") as tmp:
        backend: Backend
        pool: ServerPool | None = None
        if server_url:
            # The run lock, as a pytest run holds it: another run's dead-run clean-up must not drop our database.
            dialect = dialect_of(server_url)
            pool = ServerPool({dialect: server_url}, "url", dict(DEFAULT_IMAGES))
            backend = backend_for(pool.get(dialect))
        else:
            backend = SQLiteBackend(Path(tmp))
        harness = Harness(project, backend)
        try:
            skipped = check_drift(harness, models)
        finally:
            try:
                harness.close()
            finally:
                if pool is not None:
                    pool.stop()
    if skipped:
        raise MigrationCheckFailed(f"drift could not be checked: {skipped}")
