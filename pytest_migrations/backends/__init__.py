"""Backends: how throwaway databases are made, cloned and dropped on one kind of server.

This is one of two independent axes (see STYLE.md §8). A *provider* says where a server
comes from (a URL, a container, a local process); a *backend* says how isolated databases
are made on it. Every backend names its databases with :func:`database_name`, so that
what a run created can be recognised and removed, and nothing else is ever touched.

Ownership is proven by two things together, never by a name prefix alone:

- the name has the exact form :data:`OWN_DATABASE`,
  ``pytest_migrations_<run>_<main|gwN>_<serial>[_<section>]``, where ``<run>`` is a run id
  of 8 lowercase hex characters (:func:`run_id`);
- on servers, the database carries the plugin's *marker*, :func:`marker` (a database
  comment ``pytest-migrations run <run>``), whose run id is the name's.

A database of a dead run is dropped by a later run only when both hold and that run's
lock is free (see :mod:`pytest_migrations.servers`).
"""

from __future__ import annotations

import hashlib
import os
import re
import uuid
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from sqlalchemy.engine import URL

#: Every database the plugin creates starts with this prefix.
PREFIX = "pytest_migrations"

RUN_ID = re.compile(r"^[0-9a-f]{8}$")
"""A run id: 8 lowercase hex characters."""

OWN_DATABASE = re.compile(
    rf"^{PREFIX}_(?P<run>[0-9a-f]{{8}})_(?P<worker>main|gw[0-9]+)_(?P<serial>[0-9]+)(?:_(?P<section>[a-z0-9_]+))?$"
)
"""The exact form of the name of every database the plugin creates."""

MARKER = "pytest-migrations run {run}"
_MARKER = re.compile(r"^pytest-migrations run (?P<run>[0-9a-f]{8})$")

_ENVIRONMENT = "PYTEST_MIGRATIONS_RUN_ID"


_PARENT = os.getppid()
"""The process that started this one: for an xdist worker, its controller."""


def controller_alive() -> bool:
    """False in an xdist worker whose controller died (the worker was handed to another parent)."""
    return not os.environ.get("PYTEST_XDIST_WORKER") or os.getppid() == _PARENT


def run_id() -> str:
    """A short id unique to this test run (shared by xdist workers through the environment).

    ``PYTEST_MIGRATIONS_RUN_ID`` may name it; it must be 8 lowercase hex characters (as
    ``uuid.uuid4().hex[:8]`` gives). Any other value is *replaced*, deterministically, by
    the first 8 hex characters of its SHA-256 (``deadbeef`` stays ``deadbeef``, ``CI-42``
    becomes the same 8 hex characters in every process), and the environment variable is
    set to the replacement so that child processes agree. A run id is thus always safe to
    put in a database name, a lock key and a user name.
    """
    value = os.environ.get(_ENVIRONMENT)
    if not value:
        value = uuid.uuid4().hex[:8]
    elif not RUN_ID.match(value):
        value = hashlib.sha256(value.encode()).hexdigest()[:8]
    os.environ[_ENVIRONMENT] = value
    return value


def database_name(run: str, worker: str | None, serial: int, section: str | None = None) -> str:
    """``pytest_migrations_<run>_<worker>_<serial>[_<section>]``: recognisable and collision-free.

    :raises ValueError: for a run id or worker id outside :data:`OWN_DATABASE`'s form.
    """
    worker = worker or "main"
    if not RUN_ID.match(run) or not re.fullmatch(r"main|gw[0-9]+", worker):
        raise ValueError(f"not a run id and worker id of the plugin's: {run!r}, {worker!r}")
    parts = [PREFIX, run, worker, str(int(serial))]
    if section:
        part = re.sub(r"[^a-z0-9]+", "_", section.lower()).strip("_")
        parts.append(part or "s" + hashlib.sha256(section.encode()).hexdigest()[:8])
    name = "_".join(parts)
    assert OWN_DATABASE.match(name), name
    return name


def run_of(name: str) -> str | None:
    """The run id of a database name of the plugin's exact form, else ``None``."""
    match = OWN_DATABASE.match(name)
    return match["run"] if match else None


def marker(run: str) -> str:
    """The comment every database the plugin creates on a server carries: ``pytest-migrations run <run>``."""
    if not RUN_ID.match(run):
        raise ValueError(f"not a run id: {run!r}")
    return MARKER.format(run=run)


def marker_run(comment: str | None) -> str | None:
    """The run id a database comment names, when it is exactly the plugin's marker; else ``None``."""
    match = _MARKER.match(comment or "")
    return match["run"] if match else None


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
