"""Hooks pytest-migrations adds; implement them in a conftest.py or a plugin."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence
    from typing import Any

    from alembic.config import Config
    from sqlalchemy import Table
    from sqlalchemy.engine import URL


@pytest.hookspec
def pytest_migrations_seed_data(
    config: pytest.Config, revision: str, tables: Mapping[str, Table]
) -> Mapping[str, Sequence[Mapping[str, Any]]] | None:
    """Rows of your own, inserted before ``revision``'s upgrade with ``--migrations-data``.

    ``tables`` maps each table of the parent state to its reflected :class:`~sqlalchemy.Table`.
    Return ``{table: [row, ...]}`` for the tables you want to fill yourself (a JSON column
    the app always fills with one shape, a data migration that expects real values); the
    other empty tables get generated rows. Results of several implementations are merged.
    This is what pytest-alembic's ``before_revision_data`` does.

    Example (conftest.py)::

        def pytest_migrations_seed_data(revision, tables):
            if revision == "4d5e6f7a8b9c":   # the data migration splitting users.name
                return {"users": [{"id": 1, "name": "Ada Lovelace", "email": "ada@example.com"}]}
    """


@pytest.hookspec
def pytest_migrations_configure_alembic(config: pytest.Config, alembic_config: Config, urls: dict[str, URL]) -> None:
    """Adjust the Alembic Config env.py will see, once it points at the plugin's test databases.

    Called for every set of test databases, before env.py runs on them. ``urls`` maps
    each config section env.py reads (one, or one per ``multidb`` database) to its
    test database. Typical uses: ``alembic_config.attributes[...]`` that env.py reads,
    or options env.py takes from the main section.

    Example (conftest.py)::

        def pytest_migrations_configure_alembic(alembic_config, urls):
            alembic_config.attributes["tenant"] = "test"
    """
