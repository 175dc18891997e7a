"""Settings: every option and ini key, resolved once (command line > ini > default) and validated."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import pytest

from .catalog import CHECKS, DATABASES, DEFAULT_IMAGES, DEFAULT_ROWS
from .policy import Policy, parse_accept_lines

if TYPE_CHECKING:
    import sqlalchemy as sa

    from .data import DataSettings, UserRows

# SQLAlchemy, and what imports it, is imported where a setting needs it: a run without
# --migrations reads these settings too, and must not pay for importing it (see .catalog).
__all__ = ["DATABASES", "PROVIDERS", "Settings", "add_options"]
PROVIDERS = ("auto", "url", "container", "local")
URL_ENVIRONMENT = "PYTEST_MIGRATIONS_URL"
DEFAULT_STEP_TIMEOUT = 120.0
"""On a throwaway database with a handful of rows no correct step takes minutes, while a step that
waits on a lock or sleeps never ends: two minutes leaves a slow CI machine room and still ends a hang."""


@dataclass(frozen=True)
class Settings:
    """The plugin's configuration for one pytest run."""

    enabled: bool
    """Whether the built-in check items are collected (``--migrations`` / ``migrations_enabled``)."""
    config_path: Path | None
    """alembic.ini or pyproject.toml; ``None``: look in the rootdir."""
    section: str
    checks: tuple[str, ...]
    skip_revisions: tuple[str, ...]
    irreversible: tuple[str, ...]
    expected_heads: int
    models: str | None
    databases: tuple[str, ...]
    """Databases the built-in items run on, in order: ``sqlite``, ``postgresql``, ``mysql``."""
    urls: dict[str, str]
    """Server URL per dialect, from --migrations-url, the ini or the environment."""
    provider: str
    images: dict[str, str]
    timeout: float
    """Seconds to wait for a container or local server to accept connections."""
    url_variable: str | None
    """Environment variable env.py reads its database URL from, set to the test database's."""
    baseline: str | None
    """``module:attr`` of a MetaData every fresh database is created with, before any revision."""
    x_arguments: tuple[str, ...]
    """``key=value`` pairs handed to env.py as ``alembic -x`` arguments."""
    step_timeout: float | None = DEFAULT_STEP_TIMEOUT
    """Seconds one migration step may run before it is stopped; ``None``: no limit."""
    policy: Policy = field(default_factory=Policy)
    """Downgrades not to test (``*``, a floor) and differences to accept."""
    data: DataSettings | None = None
    """``--migrations-data``: the stairway seeds tables with generated rows and compares them; ``None``: off."""
    durations: int = 0
    """``--migrations-durations N``: list the N slowest migration steps after the run (0: none)."""
    report: Path | None = None
    """``--migrations-report FILE``: write the run's JSON report there."""
    models_package: str | None = None
    """``--migrations-models-package``: the package whose every module must be registered (models_registered)."""
    since: str | None = None
    """``--migrations-since REF``: stairway items only for revisions added after the git ref, and history_unchanged."""
    mysql_schemas: tuple[str, ...] = ()
    """``migrations_mysql_schemas``: other MySQL schemas (databases) migrations use, lent by the plugin."""

    @classmethod
    def from_config(cls, config: pytest.Config) -> Settings:
        """Resolve every setting; raise :class:`pytest.UsageError` with the fix for a bad value."""

        def pick(option: str, ini: str) -> object:
            value = config.getoption(option)
            return value if value not in (None, []) else config.getini(ini)

        base = config.inipath.parent if config.inipath else config.rootpath
        raw_path = pick("migrations_config", "migrations_config")
        path = (base / str(raw_path)).resolve() if raw_path else None
        checks = _words(pick("migrations_checks", "migrations_checks")) or tuple(CHECKS)
        unknown = [c for c in checks if c not in CHECKS]
        if unknown:
            raise pytest.UsageError(f"unknown migration check(s) {', '.join(unknown)}; choose from {', '.join(CHECKS)}")
        listed = bool(_words(pick("migrations_checks", "migrations_checks")))
        since_ref = str(pick("migrations_since", "migrations_since") or "").strip() or None
        checks = _needs(
            checks,
            "history_unchanged",
            since_ref,
            listed,
            "the history_unchanged check compares the history with a git ref: give it with "
            "--migrations-since REF (e.g. origin/main), or migrations_since = REF in the ini",
        )
        models_package = str(pick("migrations_models_package", "migrations_models_package") or "").strip() or None
        checks = _needs(
            checks,
            "models_registered",
            models_package,
            listed,
            "the models_registered check imports every module of the models package: name it with "
            "--migrations-models-package myapp.models (or migrations_models_package in the ini)",
        )
        mysql_schemas = _words(pick("migrations_mysql_schemas", "migrations_mysql_schemas"))
        if mysql_schemas:
            from .mysql_schemas import check_name
        for name in mysql_schemas:
            why = check_name(name)
            if why is not None:
                raise pytest.UsageError(f"migrations_mysql_schemas: {why}; name the schemas your migrations use")
        urls = _urls(config)
        databases = _words(pick("migrations_db", "migrations_db")) or tuple(urls) or ("sqlite",)
        databases = tuple("mysql" if d == "mariadb" else d for d in databases)
        bad_db = [d for d in databases if d not in DATABASES]
        if bad_db:
            raise pytest.UsageError(
                f"--migrations-db {', '.join(bad_db)} is not supported; choose from {', '.join(DATABASES)}"
            )
        heads = _number(
            pick("migrations_expected_heads", "migrations_expected_heads"),
            int,
            lambda n: n >= 1,
            "migrations_expected_heads must be a whole number of at least 1",
        )
        provider = str(pick("migrations_provider", "migrations_provider") or "auto")
        if provider not in PROVIDERS:
            raise pytest.UsageError(f"--migrations-provider {provider} is unknown; choose from {', '.join(PROVIDERS)}")
        images = dict(DEFAULT_IMAGES)
        for dialect in ("postgresql", "mysql"):
            images[dialect] = str(pick(f"migrations_{dialect}_image", f"migrations_{dialect}_image") or images[dialect])
        timeout = _number(
            pick("migrations_timeout", "migrations_timeout"),
            float,
            lambda n: n > 0,
            "migrations_timeout must be a positive number of seconds",
        )
        step_timeout = _number(
            pick("migrations_step_timeout", "migrations_step_timeout"),
            float,
            lambda n: n >= 0,
            "migrations_step_timeout must be a number of seconds (0: no limit)",
        )
        enabled = config.getoption("migrations") or bool(config.getini("migrations_enabled"))
        data = None
        if config.getoption("migrations_data") or bool(config.getini("migrations_data")):
            rows = _number(
                pick("migrations_data_rows", "migrations_data_rows"),
                int,
                lambda n: n >= 1,
                "migrations_data_rows must be a whole number of at least 1",
            )
            lossy = {}
            for line in filter(None, (str(v).strip() for v in config.getini("migrations_lossy_downgrade"))):
                revision, _, why = line.partition(":")
                lossy[revision.strip()] = why.strip()
            from .data import DataSettings

            data = DataSettings(
                rows=rows,
                user_rows=_hook_rows(config),
                revision_data=str(config.getini("migrations_revision_data") or "") or None,
                lossy=lossy,
            )
        irreversible = _words(config.getini("migrations_irreversible"))
        try:
            accept = parse_accept_lines(config.getini("migrations_stairway_accept"))
        except ValueError as exc:
            raise pytest.UsageError(
                f"migrations_stairway_accept line {exc.args[0]!r} is not `REVISION: <kind> <name>[: <fact>]`, "
                "e.g. `3f2a9c1d7e01: enum state_type`"
            ) from None
        policy = Policy(
            all_irreversible="*" in irreversible,
            downgrade_floor=str(pick("migrations_downgrade_floor", "migrations_downgrade_floor") or "") or None,
            accept=accept,
        )
        return cls(
            enabled=bool(enabled),
            config_path=path,
            section=str(pick("migrations_section", "migrations_section") or "alembic"),
            checks=checks,
            skip_revisions=_words(pick("migrations_skip", "migrations_skip_revisions")),
            irreversible=tuple(r for r in irreversible if r != "*"),
            expected_heads=heads,
            models=str(pick("migrations_models", "migrations_models") or "") or None,
            databases=databases,
            urls=urls,
            provider=provider,
            images=images,
            timeout=timeout,
            url_variable=str(pick("migrations_url_variable", "migrations_url_variable") or "") or None,
            baseline=str(pick("migrations_baseline", "migrations_baseline") or "") or None,
            x_arguments=tuple(config.getoption("migrations_x") or config.getini("migrations_x_arguments") or ()),
            policy=policy,
            step_timeout=step_timeout or None,
            data=data,
            durations=_number(
                pick("migrations_durations", "migrations_durations") or 0,
                int,
                lambda n: n >= 0,
                "migrations_durations must be a whole number of steps to list (0: none)",
            ),
            report=_report_path(config, pick("migrations_report", "migrations_report")),
            since=since_ref,
            mysql_schemas=tuple(dict.fromkeys(mysql_schemas)),
            models_package=models_package,
        )


Number = TypeVar("Number", int, float)


def _number(raw: object, kind: Callable[[str], Number], valid: Callable[[Number], bool], requirement: str) -> Number:
    """``raw`` (an option or ini value) as a number of ``kind``; a usage error saying ``requirement`` otherwise."""
    try:
        value = kind(str(raw))
    except ValueError:
        value = None
    if value is None or not valid(value):
        raise pytest.UsageError(f"{requirement}, not {raw!r}")
    return value


def _needs(checks: tuple[str, ...], check: str, setting: str | None, listed: bool, why: str) -> tuple[str, ...]:
    """``checks`` without ``check`` when the setting it needs is not given: an error if the user listed it."""
    if setting is not None or check not in checks:
        return checks
    if listed:
        raise pytest.UsageError(why)
    return tuple(c for c in checks if c != check)


def _report_path(config: pytest.Config, raw: object) -> Path | None:
    """The report file, relative to where pytest was invoked (an ini value: to the ini file's folder)."""
    if not raw:
        return None
    path = Path(str(raw)).expanduser()
    if path.is_absolute():
        return path
    if config.getoption("migrations_report"):
        return config.invocation_params.dir / path
    return (config.inipath.parent if config.inipath else config.rootpath) / path


def _hook_rows(config: pytest.Config) -> UserRows:
    """The ``pytest_migrations_seed_data`` hook as the data module's plain callable (results merged)."""

    def rows(revision: str, tables: Mapping[str, sa.Table]) -> dict[str, Sequence[Mapping[str, Any]]]:
        merged: dict[str, Sequence[Mapping[str, Any]]] = {}
        for given in config.hook.pytest_migrations_seed_data(config=config, revision=revision, tables=tables):
            merged.update(given or {})
        return merged

    return rows


def _urls(config: pytest.Config) -> dict[str, str]:
    """Server URLs by dialect: command line, then ini, then environment; a bad URL is a usage error."""
    # Option and ini values are taken whole (a value is one URL); the environment splits on spaces.
    given = [
        u.strip() for u in config.getoption("migrations_url") or config.getini("migrations_url") or [] if u.strip()
    ]
    given += _words(os.environ.get(URL_ENVIRONMENT, ""))
    for dialect in ("postgresql", "mysql"):
        given += _words(os.environ.get(f"PYTEST_MIGRATIONS_{dialect.upper()}_URL", ""))
    if not given:
        return {}
    from .providers import dialect_of
    from .urls import mask_passwords, server_url_text

    urls: dict[str, str] = {}
    # Each URL as text whose repr is masked, a ?password= parameter moved into its password field.
    for url in map(server_url_text, given):
        try:
            dialect = dialect_of(url)
        except Exception as exc:
            raise pytest.UsageError(
                f"--migrations-url {mask_passwords(url)} is not a database URL: {mask_passwords(str(exc))}"
            ) from None
        if dialect not in ("postgresql", "mysql"):
            raise pytest.UsageError(
                f"--migrations-url {mask_passwords(url)}: {dialect} is not a server the plugin can use; "
                "give a postgresql:// or mysql:// URL (SQLite needs no URL)"
            )
        urls.setdefault(dialect, url)
    return urls


def _words(value: object) -> tuple[str, ...]:
    """A linelist, a list of CLI values, or a comma/space separated string, as a tuple of words."""
    items = value if isinstance(value, list) else [value] if value else []
    words: list[str] = []
    for item in items:
        words.extend(w for w in str(item).replace(",", " ").split() if w)
    return tuple(words)


def add_options(parser: pytest.Parser) -> None:
    """Declare every option and ini key, once."""
    group = parser.getgroup("migrations", "Alembic migration testing (pytest-migrations)")
    group.addoption("--migrations", action="store_true", default=None, help="Run the built-in migration checks.")
    group.addoption("--migrations-config", metavar="PATH", help="alembic.ini or pyproject.toml (default: in rootdir).")
    group.addoption("--migrations-section", metavar="NAME", help="Section of alembic.ini to use (default: alembic).")
    group.addoption(
        "--migrations-checks",
        metavar="NAMES",
        action="append",
        help=f"Built-in checks to run, comma separated (default: all of {', '.join(CHECKS)}).",
    )
    group.addoption("--migrations-skip", metavar="REV", action="append", help="Revision whose items are skipped.")
    group.addoption(
        "--migrations-downgrade-floor",
        metavar="REV",
        help="Downgrades of REV and of every revision below it are not tested (upgrades are).",
    )
    group.addoption("--migrations-expected-heads", metavar="N", help="How many heads the history must have (1).")
    group.addoption("--migrations-models", metavar="MODULE:ATTR", help="MetaData for the drift check.")
    group.addoption(
        "--migrations-db",
        metavar="NAME",
        action="append",
        help="Database to test on: sqlite, postgresql, mysql (repeat for several).",
    )
    group.addoption(
        "--migrations-url",
        metavar="URL",
        action="append",
        help=f"Server to create throwaway databases on (postgresql://..., mysql://...); also ${URL_ENVIRONMENT}.",
    )
    group.addoption(
        "--migrations-provider",
        metavar="NAME",
        help="Where servers come from: auto (default: URL, else container, else local), url, container, local.",
    )
    group.addoption(
        "--migrations-mysql-schemas",
        metavar="NAMES",
        help="Other MySQL/MariaDB schemas (databases) migrations write to, e.g. audit: the plugin creates them, "
        "lends them to one test database at a time, and drops them.",
    )
    group.addoption(
        "--migrations-url-variable",
        metavar="NAME",
        help="Environment variable env.py takes its URL from (e.g. DATABASE_URL); set to each test database.",
    )
    group.addoption(
        "--migrations-baseline",
        metavar="MODULE:ATTR",
        help="MetaData created in every fresh database before the first revision (a baseline schema).",
    )
    group.addoption(
        "--migrations-x",
        metavar="KEY=VALUE",
        action="append",
        help="An `alembic -x` argument for env.py's context.get_x_argument() (repeat for several).",
    )
    group.addoption(
        "--migrations-step-timeout",
        metavar="SECONDS",
        help=f"Stop a migration step running longer than this ({DEFAULT_STEP_TIMEOUT:.0f}; 0: no limit).",
    )
    group.addoption(
        "--migrations-data",
        action="store_true",
        default=None,
        help="Give each revision's tables generated rows before its stairway and check the rows survive it.",
    )
    group.addoption(
        "--migrations-data-rows",
        metavar="N",
        help=f"Rows generated per empty table with --migrations-data ({DEFAULT_ROWS}).",
    )
    group.addoption(
        "--migrations-models-package",
        metavar="PACKAGE",
        help="The models package (e.g. myapp.models): models_registered checks env.py registers all of its modules.",
    )
    group.addoption(
        "--migrations-since",
        metavar="REF",
        help="CI mode: stairway items only for revisions added after git ref REF (e.g. origin/main), "
        "and history_unchanged: no revision of REF edited or deleted.",
    )
    group.addoption(
        "--migrations-durations",
        metavar="N",
        help="After the run, list the N slowest migration steps (revision, step, seconds).",
    )
    group.addoption(
        "--migrations-report",
        metavar="FILE",
        help="Write a JSON report of the run: per item its steps and snapshots, per worker what it walked.",
    )
    group.addoption("--migrations-timeout", metavar="SECONDS", help="Wait for a started server at most this long (60).")
    group.addoption("--migrations-postgresql-image", metavar="IMAGE", help="PostgreSQL image (postgres:15).")
    group.addoption("--migrations-mysql-image", metavar="IMAGE", help="MySQL/MariaDB image (mariadb:10.11).")
    parser.addini(
        "migrations_enabled", "Run the built-in migration checks without --migrations.", type="bool", default=False
    )
    parser.addini("migrations_config", "alembic.ini or pyproject.toml of the project.", default="")
    parser.addini("migrations_section", "Section of alembic.ini to use.", default="alembic")
    parser.addini("migrations_checks", "Built-in checks to run.", type="linelist", default=[])
    parser.addini(
        "migrations_skip_revisions", "Revisions whose built-in items are skipped.", type="linelist", default=[]
    )
    parser.addini(
        "migrations_irreversible",
        "Revisions that cannot be downgraded, by design (* for every revision).",
        type="linelist",
        default=[],
    )
    parser.addini("migrations_downgrade_floor", "Downgrades at or below this revision are not tested.", default="")
    parser.addini(
        "migrations_stairway_accept",
        "Differences a revision's round trip may keep, one `REV: <kind> <name>[: <fact>]` per line.",
        type="linelist",
        default=[],
    )
    parser.addini("migrations_expected_heads", "How many heads the history must have.", default="1")
    parser.addini("migrations_models", "module:attribute of the models' MetaData for the drift check.", default="")
    parser.addini("migrations_db", "Databases to test on.", type="linelist", default=[])
    parser.addini("migrations_url", "Server URLs (one per dialect).", type="linelist", default=[])
    parser.addini("migrations_provider", "Where servers come from: auto, url, container, local.", default="auto")
    parser.addini("migrations_url_variable", "Environment variable env.py reads its URL from.", default="")
    parser.addini(
        "migrations_mysql_schemas", "Other MySQL schemas migrations write to (the plugin lends them).", default=""
    )
    parser.addini("migrations_baseline", "module:attribute of a baseline MetaData for fresh databases.", default="")
    parser.addini(
        "migrations_x_arguments", "`alembic -x` arguments for env.py, one per line.", type="linelist", default=[]
    )
    parser.addini("migrations_timeout", "Seconds to wait for a started server.", default="60")
    parser.addini(
        "migrations_step_timeout",
        "Seconds one migration step may run before it is stopped (0: no limit).",
        default=str(DEFAULT_STEP_TIMEOUT),
    )
    parser.addini(
        "migrations_data",
        "Run the stairway on tables with generated rows and check the rows survive it.",
        type="bool",
        default=False,
    )
    parser.addini(
        "migrations_data_rows", "Rows generated per empty table with migrations_data.", default=str(DEFAULT_ROWS)
    )
    parser.addini(
        "migrations_revision_data",
        "module[:attribute] holding before_revision_data / at_revision_data (pytest-alembic's form).",
        default="",
    )
    parser.addini(
        "migrations_lossy_downgrade",
        "Revisions whose downgrade loses rows on purpose, one `REV: why` per line.",
        type="linelist",
        default=[],
    )
    parser.addini(
        "migrations_models_package", "The models package whose every module env.py must register.", default=""
    )
    parser.addini("migrations_since", "Git ref: test only the revisions added after it (CI mode).", default="")
    parser.addini("migrations_durations", "List the N slowest migration steps after the run.", default="0")
    parser.addini("migrations_report", "Write the run's JSON report to this file.", default="")
    parser.addini("migrations_postgresql_image", "PostgreSQL image for the container provider.", default="")
    parser.addini("migrations_mysql_image", "MySQL/MariaDB image for the container provider.", default="")
