"""Which tables a step may have written, from its statements: precise where it can be, "all" where not."""

from __future__ import annotations

import pytest

from pytest_migrations.changes import with_dependents, written_tables

TABLES = {"t0", "t7", "users", "Orders"}


def test_sqlite_batch_copy_writes_its_table_not_the_one_it_references() -> None:
    batch = [
        "CREATE TABLE _alembic_tmp_t7 (id INTEGER NOT NULL, parent_id INTEGER, FOREIGN KEY(parent_id) REFERENCES t0 (id))",
        "INSERT INTO _alembic_tmp_t7 (id, parent_id) SELECT t7.id, t7.parent_id FROM t7",
        "DROP TABLE t7",
        "ALTER TABLE _alembic_tmp_t7 RENAME TO t7",
    ]
    assert written_tables(batch, TABLES) == {"t7"}


@pytest.mark.parametrize(
    ("sql", "written"),
    [
        ("UPDATE users SET name = (SELECT max(name) FROM t0)", {"users"}),
        ('DELETE FROM "Orders" USING t0 WHERE t0.id = 1', {"Orders"}),
        ("INSERT INTO public.users (id) SELECT id FROM t0", {"users"}),
        ("INSERT OR REPLACE INTO users VALUES (1, 'x')", {"users"}),
        ("DROP TABLE IF EXISTS t0, users", {"t0", "users"}),
        ("TRUNCATE TABLE `t7`", {"t7"}),
        ("UPDATE t7 JOIN t0 ON t0.id = t7.parent_id SET t0.name = 'x'", {"t0", "t7"}),
        ("DELETE t0, t7 FROM t0 JOIN t7 ON t7.parent_id = t0.id", {"t0", "t7"}),
        ("WITH gone AS (DELETE FROM users RETURNING id) SELECT count(*) FROM gone", {"users"}),
        ("SELECT count(*) FROM users", set()),
        ("CREATE INDEX ix_name ON users (name)", set()),  # no row changes; its schema facts change
    ],
)
def test_the_targets_of_a_statement_are_written(sql: str, written: set[str]) -> None:
    assert written_tables([sql], TABLES) == written


@pytest.mark.parametrize(
    "sql",
    [
        "DO $$ BEGIN UPDATE users SET name = 'x'; END $$",
        "CALL archive_orders()",
        "ALTER TYPE tier RENAME VALUE 'pro' TO 'premium'",
        "SELECT wipe_users()",
    ],
)
def test_code_of_the_database_may_write_anything(sql: str) -> None:
    assert written_tables([sql], TABLES, functions=["wipe_users"]) is None


def test_foreign_keys_carry_a_write_to_the_tables_that_refer() -> None:
    referrers = {"t0": {"t7", "t14"}, "t7": {"t21"}}
    assert with_dependents({"t0"}, referrers) == {"t0", "t7", "t14", "t21"}
    assert with_dependents({"t14"}, referrers) == {"t14"}
    assert with_dependents({"t7"}, referrers, triggered=["t7"]) is None
