"""Soak with faults: many runs against one server, some of them broken on purpose; nothing may be left.

Each round runs ``pytest --migrations`` on a small generated history against the server
(half the rounds with ``-n 2``) with one fault drawn from a seeded random sequence:

- ``none``: a plain run (it must pass);
- ``timeout``: the last revision sleeps, ``--migrations-step-timeout 2`` must stop it;
- ``sigint``: Ctrl-C at a random moment (0.3 to 3 s into the run);
- ``kill-worker``: SIGKILL of one xdist worker at a random moment;
- ``kill-run``: SIGKILL of the whole run (like ``os._exit``): the next round must remove
  what it left.

Every round has a run id of its own. At the end a clean round runs (it removes what
killed runs left), and the databases of every round's run id are counted on the
server, with the plugin's containers: both must be zero.

    python benchmarks/soak.py --url postgresql://postgres@127.0.0.1/postgres [--runs 50] [--seed 1]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.pool import NullPool

sys.path.insert(0, str(Path(__file__).resolve().parent))
from history import _rev_id, generate

from pytest_migrations.providers import with_driver

FAULTS = ("none", "timeout", "sigint", "kill-worker", "kill-run")

SLOW_REVISION = '''"""sleeps when the soak asks it to"""
import os, time
revision = "ffffsoakslow"
down_revision = {down!r}
branch_labels = None
depends_on = None


def upgrade():
    time.sleep(float(os.environ.get("SOAK_SLEEP", "0")))


def downgrade():
    pass
'''


def databases_of(url: str, runs: set[str]) -> tuple[int, int]:
    """``(marked, unmarked)``: databases of these runs left on the server, with and without the plugin's marker.

    A run killed between CREATE DATABASE and its marker leaves one without it; a later run
    drops it only if it can still prove it the plugin's (see ServerPool), else reports it.
    """
    engine = sa.create_engine(with_driver(sa.make_url(url)), poolclass=NullPool)
    postgresql = engine.dialect.name == "postgresql"
    query = (
        "SELECT datname, shobj_description(oid, 'pg_database') FROM pg_database"
        if postgresql
        else "SELECT SCHEMA_NAME, SCHEMA_COMMENT FROM information_schema.SCHEMATA"
    )
    with engine.connect() as conn:
        rows = [(name, comment) for name, comment in conn.exec_driver_sql(query)]
    engine.dispose()
    ours = [(n, c) for n, c in rows if any(n.startswith(f"pytest_migrations_{run}_") for run in runs)]
    return sum(1 for _, c in ours if c), sum(1 for _, c in ours if not c)


def containers() -> int:
    out = subprocess.run(
        ["docker", "ps", "-aq", "--filter", "label=pytest-migrations.pid"], capture_output=True, text=True, check=False
    )
    return len(out.stdout.split())


def one_round(root: Path, url: str, fault: str, workers: bool, rng: random.Random) -> tuple[str, int | None]:
    """Run pytest once with ``fault``; return the run id and the exit code (``None``: killed)."""
    run = uuid.uuid4().hex[:8]
    env = dict(os.environ, PYTEST_MIGRATIONS_RUN_ID=run, SOAK_SLEEP="30" if fault == "timeout" else "0")
    env.pop("PYTEST_ADDOPTS", None)
    args = [sys.executable, "-m", "pytest", "--migrations", "-q", "-p", "no:cacheprovider", "--migrations-url", url]
    args += ["-n", "2"] if workers or fault == "kill-worker" else []
    args += ["--migrations-step-timeout", "2"] if fault == "timeout" else []
    proc = subprocess.Popen(
        args, cwd=root, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )
    if fault in ("sigint", "kill-worker", "kill-run"):
        time.sleep(rng.uniform(0.3, 3.0))
        if proc.poll() is None:
            if fault == "sigint":
                proc.send_signal(signal.SIGINT)
            elif fault == "kill-run":
                os.killpg(proc.pid, signal.SIGKILL)
            else:
                children = subprocess.run(["pgrep", "-P", str(proc.pid)], capture_output=True, text=True).stdout
                if children.split():
                    os.kill(int(children.split()[0]), signal.SIGKILL)
    try:
        code = proc.wait(timeout=120)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        return run, -1
    return run, None if code < 0 else code


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", default="postgresql://postgres@127.0.0.1/postgres")
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--size", type=int, default=14)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    runs: set[str] = set()
    outcomes: Counter[str] = Counter()
    hung = 0
    with tempfile.TemporaryDirectory() as tmp:
        with contextlib.redirect_stdout(io.StringIO()):
            ini = generate(Path(tmp) / "h", args.size)
        versions = ini.parent / "migrations" / "versions"
        (versions / "ffffsoakslow_slow.py").write_text(SLOW_REVISION.format(down=_rev_id(args.size - 1)))
        start = time.perf_counter()
        for index in range(args.runs):
            fault = rng.choice(FAULTS)
            run, code = one_round(ini.parent, args.url, fault, bool(index % 2), rng)
            runs.add(run)
            hung += code == -1
            outcomes[f"{fault}: exit {code if code is not None else 'killed'}"] += 1
        run, code = one_round(ini.parent, args.url, "none", False, rng)  # removes what killed runs left
        runs.add(run)
        elapsed = time.perf_counter() - start
    (left, unmarked), running = databases_of(args.url, runs), containers()
    print(f"soak: {args.runs} runs with faults (seed {args.seed}) + 1 clean run in {elapsed:.1f} s")
    for outcome, count in sorted(outcomes.items()):
        print(f"  {count:3d} x {outcome}")
    print(f"  final clean run: exit {code}; runs that hung: {hung}")
    print(
        f"left behind: {left} marked databases of these runs, {running} containers of the plugin; {unmarked} "
        "without the plugin's marker (the plugin cannot prove those its own: later runs report them)"
    )
    raise SystemExit(1 if left or running or hung or code != 0 else 0)


if __name__ == "__main__":
    main()
