"""Where the time goes: --migrations-durations lists the slowest steps, --migrations-report writes the run as JSON."""

from __future__ import annotations

import json

import pytest

from ..conftest import RUN_ID
from ..helpers import Project, users_table


def _history(project: Project) -> None:
    project.revision(**users_table("a1"))
    project.revision(
        "b2", "a1", 'op.add_column("users", sa.Column("email", sa.String(80)))', 'op.drop_column("users", "email")'
    )
    project.revision(
        "c3", "b2", 'op.create_index("ix_email", "users", ["email"])', 'op.drop_index("ix_email", "users")'
    )


def test_the_slowest_steps_are_listed(project: Project) -> None:
    _history(project)
    result = project.run("--migrations-checks", "stairway", "--migrations-durations", "2")
    result.assert_outcomes(passed=3)
    result.stdout.fnmatch_lines(
        [
            "*= pytest-migrations: slowest 2 migration steps =*",
            "*.???s * ?? *(migrations/env.py::stairway[[]??])",  # [[] is fnmatch's "["; any step may be slowest
            "*.???s * ?? *(migrations/env.py::stairway[[]??])",
            "*= 3 passed*",
        ]
    )
    bad = project.run("--migrations-durations", "some")
    bad.stderr.fnmatch_lines(["*migrations_durations must be a whole number of steps to list (0: none), not 'some'*"])


def test_the_report_has_every_item_with_its_steps_and_snapshots(project: Project) -> None:
    _history(project)
    project.pytester.makepyfile(
        test_own="""
        def test_own(migration_runner):
            migration_runner.upgrade("b2")
        """
    )
    result = project.run("--migrations-checks", "stairway", "--migrations-report", "out/report.json")
    result.assert_outcomes(passed=4)
    report = json.loads((project.root / "out" / "report.json").read_text())
    assert report["version"] == 1 and report["run"] == RUN_ID
    items = {item["nodeid"]: item for item in report["items"]}
    stairway = items["migrations/env.py::stairway[b2]"]
    assert (stairway["check"], stairway["revision"], stairway["database"], stairway["outcome"]) == (
        "stairway",
        "b2",
        "sqlite",
        "passed",
    )
    assert [s["step"] for s in stairway["steps"] if s["revision"] == "b2"] == ["upgrade", "downgrade", "re-upgrade"]
    assert all(s["seconds"] >= 0 for s in stairway["steps"])
    assert stairway["snapshots"]["count"] >= 3 and stairway["seconds"] > 0
    own = items["test_own.py::test_own"]
    assert own["check"] is None and [(s["revision"], s["step"]) for s in own["steps"]] == [
        ("a1", "upgrade"),
        ("b2", "upgrade"),
    ]
    total = sum(len(item["steps"]) for item in report["items"])
    assert report["workers"]["main"]["items"] == 4 and report["workers"]["main"]["steps"] == total


def _stairway_on_two_workers(project: Project) -> pytest.RunResult:
    """The stairway under `-n 2` in a subprocess, writing report.json."""
    return project.pytester.runpytest_subprocess(
        "--migrations", "-p", "no:cacheprovider", "-p", "no:randomly", "-n", "2",
        "--migrations-checks", "stairway", "--migrations-report", "report.json",
    )  # fmt: skip


def test_the_report_shows_what_each_xdist_worker_walked(project: Project) -> None:
    pytest.importorskip("xdist")
    _history(project)
    result = _stairway_on_two_workers(project)
    result.assert_outcomes(passed=3)
    report = json.loads((project.root / "report.json").read_text())
    assert set(report["workers"]) <= {"gw0", "gw1"}
    assert sum(w["items"] for w in report["workers"].values()) == 3
    assert {item["worker"] for item in report["items"]} == set(report["workers"])


def test_consecutive_revisions_go_to_the_same_xdist_worker(project: Project) -> None:
    """Under -n 2 each worker takes a chunk of consecutive stairway items, not every other revision;
    the first chunk is larger, since the second walks up to its start first."""
    pytest.importorskip("xdist")
    revisions = [f"r{n:02d}" for n in range(12)]
    for n, rev in enumerate(revisions):
        project.revision(rev, revisions[n - 1] if n else None, "pass", "pass")
    result = _stairway_on_two_workers(project)
    result.assert_outcomes(passed=12)
    report = json.loads((project.root / "report.json").read_text())
    by_worker: dict[str, list[str]] = {}
    for item in report["items"]:
        by_worker.setdefault(item["worker"], []).append(item["revision"])
    assert sorted(sorted(chunk) for chunk in by_worker.values()) == [revisions[:7], revisions[7:]]


def test_a_late_selection_still_spreads_over_both_workers(project: Project) -> None:
    """Chunks are cut among the items that run: -k on the last six revisions still uses both workers."""
    pytest.importorskip("xdist")
    revisions = [f"r{n:02d}" for n in range(12)]
    for n, rev in enumerate(revisions):
        project.revision(rev, revisions[n - 1] if n else None, "pass", "pass")
    selected = revisions[6:]
    result = project.pytester.runpytest_subprocess(
        "--migrations", "-p", "no:cacheprovider", "-p", "no:randomly", "-n", "2",
        "--migrations-checks", "stairway", "--migrations-report", "report.json", "-k", " or ".join(selected),
    )  # fmt: skip
    result.assert_outcomes(passed=6)
    report = json.loads((project.root / "report.json").read_text())
    by_worker: dict[str, list[str]] = {}
    for item in report["items"]:
        by_worker.setdefault(item["worker"], []).append(item["revision"])
    assert sorted(sorted(chunk) for chunk in by_worker.values()) == [selected[:4], selected[4:]]


def test_a_report_outside_the_project_does_not_lose_the_project(project: Project) -> None:
    """pytest moves its rootdir to the common ancestor of every existing path on the command line,
    a report file above the project included; the plugin still finds alembic.ini where it was started."""
    _history(project)
    outside = project.root.parent / f"{project.root.name}-report.json"
    try:
        for _ in range(2):  # the second run: the report exists, and pytest's rootdir moves up
            result = project.run("--migrations-checks", "stairway", "--migrations-report", str(outside))
            result.assert_outcomes(passed=3)
        assert len(json.loads(outside.read_text())["items"]) == 3
    finally:
        outside.unlink(missing_ok=True)
