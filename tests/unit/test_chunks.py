"""How xdist workers split the stairway: consecutive revisions, chunks of equal cost."""

from __future__ import annotations

import pytest

from pytest_migrations.xdist import WALK_COST, chunk_of


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
