"""Masking: one function hides every password the plugin may print, however the URL spells it."""

from __future__ import annotations

import pytest
from sqlalchemy import make_url

from pytest_migrations.providers import with_driver
from pytest_migrations.urls import (
    SecretURL,
    as_application_url,
    mask,
    mask_passwords,
    password_in_field,
    server_url_text,
)

from ..helpers import Project

SECRET = "pw-S3cret-Zq9"


@pytest.mark.parametrize(
    "text",
    [
        f"postgresql://u:{SECRET}@h/db",
        f"postgresql+psycopg2://u:{SECRET}@h:5432/db?sslmode=require",
        f"postgresql://u@h/db?password={SECRET}",
        f"postgresql://u@h/db?sslmode=require&password={SECRET}",
        f"mysql://root@h/?passwd={SECRET}",
        f"mysql+pymysql://root@h/?charset=utf8mb4&pwd={SECRET}",
        f"u:{SECRET}@h/db",
        f"postgresql://u:{SECRET}@h:notaport/db",
    ],
)
def test_mask_hides_the_password_of_any_url_form(text: str) -> None:
    """A password in the user part, in a password/passwd/pwd query parameter or in a scheme-less URL is hidden."""
    assert SECRET not in mask(text)
    assert SECRET not in mask_passwords(f"cannot connect to {text}: refused")
    assert "***" in mask_passwords(f"cannot connect to {text}: refused")


def test_mask_keeps_what_is_no_password() -> None:
    """User, host, port, database and harmless parameters stay readable; text without a URL is unchanged."""
    assert mask("postgresql://u@h:5432/db?sslmode=require") == "postgresql://u@h:5432/db?sslmode=require"
    assert mask("mysql://root@127.0.0.1:3306/") == "mysql://root@127.0.0.1:3306/"
    assert mask(f"postgresql://u@h/db?password={SECRET}") == "postgresql://u:***@h/db"
    assert mask_passwords("error at line 3: ada@example.com is taken") == "error at line 3: ada@example.com is taken"
    assert mask_passwords(f"two: mysql://a:{SECRET}@h/ and postgresql://b:x@k/d") == (
        "two: mysql://a:***@h/ and postgresql://b:***@k/d"
    )


def test_a_password_query_parameter_becomes_the_urls_password() -> None:
    """A server URL read with ?password= carries it in its password field, so SQLAlchemy's own repr hides it."""
    url = with_driver(make_url(f"postgresql://u@h/db?password={SECRET}&sslmode=require"))
    assert url.password == SECRET
    assert dict(url.query) == {"sslmode": "require"}
    assert SECRET not in repr(url)
    assert password_in_field(make_url(f"mysql://root@h/?passwd={SECRET}")).password == SECRET


def test_server_url_text_keeps_the_url_and_masks_its_repr() -> None:
    """The URL text settings keep connects as given, but its repr (dataclasses, --showlocals) is masked."""
    text = server_url_text(f"postgresql://u@h/db?password={SECRET}")
    assert isinstance(text, SecretURL)
    assert make_url(text).password == SECRET
    assert SECRET not in repr(text)
    assert SECRET not in repr({"postgresql": text})
    assert SECRET not in repr(server_url_text(f"u:{SECRET}@h/db"))


@pytest.mark.parametrize("url", [f"u:{SECRET}@h/db", f"postgresql://u:{SECRET}@h:notaport/db"])
def test_bad_migrations_url_usage_error_masks_the_password(project: Project, url: str) -> None:
    """A --migrations-url that is not a server URL is a usage error that shows the URL with its password masked."""
    project.revision("a1")
    result = project.run("--migrations-url", url)
    output = result.stdout.str() + result.stderr.str()
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert "--migrations-url" in output
    assert SECRET not in output
    assert "***" in output


def test_the_url_an_application_gets_names_no_driver_sqlalchemy_would_pick_anyway() -> None:
    """As migrations_url_variable hands it to env.py: the default driver is left out, any other is kept."""
    own = make_url("postgresql://").get_dialect().driver
    other = {"psycopg": "psycopg2", "psycopg2": "psycopg"}[own]
    url = make_url(f"postgresql+{own}://app:secret@db/app_test")
    assert as_application_url(url).render_as_string(hide_password=False) == "postgresql://app:secret@db/app_test"
    kept = make_url(f"postgresql+{other}://app@db/x")
    assert as_application_url(kept) == kept
    assert str(as_application_url(make_url("postgresql+asyncpg://app@db/x"))) == "postgresql+asyncpg://app@db/x"
    assert str(as_application_url(make_url("sqlite:///app.db"))) == "sqlite:///app.db"
