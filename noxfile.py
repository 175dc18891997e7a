"""The version matrix: the declared floors, pytest 8, and the newest of everything.

    nox                          # every session (each Python must be installed, e.g. under pyenv)
    nox -s floor newest psycopg  # what CI runs
    nox -s floor -- tests/unit   # a session on part of the suite

Each session installs the plugin with its extras into a fresh virtual environment and
runs the suite's SQLite and PostgreSQL parts (the server tests need the PostgreSQL the
README's test command uses). The full suite runs in the project's own environment.
"""

from __future__ import annotations

import nox

nox.options.sessions = ["floor", "pytest8", "newest", "psycopg"]
nox.options.reuse_existing_virtualenvs = False

EXTRAS = "all"
DEFAULT_TESTS = ["tests/unit", "tests/plugin", "tests/backends/test_data_servers.py", "-k", "not mysql"]

FLOORS = ["pytest==8.0.0", "alembic==1.16.0", "sqlalchemy==2.0.0"]
"""The lowest versions pyproject.toml declares, on its lowest Python."""


def _run(session: nox.Session, *pins: str) -> None:
    session.install("-e", f".[{EXTRAS}]", *pins)
    session.install("filelock")
    session.run("python", "-m", "pip", "list", "--format=freeze", silent=False)
    session.run("pytest", "-n", "2", "-p", "no:randomly", *(session.posargs or DEFAULT_TESTS))


@nox.session(python="3.10")
def floor(session: nox.Session) -> None:
    """Python 3.10 with pytest 8.0, alembic 1.16 and SQLAlchemy 2.0: the floors pyproject.toml declares."""
    _run(session, *FLOORS)


@nox.session(python="3.11")
def pytest8(session: nox.Session) -> None:
    """The newest pytest 8 (pytest 9 changed how node ids are keyed for --lf), and pytest-alembic beside the plugin."""
    session.env["PYTEST_MIGRATIONS_MATRIX"] = "1"
    _run(session, "pytest>=8,<9", "pytest-alembic")
    if not session.posargs:
        session.run("pytest", "-n", "0", "-p", "no:randomly", "tests/matrix")


@nox.session(python="3.13")
def newest(session: nox.Session) -> None:
    """The newest release of everything, on the newest Python here."""
    _run(session, "--upgrade", "pytest", "alembic", "sqlalchemy", "pytest-xdist", "testcontainers")


@nox.session(python="3.12")
def psycopg(session: nox.Session) -> None:
    """psycopg 3 beside psycopg2, as SQLAlchemy 2.1 users have it: ``postgresql://`` then means psycopg 3
    (the driver SQLAlchemy gives it), and every PostgreSQL test of the suite, the servers' included, runs
    through it."""
    session.install("-e", f".[{EXTRAS},psycopg]", "--upgrade", "sqlalchemy>=2.1", "filelock")
    session.run("python", "-m", "pip", "list", "--format=freeze", silent=False)
    session.run(
        "python",
        "-c",
        "from pytest_migrations.providers import driver_for; assert driver_for('postgresql') == 'postgresql+psycopg'",
    )
    session.run("pytest", "-n", "2", "-p", "no:randomly", *(session.posargs or ["tests", "-k", "not mysql"]))


@nox.session(python="3.11", default=False)
def sqlalchemy14(session: nox.Session) -> None:
    """SQLAlchemy 1.4, which pyproject.toml does not declare: run it to see where it stands (README, Requirements)."""
    session.install(
        "sqlalchemy==1.4.54", "alembic>=1.16,<1.17", "pytest", "pytest-xdist", "psycopg2-binary", "filelock"
    )
    session.install("--no-deps", "-e", ".")
    session.run("pytest", "-n", "0", "-p", "no:randomly", *(session.posargs or DEFAULT_TESTS))
