from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

# Imported once here: in-process pytester runs drop modules first imported inside them, and
# SQLAlchemy 2.0 refuses to import sqlalchemy.ext.asyncio a second time in one process.
import sqlalchemy.ext.asyncio
from sqlalchemy.pool import NullPool

# The plugin imports its engine lazily (a run without --migrations imports neither SQLAlchemy nor
# Alembic); imported here, every in-process run shares one copy of each module, and a class such
# as schema.ObjectState keeps one identity from one run to the next.
import pytest_migrations.checks
import pytest_migrations.harness
import pytest_migrations.mysql_schemas
import pytest_migrations.pg_catalog
import pytest_migrations.schema  # noqa: F401
from pytest_migrations.providers import containers, with_driver
from pytest_migrations.urls import mask

from .helpers import Project

# The database drivers too: psycopg 3's compiled part keeps the exception classes of the first
# import, so a psycopg re-imported after an in-process run raises errors SQLAlchemy does not
# recognise as the driver's (and does not wrap), and "cannot connect" turned into a traceback.
for _driver in ("psycopg", "psycopg2", "pymysql", "MySQLdb"):
    try:
        __import__(_driver)
    except ImportError:
        pass

# Every run this suite starts (in-process or in a subprocess, which inherits it) names its databases
# with this one run id, so leftover checks look at this suite's databases only, never at those of
# another run using the same server at the same time.
# Under xdist each worker of the suite gets a run id of its own (derived from the controller's):
# two workers' in-process runs would otherwise create databases of one name.
RUN_ID = os.environ.setdefault("PYTEST_MIGRATIONS_RUN_ID", uuid.uuid4().hex[:8])
if os.environ.get("PYTEST_XDIST_WORKER"):
    RUN_ID = hashlib.sha256(f"{RUN_ID}-{os.environ['PYTEST_XDIST_WORKER']}".encode()).hexdigest()[:8]
    os.environ["PYTEST_MIGRATIONS_RUN_ID"] = RUN_ID

# Every PostgreSQL snapshot of the suite is taken twice, incrementally and in full, and any
# difference fails the run that took it: the whole suite is the incremental snapshots' equivalence test.
os.environ.setdefault("PYTEST_MIGRATIONS_VERIFY_SNAPSHOTS", "1")

# tests/matrix runs pytest-alembic beside the plugin: only in the nox session that installs it.
collect_ignore = [] if os.environ.get("PYTEST_MIGRATIONS_MATRIX") else ["matrix"]


@pytest.fixture
def project(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> Project:
    """A generic-template Alembic project in the pytester directory."""
    monkeypatch.delenv("PYTEST_ADDOPTS", raising=False)
    monkeypatch.delenv("PYTEST_XDIST_WORKER", raising=False)  # a run of its own, even when this suite runs under xdist
    return Project(pytester)


SERVER_URLS = {
    "postgresql": os.environ.get(
        "PYTEST_MIGRATIONS_TEST_POSTGRESQL_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
    ),
    "mysql": os.environ.get("PYTEST_MIGRATIONS_TEST_MYSQL_URL", "mysql://root@127.0.0.1:3306/"),
}


def unavailable(reason: str) -> None:
    """Skip a real-database test whose database truly cannot be had; in CI that is a failure."""
    if os.environ.get("CI"):
        pytest.fail(f"{reason} (CI must provide it)", pytrace=False)
    pytest.skip(reason)


def mysqlclient() -> None:
    """Skip a test of the mysqlclient driver (``mysql+mysqldb``) where it is not installed; in CI that is a failure."""
    import importlib.util

    if importlib.util.find_spec("MySQLdb") is None:
        unavailable("mysqlclient is not installed (it builds against MariaDB's client headers; .ci/run installs both)")


def server_url(dialect: str) -> str:
    """The URL of a running server for the URL-provider tests, or a skip saying why there is none."""
    url = SERVER_URLS[dialect]
    engine = sa.create_engine(with_driver(sa.make_url(url)), poolclass=NullPool)
    try:
        with engine.connect():
            pass
    except Exception as exc:
        unavailable(
            f"no {dialect} server at {mask(url)} ({type(exc).__name__}); set PYTEST_MIGRATIONS_TEST_{dialect.upper()}_URL"
        )
    finally:
        engine.dispose()
    return url


def plugin_databases(dialect: str, run: str | None = None) -> list[str]:
    """Databases of this suite's runs (or of run id ``run``) still on the test server (none after a run)."""
    prefix = f"pytest_migrations_{run or RUN_ID}_"
    engine = sa.create_engine(with_driver(sa.make_url(SERVER_URLS[dialect])), poolclass=NullPool)
    query = (
        "SELECT datname FROM pg_database"
        if dialect == "postgresql"
        else "SELECT SCHEMA_NAME FROM information_schema.SCHEMATA"
    )
    with engine.connect() as conn:
        names = [row[0] for row in conn.exec_driver_sql(query) if row[0].startswith(prefix)]
    engine.dispose()
    return names


def plugin_containers(pid: int | None = None) -> list[str]:
    """Containers of the run of process ``pid`` (default: this one, whose in-process runs carry its pid)."""
    label = f"label={containers.LABEL}={pid or os.getpid()}"
    out = subprocess.run(["docker", "ps", "-aq", "--filter", label], capture_output=True, text=True, check=False)
    return out.stdout.split()


def start_pytest(root: Path, *args: str, quiet: bool = False) -> subprocess.Popen[str]:
    """``pytest --migrations ARGS`` in a subprocess of the project at ``root``, unbuffered, without PYTEST_ADDOPTS.

    Its output is piped (stdout and stderr together), or discarded with ``quiet`` (then the
    run is the leader of a process group of its own, so that it can be killed whole).
    """
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    env.pop("PYTEST_ADDOPTS", None)
    output = subprocess.DEVNULL if quiet else subprocess.PIPE
    return subprocess.Popen(
        [sys.executable, "-m", "pytest", "--migrations", "-p", "no:cacheprovider", *args],
        cwd=root,
        stdout=output,
        stderr=subprocess.DEVNULL if quiet else subprocess.STDOUT,
        text=True,
        env=env,
        start_new_session=quiet,
    )


def _admin_engine() -> sa.Engine:
    return sa.create_engine(
        with_driver(sa.make_url(SERVER_URLS["postgresql"])), isolation_level="AUTOCOMMIT", poolclass=NullPool
    )


@pytest.fixture
def user_database() -> Iterator[Callable[[str], str]]:
    """Make a database of the test's own on the PostgreSQL test server (a 'user' database); dropped after.

    Its name is ``<name>_<run id>``: another run of the suite on the same server makes its own."""
    made: list[str] = []

    def make(name: str) -> str:
        name = f"{name}_{RUN_ID}"
        admin = _admin_engine()
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}"')
            conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
        admin.dispose()
        made.append(name)
        return with_driver(sa.make_url(SERVER_URLS["postgresql"])).set(database=name).render_as_string(False)

    yield make
    admin = _admin_engine()
    with admin.connect() as conn:
        for name in made:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    admin.dispose()
