"""SQLite: one file per database, in a directory the plugin owns; a clone is a file copy."""

from __future__ import annotations

import shutil
from pathlib import Path

from sqlalchemy.engine import URL

_SIDE_FILES = ("", "-journal", "-wal", "-shm")


class SQLiteBackend:
    """Databases are files in ``directory``; nothing outside it is ever written or removed."""

    dialect = "sqlite"

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.directory.mkdir(parents=True, exist_ok=True)
        self._created: set[str] = set()

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

    def describe(self) -> str:
        return f"sqlite (files under {self.directory})"
