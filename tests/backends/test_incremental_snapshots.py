"""Incremental PostgreSQL snapshots give the verdicts and differences full catalog reads give.

A snapshot normally re-reads only the relations DDL touched since the last one (see
``pytest_migrations.pg_catalog.Incremental``). Here random histories of the DDL that makes
that hard (renames of tables, columns, enums, functions and sequences other objects name;
views, triggers, comments, schemas, drops that cascade), some with downgrades that leave
something behind, run twice: incrementally, with every snapshot checked against a full
read (``PYTEST_MIGRATIONS_VERIFY_SNAPSHOTS``), and with full reads only. Items, outcomes and
reported differences must be the same.
"""

from __future__ import annotations

import random
import re
from typing import Any

import pytest

from ..conftest import server_url
from ..helpers import Project

_WORLD = """
    op.execute("CREATE TYPE mood AS ENUM ('calm', 'busy')")
    op.execute("CREATE SEQUENCE tickets")
    op.execute("CREATE FUNCTION touch() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NEW; END $$")
"""
_UNWORLD = """
    op.execute("DROP FUNCTION touch()")
    op.execute("DROP SEQUENCE tickets")
    op.execute("DROP TYPE mood")
"""


def _step(rng: random.Random, i: int, state: dict[str, Any]) -> tuple[str, str, str]:
    """``(upgrade, downgrade, a downgrade that leaves something behind)`` of revision ``i``."""
    tables: list[str] = state["tables"]
    kinds = ["table"] if not tables else ["table", "rename", "column", "view", "trigger", "comment", "type", "schema"]
    kind = rng.choice(kinds)
    if kind == "table":
        name = f"t{i}"
        fk = f', sa.Column("ref", sa.Integer, sa.ForeignKey("{rng.choice(tables)}.id"))' if tables else ""
        up = f"""
            op.create_table("{name}", sa.Column("id", sa.Integer, primary_key=True),
                            sa.Column("name", sa.String(50), server_default="x"),
                            sa.Column("feel", postgresql.ENUM(name="{state["enum"]}", create_type=False)),
                            sa.Column("seq", sa.Integer, server_default=sa.text("nextval('{state["seq"]}')")){fk})
            op.create_index("ix_{name}_name", "{name}", ["name"])
        """
        tables.append(name)
        return up, f'op.drop_table("{name}")', f'op.drop_index("ix_{name}_name", table_name="{name}")'
    index = rng.randrange(len(tables))
    table = tables[index]
    if kind == "rename":  # foreign keys and views name the table: they must be read again
        tables[index] = f"{table}_{i}"
        up = f'op.rename_table("{table}", "{table}_{i}")\n'
        up += f'op.alter_column("{table}_{i}", "name", new_column_name="title")\n'
        up += f'op.alter_column("{table}_{i}", "title", new_column_name="name")'
        return up, f'op.rename_table("{table}_{i}", "{table}")', "pass"
    if kind == "column":
        col = f"c{i}"
        up = f'op.add_column("{table}", sa.Column("{col}", sa.String(20), nullable=True))\n'
        up += f'op.alter_column("{table}", "{col}", type_=sa.String(40))\n'
        up += f'op.create_check_constraint("ck_{col}", "{table}", "length({col}) > 0")'
        return up, f'op.drop_column("{table}", "{col}")', f'op.drop_constraint("ck_{col}", "{table}")'
    if kind == "view":  # the view names a column renamed after it was made
        up = f'op.add_column("{table}", sa.Column("l{i}", sa.Integer))\n'
        up += f'op.execute("CREATE VIEW v{i} AS SELECT id, l{i} FROM {table}")\n'
        up += f'op.execute("ALTER TABLE {table} RENAME COLUMN l{i} TO m{i}")'
        down = f'op.execute("DROP VIEW v{i}")\nop.drop_column("{table}", "m{i}")'
        return up, down, f'op.execute("DROP VIEW v{i}")'
    if kind == "trigger":
        up = f'op.execute("CREATE TRIGGER tr{i} BEFORE INSERT ON {table} FOR EACH ROW EXECUTE FUNCTION touch()")\n'
        up += 'op.execute("ALTER FUNCTION touch() RENAME TO touch_r")\n'
        up += 'op.execute("ALTER FUNCTION touch_r() RENAME TO touch")'
        return up, f'op.execute("DROP TRIGGER tr{i} ON {table}")', "pass"
    if kind == "comment":
        up = f"op.execute(\"COMMENT ON TABLE {table} IS 'r{i}'\")\nop.execute(\"COMMENT ON COLUMN {table}.id IS 'k'\")"
        down = f'op.execute("COMMENT ON TABLE {table} IS NULL")\nop.execute("COMMENT ON COLUMN {table}.id IS NULL")'
        return up, down, f'op.execute("COMMENT ON TABLE {table} IS NULL")'
    if kind == "type":  # columns of the enum and defaults calling the sequence name them
        enum, seq = state["enum"], state["seq"]
        state["enum"], state["seq"] = f"mood{i}", f"tickets{i}"
        up = f'op.execute("ALTER TYPE {enum} RENAME TO mood{i}")\nop.execute("ALTER SEQUENCE {seq} RENAME TO tickets{i}")'
        down = f'op.execute("ALTER TYPE mood{i} RENAME TO {enum}")\n'
        down += f'op.execute("ALTER SEQUENCE tickets{i} RENAME TO {seq}")'
        return up, down, f'op.execute("ALTER TYPE mood{i} RENAME TO {enum}")'
    up = f'op.execute("CREATE SCHEMA s{i}")\n'
    up += f'op.execute("CREATE TABLE s{i}.w (id int REFERENCES {table} (id))")\n'
    up += f'op.execute("CREATE VIEW s{i}.vw AS SELECT * FROM {table}")'
    return up, f'op.execute("DROP SCHEMA s{i} CASCADE")', f'op.execute("DROP VIEW s{i}.vw")'


def _history(project: Project, seed: int, size: int) -> None:
    rng = random.Random(seed)
    state: dict[str, Any] = {"tables": [], "enum": "mood", "seq": "tickets"}
    project.revision("r0", None, _WORLD, _UNWORLD)
    for i in range(1, size):
        up, down, broken = _step(rng, i, state)
        chosen = broken if rng.random() < 0.2 else down
        project.revision(f"r{i}", f"r{i - 1}", up, chosen, extra="from sqlalchemy.dialects import postgresql")


def _outcomes(result: pytest.RunResult) -> dict[str, str]:
    """Item -> outcome, and each failure's reported differences."""
    text = result.stdout.str()
    outcomes = dict(re.findall(r"^(\S+::\S+) (PASSED|FAILED|ERROR|SKIPPED)", text, re.MULTILINE))
    for item, body in re.findall(r"^_+ (\S+) _+\n(.*?)(?=^_+ \S+ _+$|^=+)", text, re.MULTILINE | re.DOTALL):
        differences = re.search(r"differences:\n(.*?)\n  \w", body, re.DOTALL)
        outcomes[f"{item} differences"] = differences.group(1) if differences else ""
    return outcomes


def assert_same_verdicts(project: Project, monkeypatch: pytest.MonkeyPatch, url: str, items: int) -> None:
    """Run the project's stairway incrementally (every snapshot checked against a full read), then with
    full reads only: the same ``items`` items, outcomes and differences."""
    args = ("--migrations-url", url, "--migrations-checks", "stairway", "-v")
    monkeypatch.setenv("PYTEST_MIGRATIONS_VERIFY_SNAPSHOTS", "1")
    incremental = _outcomes(project.run(*args))
    monkeypatch.setenv("PYTEST_MIGRATIONS_VERIFY_SNAPSHOTS", "0")
    monkeypatch.setenv("PYTEST_MIGRATIONS_FULL_SNAPSHOTS", "1")
    full = _outcomes(project.run(*args))
    assert incremental == full
    assert len([o for o in full.values() if o in ("PASSED", "FAILED")]) == items
    assert "incremental snapshot differs" not in str(incremental)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_incremental_snapshots_give_the_verdicts_of_full_reads(
    project: Project, monkeypatch: pytest.MonkeyPatch, seed: int
) -> None:
    _history(project, seed, 18)
    assert_same_verdicts(project, monkeypatch, server_url("postgresql"), 18)


def test_ddl_as_another_role_is_logged_and_seen() -> None:
    """A migration's DDL under SET ROLE (a role that owns nothing of the log) runs, and snapshots see it."""
    import sqlalchemy as sa

    from pytest_migrations.backends.server import PostgreSQLBackend
    from pytest_migrations.providers import with_driver
    from pytest_migrations.schema import SnapshotTaker

    from ..conftest import RUN_ID

    backend = PostgreSQLBackend(with_driver(sa.make_url(server_url("postgresql"))))
    name = f"pytest_migrations_{RUN_ID}_main_9001"
    engine = sa.create_engine(backend.create(name))
    role = f"pm_{RUN_ID}_owner"
    taker = SnapshotTaker(verify=True)
    try:
        with engine.begin() as conn:
            conn.exec_driver_sql(f"CREATE ROLE {role}")
            conn.exec_driver_sql(f"GRANT ALL ON SCHEMA public TO {role}")
            taker.capture(conn)
            conn.exec_driver_sql(f"SET ROLE {role}")
            conn.exec_driver_sql("CREATE TABLE t (id int PRIMARY KEY)")
            taker.capture(conn)
            conn.exec_driver_sql("ALTER TABLE t ADD COLUMN x int")
            snapshot = taker.capture(conn)
            conn.exec_driver_sql("RESET ROLE")
            conn.exec_driver_sql("DROP TABLE t")
            conn.exec_driver_sql(f"DROP OWNED BY {role}")
            conn.exec_driver_sql(f"DROP ROLE {role}")
    finally:
        engine.dispose()
        backend.drop(name)
    assert snapshot.table("t")["column x"] == "integer NULL"
    assert taker.postgresql is not None and taker.postgresql.reads == {"full": 1, "incremental": 2}


def test_a_new_database_reads_touched_objects_through_functions_planned_once() -> None:
    """The incremental reads are functions of the DDL schema (planned once per session, not per snapshot),
    and a snapshot after DDL goes through them, for relations and for the other objects (an enum here):
    an install that left them out would only be slower, never wrong, so only this test sees it."""
    import sqlalchemy as sa

    from pytest_migrations import pg_catalog
    from pytest_migrations.backends.server import PostgreSQLBackend
    from pytest_migrations.providers import with_driver
    from pytest_migrations.schema import SnapshotTaker

    from ..conftest import RUN_ID

    backend = PostgreSQLBackend(with_driver(sa.make_url(server_url("postgresql"))))
    name = f"pytest_migrations_{RUN_ID}_main_9002"
    engine = sa.create_engine(backend.create(name))
    calls: list[tuple[str, str]] = []
    reads = {part: getattr(pg_catalog.Incremental, part) for part in ("_relations", "_others")}

    def spy(part: str) -> Any:
        def read(self: Any, *args: Any, **kw: Any) -> None:
            calls.append((part, "function" if kw.get("function") else "query"))
            reads[part](self, *args, **kw)

        return read

    taker = SnapshotTaker(verify=True)
    try:
        with engine.begin() as conn:
            for function in ("relations_of(oid[], oid[], name[])", "others(name[])"):
                assert conn.exec_driver_sql(f"SELECT to_regprocedure('{pg_catalog.DDL_SCHEMA}.{function}')").scalar()
            for part in reads:
                setattr(pg_catalog.Incremental, part, spy(part))
            taker.capture(conn)
            conn.exec_driver_sql("CREATE TYPE mood AS ENUM ('calm', 'cross')")
            conn.exec_driver_sql("CREATE TABLE t (id int PRIMARY KEY, m mood)")
            snapshot = taker.capture(conn)
    finally:
        for part, real in reads.items():
            setattr(pg_catalog.Incremental, part, real)
        engine.dispose()
        backend.drop(name)
    assert snapshot.table("t")["column id"] == "integer NOT NULL"
    assert snapshot.objects[("enum", "mood")].as_dict() == {"labels": "calm, cross"}
    # The first snapshot reads every relation with a query (the function reads only touched ones),
    # the others through their function; the next reads what DDL touched, both through functions.
    assert calls == [
        ("_relations", "query"),
        ("_others", "function"),
        ("_relations", "function"),
        ("_others", "function"),
    ]


def test_a_difference_is_reported_from_a_full_read(project: Project, monkeypatch: pytest.MonkeyPatch) -> None:
    """An incremental snapshot that got a table wrong cannot fail an item: the comparison is made again
    on a full read before anything is reported, and a correct history passes; a real difference still fails."""
    from pytest_migrations import pg_catalog

    real = pg_catalog.Incremental._relations

    def forgetful(self: Any, connection: Any, known: Any, params: Any, touched: Any, extra: Any, **kw: Any) -> None:
        real(self, connection, known, params, touched, extra, **kw)
        everything = kw["everything"]
        if not everything:  # every incremental read loses the tables it read
            for oid in set(touched) | set(extra):
                known.relations.pop(oid, None)

    monkeypatch.setattr(pg_catalog.Incremental, "_relations", forgetful)
    monkeypatch.setenv("PYTEST_MIGRATIONS_VERIFY_SNAPSHOTS", "0")
    project.revision(
        "a1", None, 'op.create_table("t", sa.Column("id", sa.Integer, primary_key=True))', 'op.drop_table("t")'
    )
    project.revision("b2", "a1", 'op.add_column("t", sa.Column("x", sa.Integer))', 'op.drop_column("t", "x")')
    project.revision("c3", "b2", 'op.add_column("t", sa.Column("y", sa.Integer))', "pass")
    result = project.run("--migrations-url", server_url("postgresql"), "--migrations-checks", "stairway")
    result.assert_outcomes(passed=2, failed=1)
    result.stdout.fnmatch_lines(["*stairway*c3*", '*table "t": column y integer NULL: present after the downgrade*'])
