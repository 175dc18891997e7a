"""Benchmark: a history where every item fails, against plain ``alembic.command`` calls.

The generated history of history.py, with every downgrade replaced by ``pass`` (the most
common broken history: downgrades nobody wrote). Every stairway item then fails, on its
re-upgrade (the table, column or constraint is still there) or on its comparison, so
this measures the failure paths: the error report, the autogenerate hint, the scratch
databases and checkpoints a failing item uses to recover. Side by side, interleaved:

- **plugin**: every stairway check in order through the plugin's harness, each failure
  caught, on SQLite;
- **alembic**: the same steps as ``alembic.command`` calls in one process on one SQLite
  file: for each revision ``upgrade rev``, ``downgrade -1``, ``upgrade rev`` (which
  raises; the error is caught and ``stamp rev`` moves on, as a person would).

Target: plugin at most 2x alembic.

    python benchmarks/failing.py [--size 100] [--rounds 3]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from alembic import command
from alembic.config import Config
from history import generate

from pytest_migrations.backends.sqlite import SQLiteBackend
from pytest_migrations.checks import check_stairway
from pytest_migrations.exceptions import MigrationsError
from pytest_migrations.harness import Harness
from pytest_migrations.location import ProjectLocation
from pytest_migrations.project import AlembicProject

_DOWNGRADE = re.compile(r"\ndef downgrade\(\):\n(?:    .*\n?|\n)*", re.MULTILINE)


def generate_failing(root: Path, size: int) -> Path:
    """history.py's history with every downgrade ``pass``."""
    with contextlib.redirect_stdout(io.StringIO()):
        ini = generate(root, size)
    for path in (root / "migrations" / "versions").glob("*.py"):
        text = _DOWNGRADE.sub("\ndef downgrade():\n    pass\n", path.read_text())
        path.write_text(text)
    return ini


def plugin(ini: Path, work: Path) -> tuple[float, int]:
    """Seconds for every stairway check, and how many failed."""
    project = AlembicProject(ProjectLocation(ini, None))
    harness = Harness(project, SQLiteBackend(work))
    failed = 0
    start = time.perf_counter()
    for revision in project.graph.order:
        try:
            check_stairway(harness, revision)
        except (MigrationsError, AssertionError):
            failed += 1
    elapsed = time.perf_counter() - start
    harness.close()
    return elapsed, failed


def alembic_commands(ini: Path, work: Path) -> float:
    config = Config(str(ini), stdout=io.StringIO())
    config.set_main_option("sqlalchemy.url", f"sqlite:///{work / 'alembic.db'}")
    script_order = [rev.revision for rev in reversed(list(_script(config).walk_revisions()))]
    start = time.perf_counter()
    with contextlib.redirect_stderr(io.StringIO()):
        for revision in script_order:
            command.upgrade(config, revision)
            command.downgrade(config, "-1")
            try:
                command.upgrade(config, revision)
            except Exception:
                command.stamp(config, revision)
    return time.perf_counter() - start


def _script(config: Config):  # type: ignore[no-untyped-def]
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(config)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    import logging

    logging.disable(logging.CRITICAL)
    with tempfile.TemporaryDirectory() as tmp:
        ini = generate_failing(Path(tmp) / "h", args.size)
        ours, theirs, failed = [], [], 0
        for r in range(args.rounds):
            work = Path(tmp) / f"w{r}"
            (work / "plugin").mkdir(parents=True)
            elapsed, failed = plugin(ini, work / "plugin")
            ours.append(elapsed)
            theirs.append(alembic_commands(ini, work))
    p, a = statistics.median(ours), statistics.median(theirs)
    print(f"every downgrade `pass`, N={args.size} on SQLite, medians of {args.rounds} interleaved rounds")
    print(f"  plugin stairway: {p:.3f} s, {failed} of {args.size} items failed (each with its report)")
    print(f"  alembic.command: {a:.3f} s (upgrade, downgrade -1, upgrade; stamp after the error)")
    print(f"  ratio {p / a:.2f} (target <= 2)")


if __name__ == "__main__":
    main()
