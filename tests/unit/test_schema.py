"""Schema snapshots: what is and is not a difference, and how it reads."""

from __future__ import annotations

import pytest

from pytest_migrations.advice import suggest_downgrade
from pytest_migrations.pg_catalog import _pg_column, _pg_constraint, _pg_function_definition
from pytest_migrations.policy import accept_entry, matches
from pytest_migrations.schema import (
    Difference,
    ObjectState,
    SchemaDiff,
    SchemaSnapshot,
    _mysql_generated_index,
    _normalise_default,
    _sqlite_index_detail,
    _state,
)
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

    def test_fact_keyed_alike_twice_is_counted(self) -> None:
        """A unique constraint re-added next to one never dropped is a second fact, not the same one."""
        once = _state("table", "users", [("unique constraint (email)", "(email)", "named users_email_key")])
        twice = _state(
            "table",
            "users",
            [
                ("unique constraint (email)", "(email)", "named users_email_key"),
                ("unique constraint (email)", "(email)", "named users_email_key1"),
            ],
        )
        lines = snap(once).diff(snap(twice)).render_lines("before", "after")
        assert lines == [
            '+ table "users": unique constraint (email) #2: present after, absent before (named users_email_key1)'
        ]

    def test_notes_are_shown_but_not_compared(self) -> None:
        """The name the database gave a constraint keyed by its definition is shown, and never a difference."""
        a = _state("table", "zones", [("primary key (id)", "(id)", "named regions_pkey")])
        b = _state("table", "zones", [("primary key (id)", "(id)", "named zones_pkey")])
        assert snap(a) == snap(b)
        lines = snap(a).diff(snap(_state("table", "zones", []))).render_lines("before", "after")
        assert lines == ['- table "zones": primary key (id): missing after (it exists before; named regions_pkey)']

    def test_changed_body_is_a_unified_diff_and_short_facts_stay_one_line(self) -> None:
        """A function body that changed shows its changed lines; a column that changed stays one line."""
        body = Difference("function", "touch()", "definition", "BEGIN\na;\nb;\nc;\nEND", "BEGIN\na;\nB;\nc;\nEND")
        assert body.render("before", "after").splitlines() == [
            '~ function "touch()": definition differs (- before, + after):',
            "     a;",
            "    -b;",
            "    +B;",
            "     c;",
        ]
        column = Difference("table", "users", "column id", "INTEGER NOT NULL", "BIGINT NOT NULL")
        assert "\n" not in column.render("before", "after")


class TestSpellings:
    @pytest.mark.parametrize(
        ("one", "other"),
        [
            ("false", "'0'"),
            ("0", "'0'"),
            ("true", "1"),
            ("'1'", "TRUE"),
            ("'-1'", "-1"),
            ("'2.5'", "(2.5)"),
            ("(CURRENT_TIMESTAMP)", "current_timestamp"),
        ],
    )
    def test_sqlite_defaults_storing_the_same_value_are_equal(self, one: str, other: str) -> None:
        """SQLite stores these defaults the same, so they are the same default."""
        assert _normalise_default(one, "sqlite") == _normalise_default(other, "sqlite")

    @pytest.mark.parametrize(("one", "other"), [("'0'", "'1'"), ("'abc'", "abc"), ("0", "0.0"), ("'-1'", "'1'")])
    def test_sqlite_defaults_storing_other_values_differ(self, one: str, other: str) -> None:
        """Defaults that store another value (or another type) stay a difference."""
        assert _normalise_default(one, "sqlite") != _normalise_default(other, "sqlite")

    def test_plpgsql_bodies_differing_in_whitespace_are_equal(self) -> None:
        """Indentation, blank lines and line breaks in a PL/pgSQL body are no difference; words are."""
        header = "CREATE OR REPLACE FUNCTION public.touch()\n RETURNS trigger\n LANGUAGE plpgsql\n"
        one = (
            header
            + "AS $function$\n    BEGIN\n        NEW.at = now();\n\n        RETURN NEW;\n    END\n    $function$\n"
        )
        other = header + "AS $function$BEGIN\n  NEW.at   = now();  RETURN NEW;\nEND $function$\n"
        assert _pg_function_definition(one, "plpgsql") == _pg_function_definition(other, "plpgsql")
        assert _pg_function_definition(one, "plpgsql").splitlines()[-4:] == [
            "NEW.at = now();",
            "RETURN NEW;",
            "END",
            "$function$",
        ]
        assert _pg_function_definition(one, "plpgsql") != _pg_function_definition(
            one.replace("RETURN NEW", "RETURN NULL"), "plpgsql"
        )

    def test_whitespace_in_literals_and_after_comments_counts(self) -> None:
        """Spaces inside a string literal, and a line break ending a comment, change what a body does."""
        header = "CREATE FUNCTION f()\n LANGUAGE plpgsql\n"
        literal = header + "AS $$BEGIN RAISE NOTICE 'a  b'; END$$"
        assert _pg_function_definition(literal, "plpgsql") != _pg_function_definition(
            literal.replace("'a  b'", "'a b'"), "plpgsql"
        )
        comment = header + "AS $$BEGIN -- note\nRETURN; END$$"
        assert _pg_function_definition(comment, "plpgsql") != _pg_function_definition(
            comment.replace("note\n", "note "), "plpgsql"
        )

    def test_python_bodies_keep_their_indentation(self) -> None:
        """In PL/Python indentation is meaning: only blank lines and the common indent go."""
        header = "CREATE FUNCTION f(x integer)\n LANGUAGE plpython3u\n"
        one = header + "AS $function$\n    if x:\n        return 1\n\n    return 2\n$function$"
        dedented = header + "AS $function$\nif x:\n    return 1\nreturn 2\n$function$"
        nested = header + "AS $function$\nif x:\n    return 1\n    return 2\n$function$"
        assert _pg_function_definition(one, "plpython3u") == _pg_function_definition(dedented, "plpython3u")
        assert _pg_function_definition(one, "plpython3u") != _pg_function_definition(nested, "plpython3u")


class TestGeneratedNames:
    def test_postgresql_generated_constraint_name_is_keyed_by_definition(self) -> None:
        """``regions_pkey`` and ``zones_pkey`` on the same columns are the same primary key."""
        assert (
            _pg_constraint("regions_pkey", "p", "PRIMARY KEY (id)")[:2]
            == _pg_constraint("zones_pkey", "p", "PRIMARY KEY (id)")[:2]
        )
        assert _pg_constraint("zones_name_key1", "u", "UNIQUE (name)")[:2] == ("unique constraint (name)", "(name)")
        assert _pg_constraint("uq_zones_name", "u", "UNIQUE (name)")[:2] == (
            "unique constraint uq_zones_name",
            "UNIQUE (name)",
        )

    def test_postgresql_owned_sequence_name_is_no_part_of_the_column(self) -> None:
        """A serial column's sequence name (after the table it was made with) is no difference; another sequence is."""
        a = _pg_column(
            "integer", True, "nextval('regions_id_seq'::regclass)", "", "", None, owned_sequence="regions_id_seq"
        )
        b = _pg_column(
            "integer", True, "nextval('zones_id_seq'::regclass)", "", "", None, owned_sequence="zones_id_seq"
        )
        assert a == b == "integer NOT NULL DEFAULT nextval(<owned sequence>)"
        shared = _pg_column("integer", True, "nextval('shared_seq'::regclass)", "", "", None)
        assert shared == "integer NOT NULL DEFAULT nextval('shared_seq'::regclass)"

    @pytest.mark.parametrize(
        ("name", "generated"),
        [
            ("team_id", True),
            ("team_id_2", True),
            ("fk_players_team", True),
            ("players_ibfk_1", True),
            ("ix_team", False),
        ],
    )
    def test_mysql_index_names_made_by_the_database(self, name: str, generated: bool) -> None:
        """Names MySQL gives unnamed and foreign-key indexes are no part of the index; names a migration gave are."""
        assert _mysql_generated_index(name, "team_id", ["fk_players_team"], "players", unique=False) is generated

    @pytest.mark.parametrize(("name", "unique", "generated"), [("team", False, True), ("team", True, False)])
    def test_mysql_index_of_an_unnamed_foreign_key_is_the_servers_whatever_its_name(
        self, name: str, unique: bool, generated: bool
    ) -> None:
        """After a column rename (team -> team_id) the index MySQL made keeps the old column's name: an index that
        backs only unnamed foreign keys is the server's; a unique one never is (MySQL makes plain indexes)."""
        assert _mysql_generated_index(name, "team_id", ["players_ibfk_1"], "players", unique=unique) is generated

    def test_sqlite_expression_index_detail_has_the_form_of_a_reflected_one(self) -> None:
        """An expression index read from SQLite's stored SQL reads like a reflected one, predicate included."""
        sql = 'CREATE UNIQUE INDEX "ix_lower_email" ON "users" (lower(email)) WHERE (active = 1)'
        assert _sqlite_index_detail(sql) == "UNIQUE (lower(email)) sqlite_where=(active = 1)"
        assert _sqlite_index_detail("CREATE INDEX ix ON users (lower(email))") == "(lower(email))"


class TestUrls:
    def test_passwords_are_masked(self) -> None:
        assert mask("postgresql://u:secret@h/db") == "postgresql://u:***@h/db"
        assert "secret" not in mask_passwords("failed for mysql+pymysql://root:secret@127.0.0.1:3306/x")

    def test_identity_ignores_driver_and_credentials(self) -> None:
        from sqlalchemy import make_url

        a = database_identity(make_url("postgresql+psycopg2://a:b@Host:5432/db"))
        b = database_identity(make_url("postgresql+asyncpg://c@host:5432/db"))
        assert a == b


def test_the_accept_entry_of_a_difference_accepts_it_though_its_text_holds_wildcard_characters() -> None:
    """``[...]`` in a check constraint's text is a character class to fnmatch: the entry a failure proposes
    still accepts exactly that difference, and not its neighbour."""
    fact = "check constraint (tags = ANY (ARRAY['a'::text]))"
    left = Difference("table", "posts", fact, None, fact.removeprefix("check constraint "))
    other = Difference("table", "posts", "column legacy", None, "integer")
    assert accept_entry(left) == f"table posts: {fact}"
    assert matches(accept_entry(left), left)
    assert not matches(accept_entry(left), other)
    assert matches("table posts", other)  # the whole table: what the failure no longer proposes


def test_the_suggested_downgrade_drops_what_tables_use_after_the_tables() -> None:
    """A downgrade that left pg_trgm, an enum and a gin index behind: pasted in the order shown, the drops
    must run (DROP EXTENSION before the index that uses it fails with DependentObjectsStillExist)."""
    diff = SchemaDiff(
        (
            Difference("enum", "mood", None, None, "happy, sad"),
            Difference("extension", "pg_trgm", None, None, "1.6"),
            Difference("schema", "audit", None, None, "schema"),
            Difference("table", "recipes", "index ix_gin", None, "USING gin (name gin_trgm_ops)"),
            Difference("view", "recent", None, None, "view"),
        )
    )
    assert [line.strip() for line in suggest_downgrade(diff)] == [
        'op.execute("DROP VIEW recent")',
        'op.drop_index("ix_gin", table_name="recipes")',
        'op.execute("DROP TYPE mood")',
        'op.execute("DROP EXTENSION pg_trgm")',
        'op.execute("DROP SCHEMA audit")',
    ]


@pytest.mark.parametrize(
    ("dialect", "lines"),
    [
        ("postgresql", ['op.drop_constraint("uq_email", "users", type_="unique")']),
        (
            "sqlite",
            [
                'with op.batch_alter_table("users") as batch_op:',
                'batch_op.drop_constraint("uq_email", type_="unique")',
            ],
        ),
    ],
)
def test_a_constraint_left_behind_is_dropped_in_batch_mode_on_sqlite(dialect: str, lines: list[str]) -> None:
    """SQLite has no ALTER for constraints: op.drop_constraint raises there, batch mode does not."""
    diff = SchemaDiff((Difference("table", "users", "unique constraint uq_email", None, "(email)"),))
    assert [line.strip() for line in suggest_downgrade(diff, dialect=dialect)] == lines
