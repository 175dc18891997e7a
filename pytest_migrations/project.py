"""The user's Alembic project on disk: where its config is, and what its env.py needs.

An :class:`AlembicProject` is everything that can be known without a database: the
config file(s) (``alembic.ini``, ``[tool.alembic]`` in ``pyproject.toml``, or both, as
the ``pyproject`` template writes them), the script directory, the revision graph, and
the shape of ``env.py`` (sync or async, one database or the ``multidb`` template's
several). It is built once per process and shared by every check.
"""

from __future__ import annotations

import argparse
import importlib
import re
import sys
from collections.abc import Callable
from configparser import Error as ConfigParserError
from functools import cached_property
from pathlib import Path
from typing import Any

from alembic.config import Config
from alembic.script import ScriptDirectory
from alembic.util import CommandError
from sqlalchemy.engine import URL

from .exceptions import ConfigurationError, RevisionGraphError
from .history import RevisionGraph, load_graph
from .location import ProjectLocation

_ASYNC_ENV = re.compile(r"async_engine_from_config|create_async_engine|AsyncEngine|run_sync\(")


def _anchor_relative_location(config: Config, location: str, loc: ProjectLocation) -> None:
    """A relative script_location is relative to the working directory for Alembic.

    ``alembic`` is run from the project's root; pytest may not be. When the folder is not
    found from the working directory but is next to the config file, use that one.
    """
    path = Path(location)
    if path.is_absolute() or ":" in location or path.is_dir():
        return
    config_file = loc.ini or loc.toml
    assert config_file is not None
    beside = config_file.parent / path
    if beside.is_dir():
        config.set_main_option("script_location", str(beside).replace("%", "%%"))


class AlembicProject:
    """One Alembic environment: config, scripts, graph and env.py, without a database."""

    def __init__(
        self,
        location: ProjectLocation,
        irreversible: tuple[str, ...] = (),
        url_variable: str | None = None,
        x_arguments: tuple[str, ...] = (),
        collection_url: URL | None = None,
    ) -> None:
        self.location = location
        self._irreversible = irreversible
        self.url_variable = url_variable
        """An environment variable env.py reads its URL from; set to the test database while env.py runs."""
        self.x_arguments = x_arguments
        """``-x key=value`` arguments env.py reads with ``context.get_x_argument()``."""
        self.collection_url = collection_url
        """A URL of the first database kind under test, never connected to: what env.py and the URL
        variable are given while the revision files are loaded (default: a SQLite file), see :mod:`.probe`."""
        self.commits_verified = False
        """A run of env.py was read back from a second connection and had committed what it applied."""
        self.customize: Callable[[Config, dict[str, URL]], None] | None = None
        """Called with every Config pointed at test databases (the ``pytest_migrations_configure_alembic`` hook)."""
        self._graph: RevisionGraph | RevisionGraphError | None = None
        config = self.make_config()
        try:
            self.script = ScriptDirectory.from_config(config)
        except CommandError as exc:
            where = config.get_alembic_option("script_location")
            raise ConfigurationError(
                f"script_location {where} (from {location.describe}) is not a directory ({exc}); "
                "fix script_location, or run `alembic init` there"
            ) from exc

    def make_config(self) -> Config:
        """A fresh :class:`~alembic.config.Config`, validated: the section and script_location exist."""
        loc = self.location
        config = Config(
            file_=str(loc.ini) if loc.ini else None,
            toml_file=str(loc.toml) if loc.toml else None,
            ini_section=loc.section,
        )
        if loc.ini is not None:
            try:
                has_section = config.file_config.has_section(loc.section)
            except ConfigParserError as exc:
                raise ConfigurationError(f"{loc.ini} cannot be parsed: {exc}") from exc
            if not has_section and loc.toml is None:
                sections = ", ".join(config.file_config.sections()) or "none"
                raise ConfigurationError(
                    f"{loc.ini} has no [{loc.section}] section (sections: {sections}); "
                    "fix --migrations-section / migrations_section"
                )
        try:
            location = config.get_alembic_option("script_location")
        except CommandError as exc:
            raise ConfigurationError(f"{loc.describe}: {exc}") from exc
        if not location:
            raise ConfigurationError(
                f"{loc.describe} sets no script_location in [{loc.section}]; "
                "add script_location = <folder with env.py and versions/>"
            )
        _anchor_relative_location(config, location, loc)
        if self.x_arguments:
            # What `alembic -x key=value` sets, read by env.py through context.get_x_argument().
            config.cmd_opts = argparse.Namespace(x=list(self.x_arguments))
        return config

    @property
    def script_location(self) -> Path:
        return Path(self.script.dir)

    @property
    def env_path(self) -> Path:
        return self.script_location / "env.py"

    def check_layout(self) -> None:
        """Raise :class:`ConfigurationError` unless the script directory and env.py exist."""
        if not self.script_location.is_dir():
            raise ConfigurationError(
                f"script_location {self.script_location} (from {self.location.describe}) is not a directory; "
                "fix script_location, or run `alembic init` there"
            )
        if not self.env_path.is_file():
            raise ConfigurationError(f"{self.env_path} does not exist; every Alembic environment needs an env.py")

    @property
    def graph(self) -> RevisionGraph:
        """The revision graph; raises :class:`~pytest_migrations.exceptions.RevisionGraphError` when broken.

        Loaded once: Alembic memoizes its revision map and warns about duplicates only
        the first time, so a failure is kept and raised again rather than recomputed.
        """
        if self._graph is None:
            try:
                self.check_layout()
                self._graph = self._load_graph()
            except RevisionGraphError as exc:
                self._graph = exc
        if isinstance(self._graph, RevisionGraphError):
            raise self._graph
        return self._graph

    def _load_graph(self) -> RevisionGraph:
        """Load the revision files; if one fails to import, run env.py as ``alembic`` would first, and retry.

        Only on failure: a history whose files import on their own loads exactly as
        before, without running env.py's module-level code (application imports,
        settings, logging) at collection in every process. ``alembic`` runs env.py
        before loading any revision, so the retry sees what ``alembic upgrade`` sees.
        """
        from .probe import fails_to_import, probe_env, still_failing, url_variable

        with url_variable(self):
            try:
                return load_graph(self.script, self._irreversible)
            except RevisionGraphError as exc:
                if not fails_to_import(exc):
                    raise
            # No reset is needed between the loads: Alembic memoizes the revision map only when
            # it was built (a failed build stores nothing, and heads/bases are set at its end),
            # and revision modules are not kept in sys.modules, so the retry imports every file anew.
            results = []
            for offline in (True, False):
                results.append(probe_env(self, offline=offline))
                importlib.invalidate_caches()  # env.py may have created folders or files to import from
                try:
                    return load_graph(self.script, self._irreversible)
                except RevisionGraphError as exc:
                    if not fails_to_import(exc):
                        raise
                    failure = exc
            # The offline run is the one that says more: online, env.py stops at its connection.
            raise still_failing(failure, results[0]) from failure.__cause__

    @cached_property
    def env_source(self) -> str:
        return self.env_path.read_text(encoding="utf-8", errors="replace")

    @property
    def is_async(self) -> bool:
        """Whether env.py builds an async engine (the ``async`` templates): it then needs an async driver."""
        return bool(_ASYNC_ENV.search(self.env_source))

    @cached_property
    def database_names(self) -> tuple[str, ...]:
        """The config sections env.py reads ``sqlalchemy.url`` from.

        One (the main section) for every template but ``multidb``, whose ``databases``
        option lists one section per database.
        """
        config = self.make_config()
        names = config.get_main_option("databases", "") or ""
        listed = tuple(n for n in re.split(r",\s*", names.strip()) if n)
        return listed or (self.location.section,)

    @property
    def is_multidb(self) -> bool:
        return self.database_names != (self.location.section,)


def ensure_importable(project: AlembicProject) -> None:
    """Make the project's own modules importable the way the ``alembic`` command does.

    ``prepend_sys_path`` is applied by :meth:`ScriptDirectory.from_config`; a project
    without it still expects its config directory on ``sys.path`` when run from there.
    """
    root = str((project.location.ini or project.location.toml or Path.cwd()).parent)
    if root not in sys.path:
        sys.path.insert(0, root)


def import_object(path: str, default_attribute: str | None = None) -> Any:
    """The object ``package.module:attribute.path`` names (the module itself, or ``default_attribute``, without one).

    :raises ImportError, AttributeError: for the caller to word for its setting.
    """
    module_name, _, attribute = path.partition(":")
    obj: Any = importlib.import_module(module_name)
    for part in (attribute or default_attribute or "").split("."):
        if part:
            obj = getattr(obj, part)
    return obj
