"""Build small Alembic projects from alembic's own `init` templates, and run the plugin on them."""

from __future__ import annotations

import textwrap
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from alembic import command
from alembic.config import Config

REVISION = '''"""{doc}"""
from alembic import op
import sqlalchemy as sa

revision = {rev!r}
down_revision = {down!r}
branch_labels = {labels!r}
depends_on = {depends!r}
{extra}

def upgrade():
{upgrade}


def downgrade():
{downgrade}
'''


@dataclass
class Project:
    """An Alembic project in a pytester directory, made by ``alembic init -t <template>``."""

    pytester: pytest.Pytester
    template: str = "generic"
    root: Path = field(init=False)

    def __post_init__(self) -> None:
        self.root = self.pytester.path
        config = Config(file_=str(self.root / "alembic.ini"), toml_file=str(self.root / "pyproject.toml"))
        command.init(config, str(self.root / "migrations"), template=self.template)
        ini = self.root / "alembic.ini"
        if self.template == "multidb":
            text = ini.read_text().replace("databases = engine1, engine2", "databases = engine1, engine2")
            ini.write_text(text)

    @property
    def versions(self) -> Path:
        return self.root / "migrations" / "versions"

    @property
    def env(self) -> Path:
        return self.root / "migrations" / "env.py"

    def revision(
        self,
        rev: str,
        down: str | Sequence[str] | None = None,
        upgrade: str = "pass",
        downgrade: str = "pass",
        *,
        depends_on: str | Sequence[str] | None = None,
        branch_labels: str | Sequence[str] | None = None,
        extra: str = "",
        doc: str | None = None,
        filename: str | None = None,
    ) -> Path:
        down_value = tuple(down) if isinstance(down, list) else down
        text = REVISION.format(
            doc=doc or f"revision {rev}",
            rev=rev,
            down=down_value,
            labels=branch_labels,
            depends=depends_on,
            extra=textwrap.dedent(extra),
            upgrade=textwrap.indent(textwrap.dedent(upgrade).strip() or "pass", "    "),
            downgrade=textwrap.indent(textwrap.dedent(downgrade).strip() or "pass", "    "),
        )
        path = self.versions / (filename or f"{rev}_rev.py")
        path.write_text(text)
        return path

    def models(self, code: str) -> None:
        """Write models.py and make env.py's target_metadata its ``metadata``."""
        (self.root / "models.py").write_text(textwrap.dedent(code))
        text = self.env.read_text().replace("target_metadata = None", "from models import metadata as target_metadata")
        self.env.write_text(text)

    def edit_env(self, old: str, new: str) -> None:
        text = self.env.read_text()
        assert old in text, f"{old!r} not in env.py"
        self.env.write_text(text.replace(old, new))

    def run(self, *args: str) -> pytest.RunResult:
        return self.pytester.runpytest("--migrations", "-rs", "-p", "no:randomly", "-p", "no:cacheprovider", *args)


def users_table(rev: str = "a1", down: str | None = None) -> dict[str, str]:
    """Arguments for a revision creating a small `users` table."""
    return {
        "rev": rev,
        "down": down,  # type: ignore[dict-item]
        "upgrade": """
            op.create_table(
                "users",
                sa.Column("id", sa.Integer(), primary_key=True),
                sa.Column("name", sa.String(50), nullable=False),
            )
        """,
        "downgrade": 'op.drop_table("users")',
    }
