"""Hooks pytest-migrations adds; implement them in a conftest.py or a plugin."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from alembic.config import Config
    from sqlalchemy.engine import URL


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
