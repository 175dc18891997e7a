"""Incremental MariaDB snapshots give the verdicts and differences full information_schema reads give.

A MariaDB snapshot normally re-reads only the tables DDL named since the last one (see
``pytest_migrations.mysql_catalog``). Random histories of the DDL that makes that hard
(a renamed table or column that another table's foreign key spells, ``DROP TRIGGER`` that
names no table, a view over a table that is dropped, checks, indexes, comments), some with
downgrades that leave something behind, run twice: incrementally, every snapshot checked
against a full read, and with full reads only. Items, outcomes and differences must match.
Then DDL no engine event sees (a raw DBAPI cursor) must still be seen.
"""

from __future__ import annotations

import random
from typing import Any

import pytest
import sqlalchemy as sa

from pytest_migrations import mysql_catalog
from pytest_migrations.backends.server import MySQLBackend
from pytest_migrations.providers import with_driver
from pytest_migrations.schema import SnapshotTaker

from ..conftest import RUN_ID, server_url
from ..helpers import Project
from .test_incremental_snapshots import assert_same_verdicts


def _step(rng: random.Random, i: int, tables: list[str]) -> tuple[str, str, str]:
    """``(upgrade, downgrade, a downgrade that leaves something behind)`` of revision ``i``."""
    kinds = ["table"] if not tables else ["table", "rename", "column", "view", "trigger", "check", "comment"]
    kind = rng.choice(kinds)
    if kind == "table":
        name = f"t{i}"
        fk = f', sa.Column("ref", sa.Integer, sa.ForeignKey("{rng.choice(tables)}.id"))' if tables else ""
        up = f"""
            op.create_table("{name}", sa.Column("id", sa.Integer, primary_key=True),
                            sa.Column("name", sa.String(50), server_default="x"){fk})
            op.create_index("ix_{name}_name", "{name}", ["name"])
        """
        tables.append(name)
        return up, f'op.drop_table("{name}")', f'op.drop_index("ix_{name}_name", table_name="{name}")'
    index = rng.randrange(len(tables))
    table = tables[index]
    if kind == "rename":  # children's foreign keys spell the table's and its key column's names
        tables[index] = f"{table}_{i}"
        up = f'op.rename_table("{table}", "{table}_{i}")\n'
        up += f'op.alter_column("{table}_{i}", "id", new_column_name="key_{i}", existing_type=sa.Integer, '
        up += "existing_nullable=False)\n"
        up += f'op.alter_column("{table}_{i}", "key_{i}", new_column_name="id", existing_type=sa.Integer, '
        up += "existing_nullable=False)"
        return up, f'op.rename_table("{table}_{i}", "{table}")', "pass"
    if kind == "column":
        col = f"c{i}"
        up = f'op.add_column("{table}", sa.Column("{col}", sa.String(20), nullable=True))\n'
        up += f'op.alter_column("{table}", "{col}", type_=sa.String(40), existing_nullable=True)'
        return up, f'op.drop_column("{table}", "{col}")', "pass"
    if kind == "view":  # a view over a table dropped later reports an error instead of a comment
        up = f'op.create_table("w{i}", sa.Column("id", sa.Integer, primary_key=True))\n'
        up += f'op.execute("CREATE VIEW v{i} AS SELECT w{i}.id FROM w{i} JOIN {table} ON {table}.id = w{i}.id")\n'
        up += f'op.drop_table("w{i}")\nop.create_table("w{i}", sa.Column("id", sa.Integer, primary_key=True))'
        down = f'op.execute("DROP VIEW v{i}")\nop.drop_table("w{i}")'
        return up, down, f'op.execute("DROP VIEW v{i}")'
    if kind == "trigger":  # DROP TRIGGER names no table
        up = f"op.execute(\"CREATE TRIGGER tr{i} BEFORE INSERT ON {table} FOR EACH ROW SET NEW.name = 'y'\")"
        return up, f'op.execute("DROP TRIGGER tr{i}")', "pass"
    if kind == "check":
        up = f'op.create_check_constraint("ck{i}", "{table}", "name <> \'z\'")'
        return up, f'op.drop_constraint("ck{i}", "{table}", type_="check")', "pass"
    up = f"op.execute(\"ALTER TABLE {table} COMMENT 'r{i}'\")"
    return up, f"op.execute(\"ALTER TABLE {table} COMMENT ''\")", "pass"


def _history(project: Project, seed: int, size: int) -> None:
    rng = random.Random(seed)
    tables: list[str] = []
    previous = None
    for i in range(size):
        up, down, broken = _step(rng, i, tables)
        chosen = broken if rng.random() < 0.2 else down
        project.revision(f"r{i}", previous, up, chosen)
        previous = f"r{i}"


@pytest.mark.parametrize("seed", [1, 2])
def test_incremental_snapshots_give_the_verdicts_of_full_reads(
    project: Project, monkeypatch: pytest.MonkeyPatch, seed: int
) -> None:
    _history(project, seed, 16)
    before = mysql_catalog.SNAPSHOTS.reads["incremental"]
    assert_same_verdicts(project, monkeypatch, server_url("mysql"), 16)
    assert mysql_catalog.SNAPSHOTS.reads["incremental"] - before >= 16  # the incremental path was taken


def _database(serial: int) -> tuple[MySQLBackend, str, sa.Engine]:
    backend = MySQLBackend(with_driver(sa.make_url(server_url("mysql"))))
    name = f"pytest_migrations_{RUN_ID}_main_{serial}"
    return backend, name, sa.create_engine(backend.create(name), isolation_level="AUTOCOMMIT")


def test_ddl_no_engine_event_saw_is_seen_by_the_servers_counters() -> None:
    """An ALTER sent on a raw DBAPI cursor: the server counted a statement this process did not see, so the
    next snapshot is a full read and has the column (whatever other runs do on the server meanwhile), and
    the one after it too, at once (DDL elsewhere on the server is likely to go on)."""
    backend, name, engine = _database(9101)
    taker = SnapshotTaker(verify=False)
    try:
        with engine.connect() as conn:
            conn.exec_driver_sql("CREATE TABLE t (id int PRIMARY KEY)")
            taker.capture(conn)
            raw: Any = conn.connection.dbapi_connection
            with raw.cursor() as cursor:
                cursor.execute("ALTER TABLE t ADD COLUMN unseen int")
            before = dict(mysql_catalog.SNAPSHOTS.reads)
            snapshot = taker.capture(conn)
            conn.exec_driver_sql("ALTER TABLE t ADD COLUMN seen int")
            after = taker.capture(conn)
            reads = {
                kind: mysql_catalog.SNAPSHOTS.reads[kind] - before.get(kind, 0) for kind in ("full", "incremental")
            }
    finally:
        engine.dispose()
        backend.drop(name)
    assert snapshot.table("t")["column unseen"] == "int(11) NULL"
    assert after.table("t")["column seen"] == "int(11) NULL"
    assert reads == {"full": 2, "incremental": 0}


def test_a_snapshot_after_ddl_re_reads_only_what_it_named() -> None:
    """Tables an ALTER named (and their children) are read again; the others are kept, and equal a full read."""
    backend, name, engine = _database(9102)
    taker = SnapshotTaker(verify=True)
    try:
        with engine.connect() as conn:
            conn.exec_driver_sql("CREATE TABLE parent (id int PRIMARY KEY)")
            conn.exec_driver_sql(
                "CREATE TABLE child (id int PRIMARY KEY, p int, FOREIGN KEY (p) REFERENCES parent (id))"
            )
            conn.exec_driver_sql("CREATE TABLE other (id int PRIMARY KEY)")
            taker.capture(conn)
            before = dict(mysql_catalog.SNAPSHOTS.reads)
            conn.exec_driver_sql("ALTER TABLE parent CHANGE id pid int")
            conn.exec_driver_sql("CREATE TRIGGER tr BEFORE INSERT ON other FOR EACH ROW SET NEW.id = NEW.id")
            renamed = taker.capture(conn)  # verify=True: a full read is compared with it
            conn.exec_driver_sql("DROP TRIGGER tr")
            dropped = taker.capture(conn)
            conn.exec_driver_sql("CREATE TABLE IF NOT EXISTS `new t` (id int)")  # a new name: looked up
            conn.exec_driver_sql("ALTER TABLE other RENAME TO other2")
            moved = taker.capture(conn)
    finally:
        engine.dispose()
        backend.drop(name)
    assert mysql_catalog.SNAPSHOTS.reads["incremental"] - before.get("incremental", 0) == 3
    assert any("parent(pid)" in str(detail) for detail in renamed.table("child").values())
    assert "trigger tr" in renamed.table("other") and "trigger tr" not in dropped.table("other")
    assert {"new t", "other2", "parent", "child"} <= set(moved.tables) and "other" not in moved.tables
