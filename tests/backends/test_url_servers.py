"""Every check and the runner on real PostgreSQL and MariaDB servers given by URL."""

from __future__ import annotations

import importlib.util
import uuid
from collections.abc import Callable

import pytest
import sqlalchemy as sa
from sqlalchemy.pool import NullPool

from pytest_migrations.providers import with_driver
from pytest_migrations.servers import run_lock_key

from ..conftest import RUN_ID, SERVER_URLS, mysqlclient, plugin_databases, server_url
from ..helpers import Project, users_table

DIALECTS = ["postgresql", "mysql"]


def _history(project: Project) -> None:
    project.revision(**users_table("a1"))
    project.revision(
        "b2",
        "a1",
        """
        op.create_table("posts", sa.Column("id", sa.Integer, primary_key=True),
                        sa.Column("user_id", sa.Integer, sa.ForeignKey("users.id", ondelete="CASCADE")),
                        sa.Column("title", sa.String(100), server_default="untitled"))
        op.create_index("ix_posts_title", "posts", ["title"])
        """,
        'op.drop_table("posts")',
    )
    project.revision(
        "c3",
        "b2",
        'op.add_column("users", sa.Column("age", sa.Integer, nullable=False, server_default="0"))\n'
        'op.create_check_constraint("ck_users_age", "users", "age >= 0")',
        'op.drop_constraint("ck_users_age", "users", type_="check")\nop.drop_column("users", "age")',
    )


@pytest.mark.parametrize("dialect", DIALECTS)
def test_all_checks_pass_on_a_correct_history_and_nothing_is_left(project: Project, dialect: str) -> None:
    url = server_url(dialect)
    _history(project)
    project.pytester.makepyfile(
        test_runner="""
        def test_runner(migration_runner):
            migration_runner.upgrade("b2")
            migration_runner.insert("users", [{"id": 1, "name": "Ada"}])
            migration_runner.upgrade("heads")
            assert migration_runner.execute("SELECT age FROM users") == [(0,)]
            migration_runner.roundtrip("c3")
        """
    )
    result = project.run("--migrations-url", url, "-v")
    result.assert_outcomes(passed=3 + 3 + 1 + 1, skipped=1)
    result.stdout.fnmatch_lines([f"migrations: *database {dialect} via url *"])
    assert plugin_databases(dialect) == []


@pytest.mark.parametrize("dialect", DIALECTS)
def test_downgrade_that_leaves_a_column_fails_on_the_server(project: Project, dialect: str) -> None:
    url = server_url(dialect)
    project.revision(**users_table("a1"))
    project.revision("b2", "a1", 'op.add_column("users", sa.Column("nickname", sa.String(30)))', "pass")
    result = project.run("--migrations-url", url, "--migrations-checks", "stairway")
    result.assert_outcomes(passed=1, failed=1)
    # Each database names the type in its own words: VARCHAR(30), character varying(30), varchar(30).
    result.stdout.fnmatch_lines(['*+ table "users": column nickname *(30) NULL: present after the downgrade*'])
    assert plugin_databases(dialect) == []


def test_enum_type_left_behind_by_a_postgresql_downgrade(project: Project) -> None:
    """Dropping a table does not drop its enum type on PostgreSQL: the stairway catches it."""
    url = server_url("postgresql")
    project.revision(
        "a1",
        None,
        'op.create_table("moods", sa.Column("id", sa.Integer, primary_key=True), '
        'sa.Column("mood", sa.Enum("happy", "sad", name="mood")))',
        'op.drop_table("moods")',
    )
    result = project.run("--migrations-url", url, "--migrations-checks", "stairway")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            '*+ enum "mood": present after the downgrade (happy, sad), absent before the upgrade*',
            '*op.execute("DROP TYPE mood")',
        ]
    )


def test_sequence_left_behind_is_caught(project: Project) -> None:
    url = server_url("postgresql")
    project.revision("a1", None, 'op.execute("CREATE SEQUENCE invoice_numbers START 1000")', "pass")
    result = project.run("--migrations-url", url, "--migrations-checks", "stairway")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(['*+ sequence "invoice_numbers": present after the downgrade*'])


def test_migration_that_works_on_sqlite_and_fails_on_postgresql(project: Project) -> None:
    """A type change SQLite accepts but PostgreSQL cannot cast: it fails on postgresql only, rolled back."""
    url = server_url("postgresql")
    project.revision(**users_table("a1"))
    project.revision(
        "b2",
        "a1",
        "op.execute(\"INSERT INTO users (id, name) VALUES (1, 'ada')\")\n"
        'with op.batch_alter_table("users") as b:\n    b.alter_column("name", type_=sa.Integer)',
        'with op.batch_alter_table("users") as b:\n    b.alter_column("name", type_=sa.String(50))\n'
        'op.execute("DELETE FROM users")',
    )
    result = project.run(
        "--migrations-url",
        url,
        "--migrations-db",
        "sqlite",
        "--migrations-db",
        "postgresql",
        "--migrations-checks",
        "stairway",
    )
    result.assert_outcomes(passed=3, failed=1)
    result.stdout.fnmatch_lines(
        [
            "*stairway?postgresql-b2?*",
            "upgrade of revision b2 * raised *DatatypeMismatch*",
            "*postgresql has transactional DDL: the transaction of this walk was rolled back*",
        ]
    )


def test_migration_failing_half_way_on_mariadb_says_what_was_applied(project: Project) -> None:
    """MySQL has no transactional DDL: the report lists the statements that stay applied and the one that failed."""
    url = server_url("mysql")
    project.revision(**users_table("a1"))
    project.revision(
        "b2",
        "a1",
        'op.add_column("users", sa.Column("email", sa.String(100)))\n'
        'op.create_index("ix_users_email", "users", ["email"])\n'
        'op.create_index("ix_users_email", "users", ["name"])',
        'op.drop_column("users", "email")',
    )
    result = project.run("--migrations-url", url, "--migrations-checks", "stairway")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(
        [
            "upgrade of revision b2 * raised OperationalError*Duplicate key name*",
            "*statements the database accepted (2):",
            "*1. ALTER TABLE users ADD COLUMN email VARCHAR(100)",
            "*2. CREATE INDEX ix_users_email ON users (email)",
            "*statement that failed: CREATE INDEX ix_users_email ON users (name)",
            "*mysql has no transactional DDL: every DDL statement the database accepted stays applied*",
            "*as a new connection sees it after the failure, the schema differs from before the step in 2 way(s):",
            '*+ table "users": column email varchar(100) NULL: present after the failure*',
            '*+ table "users": index ix_users_email (email) BTREE: present after the failure*',
        ]
    )


TWO_STATEMENTS = 'op.execute("CREATE TABLE a1 (id INT PRIMARY KEY); CREATE TABLE b1 (id INT PRIMARY KEY)")'


def test_a_mysql_url_without_a_driver_runs_through_the_driver_sqlalchemy_gives_it(project: Project) -> None:
    """``mysql://`` is mysqlclient's to SQLAlchemy (``mysql+mysqldb``), and mysqlclient sends two statements in
    one ``op.execute`` where PyMySQL refuses them: the migrations run through the driver the URL means, the header
    names it, and what the two statements made is all seen (a downgrade that leaves one table is caught)."""
    mysqlclient()
    server_url("mysql")
    driverless = sa.make_url(SERVER_URLS["mysql"]).set(drivername="mysql")
    project.revision("a1", None, TWO_STATEMENTS, 'op.drop_table("b1")\nop.drop_table("a1")')
    project.revision("b2", "a1", TWO_STATEMENTS.replace("1 ", "2 "), 'op.drop_table("a2")')
    result = project.run(
        "--migrations-url", driverless.render_as_string(hide_password=False), "--migrations-checks", "stairway"
    )
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["migrations: *mysql via url mysql+mysqldb://*"])
    result.stdout.fnmatch_lines(['*+ table "b2"*'])

    pymysql = driverless.set(drivername="mysql+pymysql").render_as_string(hide_password=False)
    result = project.run("--migrations-url", pymysql, "--migrations-checks", "stairway")
    result.assert_outcomes(failed=1, skipped=1)
    result.stdout.fnmatch_lines(["migrations: *mysql via url mysql+pymysql://*", "*upgrade of revision a1 *1064*"])


def test_a_postgresql_url_without_a_driver_runs_through_the_driver_sqlalchemy_gives_it(project: Project) -> None:
    """``postgresql://`` is psycopg2's under SQLAlchemy 2.0 and psycopg 3's under 2.1: the migrations run through
    the one the application's own ``create_engine`` would use when it is installed, else the other, and the
    header names it. (The nox session ``psycopg`` runs this with both installed.)"""
    server_url("postgresql")
    own = sa.make_url("postgresql://").get_dialect().driver
    other = {"psycopg": "psycopg2", "psycopg2": "psycopg"}[own]
    expected = own if importlib.util.find_spec(own) is not None else other
    driverless = sa.make_url(SERVER_URLS["postgresql"]).set(drivername="postgresql")
    project.revision(**users_table("a1"))
    result = project.run(
        "--migrations-url", driverless.render_as_string(hide_password=False), "--migrations-checks", "stairway"
    )
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines([f"migrations: *postgresql via url postgresql+{expected}://*"])


def test_the_url_variable_is_spelled_as_applications_check_it(project: Project) -> None:
    """Apps check the scheme of their DATABASE_URL (Mealie: "must be postgresql"): the variable holds
    ``postgresql://`` when the plugin runs through the driver ``create_engine`` gives that URL anyway, and names
    the driver only when it took another one (installed where the default is not), which the URL must then say.
    (The nox session ``psycopg`` runs this where the default driver is installed.)"""
    server_url("postgresql")
    own = sa.make_url("postgresql://").get_dialect().driver
    other = {"psycopg": "psycopg2", "psycopg2": "psycopg"}[own]
    expected = "postgresql" if importlib.util.find_spec(own) is not None else f"postgresql+{other}"
    project.revision(**users_table("a1"))
    schemes = project.root / "schemes.txt"
    project.edit_env(
        "    connectable = engine_from_config(\n        config.get_section(config.config_ini_section, {}),",
        "    import os\n"
        "    url = os.environ['DATABASE_URL']\n"
        f"    with open({str(schemes)!r}, 'a') as seen:\n"
        "        seen.write(url.split(':')[0] + '\\n')\n"
        "    connectable = engine_from_config(\n        {'sqlalchemy.url': url},",
    )
    result = project.run("--migrations-url", SERVER_URLS["postgresql"], "--migrations-url-variable", "DATABASE_URL")
    result.assert_outcomes(passed=5, skipped=1)
    assert set(schemes.read_text().split()) == {expected}


def test_a_mariadb_primary_key_whose_order_a_downgrade_reverses_is_named_plainly(project: Project) -> None:
    """A downgrade re-creating a composite primary key in the other column order (Airflow's 0041): the
    difference names the key's columns in order, and does not call a primary key UNIQUE."""
    url = server_url("mysql")
    project.revision(
        "a1",
        None,
        'op.create_table("pairs", sa.Column("a", sa.Integer), sa.Column("b", sa.Integer), '
        'sa.PrimaryKeyConstraint("a", "b"))',
        'op.drop_table("pairs")',
    )
    project.revision(
        "b2",
        "a1",
        'op.add_column("pairs", sa.Column("c", sa.Integer))',
        'op.drop_column("pairs", "c")\nop.execute("ALTER TABLE pairs DROP PRIMARY KEY, ADD PRIMARY KEY (b, a)")',
    )
    result = project.run("--migrations-url", url, "--migrations-checks", "stairway")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(['*~ table "pairs": primary key: (a, b) BTREE*(b, a) BTREE*'])
    assert "primary key: UNIQUE" not in result.stdout.str()


CHILD = (
    'op.create_table("child", sa.Column("id", sa.Integer, primary_key=True), '
    'sa.Column("{column}", sa.Integer, sa.ForeignKey("parent.id")))'
)


def _parent_and_child(project: Project) -> None:
    """Revision a1: tables ``parent`` and ``child``, whose column ``a`` has an unnamed foreign key to it."""
    project.revision(
        "a1",
        None,
        'op.create_table("parent", sa.Column("id", sa.Integer, primary_key=True))\n' + CHILD.format(column="a"),
        'op.drop_table("child")\nop.drop_table("parent")',
    )


def test_a_mariadb_foreign_key_index_named_after_a_renamed_column_is_no_difference(project: Project) -> None:
    """MariaDB names the index it makes for an unnamed foreign key after the column, and keeps that name when
    the column is renamed; a downgrade that re-creates the table gets the new column's name. The same table."""
    url = server_url("mysql")
    _parent_and_child(project)
    project.revision(
        "b2",
        "a1",
        'op.alter_column("child", "a", new_column_name="b", existing_type=sa.Integer)',
        'op.alter_column("child", "b", new_column_name="a", existing_type=sa.Integer)',
    )
    project.revision("c3", "b2", 'op.drop_table("child")', CHILD.format(column="b"))
    result = project.run("--migrations-url", url, "--migrations-checks", "stairway")
    result.assert_outcomes(passed=3)


def test_a_mariadb_foreign_key_a_downgrade_leaves_is_named_by_its_columns_once(project: Project) -> None:
    """An unnamed foreign key, and the index MariaDB made for it, left by a downgrade: each line names the
    columns once (``foreign key (p) -> parent(id) ...``, ``index (p) BTREE``), and the server's names as notes."""
    url = server_url("mysql")
    _parent_and_child(project)
    project.revision(
        "b2",
        "a1",
        'op.add_column("child", sa.Column("p", sa.Integer))\n'
        'op.create_foreign_key(None, "child", "parent", ["p"], ["id"])',
        "pass",
    )
    result = project.run("--migrations-url", url, "--migrations-checks", "stairway")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines_random(
        [
            '*+ table "child": foreign key (p) -> parent(id) ON UPDATE RESTRICT ON DELETE RESTRICT: present after*',
            '*+ table "child": index (p) BTREE: present after the downgrade, absent before*(named p)*',
        ]
    )
    assert "(p) (p)" not in result.stdout.str()


@pytest.mark.parametrize("dialect", DIALECTS)
def test_password_never_appears_in_output(project: Project, dialect: str) -> None:
    """A URL's password is masked in the header, in failures and in -v output."""
    server_url(dialect)
    secret = "pw-s3cret-Zq9"
    if dialect == "mysql":
        admin = sa.create_engine("mysql+pymysql://root@127.0.0.1:3306/", isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.exec_driver_sql("DROP USER IF EXISTS 'pm_masked'@'%%'")
            conn.exec_driver_sql(f"CREATE USER 'pm_masked'@'%%' IDENTIFIED BY '{secret}'")
            conn.exec_driver_sql("GRANT ALL PRIVILEGES ON *.* TO 'pm_masked'@'%%'")
        admin.dispose()
        url = f"mysql://pm_masked:{secret}@127.0.0.1:3306/"
    else:
        url = SERVER_URLS["postgresql"].replace("postgres@", f"postgres:{secret}@")  # trust auth ignores it
    project.revision(**users_table("a1"))
    project.revision("b2", "a1", 'raise RuntimeError("boom")', "pass")
    try:
        result = project.run("--migrations-url", url, "-v", "--tb=long")
    finally:
        if dialect == "mysql":
            admin = sa.create_engine("mysql+pymysql://root@127.0.0.1:3306/", isolation_level="AUTOCOMMIT")
            with admin.connect() as conn:
                conn.exec_driver_sql("DROP USER IF EXISTS 'pm_masked'@'%%'")
            admin.dispose()
    # b2 fails its stairway item and upgrade_to_head; downgrade_to_base and drift are blocked by it (skipped)
    result.assert_outcomes(passed=3, failed=2, skipped=2)
    output = result.stdout.str() + result.stderr.str()
    assert secret not in output
    assert "***" in output


def _pg_rows(admin: sa.Engine, database: str) -> dict[str, int]:
    """Tables of ``database`` (schema public) with their row counts."""
    engine = sa.create_engine(admin.url.set(database=database), poolclass=NullPool)
    try:
        with engine.connect() as conn:
            tables = [r[0] for r in conn.exec_driver_sql("SELECT tablename FROM pg_tables WHERE schemaname='public'")]
            return {t: conn.exec_driver_sql(f'SELECT count(*) FROM "{t}"').scalar_one() for t in tables}
    finally:
        engine.dispose()


def test_leftovers_of_a_killed_run_are_removed_and_live_runs_kept(project: Project) -> None:
    """Only marked databases of runs whose lock is free are dropped; live runs', user and unmarked ones keep their rows."""
    url = server_url("postgresql")
    dead, live, other = (uuid.uuid4().hex[:8] for _ in range(3))
    leftover = f"pytest_migrations_{dead}_main_1"
    kept_live = f"pytest_migrations_{live}_main_1"
    customer = f"pytest_migrations_customerdata_{RUN_ID}"  # a user's database that only shares the prefix
    unmarked = f"pytest_migrations_{dead}_main_2"  # the exact form, but no marker: not provably the plugin's
    foreign_marker = f"pytest_migrations_{dead}_gw0_3"  # a marker naming another run than the name
    comments = {
        leftover: f"pytest-migrations run {dead}",
        kept_live: f"pytest-migrations run {live}",
        customer: f"pytest-migrations run {dead}",
        unmarked: None,
        foreign_marker: f"pytest-migrations run {other}",
    }
    admin = sa.create_engine(with_driver(sa.make_url(SERVER_URLS["postgresql"])), isolation_level="AUTOCOMMIT")
    live_lock = admin.connect()
    lock = sa.text("SELECT pg_try_advisory_lock(:c, :k)")
    try:
        assert live_lock.execute(lock, {"c": 0x706D, "k": run_lock_key(live)}).scalar()
        # The dead run is alive while it is being built: another test's run on this server would
        # rightly remove its databases before they hold their rows.
        with admin.connect() as conn:
            assert conn.execute(lock, {"c": 0x706D, "k": run_lock_key(dead)}).scalar()
            for name, comment in comments.items():
                conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}"')
                conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
                if comment:
                    conn.exec_driver_sql(f"COMMENT ON DATABASE \"{name}\" IS '{comment}'")
            victims = [kept_live, customer, unmarked, foreign_marker]
            for name in victims:
                engine = sa.create_engine(admin.url.set(database=name), poolclass=NullPool)
                with engine.begin() as db:
                    db.exec_driver_sql("CREATE TABLE customers (id int primary key, name text)")
                    db.exec_driver_sql("INSERT INTO customers VALUES (1, 'Ada'), (2, 'Grace')")
                engine.dispose()
            unlock = sa.text("SELECT pg_advisory_unlock(:c, :k)")
            assert conn.execute(unlock, {"c": 0x706D, "k": run_lock_key(dead)}).scalar()  # the run is dead now
        project.revision(**users_table("a1"))
        project.run("--migrations-url", url, "--migrations-checks", "stairway").assert_outcomes(passed=1)
        with admin.connect() as conn:
            present = {r[0] for r in conn.exec_driver_sql("SELECT datname FROM pg_database")}
        assert leftover not in present
        for name in victims:
            assert name in present
            assert _pg_rows(admin, name) == {"customers": 2}
        assert plugin_databases("postgresql") == []
    finally:
        live_lock.close()
        with admin.connect() as conn:
            for name in comments:
                conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


def test_user_database_in_the_url_is_never_touched(project: Project, user_database: Callable[[str], str]) -> None:
    """The database named in --migrations-url holds data; after a run it is exactly as it was."""
    server_url("postgresql")
    own_url = user_database("pm_users_own_db")
    own = sa.create_engine(own_url)
    with own.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE customers (id int primary key, name text)")
        conn.exec_driver_sql("INSERT INTO customers VALUES (1, 'Ada')")
    project.revision(**users_table("a1"))
    project.run("--migrations-url", own_url).assert_outcomes(passed=5, skipped=1)
    with own.connect() as conn:
        tables = [r[0] for r in conn.exec_driver_sql("SELECT tablename FROM pg_tables WHERE schemaname='public'")]
        rows = conn.exec_driver_sql("SELECT * FROM customers").all()
    own.dispose()
    assert tables == ["customers"]
    assert rows == [(1, "Ada")]


def test_runner_marker_picks_the_database(project: Project) -> None:
    """@pytest.mark.migrations_db picks the runner's database, next to SQLite ones in the same run."""
    url = server_url("postgresql")
    project.revision(**users_table("a1"))
    project.pytester.makepyfile(
        test_db="""
        import pytest

        def test_default(migration_runner):
            assert migration_runner.url().get_backend_name() == "sqlite"

        @pytest.mark.migrations_db("postgresql")
        def test_on_postgresql(migration_runner):
            migration_runner.upgrade()
            assert migration_runner.url().get_backend_name() == "postgresql"
            assert migration_runner.execute("SELECT current_database()")[0][0].startswith("pytest_migrations_")
        """
    )
    result = project.pytester.runpytest(
        "-p", "no:cacheprovider", "--migrations-url", url, "--migrations-db", "sqlite", "test_db.py"
    )
    result.assert_outcomes(passed=2)


def test_schema_function_and_extension_left_behind_are_caught(project: Project) -> None:
    """A trigger function, a schema and an extension that a downgrade forgets are differences too."""
    url = server_url("postgresql")
    project.revision(
        "a1",
        None,
        'op.execute("CREATE SCHEMA audit")\n'
        'op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")\n'
        "op.execute(\"CREATE FUNCTION touch() RETURNS trigger LANGUAGE plpgsql AS 'BEGIN RETURN NEW; END'\")",
        "pass",
    )
    result = project.run("--migrations-url", url, "--migrations-checks", "stairway")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines_random(
        [
            '*+ schema "audit": present after the downgrade*',
            '*+ extension "pg_trgm": present after the downgrade*',
            '*+ function "touch()": present after the downgrade*',
            '*op.execute("DROP FUNCTION touch()")',
        ]
    )
    result = project.run("--migrations-url", url, "--migrations-checks", "stairway")
    result.assert_outcomes(failed=1)  # each run starts from fresh databases: no residue from the last one


def test_assert_no_drift_on_a_server_leaves_nothing(project: Project) -> None:
    url = server_url("postgresql")
    project.revision(**users_table("a1"))
    project.models(
        "import sqlalchemy as sa\nmetadata = sa.MetaData()\n"
        "sa.Table('users', metadata, sa.Column('id', sa.Integer, primary_key=True),"
        " sa.Column('name', sa.String(50), nullable=False))\n"
    )
    project.pytester.makepyfile(
        test_plain=f"""
        from pytest_migrations import assert_no_drift

        def test_matches():
            assert_no_drift("alembic.ini", server_url={url!r})
        """
    )
    project.pytester.runpytest("-p", "no:cacheprovider", "test_plain.py").assert_outcomes(passed=1)
    assert plugin_databases("postgresql") == []


@pytest.mark.parametrize("dialect", DIALECTS)
def test_async_template_on_the_server_uses_an_async_driver(pytester: pytest.Pytester, dialect: str) -> None:
    """The async template runs unchanged on PostgreSQL (asyncpg) and MariaDB (aiomysql)."""
    url = server_url(dialect)
    project = Project(pytester, template="async")
    _history(project)
    result = project.run("--migrations-url", url)
    result.assert_outcomes(passed=4 + 3, skipped=1)
    assert plugin_databases(dialect) == []


def test_tables_in_another_schema_are_checked_too(project: Project) -> None:
    """A table a migration creates in a schema of its own, left by the downgrade, is found without include_schemas."""
    url = server_url("postgresql")
    project.revision(
        "a1",
        None,
        'op.execute("CREATE SCHEMA reporting")\n'
        'op.create_table("totals", sa.Column("id", sa.Integer, primary_key=True), schema="reporting")',
        'op.execute("DROP SCHEMA reporting")',
    )
    result = project.run("--migrations-url", url, "--migrations-checks", "stairway")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*raised*DependentObjectsStillExist*"])
    project.revision(
        "a1",
        None,
        'op.execute("CREATE SCHEMA reporting")\n'
        'op.create_table("totals", sa.Column("id", sa.Integer, primary_key=True), schema="reporting")',
        "pass",
    )
    result = project.run("--migrations-url", url, "--migrations-checks", "stairway")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines_random(
        [
            '*+ schema "reporting": present after the downgrade*',
            '*+ table "reporting.totals": present after the downgrade*',
        ]
    )


_AHEAD = """
import threading
import time

import pytest

ahead = {}


def _serials(runner):
    \"\"\"Serial -> name of this run's databases on the server (pg_database is seen from any database).\"\"\"
    prefix = runner.url().database.rsplit("_", 1)[0] + "_"
    rows = runner.execute("SELECT datname FROM pg_database")
    return {int(name.rsplit("_", 1)[1]): name for (name,) in rows if name.startswith(prefix)}


@pytest.mark.parametrize("n", range(4))
def test_runner(migration_runner, n):
    if n == 1 and FAIL_AHEAD:
        backend = migration_runner._harness.backend
        original = backend.clone

        def clone(source, name):
            if threading.current_thread().name == "pytest-migrations-clone-ahead":
                raise RuntimeError("the server said no")
            return original(source, name)

        backend.clone = clone
    assert migration_runner.upgrade("c3") == ("c3",)
    assert migration_runner.execute("SELECT count(*) FROM users") == [(0,)]  # each runner has a copy of its own
    migration_runner.insert("users", [{"id": n, "name": "x"}])
    name = migration_runner.url().database
    if n == 1 and not FAIL_AHEAD:  # the second runner there: the next clone is being made meanwhile
        own = int(name.rsplit("_", 1)[1])
        deadline = time.monotonic() + 30
        while not any(serial > own for serial in _serials(migration_runner)) and time.monotonic() < deadline:
            time.sleep(0.05)
        ahead["name"] = max(_serials(migration_runner).items())[1]
    if n == 2 and not FAIL_AHEAD:
        assert name == ahead["name"]  # made while test 1 ran, before this test asked for it
"""


@pytest.mark.parametrize("fail", [False, True], ids=["made", "failed"])
def test_a_later_runner_takes_the_clone_made_ahead_and_none_is_left(project: Project, fail: bool) -> None:
    """From the second runner going to a revision on, the next clone of its template is made while the test runs;
    the next runner takes it. One that fails is replaced by a plain clone. None is left after the run."""
    _history(project)
    project.pytester.makepyfile(test_ahead=f"FAIL_AHEAD = {fail}\n" + _AHEAD)
    url = server_url("postgresql")
    result = project.pytester.runpytest("--migrations-url", url, "-p", "no:cacheprovider", "test_ahead.py")
    result.assert_outcomes(passed=4)
    assert plugin_databases("postgresql") == []
