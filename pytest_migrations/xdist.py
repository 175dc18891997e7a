"""pytest-xdist integration, registered only when xdist is installed.

The controller starts the servers (see :mod:`pytest_migrations.servers`) and hands their
admin URLs and its run id to every worker through ``workerinput``; each worker then
creates databases named with that run id and its own worker id, so nothing collides.

**Consecutive revisions go to the same worker.** xdist's default ``--dist load`` deals
items out one by one, so with k workers every worker walks the whole history for
every k-th revision. Under that default the plugin gives xdist its own
``LoadScopeScheduling`` with one scope per chunk of consecutive stairway items (k
chunks per database, k the number of workers): each worker takes a chunk, walks to
its first revision once without checks, and checks N/k revisions; every other item
is its own scope and is dealt out as ``load`` would. Node ids stay as they are (no
``@group`` suffix), so ``--lf`` and ``-k`` work as without xdist. A ``--dist`` chosen
by the user is kept.
"""

from __future__ import annotations

import re
from typing import Any

import pytest

from .exceptions import MigrationsError
from .state import get_pool, get_project, pool_key, settings_key

_STAIRWAY = re.compile(r"::stairway\[(?P<param>[^\]]+)\]$")


def distributing(config: pytest.Config) -> bool:
    """Whether this process is an xdist controller that will start workers."""
    return bool(getattr(config.option, "numprocesses", None)) and not hasattr(config, "workerinput")


class XdistHooks:
    """Hooks xdist knows about; a plain module-level implementation would be an unknown hook without xdist."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config

    def pytest_configure_node(self, node: Any) -> None:
        settings = self.config.stash[settings_key]
        if not settings.enabled and pool_key not in self.config.stash and settings.databases == ("sqlite",):
            # Nothing to share but the run id (a pool would import SQLAlchemy into a run that may
            # never need it): the workers' SQLite databases are their own.
            from .backends import run_id

            node.workerinput["pytest_migrations"] = {"run": run_id()}
            return
        node.workerinput["pytest_migrations"] = get_pool(self.config).to_workerinput()

    def pytest_xdist_make_scheduler(self, config: pytest.Config, log: Any) -> Any:
        """Chunks of consecutive revisions per worker, under xdist's default ``--dist load``."""
        if config.getvalue("dist") != "load" or not config.stash[settings_key].enabled:
            return None
        try:
            order = get_project(config).graph.order
        except MigrationsError:
            return None
        if not order:
            return None
        from xdist.scheduler import LoadScopeScheduling  # type: ignore[import-untyped]

        from .collection import parse_stairway_param

        positions = {rev.id: index for index, rev in enumerate(order)}

        class RevisionChunks(LoadScopeScheduling):  # type: ignore[misc]
            """LoadScopeScheduling whose scope of a stairway item is its chunk of consecutive revisions."""

            def _split_scope(self, nodeid: str) -> str:
                match = _STAIRWAY.search(nodeid)
                if match is None:
                    return nodeid
                database, revision = parse_stairway_param(match["param"], positions)
                if revision is None:
                    return nodeid
                chunk = positions[revision] * max(1, self.numnodes) // len(positions)
                return f"pytest-migrations stairway {database} chunk {chunk}"

        return RevisionChunks(config, log)
