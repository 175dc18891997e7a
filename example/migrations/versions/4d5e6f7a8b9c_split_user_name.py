"""split users.name into first_name and last_name (a data migration)

Revision ID: 4d5e6f7a8b9c
Revises: 3c4d5e6f7a8b
Create Date: 2026-11-04 10:00:00
"""
from alembic import op
import sqlalchemy as sa

revision = "4d5e6f7a8b9c"
down_revision = "3c4d5e6f7a8b"
branch_labels = None
depends_on = None

users = sa.table(
    "users",
    sa.column("id", sa.Integer),
    sa.column("name", sa.String),
    sa.column("first_name", sa.String),
    sa.column("last_name", sa.String),
)


def upgrade() -> None:
    with op.batch_alter_table("users") as batch:
        batch.add_column(sa.Column("first_name", sa.String(60), nullable=False, server_default=""))
        batch.add_column(sa.Column("last_name", sa.String(60), nullable=False, server_default=""))
    conn = op.get_bind()
    for row in conn.execute(sa.select(users.c.id, users.c.name)).all():
        first, _, last = row.name.partition(" ")
        conn.execute(users.update().where(users.c.id == row.id).values(first_name=first, last_name=last))
    with op.batch_alter_table("users") as batch:
        batch.drop_column("name")
        batch.alter_column("first_name", server_default=None)
        batch.alter_column("last_name", server_default=None)


def downgrade() -> None:
    with op.batch_alter_table("users") as batch:
        batch.add_column(sa.Column("name", sa.String(120), nullable=False, server_default=""))
    conn = op.get_bind()
    for row in conn.execute(sa.select(users.c.id, users.c.first_name, users.c.last_name)).all():
        name = f"{row.first_name} {row.last_name}".strip()
        conn.execute(users.update().where(users.c.id == row.id).values(name=name))
    with op.batch_alter_table("users") as batch:
        batch.alter_column("name", server_default=None)
        batch.drop_column("first_name")
        batch.drop_column("last_name")
