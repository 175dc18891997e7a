"""Providers: where a database server comes from.

This is the other axis (see :mod:`pytest_migrations.backends`): a server is reached
through an *admin URL*, whatever started it.

=============  ==========================================================================
``url``        a server the user already has (``--migrations-url``, ini, environment)
``container``  a testcontainers container, one per run, shared by every xdist worker
``local``      a throwaway server process (``initdb``/``pg_ctl``, ``mariadb-install-db``/
               ``mariadbd``) in a temporary directory, for machines without Docker
=============  ==========================================================================

``auto`` picks the URL when one is given, else a container when Docker answers, else
local binaries, and says which in the report header. A server the plugin started is
stopped at the end of the run, including after Ctrl-C.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy.engine import URL, make_url

from ..exceptions import ConfigurationError, ProviderError
from ..urls import password_in_field

SERVER_DIALECTS = ("postgresql", "mysql")
DEFAULT_DRIVERS = {"postgresql": "postgresql+psycopg2", "mysql": "mysql+pymysql"}
"""The driver a URL without one gets when none of :data:`_PREFERRED` is installed: the one the
error message then asks to install."""

_PREFERRED = {"postgresql": ("psycopg2", "psycopg"), "mysql": ("mysqldb", "pymysql")}
"""Drivers a URL without one may get when SQLAlchemy's own choice is not installed, the first
installed wins."""

_DBAPI_MODULES = {"mysqldb": "MySQLdb"}
"""The module a driver's name stands for, where the two differ."""


@functools.cache
def sqlalchemy_driver(dialect: str) -> str | None:
    """The driver SQLAlchemy gives ``dialect://`` (``None``: a dialect it does not know by that name)."""
    from sqlalchemy.dialects import registry

    try:
        return str(registry.load(dialect).driver)
    except Exception:  # NoSuchModuleError, or a third-party dialect that fails to load
        return None


@functools.cache
def driver_for(dialect: str) -> str:
    """``dialect+driver`` for a server URL that names no driver.

    Drivers differ in what a migration may send (mysqlclient runs several statements in one
    ``op.execute``, PyMySQL refuses them), so a history tested through another driver than
    production's can fail where production does not. A driverless URL therefore takes the
    driver SQLAlchemy itself gives it, when that driver is installed: mysqlclient for
    ``mysql://``, and for ``postgresql://`` psycopg2 under SQLAlchemy 2.0, psycopg (3) under
    2.1. Otherwise the first installed of :data:`_PREFERRED`.
    """
    import importlib.util

    own = sqlalchemy_driver(dialect)
    for driver in (*((own,) if own else ()), *(d for d in _PREFERRED.get(dialect, ()) if d != own)):
        if importlib.util.find_spec(_DBAPI_MODULES.get(driver, driver)) is not None:
            return f"{dialect}+{driver}"
    return DEFAULT_DRIVERS.get(dialect, dialect)


@dataclass
class Server:
    """A running server: its admin URL and how to stop it (``None``: not ours to stop)."""

    dialect: str
    admin_url: URL
    """Creates, clones and drops the plugin's databases (never handed to env.py)."""
    source: str
    """``url``, ``container`` or ``local``: shown in the report header."""
    detail: str = ""
    stop: Callable[[], None] | None = field(default=None, repr=False)
    run_url: URL | None = None
    """The credentials migrations run with, when they differ from the admin's (MySQL's per-run user)."""
    run_user_note: str = ""
    """How migrations are fenced on this server (or why they are not), for the report header."""


_ALIASES = {"postgres": "postgresql", "mariadb": "mysql"}


def dialect_of(url: str | URL) -> str:
    """``postgresql`` or ``mysql`` (MariaDB included) for a server URL; ``postgres://`` counts too."""
    backend = make_url(url).drivername.split("+")[0]
    return _ALIASES.get(backend, backend)


def with_driver(url: URL) -> URL:
    """A URL without an explicit driver gets the plugin's default sync driver.

    A ``password`` (or ``passwd``) query parameter is moved into the password field, so
    every URL derived from a server URL masks it when printed.
    """
    url = password_in_field(url)
    if url.drivername.split("+")[0] == "postgres":  # Heroku-style URLs; SQLAlchemy wants postgresql
        url = url.set(drivername=url.drivername.replace("postgres", "postgresql", 1))
    if "+" in url.drivername:
        return url
    dialect = dialect_of(url)
    return url.set(drivername=driver_for(dialect) if dialect in DEFAULT_DRIVERS else url.drivername)


def start_server(
    dialect: str, provider: str, url: str | None, image: str, workdir: Path | None, timeout: float = 60.0
) -> Server:
    """Reach or start a ``dialect`` server the way ``provider`` says."""
    if url:
        return Server(dialect, with_driver(make_url(url)), "url")
    if provider == "url":
        raise ConfigurationError(
            f"--migrations-provider url needs a {dialect} URL: pass --migrations-url "
            f"{dialect}://user:password@host:port/ or set PYTEST_MIGRATIONS_{dialect.upper()}_URL"
        )
    from . import containers, local

    if provider == "container":
        return containers.start(dialect, image, timeout)
    if provider == "local":
        return local.start(dialect, workdir, timeout)
    if containers.docker_available():
        return containers.start(dialect, image, timeout)
    if local.binaries_available(dialect):
        return local.start(dialect, workdir, timeout)
    raise ProviderError(
        f"no {dialect} server: no URL was given, Docker does not answer, and no local {dialect} binaries were "
        f"found. Either pass a server URL (--migrations-url {dialect}://user:password@host/), start Docker "
        f"(the plugin then runs {image}), or install the {dialect} server binaries "
        "(the plugin then runs a throwaway server process)"
    )
