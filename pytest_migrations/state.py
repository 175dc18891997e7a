"""Per-run state kept on ``config.stash`` and the accessors the fixtures and hooks share."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from .exceptions import ConfigurationError
from .location import locate_project
from .settings import Settings

if TYPE_CHECKING:
    from .project import AlembicProject
    from .servers import ServerPool

# The project and the servers import SQLAlchemy and Alembic: imported where first needed,
# never at pytest's start (see .catalog).
settings_key = pytest.StashKey[Settings]()
project_key = pytest.StashKey["AlembicProject"]()
pool_key = pytest.StashKey["ServerPool"]()


def worker_id(config: pytest.Config) -> str | None:
    """The xdist worker id (``gw0``...), or ``None`` without xdist."""
    workerinput = getattr(config, "workerinput", None)
    return workerinput.get("workerid") if workerinput else None


def get_pool(config: pytest.Config) -> ServerPool:
    """The run's servers: owned here, or (in an xdist worker) received from the controller."""
    if pool_key not in config.stash:
        from .servers import ServerPool

        settings = config.stash[settings_key]
        pool = ServerPool(settings.urls, settings.provider, settings.images, settings.timeout)
        workerinput = getattr(config, "workerinput", None)
        if workerinput and "pytest_migrations" in workerinput:
            pool = ServerPool.from_workerinput(workerinput["pytest_migrations"], pool)
        config.stash[pool_key] = pool
    return config.stash[pool_key]


def get_project(config: pytest.Config) -> AlembicProject:
    """The Alembic project of this run, located and loaded once."""
    if project_key not in config.stash:
        from .probe import placeholder_url
        from .project import AlembicProject, ensure_importable

        settings = config.stash[settings_key]
        location = locate_project(config.rootpath, settings.config_path, settings.section, config.invocation_params.dir)
        database = settings.databases[0]
        project = AlembicProject(
            location,
            settings.irreversible,
            settings.url_variable,
            settings.x_arguments,
            collection_url=placeholder_url(database, settings.urls.get(database)),
        )
        project.customize = lambda alembic_config, urls: config.hook.pytest_migrations_configure_alembic(
            config=config, alembic_config=alembic_config, urls=urls
        )
        project.check_layout()
        ensure_importable(project)
        config.stash[project_key] = project
    return config.stash[project_key]


def try_project(config: pytest.Config) -> AlembicProject | None:
    try:
        return get_project(config)
    except ConfigurationError:
        return None
