"""What the plugin offers, by name, without importing what runs it.

The command line's help, the ini's defaults and the settings' validation need the
names of the built-in checks, the database kinds and a few defaults at every pytest
start, with or without ``--migrations``. They live here, with nothing heavier than
the standard library behind them, so that a run that tests no migrations never pays
for importing SQLAlchemy and Alembic (about half a second per process, and per xdist
worker). :mod:`.checks`, :mod:`.data` and :mod:`.providers` take their names from here.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Check:
    """A built-in check: its name, and whether it runs once per revision."""

    name: str
    per_revision: bool
    doc: str


CHECKS: dict[str, Check] = {
    c.name: c
    for c in (
        Check("graph", False, "the revision files form a valid history"),
        Check("single_head", False, "the history has the expected number of heads"),
        Check("upgrade_to_head", False, "every revision upgrades from base to head in one walk"),
        Check("stairway", True, "upgrade, downgrade, re-upgrade of one revision leave matching schemas"),
        Check("downgrade_to_base", False, "every revision downgrades from head to base, leaving nothing behind"),
        Check("drift", False, "the models match the schema at head: no migration is missing"),
        Check("models_registered", False, "every models module of migrations_models_package is imported by env.py"),
        Check("history_unchanged", False, "revisions that exist at --migrations-since REF are unchanged"),
    )
}
"""The built-in checks, in the order their items are collected."""

DATABASES = ("sqlite", "postgresql", "mysql")
"""The database kinds ``--migrations-db`` takes (``mariadb`` is read as ``mysql``)."""

DEFAULT_ROWS = 5
"""Rows generated per empty table with ``--migrations-data``: enough for every kind of edge value
to appear once, few enough to cost nothing."""

DEFAULT_IMAGES = {"postgresql": "postgres:15", "mysql": "mariadb:10.11"}
"""The Docker images the container provider starts, unless the ini names others."""

NOTES_PROPERTY = "pytest_migrations_note"
"""The ``user_properties`` name of what an item accepted or did not test (shown in the summary)."""
