"""pytest-xdist integration, registered only when xdist is installed.

The controller starts the servers (see :mod:`pytest_migrations.servers`) and hands their
admin URLs and its run id to every worker through ``workerinput``; each worker then
creates databases named with that run id and its own worker id, so nothing collides.

**Consecutive revisions go to the same worker.** xdist's default ``--dist load`` deals
items out one by one, so with k workers every worker walks the whole history for
every k-th revision. Under that default the plugin gives xdist its own
``LoadScopeScheduling`` with one scope per chunk of consecutive stairway items (k
chunks per database, k the number of workers): each worker takes a chunk, walks to
its first revision once without checks, and checks its chunk's revisions; every other
item is its own scope and is dealt out as ``load`` would. The chunks are not of equal
size but of equal cost (see :func:`chunk_of`): a later chunk's walk to its start
counts, so the first chunk is the largest; and they are cut among the items that run
(see :func:`stairway_scopes`), so ``-k`` and ``--lf`` spread too. Node ids stay as they are (no
``@group`` suffix), so ``--lf`` and ``-k`` work as without xdist. A ``--dist`` chosen
by the user is kept.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

import pytest

from .exceptions import MigrationsError
from .state import get_pool, get_project, pool_key, settings_key

_STAIRWAY = re.compile(r"::stairway\[(?P<param>[^\]]+)\]$")

WALK_COST = 1 / 3
"""What walking one revision up without checks costs, as a share of that revision's stairway
item: the item runs three steps (upgrade, downgrade, re-upgrade) and their snapshots, the
walk one step (``benchmarks/servers.py`` prints the balance it gives)."""


def chunk_of(position: int, count: int, chunks: int, walk_cost: float = WALK_COST) -> int:
    """The chunk (0 to ``chunks - 1``) of the stairway item at ``position`` of ``count``.

    Chunk j starts at s_j and costs ``walk_cost * s_j`` (the walk to its start) plus
    one per item. Equal costs C give s_(j+1) = (1 - walk_cost) s_j + C, so
    s_j = C (1 - (1 - walk_cost)^j) / walk_cost, and s_chunks = count fixes C. With two
    workers and 200 revisions the first chunk has 120 items, the second 80 and a walk of 120.
    """
    if chunks <= 1 or count <= 0:
        return 0
    keep = 1 - walk_cost
    cost = count * walk_cost / (1 - keep**chunks) if walk_cost > 0 else count / chunks
    chunk = 0
    for j in range(1, chunks):
        start = cost * (1 - keep**j) / walk_cost if walk_cost > 0 else cost * j
        if position >= round(start):
            chunk = j
    return chunk


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

        positions = {rev.id: index for index, rev in enumerate(order)}

        class RevisionChunks(LoadScopeScheduling):  # type: ignore[misc]
            """LoadScopeScheduling whose scope of a stairway item is its chunk of consecutive revisions."""

            scopes: dict[str, str] | None = None

            def _split_scope(self, nodeid: str) -> str:
                if self.scopes is None:  # the collection is complete when xdist first asks
                    self.scopes = stairway_scopes(self.collection or [], positions, max(1, self.numnodes))
                return self.scopes.get(nodeid, nodeid)

        return RevisionChunks(config, log)


def stairway_scopes(nodeids: Iterable[str], positions: Mapping[str, int], workers: int) -> dict[str, str]:
    """The xdist scope of each stairway item: its database's chunk, cut among the items that run.

    The chunks are cut over the selected items in history order, not over the whole
    history: under ``-k`` or ``--lf`` a late range of revisions still spreads over every
    worker (cut over the whole history, it would all fall in the last chunk).
    """
    from .collection import parse_stairway_param

    selected: dict[str, list[tuple[int, str]]] = {}
    for nodeid in nodeids:
        match = _STAIRWAY.search(nodeid)
        if match is None:
            continue
        database, revision = parse_stairway_param(match["param"], positions)
        if revision is not None:
            selected.setdefault(database, []).append((positions[revision], nodeid))
    scopes: dict[str, str] = {}
    for database, items in selected.items():
        items.sort()  # history order, whatever order the items were collected in (pytest-randomly)
        for rank, (_, nodeid) in enumerate(items):
            scopes[nodeid] = f"pytest-migrations stairway {database} chunk {chunk_of(rank, len(items), workers)}"
    return scopes
