"""Where a run's time goes: every migration step and schema snapshot, timed, and the run's report.

The engine records as it works (one :data:`RECORDER` per process, nothing to switch
on): each step of a revision (``upgrade``, ``downgrade``, ``re-upgrade``, the walks
between) with its seconds, and how many schema snapshots were taken and what they
cost. The plugin takes what an item recorded (:meth:`Recorder.since`) into the item's
report, so that xdist workers send it to the controller with the report itself; the
controller gathers the reports in a :class:`RunReport`, which prints the slowest steps
(``--migrations-durations N``) and writes the JSON report (``--migrations-report FILE``).

Nothing here imports pytest.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPORT_VERSION = 1
"""The version of the JSON report's layout (see :meth:`RunReport.as_json`)."""


@dataclass
class Recorder:
    """The steps and snapshots of one process, in order."""

    steps: list[tuple[str, str, float]] = field(default_factory=list)
    """``(revision, step, seconds)``."""
    snapshots: list[float] = field(default_factory=list)
    """Seconds of each schema snapshot."""
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def step(self, revision: str, label: str, seconds: float) -> None:
        with self._lock:
            self.steps.append((revision, label, seconds))

    def snapshot(self, seconds: float) -> None:
        with self._lock:
            self.snapshots.append(seconds)

    def mark(self) -> tuple[int, int]:
        """Where the record stands now, for :meth:`since`."""
        with self._lock:
            return len(self.steps), len(self.snapshots)

    def since(self, mark: tuple[int, int]) -> dict[str, Any]:
        """What was recorded after ``mark``, as plain data (it travels in a test report)."""
        with self._lock:
            steps = self.steps[mark[0] :]
            snapshots = self.snapshots[mark[1] :]
        return {
            "steps": [{"revision": r, "step": s, "seconds": round(t, 6)} for r, s, t in steps],
            "snapshots": {"count": len(snapshots), "seconds": round(sum(snapshots), 6)},
        }


RECORDER = Recorder()
"""This process's record."""


@dataclass
class ItemRecord:
    """One test item of the run, as the report shows it."""

    nodeid: str
    worker: str
    check: str | None = None
    revision: str | None = None
    database: str | None = None
    outcome: str = "passed"
    seconds: float = 0.0
    steps: list[dict[str, Any]] = field(default_factory=list)
    snapshot_count: int = 0
    snapshot_seconds: float = 0.0


_RANK = {"passed": 0, "skipped": 1, "failed": 2}


@dataclass
class RunReport:
    """The items of a run that migrated something, gathered from their reports (on the controller)."""

    run: str
    items: dict[str, ItemRecord] = field(default_factory=dict)

    def add(self, nodeid: str, outcome: str, seconds: float, data: Mapping[str, Any]) -> None:
        """One phase's report of an item: its outcome and duration, and what it recorded (``data``)."""
        record = self.items.get(nodeid)
        if record is None:
            record = self.items[nodeid] = ItemRecord(
                nodeid,
                str(data.get("worker", "main")),
                data.get("check"),
                data.get("revision"),
                data.get("database"),
            )
        if _RANK.get(outcome, 0) > _RANK.get(record.outcome, 0):
            record.outcome = outcome
        record.seconds += seconds
        record.steps.extend(data.get("steps", ()))
        snapshots = data.get("snapshots", {})
        record.snapshot_count += int(snapshots.get("count", 0))
        record.snapshot_seconds += float(snapshots.get("seconds", 0.0))

    def slowest(self, count: int) -> list[str]:
        """The ``count`` slowest steps of the run, one line each, slowest first (``--migrations-durations``)."""
        steps = [(s["seconds"], s["step"], s["revision"], r.nodeid) for r in self.items.values() for s in r.steps]
        steps.sort(key=lambda s: -s[0])
        return [f"{seconds:8.3f}s {step:<12} {rev}  ({nodeid})" for seconds, step, rev, nodeid in steps[:count]]

    def as_json(self) -> dict[str, Any]:
        """The report: per item its steps and snapshots, per worker what it walked.

        ``{"version", "run", "items": [{"nodeid", "worker", "check", "revision", "database", "outcome",
        "seconds", "steps": [{"revision", "step", "seconds"}], "snapshots": {"count", "seconds"}}],
        "workers": {name: {"items", "steps", "step_seconds", "snapshots", "snapshot_seconds"}}}``
        """
        workers: dict[str, dict[str, Any]] = {}
        for record in self.items.values():
            worker = workers.setdefault(
                record.worker, {"items": 0, "steps": 0, "step_seconds": 0.0, "snapshots": 0, "snapshot_seconds": 0.0}
            )
            worker["items"] += 1
            worker["steps"] += len(record.steps)
            worker["step_seconds"] = round(worker["step_seconds"] + sum(s["seconds"] for s in record.steps), 6)
            worker["snapshots"] += record.snapshot_count
            worker["snapshot_seconds"] = round(worker["snapshot_seconds"] + record.snapshot_seconds, 6)
        return {
            "version": REPORT_VERSION,
            "run": self.run,
            "items": [
                {
                    "nodeid": r.nodeid,
                    "worker": r.worker,
                    "check": r.check,
                    "revision": r.revision,
                    "database": r.database,
                    "outcome": r.outcome,
                    "seconds": round(r.seconds, 6),
                    "steps": r.steps,
                    "snapshots": {"count": r.snapshot_count, "seconds": round(r.snapshot_seconds, 6)},
                }
                for r in self.items.values()
            ],
            "workers": workers,
        }

    def write(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.as_json(), indent=2) + "\n")


def balance(report: Mapping[str, Any]) -> Iterable[str]:
    """Lines saying how many steps each worker walked (for the benchmarks)."""
    for name, worker in sorted(report.get("workers", {}).items()):
        yield f"{name}: {worker['items']} items, {worker['steps']} steps ({worker['step_seconds']:.2f} s)"
