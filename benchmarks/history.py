"""Generate a realistic, correct linear Alembic history of N revisions for benchmarks.

The mix repeats every seven revisions: create a table (with a foreign key to the
first table and an index), add a column, change its type, rename it, add a unique
and a check constraint, a data migration, and drop the renamed column (whose downgrade
re-adds it, last in column order). Every downgrade is correct, so every stairway item
must pass: a failure is a false positive of the plugin. It is correct on rows too
(``--migrations-data``): the constraints revision first makes names unique and non-empty,
the data migration uses ids of its own, and the two revisions whose downgrade cannot give
every value back declare ``lossy_downgrade``.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time
from pathlib import Path

from alembic import command
from alembic.config import Config

HEADER = '''"""{doc}"""
from alembic import op
import sqlalchemy as sa

revision = "{rev}"
down_revision = {down}
branch_labels = None
depends_on = None
{extra}


def upgrade():
{upgrade}


def downgrade():
{downgrade}
'''


def _rev_id(i: int) -> str:
    return f"{i:04d}bench{i:03d}"[-12:].rjust(12, "0")


def _bodies(i: int) -> tuple[str, ...]:
    """(doc, upgrade body, downgrade body[, module-level declarations]) of revision ``i``."""
    table = f"t{i - i % 7}"
    # Like most schemas, every table refers to one core table (think "users"), not to a chain.
    previous = "t0" if i >= 7 else None
    col = f"c{i - i % 7}"
    kind = i % 7
    if kind == 0:
        fk = f', sa.Column("parent_id", sa.Integer, sa.ForeignKey("{previous}.id"))' if previous else ""
        up = f"""
            op.create_table("{table}", sa.Column("id", sa.Integer, primary_key=True),
                            sa.Column("name", sa.String(50), nullable=False){fk})
            op.create_index("ix_{table}_name", "{table}", ["name"])
        """
        down = f"""
            op.drop_index("ix_{table}_name", table_name="{table}")
            op.drop_table("{table}")
        """
        return f"create {table}", up, down
    if kind == 1:
        up = f'op.add_column("{table}", sa.Column("{col}", sa.String(30)))'
        down = f'with op.batch_alter_table("{table}") as b:\n    b.drop_column("{col}")'
        return f"add {table}.{col}", up, down
    if kind == 2:
        up = f'with op.batch_alter_table("{table}") as b:\n    b.alter_column("{col}", type_=sa.String(60))'
        down = f'with op.batch_alter_table("{table}") as b:\n    b.alter_column("{col}", type_=sa.String(30))'
        return f"widen {table}.{col}", up, down
    if kind == 3:
        batch = f'with op.batch_alter_table("{table}") as b:\n    b.alter_column('
        up = batch + f'"{col}", new_column_name="{col}_r", existing_type=sa.String(60))'
        down = batch + f'"{col}_r", new_column_name="{col}", existing_type=sa.String(60))'
        return f"rename {table}.{col}", up, down
    if kind == 4:
        # Rows (--migrations-data) may hold repeated and empty names: make them unique and non-empty first.
        up = f"""
            mysql = op.get_bind().dialect.name == "mysql"
            suffix = "CONCAT(SUBSTR(name, 1, 40), '-', id)" if mysql else "SUBSTR(name, 1, 40) || '-' || id"
            op.execute(f"UPDATE {table} SET name = {{suffix}}")
            with op.batch_alter_table("{table}") as b:
                b.create_unique_constraint("uq_{table}_name", ["name"])
                b.create_check_constraint("ck_{table}_name", "length(name) > 0")
        """
        down = f"""
            with op.batch_alter_table("{table}") as b:
                b.drop_constraint("ck_{table}_name", type_="check")
                b.drop_constraint("uq_{table}_name", type_="unique")
        """
        return f"constraints on {table}", up, down, 'lossy_downgrade = "names stay as the upgrade made them unique"'
    if kind == 5:
        up = f"""
            rows = sa.table("{table}", sa.column("id", sa.Integer), sa.column("name", sa.String))
            op.bulk_insert(rows, [{{"id": n, "name": f"row {{n}}"}} for n in range(100001, 100021)])
            early = sa.and_(rows.c.id > 100000, rows.c.id <= 100010)
            op.execute(rows.update().where(early).values(name=rows.c.name + " (early)"))
        """
        down = f'op.execute("DELETE FROM {table} WHERE id > 100000")'
        return f"seed {table}", up, down
    up = f'with op.batch_alter_table("{table}") as b:\n    b.drop_column("{col}_r")'
    down = f'op.add_column("{table}", sa.Column("{col}_r", sa.String(60)))'
    return f"drop {table}.{col}_r", up, down, 'lossy_downgrade = "the dropped column\'s values are gone"'


def generate(root: Path, count: int) -> Path:
    """Write an Alembic project with ``count`` revisions under ``root``; return its alembic.ini."""
    root.mkdir(parents=True, exist_ok=True)
    ini = root / "alembic.ini"
    command.init(Config(str(ini)), str(root / "migrations"), template="generic")
    versions = root / "migrations" / "versions"
    for i in range(count):
        doc, up, down, *declarations = _bodies(i)
        down_rev = repr(_rev_id(i - 1)) if i else "None"
        (versions / f"{_rev_id(i)}.py").write_text(
            HEADER.format(
                doc=doc,
                rev=_rev_id(i),
                down=down_rev,
                upgrade=textwrap.indent(textwrap.dedent(up).strip(), "    "),
                downgrade=textwrap.indent(textwrap.dedent(down).strip(), "    "),
                extra="\n".join(declarations),
            )
        )
    return ini


def time_pytest_stairway(ini: Path, *args: str) -> float:
    """Wall time of ``pytest --migrations --migrations-checks stairway`` on the project; it must pass."""
    command = [sys.executable, "-m", "pytest", "--migrations", "--migrations-checks", "stairway", "-q"]
    command += ["-p", "no:cacheprovider", "-p", "no:randomly", *args]
    start = time.perf_counter()
    result = subprocess.run(command, cwd=ini.parent, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - start
    if result.returncode != 0:
        raise SystemExit(f"pytest stairway failed on a correct history (a false positive):\n{result.stdout[-3000:]}")
    return elapsed


def time_direct_steps(ini: Path, url: str) -> float:
    """The lower bound: every revision's upgrade, downgrade, upgrade on one connection, scripts loaded once."""
    import sqlalchemy as sa
    from alembic.operations import Operations
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory

    script = ScriptDirectory.from_config(Config(str(ini)))
    order = list(reversed(list(script.walk_revisions())))
    for rev in order:
        rev.module  # noqa: B018 - load every script before timing
    engine = sa.create_engine(url)
    start = time.perf_counter()
    with engine.begin() as conn, Operations.context(MigrationContext.configure(conn)):
        for rev in order:
            rev.module.upgrade()
            rev.module.downgrade()
            rev.module.upgrade()
    elapsed = time.perf_counter() - start
    engine.dispose()
    return elapsed
