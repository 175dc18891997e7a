"""Ownership: the plugin creates, writes and drops only databases (and users) it can prove are its own."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator

import pytest
import sqlalchemy as sa
from sqlalchemy.pool import NullPool

from pytest_migrations.backends import database_name, marker, marker_run, run_id, run_of
from pytest_migrations.exceptions import ProviderError
from pytest_migrations.providers import Server, driver_for, with_driver
from pytest_migrations.servers import backend_for, run_lock_key, run_lock_name

from ..conftest import RUN_ID, SERVER_URLS, plugin_databases, server_url
from ..helpers import Project, users_table

DIALECTS = ["postgresql", "mysql"]
RUN_USER = f"pm_{RUN_ID}"


def _admin(dialect: str) -> sa.Engine:
    return sa.create_engine(
        with_driver(sa.make_url(SERVER_URLS[dialect])), isolation_level="AUTOCOMMIT", poolclass=NullPool
    )


def _mysql_tables(database: str) -> dict[str, int]:
    """Tables of MySQL database ``database`` with their row counts (``{}`` when it does not exist)."""
    admin = _admin("mysql")
    try:
        with admin.connect() as conn:
            query = sa.text("SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = :s")
            tables = [r[0] for r in conn.execute(query, {"s": database})]
            return {t: conn.exec_driver_sql(f"SELECT COUNT(*) FROM `{database}`.`{t}`").scalar_one() for t in tables}
    finally:
        admin.dispose()


def _mysql_databases() -> set[str]:
    admin = _admin("mysql")
    try:
        with admin.connect() as conn:
            return {r[0] for r in conn.exec_driver_sql("SELECT SCHEMA_NAME FROM information_schema.SCHEMATA")}
    finally:
        admin.dispose()


def _mysql_users(*names: str) -> set[str]:
    """Which of the MySQL users ``names`` exist on the test server."""
    admin = _admin("mysql")
    try:
        with admin.connect() as conn:
            query = sa.text("SELECT DISTINCT User FROM mysql.user WHERE User IN :u").bindparams(
                sa.bindparam("u", expanding=True)
            )
            return {r[0] for r in conn.execute(query, {"u": list(names)})}
    finally:
        admin.dispose()


@pytest.fixture
def mysql_victim() -> Iterator[str]:
    """A MySQL database of the 'user' holding a table with two rows; dropped after the test."""
    server_url("mysql")
    name = f"pm_victim_{RUN_ID}"
    admin = _admin("mysql")
    with admin.connect() as conn:
        conn.exec_driver_sql(f"DROP DATABASE IF EXISTS `{name}`")
        conn.exec_driver_sql(f"CREATE DATABASE `{name}`")
        conn.exec_driver_sql(f"CREATE TABLE `{name}`.t (id int primary key, name varchar(20))")
        conn.exec_driver_sql(f"INSERT INTO `{name}`.t VALUES (1, 'Ada'), (2, 'Grace')")
    yield name
    with admin.connect() as conn:
        conn.exec_driver_sql(f"DROP DATABASE IF EXISTS `{name}`")
    admin.dispose()


@pytest.fixture
def limited_login() -> Iterator[Callable[..., str]]:
    """Make a login of the test's own with only the privileges given (PostgreSQL role, MySQL user); dropped after."""
    made: dict[str, str] = {}
    name = f"pmt_{RUN_ID}"

    def make(dialect: str, grant: str | None = None) -> str:
        admin = _admin(dialect)
        with admin.connect() as conn:
            if dialect == "postgresql":
                conn.exec_driver_sql(f'DROP ROLE IF EXISTS "{name}"')
                conn.exec_driver_sql(f'CREATE ROLE "{name}" LOGIN')  # no CREATEDB
            else:
                conn.execute(sa.text("DROP USER IF EXISTS :u@'%'"), {"u": name})
                conn.execute(sa.text("CREATE USER :u@'%'"), {"u": name})
                if grant:
                    conn.execute(sa.text(f"GRANT {grant} TO :u@'%'"), {"u": name})
        admin.dispose()
        made[dialect] = name
        return with_driver(sa.make_url(SERVER_URLS[dialect])).set(username=name).render_as_string(False)

    yield make
    for dialect in made:
        admin = _admin(dialect)
        with admin.connect() as conn:
            if dialect == "postgresql":
                conn.exec_driver_sql(f'DROP ROLE IF EXISTS "{name}"')
            else:
                conn.execute(sa.text("DROP USER IF EXISTS :u@'%'"), {"u": name})
        admin.dispose()


# ---------------------------------------------------------------------- names, markers, run ids, lock keys


def test_only_the_exact_name_form_is_the_plugins() -> None:
    """A name is the plugin's only as pytest_migrations_<8 hex>_<main|gwN>_<serial>[_<section>]."""
    assert run_of(database_name("0a1b2c3d", None, 7)) == "0a1b2c3d"
    assert run_of(database_name("0a1b2c3d", "gw12", 1, "Engine-1")) == "0a1b2c3d"
    for name in (
        "pytest_migrations_customerdata",
        "pytest_migrations_customerdata_main_1",
        "pytest_migrations_0A1B2C3D_main_1",
        "pytest_migrations_0a1b2c3d_worker_1",
        "pytest_migrations_0a1b2c3d_main",
        "pytest_migrations_0a1b2c3d_main_1_",
        "xpytest_migrations_0a1b2c3d_main_1",
        "pytest_migrations_collect",
    ):
        assert run_of(name) is None, name
    with pytest.raises(ValueError):
        database_name("customer", None, 1)
    backend = backend_for(
        Server("postgresql", sa.make_url(f"{driver_for('postgresql')}://u@127.0.0.1:1/postgres"), "url")
    )
    with pytest.raises(ProviderError, match="not one of the plugin's"):
        backend.drop("pytest_migrations_customerdata")
    backend.close()
    assert marker_run(marker("0a1b2c3d")) == "0a1b2c3d"
    assert marker_run("pytest-migrations run 0a1b2c3d (copy)") is None
    assert marker_run(None) is None


def test_an_invalid_run_id_is_replaced_by_the_same_hex_id_in_every_process(monkeypatch: pytest.MonkeyPatch) -> None:
    """PYTEST_MIGRATIONS_RUN_ID that is not 8 lowercase hex characters is replaced, identically in every process."""
    monkeypatch.setenv("PYTEST_MIGRATIONS_RUN_ID", "customerdata_main")
    replaced = run_id()
    assert run_of(database_name(replaced, None, 1)) == replaced
    assert os.environ["PYTEST_MIGRATIONS_RUN_ID"] == replaced
    code = "from pytest_migrations.backends import run_id; print(run_id())"
    env = {**os.environ, "PYTEST_MIGRATIONS_RUN_ID": "customerdata_main", "PYTHONHASHSEED": "12345"}
    other = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert other.stdout.strip() == replaced
    monkeypatch.setenv("PYTEST_MIGRATIONS_RUN_ID", "0a1b2c3d")
    assert run_id() == "0a1b2c3d"


def test_run_lock_keys_are_the_same_in_every_process() -> None:
    """The lock of a run is found from its id alone: another process (another hash seed) computes the same keys."""
    code = "from pytest_migrations.servers import run_lock_key as k; print(k('cafe0001'), k('0000beef'))"
    env = {**os.environ, "PYTHONHASHSEED": "999"}
    other = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert other.stdout.split() == [str(run_lock_key("cafe0001")), str(run_lock_key("0000beef"))]
    assert run_lock_key("0000beef") == 0xBEEF
    assert run_lock_name("cafe0001") == "pytest_migrations_cafe0001"
    with pytest.raises(ValueError):
        run_lock_key("customerdata")


@pytest.mark.parametrize("dialect", DIALECTS)
def test_every_database_the_plugin_creates_carries_its_run_marker(dialect: str) -> None:
    """Created and cloned databases carry the comment 'pytest-migrations run <id>' (a PostgreSQL TEMPLATE clone too)."""
    server_url(dialect)
    backend = backend_for(Server(dialect, with_driver(sa.make_url(SERVER_URLS[dialect])), "url"))
    created, cloned = database_name(RUN_ID, None, 990001), database_name(RUN_ID, None, 990002)
    try:
        backend.create(created)
        backend.clone(created, cloned)
        admin = _admin(dialect)
        with admin.connect() as conn:
            if dialect == "postgresql":
                query = "SELECT datname, shobj_description(oid, 'pg_database') FROM pg_database"
            else:
                query = "SELECT SCHEMA_NAME, SCHEMA_COMMENT FROM information_schema.SCHEMATA"
            comments = dict(conn.exec_driver_sql(query).all())
        admin.dispose()
        assert comments[created] == comments[cloned] == f"pytest-migrations run {RUN_ID}"
        with backend.admin() as conn:
            found = backend.databases(conn)
        assert found[created] == found[cloned] == RUN_ID
    finally:
        backend.close()
    assert plugin_databases(dialect) == []


# ---------------------------------------------------------------------- dead-run clean-up


def test_mariadb_dead_run_clean_up_drops_only_marked_databases_and_users_of_dead_runs(project: Project) -> None:
    """On MariaDB, a dead run's marked database and pm_<run> user go; user, unmarked and live runs' ones keep their rows."""
    url = server_url("mysql")
    dead, live, other = (uuid.uuid4().hex[:8] for _ in range(3))
    leftover = f"pytest_migrations_{dead}_main_1"
    comments = {
        leftover: f"pytest-migrations run {dead}",
        f"pytest_migrations_{live}_main_1": f"pytest-migrations run {live}",
        f"pytest_migrations_customerdata_{RUN_ID}": f"pytest-migrations run {dead}",
        f"pytest_migrations_{dead}_main_2": None,
        f"pytest_migrations_{dead}_gw1_3": f"pytest-migrations run {other}",
    }
    victims = [name for name in comments if name != leftover]
    admin = _admin("mysql")
    live_lock = admin.connect()
    try:
        with admin.connect() as conn:
            for name, comment in comments.items():
                conn.exec_driver_sql(f"DROP DATABASE IF EXISTS `{name}`")
                conn.exec_driver_sql(f"CREATE DATABASE `{name}`" + (f" COMMENT '{comment}'" if comment else ""))
            for name in victims:
                conn.exec_driver_sql(f"CREATE TABLE `{name}`.customers (id int primary key)")
                conn.exec_driver_sql(f"INSERT INTO `{name}`.customers VALUES (1), (2), (3)")
            for run in (dead, live):
                conn.execute(sa.text("CREATE USER :u@'127.0.0.1' IDENTIFIED BY 'x'"), {"u": f"pm_{run}"})
        assert live_lock.execute(sa.text("SELECT GET_LOCK(:n, 0)"), {"n": run_lock_name(live)}).scalar() == 1
        project.revision(**users_table("a1"))
        project.run("--migrations-url", url, "--migrations-checks", "stairway").assert_outcomes(passed=1)
        present = _mysql_databases()
        assert leftover not in present
        for name in victims:
            assert _mysql_tables(name) == {"customers": 3}
        assert _mysql_users(f"pm_{dead}", f"pm_{live}", RUN_USER) == {f"pm_{live}"}
        assert plugin_databases("mysql") == []
    finally:
        live_lock.close()
        with admin.connect() as conn:
            for name in comments:
                conn.exec_driver_sql(f"DROP DATABASE IF EXISTS `{name}`")
            for run in (dead, live):
                conn.execute(sa.text("DROP USER IF EXISTS :u@'127.0.0.1'"), {"u": f"pm_{run}"})
        admin.dispose()


# ---------------------------------------------------------------------- least privilege on MySQL/MariaDB

REACHING_OUT = {
    "schema": 'op.create_table("intruder", sa.Column("id", sa.Integer, primary_key=True), schema="{victim}")',
    "delete": 'op.execute("DELETE FROM {victim}.t")',
    "create_schema": 'op.execute("CREATE SCHEMA meow_{run}")',
}


@pytest.mark.parametrize("reach", list(REACHING_OUT))
def test_a_mariadb_migration_reaching_another_database_is_refused_and_it_is_unchanged(
    project: Project, mysql_victim: str, reach: str
) -> None:
    """schema=, DELETE FROM other.t and CREATE SCHEMA are refused by the server; the fix says why; the victim is intact."""
    url = server_url("mysql")
    project.revision("a1", None, REACHING_OUT[reach].format(victim=mysql_victim, run=RUN_ID), "pass")
    result = project.run("--migrations-url", url, "--migrations-checks", "stairway")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "*upgrade of revision a1 * raised OperationalError*denied*",
            "*the plugin runs migrations as a user limited to its own throwaway databases*"
            "would change a database the plugin does not own*",
        ]
    )
    assert _mysql_tables(mysql_victim) == {"t": 2}
    assert f"meow_{RUN_ID}" not in _mysql_databases()
    assert plugin_databases("mysql") == []
    assert _mysql_users(RUN_USER) == set()


def test_mariadb_migrations_and_runner_run_as_the_per_run_user_on_xdist_workers(project: Project) -> None:
    """Under xdist, env.py and migration_runner connect as pm_<run>, the header says so, and the user is gone after."""
    url = server_url("mysql")
    project.revision(**users_table("a1"))
    project.pytester.makepyfile(
        test_user=f"""
        import pytest

        @pytest.mark.migrations_db("mysql")
        def test_user(migration_runner):
            migration_runner.upgrade()
            assert migration_runner.url().username == "{RUN_USER}"
            assert migration_runner.execute("SELECT CURRENT_USER()")[0][0].startswith("{RUN_USER}@")
        """
    )
    result = project.run("--migrations-url", url, "-n", "2", "--migrations-checks", "stairway,upgrade_to_head")
    result.assert_outcomes(passed=3)
    result.stdout.fnmatch_lines([f"migrations: *mysql via url * (migrations run as {RUN_USER}, a user limited to *)"])
    assert _mysql_users(RUN_USER) == set()
    assert plugin_databases("mysql") == []


def test_a_url_user_that_may_not_create_users_runs_migrations_itself_and_the_header_says_so(
    project: Project, limited_login: Callable[..., str]
) -> None:
    """A MySQL URL user without CREATE USER still works: migrations run as it, and the report header says they are unfenced."""
    server_url("mysql")
    url = limited_login("mysql", "ALL PRIVILEGES ON `pytest\\_migrations\\_%`.*")
    project.revision(**users_table("a1"))
    result = project.run("--migrations-url", url, "-n", "1", "--migrations-checks", "stairway")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(
        [f"migrations: *mysql via url * (migrations run as pmt_{RUN_ID}: it may not create users (*), so *)"]
    )
    assert plugin_databases("mysql") == []


# ---------------------------------------------------------------------- privileges and secrets


@pytest.mark.parametrize("dialect", DIALECTS)
def test_a_user_that_may_not_create_databases_fails_every_item_with_one_paragraph(
    project: Project, limited_login: Callable[..., str], dialect: str
) -> None:
    """A role without CREATEDB (a MySQL user without CREATE) fails each item with one paragraph: privilege and fix."""
    server_url(dialect)
    url = limited_login(dialect)
    project.revision(**users_table("a1"))
    project.revision("b2", "a1")
    project.pytester.makepyfile(
        test_runner=f"""
        import pytest

        @pytest.mark.migrations_db("{dialect}")
        def test_runner(migration_runner):
            pass
        """
    )
    result = project.run("--migrations-url", url, "--migrations-checks", "stairway,upgrade_to_head")
    result.assert_outcomes(failed=3, errors=1)
    output = result.stdout.str()
    fix = (
        f"ALTER ROLE pmt_{RUN_ID} CREATEDB"
        if dialect == "postgresql"
        else "GRANT ALL PRIVILEGES ON `pytest\\_migrations\\_%`.*"
    )
    assert output.count(f" 'pmt_{RUN_ID}' of") >= 4
    assert output.count(fix) >= 4
    assert "may not create databases" in output
    assert "Traceback" not in output
    assert len(output.splitlines()) < 120


@pytest.mark.parametrize("dialect", DIALECTS)
def test_a_password_query_parameter_never_appears_in_output(project: Project, dialect: str) -> None:
    """A ?password= (MySQL: ?passwd=) secret is masked in the header, errors, repr(migration_runner) and --showlocals."""
    server_url(dialect)
    secret = "pw-query-S3cret-Zq9"
    parameter = "password" if dialect == "postgresql" else "passwd"  # trust ignores it; root@MariaDB refuses it
    url = f"{SERVER_URLS[dialect]}?{parameter}={secret}"
    project.revision(**users_table("a1"))
    project.pytester.makeconftest(
        """
        def pytest_migrations_configure_alembic(config, alembic_config, urls):
            raise RuntimeError("the hook failed")
        """
    )
    project.pytester.makepyfile(
        test_runner=f"""
        import pytest

        @pytest.mark.migrations_db("{dialect}")
        def test_repr(migration_runner):
            print(repr(migration_runner))
            migration_runner.upgrade()
        """
    )
    result = project.run(
        "--migrations-url", url, "-v", "--tb=long", "--showlocals", "-rA", "--migrations-checks", "stairway"
    )
    output = result.stdout.str() + result.stderr.str()
    assert secret not in output
    assert "***" in output
    driver = with_driver(sa.make_url(SERVER_URLS[dialect])).drivername
    if dialect == "postgresql":
        result.assert_outcomes(failed=2)
        assert "the hook failed" in output
        assert f"<MigrationRunner {driver}://postgres:***@" in output
    else:
        result.assert_outcomes(failed=1, errors=1)
        assert f"cannot connect to the mysql server at {driver}://root:***@127.0.0.1:3306" in output


def test_a_postgresql_database_of_a_run_killed_before_its_marker_is_proven_or_left_alone(project: Project) -> None:
    """kill -9 between CREATE DATABASE and its marker: a clone (inner marker) or an empty database is removed by
    the next run; a well-formed name holding data without any marker is left alone, rows kept, and reported."""
    url = server_url("postgresql")
    dead = uuid.uuid4().hex[:8]
    clone, empty, foreign = (f"pytest_migrations_{dead}_main_{n}" for n in (1, 2, 3))
    admin = sa.create_engine(with_driver(sa.make_url(url)), poolclass=NullPool, isolation_level="AUTOCOMMIT")
    # The dead run is alive while it is being built: another test's run on this server would
    # rightly remove its empty databases before they hold their tables and markers.
    with admin.connect() as building:
        lock = sa.text("SELECT pg_advisory_lock(:c, :k)")
        building.execute(lock, {"c": 0x706D, "k": run_lock_key(dead)})
        for name in (clone, empty, foreign):
            building.exec_driver_sql(f'CREATE DATABASE "{name}"')
        for name, inner in ((clone, marker(dead)), (foreign, None)):
            engine = sa.create_engine(with_driver(sa.make_url(url)).set(database=name), poolclass=NullPool)
            with engine.begin() as conn:
                conn.exec_driver_sql("CREATE TABLE t (id int primary key)")
                conn.exec_driver_sql("INSERT INTO t VALUES (1), (2)")
                if inner:
                    conn.exec_driver_sql(f"COMMENT ON SCHEMA public IS '{inner}'")
            engine.dispose()
    try:
        project.revision(**users_table("a1"))
        result = project.run("--migrations-url", url, "--migrations-checks", "stairway")
        result.assert_outcomes(passed=1)
        result.stdout.fnmatch_lines(["*pytest-migrations: databases left alone*", f"*postgresql {foreign}*"])
        assert plugin_databases("postgresql", run=dead) == [foreign]
        engine = sa.create_engine(with_driver(sa.make_url(url)).set(database=foreign), poolclass=NullPool)
        with engine.connect() as conn:
            assert conn.exec_driver_sql("SELECT count(*) FROM t").scalar() == 2
        engine.dispose()
    finally:
        with admin.connect() as conn:
            for name in (clone, empty, foreign):
                conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()
