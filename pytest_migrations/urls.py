"""Database URLs: masking passwords and telling two URLs' databases apart.

Every URL the plugin prints, or keeps where it may be printed (an error message, a
report header, a ``repr``), goes through :func:`mask` (a URL) or :func:`mask_passwords`
(free text that may hold URLs). Both hide a password wherever it is written:

- ``scheme://user:password@host`` and a scheme-less ``user:password@host/db``;
- query parameters ``?password=...``, ``passwd``, ``pwd`` and ``sslpassword``.

Server URLs are also normalised when they are read (:func:`password_in_field`): a
``password`` (or ``passwd``) query parameter is moved into the URL's password field,
so that everything downstream, SQLAlchemy's own ``repr`` included, hides it.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy.engine import URL, make_url

SECRET_PARAMETERS = ("password", "passwd", "pwd", "sslpassword")
"""Query parameters whose value is a secret (masked wherever they appear)."""

_MOVED_PARAMETERS = ("password", "passwd")
"""Query parameters that mean the URL's password: moved into its password field when a URL is read."""

_PASSWORD_IN_URL = re.compile(
    r"(?P<head>(?:\b[a-z][a-z0-9+.-]*://)?(?<![\w.+-])[^\s:/@'\"<>()\[\]]+:)(?P<pw>[^\s@/'\"][^\s'\"]*)(?P<tail>@)",
    re.I,
)
_PASSWORD_PARAMETER = re.compile(
    rf"(?P<head>(?<![\w-])(?:{'|'.join(SECRET_PARAMETERS)})=)(?P<pw>[^&;\s'\"]+)",
    re.I,
)


def mask(url: URL | str) -> str:
    """The URL as text with every password replaced by ``***``: the only form the plugin prints."""
    if isinstance(url, str):
        try:
            parsed = make_url(url)
        except Exception:  # a string that is not a URL is masked textually
            return mask_passwords(url)
        return mask(parsed)
    return mask_passwords(password_in_field(url).render_as_string(hide_password=True))


def mask_passwords(text: str) -> str:
    """Mask every password in free text: ``[scheme://]user:password@`` and ``password=...`` parameters."""
    text = _PASSWORD_IN_URL.sub(lambda m: m.group(0) if m["pw"] == "***" else f"{m['head']}***{m['tail']}", text)
    return _PASSWORD_PARAMETER.sub(r"\g<head>***", text)


def password_in_field(url: URL) -> URL:
    """``url`` with a ``password``/``passwd`` query parameter moved into its password field.

    The query value wins over a password in the URL itself, as it does for the drivers
    (psycopg2 lets query parameters override the URL's parts).
    """
    found = [key for key in url.query if key.lower() in _MOVED_PARAMETERS]
    if not found:
        return url
    value = url.query[found[-1]]
    password = value[-1] if isinstance(value, tuple) else value
    return url.difference_update_query(found).set(password=password)


class SecretURL(str):
    """A URL kept as text whose ``repr`` is masked: safe in a dataclass, a local shown by ``--showlocals``, a log."""

    __slots__ = ()

    def __repr__(self) -> str:
        return repr(mask(str(self)))


def server_url_text(text: str) -> SecretURL:
    """A server URL as given, read once: a ``password`` query parameter moved into the password field.

    Text that is not a URL is kept as it is (the caller reports it, masked).
    """
    try:
        url = make_url(text)
    except Exception:
        return SecretURL(text)
    return SecretURL(password_in_field(url).render_as_string(hide_password=False) if url.query else text)


def database_identity(url: URL) -> tuple[str, ...]:
    """What makes two URLs name the same database, whatever the driver or credentials."""
    backend = url.get_backend_name()
    if backend == "sqlite":
        database = url.database or ""
        if database in ("", ":memory:") or database.startswith("file:"):
            return ("sqlite", database)
        return ("sqlite", os.path.realpath(database))
    backend = "mysql" if backend == "mariadb" else backend
    return (backend, (url.host or "localhost").lower(), str(url.port or ""), url.database or "")


def sync_url(url: URL) -> URL:
    """``url`` with a synchronous driver: the plugin's own connections beside an async env.py."""
    if not url.get_dialect().is_async:
        return url
    from .providers import with_driver

    return with_driver(url.set(drivername=url.get_backend_name()))


def as_application_url(url: URL) -> URL:
    """``url`` as an application's own settings spell it: without the driver when it is SQLAlchemy's default.

    The plugin names the driver it chose (``postgresql+psycopg2://``); many apps check
    the scheme of their ``DATABASE_URL`` (``must be postgresql``) and would refuse it, while
    ``create_engine`` resolves ``postgresql://`` to that same driver. A driver that is not
    the default (``+asyncpg``, ``+pymysql`` where mysqlclient is missing) stays.
    """
    from .providers import sqlalchemy_driver

    backend = url.get_backend_name()
    if url.drivername != backend and url.get_driver_name() == sqlalchemy_driver(backend):
        return url.set(drivername=backend)
    return url


@contextmanager
def url_in_environment(name: str | None, url: URL) -> Iterator[None]:
    """Set environment variable ``name`` (when given) to ``url`` for the block; put back what was there."""
    if not name:
        yield
        return
    previous = os.environ.get(name)
    os.environ[name] = as_application_url(url).render_as_string(hide_password=False)
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = previous
