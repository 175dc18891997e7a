"""Backends: how throwaway databases are made, cloned and dropped on one kind of server.

This is one of two independent axes (see STYLE.md §8). A *provider* says where a server
comes from (a URL, a container, a local process); a *backend* says how isolated databases
are made on it. Every backend names its databases with :func:`database_name`, so that
what a run created can be recognised and removed, and nothing else is ever touched.
"""

from __future__ import annotations

import os
import re
import uuid
from typing import Protocol

from sqlalchemy.engine import URL

#: Every database the plugin creates starts with this prefix.
PREFIX = "pytest_migrations"


def run_id() -> str:
    """A short id unique to this test run (shared by xdist workers through the environment)."""
    value = os.environ.get("PYTEST_MIGRATIONS_RUN_ID")
    if not value:
        value = uuid.uuid4().hex[:8]
        os.environ["PYTEST_MIGRATIONS_RUN_ID"] = value
    return value


def database_name(run: str, worker: str | None, serial: int, section: str | None = None) -> str:
    """``pytest_migrations_<run>_<worker>_<serial>[_<section>]``: recognisable and collision-free."""
    parts = [PREFIX, run, worker or "main", str(serial)]
    if section:
        parts.append(re.sub(r"[^a-z0-9]+", "_", section.lower()))
    return "_".join(parts)


class Backend(Protocol):
    """Creates, clones and drops the plugin's own databases on one server."""

    dialect: str

    def url(self, name: str) -> URL:
        """The URL of database ``name`` (created or not)."""

    def create(self, name: str) -> URL:
        """Create an empty database and return its URL."""

    def clone(self, source: str, name: str) -> URL:
        """Create ``name`` as an exact copy of ``source`` (which nobody is connected to)."""

    def drop(self, name: str) -> None:
        """Drop database ``name``; only ever called with names this backend created."""

    def close(self) -> None:
        """Drop every database this backend created and release its resources."""

    def describe(self) -> str:
        """One line for the report header (no password)."""
