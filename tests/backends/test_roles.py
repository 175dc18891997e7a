"""PostgreSQL roles that migrations create: kept per database, compared across the round trip, removed."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from sqlalchemy.pool import NullPool

from pytest_migrations.providers import with_driver

from ..conftest import RUN_ID, SERVER_URLS, server_url
from ..helpers import Project, users_table

READER = f"app_reader_{RUN_ID}"
WRITER = f"app_writer_{RUN_ID}"


@pytest.fixture
def admin() -> Iterator[sa.Connection]:
    engine = sa.create_engine(
        with_driver(sa.make_url(server_url("postgresql"))), poolclass=NullPool, isolation_level="AUTOCOMMIT"
    )
    with engine.connect() as conn:
        yield conn
    engine.dispose()


def _roles(conn: sa.Connection, *names: str) -> dict[str, str | None]:
    """The roles of ``names`` that exist, with their comments."""
    rows = conn.execute(
        sa.text(
            "SELECT rolname, shobj_description(oid, 'pg_authid') FROM pg_roles WHERE rolname = ANY(CAST(:n AS name[]))"
        ),
        {"n": list(names)},
    )
    return {name: comment for name, comment in rows}


def _role_history(project: Project, *, writer_downgrade: str) -> None:
    project.revision(**users_table("a1"))
    project.revision(
        "b1",
        "a1",
        upgrade=f'op.execute("CREATE ROLE {READER}")\nop.execute("GRANT SELECT ON users TO {READER}")',
        downgrade=f'op.execute("REVOKE SELECT ON users FROM {READER}")\nop.execute("DROP ROLE {READER}")',
    )
    # The guarded form many projects use: a DO block that creates the role only when it is missing.
    guarded = f"DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{WRITER}') THEN CREATE ROLE {WRITER} LOGIN; END IF; END $$"
    project.revision("c1", "b1", upgrade=f'op.execute("{guarded}")', downgrade=writer_downgrade)
    project.revision(
        "d1",
        "c1",
        upgrade=f'op.execute("GRANT INSERT ON users TO {WRITER}")',
        downgrade=f'op.execute("REVOKE INSERT ON users FROM {WRITER}")',
    )


def test_a_history_that_creates_roles_passes_and_leaves_no_role(project: Project, admin: sa.Connection) -> None:
    """Every walk of the run creates the roles on its own database: no "role already exists" from another walk."""
    _role_history(project, writer_downgrade=f'op.execute("DROP ROLE {WRITER}")')
    result = project.run("--migrations-url", SERVER_URLS["postgresql"])
    result.assert_outcomes(passed=8, skipped=1)  # drift: no models
    assert _roles(admin, READER, WRITER) == {}


def test_a_downgrade_that_leaves_a_role_behind_fails_naming_it(project: Project, admin: sa.Connection) -> None:
    _role_history(project, writer_downgrade="pass")
    result = project.run("--migrations-url", SERVER_URLS["postgresql"], "--migrations-checks", "stairway")
    result.assert_outcomes(passed=3, failed=1)
    result.stdout.fnmatch_lines(
        [
            "downgrade of revision c1 * does not undo its upgrade: 1 difference(s)*",
            f'    + role "{WRITER}": present after the downgrade (login), absent before the upgrade',
            f'        op.execute("DROP ROLE {WRITER}")',
        ]
    )
    assert _roles(admin, READER, WRITER) == {}


def test_a_role_of_the_users_is_never_taken_over(project: Project, admin: sa.Connection) -> None:
    """A role of that name that the run did not create stays as it was; the item says why it fails."""
    admin.exec_driver_sql(f"CREATE ROLE {READER}")
    admin.exec_driver_sql(f"COMMENT ON ROLE {READER} IS 'the application reads with it'")
    try:
        _role_history(project, writer_downgrade=f'op.execute("DROP ROLE {WRITER}")')
        result = project.run("--migrations-url", SERVER_URLS["postgresql"], "--migrations-checks", "stairway")
        result.assert_outcomes(passed=1, failed=1, skipped=2)
        result.stdout.fnmatch_lines([f"    role {READER} already exists on the server, and roles are server-wide*"])
        assert _roles(admin, READER, WRITER) == {READER: "the application reads with it"}
    finally:
        admin.exec_driver_sql(f"DROP ROLE IF EXISTS {READER}")


def test_roles_of_a_dead_run_are_removed_and_no_other(project: Project, admin: sa.Connection) -> None:
    """A killed run's roles carry its marker: the next run drops them once that run's lock is free."""
    dead = uuid.uuid4().hex[:8]
    leftover, unmarked = f"pm_test_left_{RUN_ID}", f"pm_test_keep_{RUN_ID}"
    admin.exec_driver_sql(f"CREATE ROLE {leftover}")
    admin.exec_driver_sql(f"COMMENT ON ROLE {leftover} IS 'pytest-migrations run {dead}'")
    admin.exec_driver_sql(f"CREATE ROLE {unmarked}")
    try:
        project.revision(**users_table("a1"))
        project.run("--migrations-url", SERVER_URLS["postgresql"], "--migrations-checks", "stairway").assert_outcomes(
            passed=1
        )
        assert _roles(admin, leftover, unmarked) == {unmarked: None}
    finally:
        admin.exec_driver_sql(f"DROP ROLE IF EXISTS {leftover}")
        admin.exec_driver_sql(f"DROP ROLE IF EXISTS {unmarked}")
