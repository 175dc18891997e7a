"""Where the Alembic project is: an explicit config path, else ``alembic.ini`` / ``pyproject.toml``.

Kept apart from :mod:`.project` (which loads the project with Alembic) because pytest's
report header asks on every run, with or without ``--migrations``: finding the files
reads the folder, and must not import Alembic (see :mod:`.catalog`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .exceptions import ConfigurationError

__all__ = ["ProjectLocation", "locate_project"]


@dataclass(frozen=True)
class ProjectLocation:
    """Which files configure the Alembic project."""

    ini: Path | None
    toml: Path | None
    section: str = "alembic"

    @property
    def describe(self) -> str:
        files = [str(p) for p in (self.ini, self.toml) if p is not None]
        return " + ".join(files)


def locate_project(
    rootdir: Path, explicit: Path | None, section: str, invocation_dir: Path | None = None
) -> ProjectLocation:
    """Find the Alembic config: an explicit path, else ``alembic.ini`` / ``pyproject.toml`` in ``rootdir``.

    When the rootdir has neither, the folder pytest was started in is tried, where the
    ``alembic`` command would look: pytest moves the rootdir up to the common ancestor
    of every path on its command line, so ``--migrations-report ../out/report.json``
    (once that file exists) makes the rootdir a folder above the project.
    """
    if explicit is not None:
        if not explicit.is_file():
            raise ConfigurationError(
                f"the Alembic config {explicit} does not exist; fix --migrations-config / migrations_config"
            )
        if explicit.suffix == ".toml":
            ini = explicit.parent / "alembic.ini"
            return ProjectLocation(ini if ini.is_file() else None, explicit, section)
        toml = explicit.parent / "pyproject.toml"
        return ProjectLocation(explicit, toml if _has_tool_alembic(toml) else None, section)
    for folder in dict.fromkeys(d for d in (rootdir, invocation_dir) if d is not None):
        ini = folder / "alembic.ini"
        toml = folder / "pyproject.toml"
        found = ProjectLocation(ini if ini.is_file() else None, toml if _has_tool_alembic(toml) else None, section)
        if found.ini is not None or found.toml is not None:
            return found
    nearby = _nearby_configs(rootdir)
    hint = f"; found {', '.join(str(p.relative_to(rootdir)) for p in nearby)}" if nearby else ""
    raise ConfigurationError(
        f"no alembic.ini and no [tool.alembic] in pyproject.toml under {rootdir}{hint}; "
        "point the plugin at your Alembic config with --migrations-config PATH "
        "(or migrations_config = PATH in the pytest ini)"
    )


_SKIP_DIRS = {".git", ".venv", "venv", "node_modules", "site-packages", "__pycache__", ".tox", ".nox"}


def _nearby_configs(rootdir: Path, depth: int = 3) -> list[Path]:
    """alembic.ini files a few folders below ``rootdir``, to name in the error."""
    found: list[Path] = []
    level = [rootdir]
    for _ in range(depth):
        children: list[Path] = []
        for folder in level:
            try:
                entries = sorted(folder.iterdir())
            except OSError:
                continue
            for entry in entries:
                if entry.is_dir() and entry.name not in _SKIP_DIRS and not entry.name.startswith("."):
                    children.append(entry)
                    if (entry / "alembic.ini").is_file():
                        found.append(entry / "alembic.ini")
        level = children
    return found[:5]


def _has_tool_alembic(toml: Path) -> bool:
    if not toml.is_file():
        return False
    try:
        import tomllib
    except ImportError:  # Python 3.10: alembic reads pyproject.toml with tomli there
        try:
            import tomli as tomllib  # type: ignore[import-not-found,no-redef,unused-ignore]
        except ImportError:
            return False
    try:
        data = tomllib.loads(toml.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, OSError):
        return False
    return "alembic" in data.get("tool", {})
