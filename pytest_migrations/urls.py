"""Database URLs: masking passwords and telling two URLs' databases apart."""

from __future__ import annotations

import os
import re

from sqlalchemy.engine import URL, make_url

_PASSWORD_IN_URL = re.compile(r"(?P<head>[a-z][a-z0-9+.-]*://[^:/@\s]*:)(?P<pw>[^@\s]+)(?P<tail>@)", re.I)


def mask(url: URL | str) -> str:
    """The URL as text with its password replaced by ``***``: the only form the plugin prints."""
    if isinstance(url, str):
        try:
            return make_url(url).render_as_string(hide_password=True)
        except Exception:  # a string that is not a URL is masked textually
            return mask_passwords(url)
    return url.render_as_string(hide_password=True)


def mask_passwords(text: str) -> str:
    """Mask every ``scheme://user:password@`` found in free text."""
    return _PASSWORD_IN_URL.sub(r"\g<head>***\g<tail>", text)


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
