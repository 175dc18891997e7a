"""SQLite: one file per database, in a directory the plugin owns; a clone is a file copy.

Throwaway databases need no durability: connections to files in an owned directory
(whoever opens them, including the user's env.py) get ``synchronous=OFF`` and an
in-memory journal, which removes an fsync per committed migration step. Connections to
any other SQLite file are left exactly as they are.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import URL, Engine

_SIDE_FILES = ("", "-journal", "-wal", "-shm")
_OWNED_DIRECTORIES: set[str] = set()


def _fast_throwaway_connection(dbapi_connection: Any, _record: Any) -> None:
    if not _OWNED_DIRECTORIES or not isinstance(dbapi_connection, sqlite3.Connection):
        return
    row = dbapi_connection.execute("PRAGMA database_list").fetchone()
    if row and row[2] and os.path.dirname(os.path.realpath(row[2])) in _OWNED_DIRECTORIES:
        dbapi_connection.execute("PRAGMA synchronous=OFF")
        dbapi_connection.execute("PRAGMA journal_mode=MEMORY")


def owned_directories() -> set[str]:
    """The folders whose SQLite files belong to the plugin in this process."""
    return set(_OWNED_DIRECTORIES)


class SQLiteBackend:
    """Databases are files in ``directory``; nothing outside it is ever written or removed."""

    dialect = "sqlite"

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.directory.mkdir(parents=True, exist_ok=True)
        self._created: set[str] = set()
        _OWNED_DIRECTORIES.add(os.path.realpath(directory))
        if not event.contains(Engine, "connect", _fast_throwaway_connection):
            event.listen(Engine, "connect", _fast_throwaway_connection)

    def _path(self, name: str) -> Path:
        return self.directory / f"{name}.db"

    def url(self, name: str) -> URL:
        return URL.create("sqlite", database=str(self._path(name)))

    def create(self, name: str) -> URL:
        self.drop(name)
        self._path(name).touch()
        self._created.add(name)
        return self.url(name)

    def clone(self, source: str, name: str) -> URL:
        self.drop(name)
        shutil.copyfile(self._path(source), self._path(name))
        self._created.add(name)
        return self.url(name)

    def drop(self, name: str) -> None:
        for suffix in _SIDE_FILES:
            Path(f"{self._path(name)}{suffix}").unlink(missing_ok=True)
        self._created.discard(name)

    def close(self) -> None:
        for name in list(self._created):
            self.drop(name)
        _OWNED_DIRECTORIES.discard(os.path.realpath(self.directory))

    def describe(self) -> str:
        return f"sqlite (files under {self.directory})"
