"""migrations_mysql_schemas: other MySQL schemas a history writes to, lent by the plugin one database at a time."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from sqlalchemy.pool import NullPool

from pytest_migrations.providers import with_driver

from ..conftest import RUN_ID, SERVER_URLS, plugin_databases, server_url
from ..helpers import Project, users_table

AUDIT = f"pmaudit_{RUN_ID}"
RUN_USER = f"pm_{RUN_ID}"


def _admin() -> sa.Engine:
    return sa.create_engine(
        with_driver(sa.make_url(SERVER_URLS["mysql"])), isolation_level="AUTOCOMMIT", poolclass=NullPool
    )


def _databases() -> set[str]:
    admin = _admin()
    try:
        with admin.connect() as conn:
            return {r[0] for r in conn.exec_driver_sql("SELECT SCHEMA_NAME FROM information_schema.SCHEMATA")}
    finally:
        admin.dispose()


@pytest.fixture
def audit() -> Iterator[str]:
    """The name of the other schema of the test's history; made sure to be gone after the test."""
    server_url("mysql")
    yield AUDIT
    admin = _admin()
    with admin.connect() as conn:
        conn.exec_driver_sql(f"DROP DATABASE IF EXISTS `{AUDIT}`")
    admin.dispose()


def _history(project: Project, schema: str, *, forget_view: bool = False) -> None:
    """users; an events table in ``schema`` with rows, a foreign key into it; a view and a trigger there."""
    project.revision(**users_table("a1"))
    project.revision(
        "a2",
        "a1",
        f"""
        op.create_table(
            "events",
            sa.Column("id", sa.Integer, primary_key=True),
            sa.Column("user_id", sa.Integer),
            sa.Column("what", sa.String(20)),
            schema="{schema}",
        )
        op.create_table(
            "last_event",
            sa.Column("user_id", sa.Integer, sa.ForeignKey("users.id"), primary_key=True),
            sa.Column("event_id", sa.Integer, sa.ForeignKey("{schema}.events.id")),
        )
        op.execute("INSERT INTO users (id, name) VALUES (1, 'Ada')")
        op.execute("INSERT INTO {schema}.events (id, user_id, what) VALUES (1, 1, 'signup')")
        op.execute("INSERT INTO last_event (user_id, event_id) VALUES (1, 1)")
        """,
        f"""
        op.drop_table("last_event")
        op.execute("DELETE FROM users")
        op.drop_table("events", schema="{schema}")
        """,
    )
    project.revision(
        "a3",
        "a2",
        f"""
        op.execute("CREATE VIEW {schema}.signups AS SELECT id FROM {schema}.events WHERE what = 'signup'")
        op.execute("CREATE TRIGGER {schema}.stamp BEFORE INSERT ON {schema}.events FOR EACH ROW SET NEW.what = LOWER(NEW.what)")
        """,
        ("pass" if forget_view else f'op.execute("DROP VIEW {schema}.signups")')
        + f'\nop.execute("DROP TRIGGER {schema}.stamp")',
    )


def test_a_history_writing_to_another_schema_passes_when_it_is_named_and_leaves_nothing(
    project: Project, audit: str
) -> None:
    """A table with rows, a foreign key into it, a view and a trigger in `audit`: all pass; `audit` is gone after.

    The second runner test gets a clone of the first's template: its `audit` content and the foreign key
    into it come with it (a row the foreign key checks can be inserted)."""
    _history(project, audit)
    project.pytester.makepyfile(
        test_runner=f"""
        import pytest

        @pytest.mark.migrations_db("mysql")
        def test_first(migration_runner):
            migration_runner.upgrade("heads")
            assert migration_runner.execute("SELECT what FROM {audit}.events") == [("signup",)]

        @pytest.mark.migrations_db("mysql")
        def test_second_gets_a_clone(migration_runner):
            migration_runner.upgrade("heads")
            migration_runner.execute("INSERT INTO {audit}.events (id, user_id, what) VALUES (2, 1, 'LOGIN')")
            migration_runner.execute("UPDATE last_event SET event_id = 2")
            with pytest.raises(Exception, match="foreign key constraint fails"):
                migration_runner.execute("UPDATE last_event SET event_id = 3")
            assert migration_runner.execute("SELECT id FROM {audit}.signups") == [(1,)]
            assert migration_runner.execute("SELECT what FROM {audit}.events ORDER BY id") == [("signup",), ("login",)]
            migration_runner.downgrade("a1")
            assert migration_runner.execute(
                "SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = '{audit}'"
            ) == [(0,)]
        """
    )
    url = server_url("mysql")
    result = project.run("--migrations-url", url, f"--migrations-mysql-schemas={audit}", "-v")
    outcomes = result.parseoutcomes()
    assert outcomes.get("failed", 0) == outcomes.get("errors", 0) == 0, result.stdout.str()
    assert outcomes["passed"] >= 5
    result.stdout.fnmatch_lines(["*stairway*a3*PASSED*", "*test_second_gets_a_clone PASSED*"])
    assert audit not in _databases()
    assert plugin_databases("mysql") == []


def test_a_downgrade_leaving_a_view_in_the_other_schema_fails_naming_it(project: Project, audit: str) -> None:
    """The other schema is part of the round trip: a view the downgrade forgets is a difference, `audit.signups`."""
    _history(project, audit, forget_view=True)
    url = server_url("mysql")
    result = project.run("--migrations-url", url, f"--migrations-mysql-schemas={audit}", "--migrations-checks=stairway")
    result.assert_outcomes(passed=2, failed=1)
    result.stdout.fnmatch_lines([f"*view {audit}.signups*"])
    assert audit not in _databases()
    assert plugin_databases("mysql") == []


def test_other_schemas_are_lent_to_one_xdist_worker_at_a_time(project: Project, audit: str) -> None:
    """Two workers walking the same history take turns with `audit`; every item passes."""
    _history(project, audit)
    url = server_url("mysql")
    result = project.run(
        "--migrations-url",
        url,
        f"--migrations-mysql-schemas={audit}",
        "--migrations-checks=stairway,upgrade_to_head",
        "-n",
        "2",
    )
    result.assert_outcomes(passed=4)
    assert audit not in _databases()
    assert plugin_databases("mysql") == []


def test_an_existing_database_of_that_name_is_never_used(project: Project, audit: str) -> None:
    """`audit` exists on the server without the plugin's marker: items fail saying so; its rows are unchanged."""
    admin = _admin()
    with admin.connect() as conn:
        conn.exec_driver_sql(f"CREATE DATABASE `{audit}`")
        conn.exec_driver_sql(f"CREATE TABLE `{audit}`.events (id int primary key)")
        conn.exec_driver_sql(f"INSERT INTO `{audit}`.events VALUES (7), (8)")
    _history(project, audit)
    url = server_url("mysql")
    result = project.run("--migrations-url", url, f"--migrations-mysql-schemas={audit}", "--migrations-checks=stairway")
    result.assert_outcomes(failed=3)
    result.stdout.fnmatch_lines([f"*the server has a database `{audit}` that the plugin did not create*"])
    with admin.connect() as conn:
        assert conn.exec_driver_sql(f"SELECT id FROM `{audit}`.events ORDER BY id").all() == [(7,), (8,)]
        tables = conn.exec_driver_sql(
            f"SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = '{audit}'"
        ).all()
    admin.dispose()
    assert tables == [("events",)]
    assert plugin_databases("mysql") == []


def test_without_the_setting_the_refusal_names_it(project: Project, audit: str) -> None:
    """The server's refusal of `audit` says how to lend it: migrations_mysql_schemas = audit."""
    _history(project, audit)
    url = server_url("mysql")
    result = project.run("--migrations-url", url, "--migrations-checks=stairway")
    result.stdout.fnmatch_lines(
        [f"*reaches another database (`{audit}`)*migrations_mysql_schemas = {audit} in the ini*"]
    )
    assert audit not in _databases()


def test_a_bad_schema_name_is_a_usage_error(project: Project) -> None:
    project.revision(**users_table("a1"))
    result = project.run("--migrations-mysql-schemas=mysql")
    result.stderr.fnmatch_lines(["*migrations_mysql_schemas: mysql is a system database of the server*"])
    assert result.ret == pytest.ExitCode.USAGE_ERROR
