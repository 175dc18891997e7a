"""The sandbox holds whatever env.py or a migration does: victims holding rows stay exactly as they were."""

from __future__ import annotations

import hashlib
import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.pool import NullPool

from ..conftest import RUN_ID, SERVER_URLS, mysqlclient, server_url
from ..helpers import Project, users_table

ONLINE = "    connectable = engine_from_config(\n        config.get_section(config.config_ini_section, {}),"


def _fingerprint(url: str) -> tuple[list[str], int, str]:
    """Tables, row count and a checksum of the rows of the victim's table `orders`."""
    engine = sa.create_engine(url, poolclass=NullPool)
    try:
        with engine.connect() as conn:
            tables = sorted(sa.inspect(conn).get_table_names())
            rows = conn.exec_driver_sql("SELECT id, note FROM orders ORDER BY id").all()
    finally:
        engine.dispose()
    return tables, len(rows), hashlib.sha256(repr(rows).encode()).hexdigest()


@pytest.fixture
def pg_victim(user_database: Callable[[str], str]) -> str:
    """A PostgreSQL database of the user's, holding rows."""
    server_url("postgresql")
    url = user_database(f"pm_victim_{RUN_ID}")
    engine = sa.create_engine(url, poolclass=NullPool)
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE orders (id int primary key, note text)")
        conn.exec_driver_sql("INSERT INTO orders VALUES (1, 'keep'), (2, 'me')")
    engine.dispose()
    return url


@pytest.fixture
def mysql_victim() -> Iterator[str]:
    """A MariaDB database of the user's, holding rows."""
    base = sa.make_url(server_url("mysql")).set(drivername="mysql+pymysql")
    name = f"pm_victim_{RUN_ID}"
    admin = sa.create_engine(base, poolclass=NullPool, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f"DROP DATABASE IF EXISTS `{name}`")
        conn.exec_driver_sql(f"CREATE DATABASE `{name}`")
        conn.exec_driver_sql(f"CREATE TABLE `{name}`.orders (id int primary key, note text)")
        conn.exec_driver_sql(f"INSERT INTO `{name}`.orders VALUES (1, 'keep'), (2, 'me')")
    yield base.set(database=name).render_as_string(hide_password=False)
    with admin.connect() as conn:
        conn.exec_driver_sql(f"DROP DATABASE IF EXISTS `{name}`")
    admin.dispose()


def test_connect_args_naming_another_postgresql_database_are_refused(project: Project, pg_victim: str) -> None:
    """env.py passes the test URL but connect_args={"dbname": victim}: refused where it lands, victim untouched."""
    before = _fingerprint(pg_victim)
    victim = sa.make_url(pg_victim).database
    project.revision(**users_table("a1"))
    project.edit_env(
        "        poolclass=pool.NullPool,\n",
        f"        poolclass=pool.NullPool,\n        connect_args={{'dbname': {victim!r}}},\n",
    )
    result = project.run(
        "--migrations-url", SERVER_URLS["postgresql"], "--migrations-checks", "upgrade_to_head,stairway"
    )
    result.assert_outcomes(failed=2)
    result.stdout.fnmatch_lines([f"*env.py (line *) connected to postgresql database '{victim}', which is not one of*"])
    assert _fingerprint(pg_victim) == before


@pytest.mark.parametrize(("driver", "keyword"), [("pymysql", "database"), ("mysqldb", "db")])
def test_connect_args_naming_another_mariadb_database_are_refused(
    project: Project, mysql_victim: str, driver: str, keyword: str
) -> None:
    """connect_args naming another database, in each driver's own keyword (PyMySQL's database=, mysqlclient's
    db=): the server already refuses the run's user."""
    if driver == "mysqldb":
        mysqlclient()
    before = _fingerprint(mysql_victim)
    victim = sa.make_url(mysql_victim).database
    project.revision(**users_table("a1"))
    project.edit_env(
        "        poolclass=pool.NullPool,\n",
        f"        poolclass=pool.NullPool,\n        connect_args={{{keyword!r}: {victim!r}}},\n",
    )
    url = sa.make_url(SERVER_URLS["mysql"]).set(drivername=f"mysql+{driver}").render_as_string(hide_password=False)
    result = project.run("--migrations-url", url, "--migrations-checks", "upgrade_to_head,stairway")
    result.assert_outcomes(failed=2)
    # Migrations run as a per-run user granted only the run's databases: MariaDB refuses it (1044).
    result.stdout.fnmatch_lines([f"*(1044, *Access denied for user 'pm_*' to database '{victim}'*"])
    assert _fingerprint(mysql_victim) == before


WRITE_FIRST = """    import sqlalchemy as _sa
    _own = _sa.create_engine({url!r})
    with _own.begin() as _conn:
        _conn.exec_driver_sql("DELETE FROM orders")
"""


def test_env_py_writing_on_its_own_engine_before_configure_is_refused(project: Project, pg_victim: str) -> None:
    """env.py deleting rows through an engine of its own, before context.configure(): refused, rows kept."""
    before = _fingerprint(pg_victim)
    project.revision(**users_table("a1"))
    project.edit_env(ONLINE, WRITE_FIRST.format(url=pg_victim) + ONLINE)
    result = project.run("--migrations-url", SERVER_URLS["postgresql"], "--migrations-checks", "stairway")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*env.py (line *) connected to postgresql database*refused before any statement*"])
    assert _fingerprint(pg_victim) == before


def test_env_py_writing_to_another_sqlite_file_is_refused(project: Project) -> None:
    """The same on SQLite: the other file's bytes are unchanged."""
    precious = project.root / "precious.db"
    with sqlite3.connect(precious) as conn:
        conn.execute("CREATE TABLE orders (id INTEGER PRIMARY KEY, note TEXT)")
        conn.execute("INSERT INTO orders VALUES (1, 'keep')")
    before = precious.read_bytes()
    project.revision(**users_table("a1"))
    project.edit_env(ONLINE, WRITE_FIRST.format(url=f"sqlite:///{precious}") + ONLINE)
    result = project.run("--migrations-checks", "stairway")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*env.py (line *) connected to the SQLite file *precious.db*"])
    assert precious.read_bytes() == before


def test_env_py_connecting_to_a_sqlite_file_that_does_not_exist_leaves_no_file(project: Project) -> None:
    """An application's own SQLite file (Airflow's airflow.db under AIRFLOW_HOME): refused before sqlite3 creates it,
    so a run leaves no empty database file where none was."""
    absent = project.root / "home" / "app.db"
    absent.parent.mkdir()
    project.revision(**users_table("a1"))
    project.edit_env(ONLINE, WRITE_FIRST.format(url=f"sqlite:///{absent}") + ONLINE)
    result = project.run("--migrations-checks", "upgrade_to_head,stairway")
    result.assert_outcomes(failed=2)
    result.stdout.fnmatch_lines(["*env.py (line *) connected to the SQLite file *app.db*refused before any statement*"])
    assert not absent.exists()
    assert list(absent.parent.iterdir()) == []


def test_migration_opening_its_own_engine_is_refused(project: Project, pg_victim: str) -> None:
    """A migration inserting through sa.create_engine(OTHER_URL) fails naming its file; the victim gains no row."""
    before = _fingerprint(pg_victim)
    project.revision(**users_table("a1"))
    project.revision(
        "b2",
        "a1",
        f"other = sa.create_engine({pg_victim!r})\n"
        "with other.begin() as conn:\n"
        "    conn.exec_driver_sql(\"INSERT INTO orders VALUES (3, 'stolen')\")",
        "pass",
    )
    result = project.run("--migrations-url", SERVER_URLS["postgresql"], "--migrations-checks", "stairway")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["*revision file b2_rev.py (line *) connected to postgresql database*"])
    assert _fingerprint(pg_victim) == before


def test_sqlite_attach_of_another_file_is_refused(project: Project) -> None:
    """ATTACH of a file the plugin did not create is denied by the authorizer: that file is unchanged."""
    precious = project.root / "precious.db"
    with sqlite3.connect(precious) as conn:
        conn.execute("CREATE TABLE orders (id INTEGER PRIMARY KEY, note TEXT)")
        conn.execute("INSERT INTO orders VALUES (1, 'keep')")
    before = precious.read_bytes()
    project.revision(**users_table("a1"))
    project.revision(
        "b2",
        "a1",
        f'op.execute("ATTACH DATABASE \'{precious}\' AS other")\nop.execute("DELETE FROM other.orders")',
        "pass",
    )
    result = project.run("--migrations-checks", "stairway")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["upgrade of revision b2 * raised *not authorized*"])
    assert precious.read_bytes() == before
    assert Path(precious).exists()
