"""Benchmark: the plugin's full stairway against a lower bound, on generated histories.

For each N (default 50 and 200) it generates a correct linear history (see history.py)
and measures, side by side and interleaved, over several rounds:

- **plugin**: every stairway check in order through the plugin's harness (env.py runs,
  upgrade / downgrade / re-upgrade, four schema snapshots and two comparisons per
  revision), exactly what the ``stairway[...]`` items run;
- **pytest**: ``pytest --migrations --migrations-checks stairway`` in a subprocess, the
  same plus pytest start-up and collection;
- **lower bound**: the same 3N steps executed directly on one connection with the
  scripts loaded once and no checks;
- **with data**: the plugin's stairway with ``--migrations-data`` (generated rows,
  compared after each downgrade and re-upgrade), against the plugin's without;
- **xdist**: ``pytest`` with ``-n 2`` against ``-n 0`` (target: at least 1.6x faster at
  N = 200 on two cores), with what each worker walked (from ``--migrations-report``) and
  the run's time outside items: xdist's start-up (spawning the workers, each importing
  the engine and loading the history) and shutdown, the part ``-n 2`` cannot halve.

It prints medians, the plugin / lower-bound ratio, and how each grows from the first N
to the last (linear growth: the time ratio equals the N ratio).

    python benchmarks/stairway.py [--sizes 50 200] [--rounds 3]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from history import generate, time_direct_steps, time_pytest_stairway

from pytest_migrations.backends.sqlite import SQLiteBackend
from pytest_migrations.checks import check_stairway
from pytest_migrations.data import DataSettings
from pytest_migrations.harness import Harness
from pytest_migrations.location import ProjectLocation
from pytest_migrations.project import AlembicProject
from pytest_migrations.timings import balance


def plugin_stairway(ini: Path, work: Path, data: DataSettings | None = None) -> tuple[float, int]:
    project = AlembicProject(ProjectLocation(ini, None))
    harness = Harness(project, SQLiteBackend(work), data=data)
    order = project.graph.order  # the history's files loaded before timing, as the lower bound's are
    start = time.perf_counter()
    for revision in order:
        check_stairway(harness, revision)
    elapsed = time.perf_counter() - start
    reflections = harness.snapshots.reflections
    harness.close()
    return elapsed, reflections


def lower_bound(ini: Path, work: Path) -> float:
    return time_direct_steps(ini, f"sqlite:///{work / 'lower.db'}")


def pytest_run(ini: Path) -> float:
    return time_pytest_stairway(ini)


def xdist_run(ini: Path, workers: int, report: Path) -> float:
    return time_pytest_stairway(ini, "-n", str(workers), "--migrations-report", str(report))


def outside_items(report: Path, elapsed: float) -> float:
    """The run's wall time less its slowest worker's items: start-up and shutdown."""
    data = json.loads(report.read_text())
    per_worker: dict[str, float] = {}
    for item in data["items"]:
        per_worker[item["worker"]] = per_worker.get(item["worker"], 0.0) + item["seconds"]
    return elapsed - max(per_worker.values())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[50, 200])
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    rows = []
    data_rows: list[tuple[int, float, float]] = []
    xdist_rows: list[tuple[int, float, float, float, float, list[str]]] = []
    with tempfile.TemporaryDirectory() as tmp:
        for size in args.sizes:
            with contextlib.redirect_stdout(io.StringIO()):
                ini = generate(Path(tmp) / f"h{size}", size)
            plugin, lower, via_pytest, with_data, reflections = [], [], [], [], 0
            serial, parallel, serial_fixed, parallel_fixed = [], [], [], []
            report = Path(tmp) / f"report{size}.json"
            for r in range(args.rounds):
                work = Path(tmp) / f"w{size}_{r}"
                work.mkdir()
                elapsed, reflections = plugin_stairway(ini, work / "plugin")
                plugin.append(elapsed)
                with_data.append(plugin_stairway(ini, work / "data", DataSettings())[0])
                lower.append(lower_bound(ini, work))
                via_pytest.append(pytest_run(ini))
                serial.append(xdist_run(ini, 0, report))
                serial_fixed.append(outside_items(report, serial[-1]))
                parallel.append(xdist_run(ini, 2, report))
                parallel_fixed.append(outside_items(report, parallel[-1]))
            med = statistics.median
            xdist_rows.append(
                (
                    size,
                    med(serial),
                    med(parallel),
                    med(serial_fixed),
                    med(parallel_fixed),
                    list(balance(json.loads(report.read_text()))),
                )
            )
            rows.append(
                (size, statistics.median(plugin), statistics.median(lower), statistics.median(via_pytest), reflections)
            )
            data_rows.append((size, statistics.median(with_data), statistics.median(plugin)))
    print(f"stairway benchmark on SQLite, medians of {args.rounds} interleaved rounds")
    print(
        f"{'N':>5} {'plugin s':>9} {'lower s':>9} {'ratio':>6} {'pytest s':>9} {'pytest/lower':>13} {'reflected':>10}"
    )
    for size, plugin, lower, via_pytest, reflections in rows:
        print(
            f"{size:>5} {plugin:>9.3f} {lower:>9.3f} {plugin / lower:>6.2f} {via_pytest:>9.3f} "
            f"{via_pytest / lower:>13.2f} {reflections:>10}"
        )
    print("with --migrations-data (rows generated, compared after each downgrade and re-upgrade; target <= 2x):")
    for size, data, plain in data_rows:
        print(f"{size:>5} {data:>9.3f} s with data vs {plain:>7.3f} s without: x{data / plain:.2f}")
    print("pytest -n 2 against -n 0 (target at N=200: at least 1.6x faster); outside: time outside items")
    for size, serial, parallel, serial_fixed, parallel_fixed, walked in xdist_rows:
        print(
            f"{size:>5} -n 0 {serial:6.2f} s (outside {serial_fixed:.2f} s)   -n 2 {parallel:6.2f} s "
            f"(outside {parallel_fixed:.2f} s)   x{serial / parallel:.2f} faster; " + "; ".join(walked)
        )
    if len(rows) > 1:
        (n0, p0, l0, t0, _), (n1, p1, l1, t1, _) = rows[0], rows[-1]
        print(
            f"growth from N={n0} to N={n1} (x{n1 / n0:.1f} revisions): plugin x{p1 / p0:.2f}, "
            f"lower bound x{l1 / l0:.2f}, pytest x{t1 / t0:.2f}, "
            f"plugin overhead (plugin - lower) x{(p1 - l1) / (p0 - l0):.2f}"
        )


if __name__ == "__main__":
    main()
