"""pytest-xdist integration, registered only when xdist is installed.

The controller starts the servers (see :mod:`pytest_migrations.servers`) and hands their
admin URLs and its run id to every worker through ``workerinput``; each worker then
creates databases named with that run id and its own worker id, so nothing collides.
"""

from __future__ import annotations

from typing import Any

import pytest

from .state import get_pool


def distributing(config: pytest.Config) -> bool:
    """Whether this process is an xdist controller that will start workers."""
    return bool(getattr(config.option, "numprocesses", None)) and not hasattr(config, "workerinput")


class XdistHooks:
    """Hooks xdist knows about; a plain module-level implementation would be an unknown hook without xdist."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config

    def pytest_configure_node(self, node: Any) -> None:
        node.workerinput["pytest_migrations"] = get_pool(self.config).to_workerinput()
