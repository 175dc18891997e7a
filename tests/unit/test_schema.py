"""Schema snapshots: what is and is not a difference, and how it reads."""

from __future__ import annotations

from pytest_migrations.schema import ObjectState, SchemaSnapshot
from pytest_migrations.urls import database_identity, mask, mask_passwords


def table(name: str, **facts: str) -> ObjectState:
    return ObjectState("table", name, frozenset((k.replace("_", " "), v) for k, v in facts.items()))


def snap(*objects: ObjectState) -> SchemaSnapshot:
    return SchemaSnapshot({(o.kind, o.name): o for o in objects}, "sqlite")


class TestDiff:
    def test_fact_order_is_no_difference(self) -> None:
        a = table("users", column_id="INTEGER NOT NULL", column_name="TEXT NULL")
        b = ObjectState("table", "users", frozenset(reversed(sorted(a.facts))))
        assert snap(a) == snap(b)

    def test_left_over_column_is_reported_with_both_labels(self) -> None:
        before = snap(table("users", column_id="INTEGER NOT NULL"))
        after = snap(table("users", column_id="INTEGER NOT NULL", column_nick="TEXT NULL"))
        lines = before.diff(after).render_lines("before", "after")
        assert lines == ['+ table "users": column nick TEXT NULL: present after, absent before']

    def test_changed_and_missing_objects(self) -> None:
        before = snap(table("users", column_id="INTEGER NOT NULL"), table("posts", column_id="INTEGER NOT NULL"))
        after = snap(table("users", column_id="BIGINT NOT NULL"))
        assert before.diff(after).render_lines("before", "after") == [
            '- table "posts": missing after (it exists before)',
            '~ table "users": column id: INTEGER NOT NULL before, but BIGINT NOT NULL after',
        ]


class TestUrls:
    def test_passwords_are_masked(self) -> None:
        assert mask("postgresql://u:secret@h/db") == "postgresql://u:***@h/db"
        assert "secret" not in mask_passwords("failed for mysql+pymysql://root:secret@127.0.0.1:3306/x")

    def test_identity_ignores_driver_and_credentials(self) -> None:
        from sqlalchemy import make_url

        a = database_identity(make_url("postgresql+psycopg2://a:b@Host:5432/db"))
        b = database_identity(make_url("postgresql+asyncpg://c@host:5432/db"))
        assert a == b
