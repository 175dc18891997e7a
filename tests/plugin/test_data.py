"""With --migrations-data the stairway runs every revision on tables with generated rows, and checks the rows."""

from __future__ import annotations

import textwrap

import pytest

from pytest_migrations import changes

from ..helpers import Project, users_table

KINDS_UP = """
op.create_table(
    "accounts",
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("email", sa.String(40), nullable=False, unique=True),
    sa.Column("nick", sa.String(8)),
    sa.Column("balance", sa.Numeric(8, 2), nullable=False),
    sa.Column("score", sa.Float),
    sa.Column("active", sa.Boolean, nullable=False),
    sa.Column("born", sa.Date),
    sa.Column("seen", sa.DateTime),
    sa.Column("tier", sa.Enum("free", "pro", name="tier"), nullable=False),
    sa.Column("prefs", sa.JSON),
    sa.Column("parent_id", sa.Integer, sa.ForeignKey("accounts.id")),
    sa.CheckConstraint("balance >= 0", name="ck_balance"),
)
op.create_table(
    "memberships",
    sa.Column("account_id", sa.Integer, sa.ForeignKey("accounts.id"), primary_key=True),
    sa.Column("team", sa.String(20), primary_key=True),
    sa.Column("since", sa.DateTime, nullable=False),
)
"""
KINDS_DOWN = """
op.drop_table("memberships")
op.drop_table("accounts")
sa.Enum(name="tier").drop(op.get_bind(), checkfirst=True)
"""
NICKNAME_UP = """
with op.batch_alter_table("accounts") as b:
    b.add_column(sa.Column("nickname", sa.String(8)))
op.execute("UPDATE accounts SET nickname = nick")
with op.batch_alter_table("accounts") as b:
    b.drop_column("nick")
"""
NICKNAME_DOWN = """
with op.batch_alter_table("accounts") as b:
    b.add_column(sa.Column("nick", sa.String(8)))
op.execute("UPDATE accounts SET nick = nickname")
with op.batch_alter_table("accounts") as b:
    b.drop_column("nickname")
"""
ADD_PLAN = """
with op.batch_alter_table("users", recreate="always") as b:
    b.add_column(sa.Column("plan", sa.String(10), nullable=False))
"""
DROP_PLAN = 'with op.batch_alter_table("users") as b:\n    b.drop_column("plan")'
PEOPLE = """
op.create_table("people", sa.Column("id", sa.Integer, primary_key=True), sa.Column("bio", sa.Text))
"""
SPLIT_UP = """
op.create_table("bios", sa.Column("person_id", sa.Integer, primary_key=True), sa.Column("bio", sa.Text))
op.execute("INSERT INTO bios (person_id, bio) SELECT id, bio FROM people")
with op.batch_alter_table("people") as b:
    b.drop_column("bio")
"""
SPLIT_DOWN_LOSING_VALUES = """
with op.batch_alter_table("people") as b:
    b.add_column(sa.Column("bio", sa.Text))
op.drop_table("bios")
"""
RECREATE_DOWN = """
op.drop_table("users")
op.create_table("users", sa.Column("id", sa.Integer(), primary_key=True), sa.Column("name", sa.String(50), nullable=False))
"""


def kinds_history(project: Project) -> None:
    """A correct history: every column kind, a self-reference, a composite key, a CHECK, a data migration."""
    project.revision(**users_table("a1"))
    project.revision("b2", "a1", KINDS_UP, KINDS_DOWN)
    project.revision("c3", "b2", NICKNAME_UP, NICKNAME_DOWN)
    project.revision(
        "d4", "c3", 'op.create_index("ix_since", "memberships", ["since"])', 'op.drop_index("ix_since", "memberships")'
    )


def test_a_correct_history_passes_on_rows(project: Project) -> None:
    """Every column kind gets rows, a column renamed by a copy keeps its values both ways: all items pass."""
    kinds_history(project)
    result = project.run("--migrations-data")
    result.assert_outcomes(passed=8, skipped=1)  # drift: no models


def test_the_same_history_passes_without_data(project: Project) -> None:
    """Without --migrations-data nothing changes: the same items pass on empty tables."""
    kinds_history(project)
    result = project.run()
    result.assert_outcomes(passed=8, skipped=1)  # drift: no models


def test_not_null_column_without_default_fails_on_rows_with_the_fix(project: Project) -> None:
    """A NOT NULL column added without server_default fails on rows, naming column, table, the fix and the rows."""
    project.revision(**users_table("a1"))
    project.revision("b2", "a1", ADD_PLAN, DROP_PLAN)
    result = project.run("--migrations-checks", "stairway", "--migrations-data")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(
        [
            "upgrade of revision b2 * raised IntegrityError: *NOT NULL constraint failed: _alembic_tmp_users.plan",
            "*b2_rev.py makes column `plan` of `users` NOT NULL while the table has rows*add a server_default, "
            "or add it nullable, backfill*then set NOT NULL",
            "*rows (--migrations-data):",
            "*table \"users\": 5 row(s), generated for this revision (seed 'b2/users')",
        ]
    )


def test_not_null_column_without_default_passes_on_empty_tables(project: Project) -> None:
    """The same revision passes without --migrations-data: on empty tables the defect cannot show."""
    project.revision(**users_table("a1"))
    project.revision("b2", "a1", ADD_PLAN, DROP_PLAN)
    result = project.run("--migrations-checks", "stairway")
    result.assert_outcomes(passed=2)


def test_a_downgrade_that_re_creates_a_table_loses_its_rows(project: Project) -> None:
    """A downgrade that drops and re-creates a table fails, listing the rows it lost."""
    project.revision(**users_table("a1"))
    project.revision("b2", "a1", 'op.create_index("ix_name", "users", ["name"])', RECREATE_DOWN)
    result = project.run("--migrations-checks", "stairway", "--migrations-data")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(
        [
            "downgrade of revision b2 * does not give back the rows that were there before the upgrade: "
            'table "users" (5 lost)',
            "*rows:",
            '*table "users" (id, name):',
            "*- (1, 'xxxxx*)  lost: before the upgrade, missing after the downgrade",
            '*lossy_downgrade = "<why>" at module level in b2_rev.py',
        ]
    )


def test_a_downgrade_that_restores_a_column_but_not_its_values(project: Project) -> None:
    """A column moved to another table and restored empty by the downgrade fails, showing the changed values."""
    project.revision("a1", None, PEOPLE, 'op.drop_table("people")')
    project.revision("b2", "a1", SPLIT_UP, SPLIT_DOWN_LOSING_VALUES)
    result = project.run("--migrations-checks", "stairway", "--migrations-data")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(
        [
            'downgrade of revision b2 * does not give back the rows *: table "people" (4 changed)',
            "*~ (1, 'xxxxx*)  changed: bio: 'xxxxx* before the upgrade, None after the downgrade",
            "*~ (3, 'Zoë ☃ 北京 — ñ')  changed: bio: 'Zoë ☃ 北京 — ñ' before the upgrade, None after the downgrade",
        ]
    )


def test_a_declared_lossy_downgrade_passes_with_its_reason(project: Project) -> None:
    """lossy_downgrade = "why" in the file: the rows are not compared, the item passes and the reason is shown."""
    project.revision("a1", None, PEOPLE, 'op.drop_table("people")')
    project.revision(
        "b2", "a1", SPLIT_UP, SPLIT_DOWN_LOSING_VALUES, extra='lossy_downgrade = "bios live in their own table now"'
    )
    result = project.run("--migrations-checks", "stairway", "--migrations-data")
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(
        [
            "*accepted differences and untested downgrades*",
            "b2 downgrade: rows not compared: *bios live in their own table now",
        ]
    )


def test_migrations_data_in_the_ini_and_bad_row_counts(project: Project) -> None:
    """migrations_data = true turns it on; migrations_data_rows must be a whole number of at least 1."""
    project.revision(**users_table("a1"))
    project.revision("b2", "a1", ADD_PLAN, DROP_PLAN)
    project.pytester.makeini("[pytest]\nmigrations_data = true\nmigrations_data_rows = 2\n")
    result = project.run("--migrations-checks", "stairway")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(['*table "users": 2 row(s), generated*'])
    bad = project.run("--migrations-data-rows", "0")
    bad.stderr.fnmatch_lines(["*migrations_data_rows must be a whole number of at least 1, not '0'*"])


def test_migration_runner_seed_fills_tables_for_a_data_migration_test(project: Project) -> None:
    """runner.seed() gives the tables of the current revision generated rows (parents too), the same each time."""
    project.revision(
        "a1",
        None,
        'op.create_table("teams", sa.Column("id", sa.Integer, primary_key=True), sa.Column("name", sa.String(20), nullable=False))\n'
        'op.create_table("users", sa.Column("id", sa.Integer, primary_key=True),'
        ' sa.Column("team_id", sa.Integer, sa.ForeignKey("teams.id"), nullable=False),'
        ' sa.Column("email", sa.String(40), unique=True))\n'
        'op.create_table("audit", sa.Column("id", sa.Integer, primary_key=True))',
        'op.drop_table("audit")\nop.drop_table("users")\nop.drop_table("teams")',
    )
    project.pytester.makepyfile(
        test_seed="""
        def test_seed(migration_runner):
            migration_runner.upgrade("heads")
            assert migration_runner.seed(["users"]) == {"teams": 5, "users": 5}
            assert migration_runner.execute("SELECT count(*) FROM audit") == [(0,)]
            orphans = migration_runner.execute(
                "SELECT count(*) FROM users WHERE team_id NOT IN (SELECT id FROM teams)"
            )
            assert orphans == [(0,)]
            first = migration_runner.execute("SELECT * FROM users ORDER BY id")
            assert migration_runner.seed() == {"audit": 5}  # tables with rows are left alone
            assert migration_runner.execute("SELECT * FROM users ORDER BY id") == first

        def test_same_rows_again(migration_runner):
            migration_runner.upgrade("heads")
            migration_runner.seed(["users"])
            assert len(migration_runner.execute("SELECT * FROM users")) == 5
        """
    )
    result = project.run("--migrations-checks", "graph")
    result.assert_outcomes(passed=3)


def test_migration_runner_seed_names_a_missing_table(project: Project) -> None:
    """seed(["nope"]) says which tables exist at the current revision."""
    project.revision(**users_table("a1"))
    project.pytester.makepyfile(
        test_seed="""
        import pytest
        from pytest_migrations import ConfigurationError

        def test_seed(migration_runner):
            migration_runner.upgrade("heads")
            with pytest.raises(ConfigurationError, match="no table nope at the current revision; tables: users"):
                migration_runner.seed(["nope"])
        """
    )
    project.run("--migrations-checks", "graph").assert_outcomes(passed=2)


def test_rows_of_your_own_come_from_a_hook(project: Project) -> None:
    """pytest_migrations_seed_data gives the rows a data migration expects; the others are generated."""
    project.revision(
        "a1",
        None,
        'op.create_table("users", sa.Column("id", sa.Integer, primary_key=True), sa.Column("name", sa.String(50)))',
        'op.drop_table("users")',
    )
    project.revision(
        "b2",
        "a1",
        'op.add_column("users", sa.Column("first", sa.String(50)))\n'
        "op.execute(\"UPDATE users SET first = substr(name, 1, instr(name, ' ') - 1)\")\n"
        'assert op.get_bind().exec_driver_sql("SELECT first FROM users").scalar() == "Ada"',
        'with op.batch_alter_table("users") as b:\n    b.drop_column("first")',
    )
    project.pytester.makeconftest(
        """
        def pytest_migrations_seed_data(revision, tables):
            if revision == "b2":
                assert "users" in tables
                return {"users": [{"id": 1, "name": "Ada Lovelace"}]}
        """
    )
    result = project.run("--migrations-checks", "stairway", "--migrations-data")
    result.assert_outcomes(passed=2)


def test_rows_of_your_own_for_a_table_that_is_not_there_are_named(project: Project) -> None:
    """A hook returning rows for a table the revision's parent lacks fails naming the tables that exist."""
    project.revision(**users_table("a1"))
    project.pytester.makeconftest("def pytest_migrations_seed_data(revision, tables):\n    return {'nope': [{}]}\n")
    result = project.run("--migrations-checks", "stairway", "--migrations-data")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*pytest_migrations_seed_data gave rows for nope, which the database does not have*"])


UNIQUE_NAME_UP = 'with op.batch_alter_table("users") as b:\n    b.create_unique_constraint("uq_users_name", ["name"])'
UNIQUE_NAME_DOWN = 'with op.batch_alter_table("users") as b:\n    b.drop_constraint("uq_users_name", type_="unique")'
NARROW_UP = 'op.alter_column("users", "name", type_=sa.String(5), existing_type=sa.String(50), existing_nullable=False)'
NARROW_DOWN = (
    'op.alter_column("users", "name", type_=sa.String(50), existing_type=sa.String(5), existing_nullable=False)'
)
BATCH_NARROW_UP = 'with op.batch_alter_table("users") as b:\n    b.alter_column("name", type_=sa.String(5))'
BATCH_NARROW_DOWN = 'with op.batch_alter_table("users") as b:\n    b.alter_column("name", type_=sa.String(50))'
SPLIT_NAMES = """
op.add_column("people", sa.Column("first", sa.Text))
conn = op.get_bind()
for id_, bio in conn.execute(sa.text("SELECT id, bio FROM people")).all():
    first, _rest = bio.split(" ", 1)
    conn.execute(sa.text("UPDATE people SET first = :f WHERE id = :i"), {"f": first, "i": id_})
"""
DROP_FIRST = 'with op.batch_alter_table("people") as b:\n    b.drop_column("first")'


def test_a_unique_constraint_over_repeated_values_fails_showing_the_rows(project: Project) -> None:
    """Generated rows repeat values in columns that are not unique: adding the constraint fails, rows shown."""
    project.revision(**users_table("a1"))
    project.revision("b2", "a1", UNIQUE_NAME_UP, UNIQUE_NAME_DOWN)
    result = project.run("--migrations-checks", "stairway", "--migrations-data")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(
        [
            "upgrade of revision b2 * raised IntegrityError: *UNIQUE constraint failed: _alembic_tmp_users.name",
            "*b2_rev.py requires `name` of `users` to be unique while the table's rows repeat values in it*",
            '*table "users" (id, name):',
            "*(3, 'Zoë ☃ 北京 — ñ')",
            "*(4, 'Zoë ☃ 北京 — ñ')",
        ]
    )
    project.run("--migrations-checks", "stairway").assert_outcomes(passed=2)  # on empty tables it passes


def test_narrowing_a_column_passes_on_sqlite_which_keeps_long_values(project: Project) -> None:
    """SQLite does not enforce VARCHAR lengths: the narrowing that fails on servers (see test_data_servers) passes."""
    project.revision(**users_table("a1"))
    project.revision("b2", "a1", BATCH_NARROW_UP, BATCH_NARROW_DOWN)
    project.run("--migrations-checks", "stairway", "--migrations-data").assert_outcomes(passed=2)


def test_a_data_migration_that_assumes_every_value_has_a_space_fails_on_the_edge_values(project: Project) -> None:
    """NULL and a value without a space break a split() that real data may never have met: the rows are shown."""
    project.revision("a1", None, PEOPLE, 'op.drop_table("people")')
    project.revision("b2", "a1", SPLIT_NAMES, DROP_FIRST)
    result = project.run("--migrations-checks", "stairway", "--migrations-data")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(
        [
            "upgrade of revision b2 * raised ValueError: not enough values to unpack (expected 2, got 1)",
            "*b2_rev.py:* in upgrade",
            "*rows (--migrations-data):",
            '*table "people" (id, bio):',
            "*(2, None)",
            "*Edge values (NULL, '', the longest string*) are generated on purpose*",
        ]
    )


def _verdicts(result: object) -> tuple[dict[str, int], list[str]]:
    """The outcomes and every line of the row reports of a run."""
    lines = [
        line for line in result.outlines if line.startswith(("downgrade of", "re-upgrade of", "    table ", "      "))
    ]  # type: ignore[attr-defined]
    outcomes = result.parseoutcomes()  # type: ignore[attr-defined]
    return {k: outcomes.get(k, 0) for k in ("passed", "failed", "skipped")}, lines


def test_rows_read_only_where_a_step_wrote_give_the_verdicts_of_reading_everything(
    project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Reading back only the tables a step's statements wrote gives the same verdicts and row diffs as reading all."""
    project.revision("a1", None, PEOPLE, 'op.drop_table("people")')
    project.revision("b2", "a1", KINDS_UP, KINDS_DOWN)
    project.revision("c3", "b2", NICKNAME_UP, NICKNAME_DOWN)
    project.revision("d4", "c3", SPLIT_UP, SPLIT_DOWN_LOSING_VALUES)
    project.revision(
        "e5",
        "d4",
        'op.create_index("ix_since", "memberships", ["since"])',
        'op.execute("DELETE FROM memberships WHERE team <> \'\'")\nop.drop_index("ix_since", "memberships")',
    )
    project.revision("f6", "e5", "op.execute(\"UPDATE accounts SET nickname = 'same'\")", "pass")
    incremental = _verdicts(project.run("--migrations-checks", "stairway", "--migrations-data"))
    monkeypatch.setattr(changes, "written_tables", lambda *args, **kwargs: None)  # every step: read every table
    full = _verdicts(project.run("--migrations-checks", "stairway", "--migrations-data"))
    assert incremental == full
    assert incremental[0] == {"passed": 3, "failed": 3, "skipped": 0}
    assert (
        'downgrade of revision e5 "revision e5" (e5_rev.py) does not give back the rows that were there before the upgrade: table "memberships" (4 lost)'
        in incremental[1]
    )


FIRST_NAME_UP = """
op.add_column("users", sa.Column("first", sa.String(50)))
op.execute("UPDATE users SET first = substr(name, 1, instr(name, ' ') - 1) WHERE instr(name, ' ') > 0")
first = op.get_bind().exec_driver_sql("SELECT first FROM users WHERE id = 100001").scalar()
assert first == "Ada", first
"""
NEEDS_GRACE = (
    'assert op.get_bind().exec_driver_sql("SELECT name FROM users WHERE id = 100002").scalar() == "Grace Hopper"'
)


def test_pytest_alembic_revision_data_from_the_ini(project: Project) -> None:
    """migrations_revision_data names pytest-alembic's before/at_revision_data: rows go in before and at a revision."""
    project.revision(
        "a1",
        None,
        'op.create_table("users", sa.Column("id", sa.Integer, primary_key=True), sa.Column("name", sa.String(50)))',
        'op.drop_table("users")',
    )
    project.revision("b2", "a1", FIRST_NAME_UP, DROP_FIRST.replace("people", "users"))
    project.revision("c3", "b2", NEEDS_GRACE, "pass")
    project.pytester.makepyfile(
        migration_data="""
        alembic_config = {
            "before_revision_data": {"b2": {"__tablename__": "users", "id": 100001, "name": "Ada Lovelace"}},
            "at_revision_data": {"b2": [{"__tablename__": "users", "id": 100002, "name": "Grace Hopper"}]},
        }
        """
    )
    project.pytester.makeini("[pytest]\nmigrations_revision_data = migration_data:alembic_config\n")
    result = project.run("--migrations-checks", "stairway", "--migrations-data")
    result.assert_outcomes(passed=3)


def test_pytest_alembic_revision_data_without_a_table_name_is_named(project: Project) -> None:
    project.revision(**users_table("a1"))
    project.pytester.makepyfile(migration_data='before_revision_data = {"a1": {"id": 1}}\n')
    project.pytester.makeini("[pytest]\nmigrations_revision_data = migration_data\n")
    result = project.run("--migrations-checks", "stairway", "--migrations-data")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        ["*migrations_revision_data 'migration_data': a row for revision a1 has no __tablename__*"]
    )


def test_a_lossy_downgrade_declared_in_the_ini(project: Project) -> None:
    """migrations_lossy_downgrade = REV: why does what lossy_downgrade in the file does."""
    project.revision("a1", None, PEOPLE, 'op.drop_table("people")')
    project.revision("b2", "a1", SPLIT_UP, SPLIT_DOWN_LOSING_VALUES)
    project.pytester.makeini("[pytest]\nmigrations_lossy_downgrade =\n    b2: bios live in their own table now\n")
    result = project.run("--migrations-checks", "stairway", "--migrations-data")
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(
        ["b2 downgrade: rows not compared: *bios live in their own table now (migrations_lossy_downgrade)"]
    )


UUID_ITEMS_UP = """
op.create_table(
    "items",
    sa.Column("id", sa.Uuid, primary_key=True),  # CHAR(32) on SQLite: reflection sees only the string
    sa.Column("owner_id", sa.CHAR(36)),  # str(uuid4()) kept as text
    sa.Column("name", sa.String(50)),
)
"""
READ_IDS_BACK = """
items = sa.table("items", sa.column("id", sa.Uuid), sa.column("owner_id", sa.Uuid(as_uuid=False)), sa.column("slug"))
op.add_column("items", sa.Column("slug", sa.String(60)))
connection = op.get_bind()
for row in connection.execute(sa.select(items.c.id, items.c.owner_id)):  # raises on a string that is no UUID
    import uuid
    assert row.owner_id is None or uuid.UUID(row.owner_id)
    connection.execute(items.update().where(items.c.id == row.id).values(slug=row.id.hex[:8]))
"""


def test_uuids_kept_as_strings_get_uuids_and_a_data_migration_reading_them_passes(project: Project) -> None:
    """sa.Uuid is CHAR(32) on SQLite, a uuid4() string CHAR(36): the rows hold UUIDs there, not '' or unicode,
    so a correct data migration that reads the ids back through a UUID type passes on rows (Mealie)."""
    project.revision("a1", None, UUID_ITEMS_UP, 'op.drop_table("items")')
    project.revision("b2", "a1", READ_IDS_BACK, 'with op.batch_alter_table("items") as b:\n    b.drop_column("slug")')
    result = project.run("--migrations-checks", "stairway", "--migrations-data")
    result.assert_outcomes(passed=2)


def test_an_upgrade_failing_on_generated_rows_does_not_block_drift_or_downgrade_to_base(project: Project) -> None:
    """b2 fails on rows (NOT NULL without a default) but not on empty tables: its stairway item fails, c3's is
    blocked by it, and drift and downgrade_to_base, which run on empty tables, are still tested."""
    project.revision(**users_table("a1"))
    project.revision("b2", "a1", ADD_PLAN, DROP_PLAN)
    project.revision("c3", "b2", 'op.create_index("ix_plan", "users", ["plan"])', 'op.drop_index("ix_plan", "users")')
    project.models(
        "import sqlalchemy as sa\nmetadata = sa.MetaData()\n"
        'sa.Table("users", metadata, sa.Column("id", sa.Integer, primary_key=True),'
        ' sa.Column("name", sa.String(50), nullable=False), sa.Column("plan", sa.String(10), nullable=False),'
        ' sa.Index("ix_plan", "plan"))\n'
    )
    result = project.run("--migrations-data", "-v")
    result.assert_outcomes(passed=6, failed=1, skipped=1)
    result.stdout.fnmatch_lines(["*::stairway?b2? FAILED*"])
    result.stdout.fnmatch_lines(["*::downgrade_to_base PASSED*", "*::drift PASSED*"])
    result.stdout.fnmatch_lines(
        ["SKIPPED *c3_rev.py:1: blocked: the stairway of c3 is not tested: it needs revision b2*"]
    )


RUNS = 'op.create_table("runs", sa.Column("id", sa.Integer, primary_key=True), sa.Column("n", sa.Integer))'
SETTINGS_UP = """
import uuid
settings = op.create_table(
    "user_settings",
    sa.Column("id", sa.Uuid, primary_key=True),
    sa.Column("user_id", sa.Integer, sa.ForeignKey("users.id"), nullable=False),
    sa.Column("run", sa.Integer),
)
connection = op.get_bind()
op.execute("INSERT INTO runs (n) VALUES (1)")
run = {run}
users = [row.id for row in connection.execute(sa.text("SELECT id FROM users ORDER BY id"))]
op.bulk_insert(settings, [{{"id": {ident}, "user_id": user, "run": run}} for user in users])
"""


@pytest.mark.parametrize(
    ("ident", "run", "verdict"),
    [
        ("uuid.uuid4()", "1", "passes"),
        # Only some rows get a new UUID (Galaxy's dedup): the others keep theirs.
        ("uuid.uuid5(uuid.NAMESPACE_OID, str(user)) if user % 2 else uuid.uuid4()", "1", "passes"),
        ("uuid.uuid4()", 'connection.execute(sa.text("SELECT count(*) FROM runs")).scalar()', "fails"),
    ],
)
def test_keys_a_data_migration_makes_with_uuid4_are_not_compared_after_the_re_upgrade(
    project: Project, ident: str, run: str, verdict: str
) -> None:
    """The upgrade fills a new table with id=uuid.uuid4(), for every row or some: the re-upgrade's ids are new,
    which is no defect (listed in the summary; Mealie, Galaxy). With a value that really differs on the
    re-upgrade (a count that the downgrade did not reset), the item still fails."""
    project.revision(**users_table("a1"))
    project.revision("b2", "a1", RUNS, 'op.drop_table("runs")')
    project.revision("c3", "b2", SETTINGS_UP.format(ident=ident, run=run), 'op.drop_table("user_settings")')
    result = project.run("--migrations-checks", "stairway", "--migrations-data", "-rA")
    if verdict == "passes":
        result.assert_outcomes(passed=3)
        result.stdout.fnmatch_lines(["c3 re-upgrade: user_settings.id not compared: new random UUIDs in each run"])
        return
    result.assert_outcomes(passed=2, failed=1)
    result.stdout.fnmatch_lines(
        [
            're-upgrade of revision c3 * gives different rows from the first upgrade: table "user_settings" '
            "(5 lost, 5 new)",
            '*table "user_settings" (id, user_id, run):',
        ]
    )


def test_a_step_raising_after_reads_shows_the_rows_of_the_tables_it_read_and_claims_no_change(
    project: Project,
) -> None:
    """b2 reads users and raises in Python (Mealie's duplicate merge): the rows shown are those of the table
    its queries named, the six other seeded tables are one line, and the state says nothing changed (SQLite
    has no transactional DDL, but the step only read), not that production is left half-migrated."""
    tables = "\n".join(
        f'op.create_table("other{n}", sa.Column("id", sa.Integer, primary_key=True), sa.Column("x", sa.String(9)))'
        for n in range(6)
    )
    project.revision("a1", None, textwrap.dedent(users_table()["upgrade"]) + tables, 'op.drop_table("users")')
    project.revision(
        "b2", "a1", 'op.get_bind().execute(sa.text("SELECT id, name FROM users")).all()\nraise ValueError("dupes")'
    )
    result = project.run("--migrations-checks", "stairway", "--migrations-data", "-k", "b2")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "*sqlite has no transactional DDL, but the statements the database accepted change nothing (queries, "
            "connection settings): nothing b2 ran changed the database*",
            "*rows (--migrations-data):",
            '*table "users": 5 row(s), generated for this revision*',
            "*6 other table(s) the step did not name had rows too",
            '*table "users" (id, name):',
        ]
    )
    out = result.stdout.str()
    assert "half-migrated" not in out
    assert 'table "other0"' not in out


def test_rows_of_a_sqlite_table_copied_with_create_table_as_select_are_read_as_stored(project: Project) -> None:
    """SQLite declares a DATETIME column copied by CREATE TABLE ... AS SELECT as NUM and keeps its text (Galaxy's
    backup table): reading its rows as NUMERIC raised inside the plugin; they are read as stored, and pass."""
    project.revision(
        "a1",
        None,
        'op.create_table("dataset", sa.Column("id", sa.Integer, primary_key=True), sa.Column("made", sa.DateTime))',
        'op.drop_table("dataset")',
    )
    project.revision(
        "b2",
        "a1",
        'op.execute("CREATE TABLE dataset_backup AS SELECT * FROM dataset")',
        'op.drop_table("dataset_backup")',
    )
    project.revision(
        "c3", "b2", 'op.create_index("ix_made", "dataset", ["made"])', 'op.drop_index("ix_made", "dataset")'
    )
    result = project.run("--migrations-checks", "stairway", "--migrations-data")
    result.assert_outcomes(passed=3)
