"""Soak: run the plugin's checks many times against one server; nothing may be left behind.

Each round runs ``pytest --migrations`` on a small generated history against the server
(half the rounds with ``-n 2``), then counts the plugin's databases on the server and
its containers. It prints the counts and exits non-zero if anything remained.

    python benchmarks/soak.py --url postgresql://postgres@127.0.0.1/postgres [--runs 50]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.pool import NullPool

sys.path.insert(0, str(Path(__file__).resolve().parent))
from history import generate

from pytest_migrations.providers import with_driver


def leftovers(url: str) -> int:
    engine = sa.create_engine(with_driver(sa.make_url(url)), poolclass=NullPool)
    dialect = engine.dialect.name
    query = "SELECT datname FROM pg_database" if dialect == "postgresql" else "SHOW DATABASES"
    with engine.connect() as conn:
        count = sum(1 for (name,) in conn.exec_driver_sql(query) if name.startswith("pytest_migrations_"))
    engine.dispose()
    return count


def containers() -> int:
    out = subprocess.run(
        ["docker", "ps", "-aq", "--filter", "label=pytest-migrations.pid"], capture_output=True, text=True, check=False
    )
    return len(out.stdout.split())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", default="postgresql://postgres@127.0.0.1/postgres")
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--size", type=int, default=14)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        with contextlib.redirect_stdout(io.StringIO()):
            ini = generate(Path(tmp) / "h", args.size)
        failures, start = 0, time.perf_counter()
        for run in range(args.runs):
            workers = ["-n", "2"] if run % 2 else []
            result = subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "pytest",
                    "--migrations",
                    "-q",
                    "-p",
                    "no:cacheprovider",
                    "--migrations-url",
                    args.url,
                    *workers,
                ],
                cwd=ini.parent,
                capture_output=True,
                text=True,
                check=False,
            )
            failures += result.returncode != 0
        elapsed = time.perf_counter() - start
    left, running = leftovers(args.url), containers()
    print(
        f"soak: {args.runs} runs in {elapsed:.1f} s ({elapsed / args.runs:.2f} s each), {failures} failed runs, "
        f"{left} databases and {running} containers of the plugin left behind"
    )
    raise SystemExit(1 if left or running or failures else 0)


if __name__ == "__main__":
    main()
