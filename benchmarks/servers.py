"""Benchmark on a real server (PostgreSQL by default): stairway, xdist and migration_runner.

On a generated correct history of N revisions (default 200), it prints side by side:

- the plugin's full stairway (every ``stairway`` check in order, in-process) against a
  lower bound: the same 3N steps on one connection, scripts loaded once, no checks;
- the same stairway with ``--migrations-data`` (rows generated and compared) against it;
- ``pytest --migrations --migrations-checks stairway`` with ``-n 0`` and ``-n 2``;
- ``migration_runner`` going to a late revision: the first use (a walk) and later uses
  (a template clone, on PostgreSQL made ahead while the test before runs), and the clone itself.

    python benchmarks/servers.py --url postgresql://postgres@127.0.0.1/postgres [--size 200] [--rounds 3]
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

import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parent))
from history import generate, time_direct_steps, time_pytest_stairway

from pytest_migrations.catalog import DEFAULT_IMAGES
from pytest_migrations.checks import check_stairway
from pytest_migrations.data import DataSettings
from pytest_migrations.harness import Harness
from pytest_migrations.location import ProjectLocation
from pytest_migrations.project import AlembicProject
from pytest_migrations.providers import dialect_of
from pytest_migrations.runner import MigrationRunner
from pytest_migrations.servers import CHECKPOINT_EVERY, ServerPool, backend_for
from pytest_migrations.timings import balance

_pools: dict[str, ServerPool] = {}
"""One pool per server URL for the benchmark's life: it holds the run lock as a pytest run does, so
that another run's dead-run clean-up on the same server does not drop the benchmark's databases."""


def _harness(ini: Path, url: str, data: DataSettings | None = None) -> Harness:
    dialect = dialect_of(url)
    if url not in _pools:
        _pools[url] = ServerPool({dialect: url}, "url", dict(DEFAULT_IMAGES))
    backend = backend_for(_pools[url].get(dialect))
    project = AlembicProject(ProjectLocation(ini, None))
    return Harness(project, backend, checkpoint_every=CHECKPOINT_EVERY[dialect], data=data)


def plugin_stairway(ini: Path, url: str, data: DataSettings | None = None) -> float:
    harness = _harness(ini, url, data)
    order = harness.graph.order  # the history's files loaded before timing, as the lower bound's are
    start = time.perf_counter()
    for revision in order:
        check_stairway(harness, revision)
    elapsed = time.perf_counter() - start
    harness.close()
    return elapsed


def lower_bound(ini: Path, url: str) -> float:
    harness = _harness(ini, url)
    dbs = harness.create()
    try:
        return time_direct_steps(ini, dbs.urls[next(iter(dbs.urls))].render_as_string(hide_password=False))
    finally:
        harness.close()


def pytest_run(ini: Path, url: str, workers: int, report: Path | None = None) -> float:
    extra = [f"--migrations-report={report}"] if report else []  # "=": pytest takes a path argument for rootdir
    return time_pytest_stairway(ini, "-n", str(workers), "--migrations-url", url, *extra)


def runner_uses(ini: Path, url: str, uses: int = 5) -> tuple[list[float], list[float]]:
    """Seconds of each ``migration_runner.upgrade(late)`` (a walk, then clones of the template it kept,
    on PostgreSQL made ahead while the test before ran), and of cloning that template outright."""
    harness = _harness(ini, url)
    late = harness.graph.order[-2].id
    times = []
    for _ in range(uses):
        runner = MigrationRunner(harness, harness.create())
        start = time.perf_counter()
        runner.upgrade(late)
        times.append(time.perf_counter() - start)
        runner._dispose()
    template = next(iter(harness._templates.values()))
    clones = []
    for _ in range(3):
        start = time.perf_counter()
        clone = harness.clone(template)
        clones.append(time.perf_counter() - start)
        harness.drop(clone)
    harness.close()
    return times, clones


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", default="postgresql://postgres@127.0.0.1/postgres")
    parser.add_argument("--size", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    try:
        measure(args)
    finally:
        for pool in _pools.values():
            pool.stop()


def measure(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        with contextlib.redirect_stdout(io.StringIO()):
            ini = generate(Path(tmp) / "h", args.size)
        plugin, lower, serial, parallel, first, later, with_data, clones = [], [], [], [], [], [], [], []
        for _ in range(args.rounds):
            plugin.append(plugin_stairway(ini, args.url))
            with_data.append(plugin_stairway(ini, args.url, DataSettings()))
            lower.append(lower_bound(ini, args.url))
            serial.append(pytest_run(ini, args.url, 0))
            parallel.append(pytest_run(ini, args.url, 2, Path(tmp) / "report.json"))
            uses, clone_times = runner_uses(ini, args.url)
            clones.extend(clone_times)
            first.append(uses[0])
            later.extend(uses[1:])
        report = json.loads((Path(tmp) / "report.json").read_text())
    med = statistics.median
    dialect = sa.make_url(args.url).get_backend_name()
    print(f"{dialect}, N={args.size}, medians of {args.rounds} interleaved rounds")
    print(
        f"  stairway in-process   {med(plugin):7.2f} s   lower bound {med(lower):7.2f} s   "
        f"ratio {med(plugin) / med(lower):.2f}"
    )
    print(
        f"  with --migrations-data {med(with_data):6.2f} s   without {med(plugin):7.2f} s   "
        f"ratio {med(with_data) / med(plugin):.2f} (target <= 2)"
    )
    print(
        f"  pytest stairway -n 0  {med(serial):7.2f} s   -n 2 {med(parallel):7.2f} s   "
        f"ratio -n 2 / -n 0 {med(parallel) / med(serial):.2f}"
    )
    print("  -n 2, what each worker walked (--migrations-report): " + "; ".join(balance(report)))
    print(
        f"  migration_runner to a late revision: first use {med(first) * 1000:7.1f} ms, "
        f"later uses {med(later) * 1000:7.1f} ms (x{med(first) / med(later):.0f} faster; target < 100 ms)"
    )
    ahead = " (on PostgreSQL made ahead, while the test before runs)" if dialect == "postgresql" else ""
    print(f"  a template clone itself {med(clones) * 1000:7.1f} ms{ahead}")


if __name__ == "__main__":
    main()
