"""Per-run state kept on ``config.stash`` and the accessors the fixtures and hooks share."""

from __future__ import annotations

import pytest

from .exceptions import ConfigurationError
from .project import AlembicProject, ensure_importable, locate_project
from .settings import Settings

settings_key = pytest.StashKey[Settings]()
project_key = pytest.StashKey[AlembicProject]()


def worker_id(config: pytest.Config) -> str | None:
    """The xdist worker id (``gw0``...), or ``None`` without xdist."""
    workerinput = getattr(config, "workerinput", None)
    return workerinput.get("workerid") if workerinput else None


def get_project(config: pytest.Config) -> AlembicProject:
    """The Alembic project of this run, located and loaded once."""
    if project_key not in config.stash:
        settings = config.stash[settings_key]
        location = locate_project(config.rootpath, settings.config_path, settings.section)
        project = AlembicProject(location, settings.irreversible)
        project.check_layout()
        ensure_importable(project)
        config.stash[project_key] = project
    return config.stash[project_key]


def try_project(config: pytest.Config) -> AlembicProject | None:
    try:
        return get_project(config)
    except ConfigurationError:
        return None
