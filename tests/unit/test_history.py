"""RevisionGraph on its own: order, closure, version-table heads. No pytest plugin, no database."""

from __future__ import annotations

from pathlib import Path

from pytest_migrations.history import Revision, RevisionGraph


def rev(rid: str, *down: str, deps: tuple[str, ...] = ()) -> Revision:
    return Revision(rid, tuple(down), deps, (), Path(f"{rid}.py"), "", None)


GRAPH = RevisionGraph(
    [rev("m", "b", "c"), rev("c", "a"), rev("b", "a"), rev("a"), rev("x"), rev("y", "x", deps=("b",))]
)


class TestOrder:
    def test_every_revision_comes_after_what_it_requires(self) -> None:
        order = [r.id for r in GRAPH.order]
        for r in GRAPH.order:
            assert all(order.index(p) < order.index(r.id) for p in r.requires)

    def test_order_is_deterministic_with_ties_broken_by_id(self) -> None:
        assert [r.id for r in GRAPH.order] == ["a", "b", "c", "m", "x", "y"]

    def test_heads_bases_and_branch_points(self) -> None:
        assert GRAPH.heads == ("m", "y")
        assert GRAPH.bases == ("a", "x")
        assert GRAPH.branch_points == ("a",)


class TestClosure:
    def test_ancestors_follow_parents_and_dependencies(self) -> None:
        assert GRAPH.ancestors(["y"]) == {"y", "x", "b", "a"}

    def test_descendants_follow_dependants(self) -> None:
        assert GRAPH.descendants(["b"]) == {"b", "m", "y"}

    def test_version_table_heads_count_dependencies_as_covered(self) -> None:
        assert GRAPH.heads_of({"a", "b", "x", "y"}) == ("y",)
        assert GRAPH.heads_of({"a", "b", "c"}) == ("b", "c")
        assert GRAPH.heads_of(GRAPH.prefix(3)) == ("b", "c")
