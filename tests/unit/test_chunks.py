"""How xdist workers split the stairway: consecutive revisions, chunks of equal cost."""

from __future__ import annotations

import pytest

from pytest_migrations.xdist import WALK_COST, chunk_of, stairway_scopes


def _chunks(count: int, chunks: int) -> list[list[int]]:
    found: dict[int, list[int]] = {}
    for position in range(count):
        found.setdefault(chunk_of(position, count, chunks), []).append(position)
    return [found[c] for c in sorted(found)]


@pytest.mark.parametrize(("count", "chunks"), [(200, 2), (500, 2), (200, 4), (50, 3), (7, 2)])
def test_chunks_are_consecutive_and_cost_the_same(count: int, chunks: int) -> None:
    split = _chunks(count, chunks)
    assert [p for chunk in split for p in chunk] == list(range(count))  # every item once, in order
    assert len(split) == chunks
    costs = [WALK_COST * chunk[0] + len(chunk) for chunk in split]
    assert max(costs) - min(costs) <= 1 + WALK_COST  # equal up to rounding to whole items


def test_two_workers_on_200_revisions() -> None:
    assert [len(c) for c in _chunks(200, 2)] == [120, 80]  # the second also walks 120 revisions up


def test_one_worker_or_no_walk_cost() -> None:
    assert _chunks(10, 1) == [list(range(10))]
    assert [chunk_of(p, 12, 3, walk_cost=0.0) for p in range(12)] == [0] * 4 + [1] * 4 + [2] * 4


def test_scopes_are_cut_among_the_selected_items_in_history_order() -> None:
    positions = {f"r{n:02d}": n for n in range(12)}
    late = [f"migrations/env.py::stairway[r{n:02d}]" for n in range(6, 12)]
    shuffled = [late[i] for i in (3, 0, 5, 1, 4, 2)] + ["migrations/env.py::graph"]
    scopes = stairway_scopes(shuffled, positions, 2)
    assert "migrations/env.py::graph" not in scopes  # its own scope, dealt out as xdist's load would
    chunks = [scopes[nodeid] for nodeid in late]
    assert chunks == [chunks[0]] * 4 + [chunks[-1]] * 2 and chunks[0] != chunks[-1]  # both workers, consecutive


def test_scopes_are_per_database() -> None:
    positions = {"a1": 0, "b2": 1}
    ids = [f"migrations/env.py::stairway[{db}-{rev}]" for db in ("sqlite", "postgresql") for rev in positions]
    scopes = stairway_scopes(ids, positions, 2)
    assert len(set(scopes.values())) == 4 and all("sqlite" in scopes[i] for i in ids[:2])
