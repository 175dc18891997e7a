"""pytest-migrations: prove an Alembic migration history correct on real databases."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .api import assert_no_drift
    from .checks import check_drift
    from .exceptions import (
        ConfigurationError,
        MigrationCheckFailed,
        MigrationsError,
        MigrationStepFailed,
        ProviderError,
        RevisionGraphError,
        SchemaMismatch,
        UnsafeTargetError,
    )
    from .history import Revision, RevisionGraph, load_graph
    from .runner import MigrationRunner
    from .schema import SchemaDiff, SchemaSnapshot

_PUBLIC = {
    "assert_no_drift": "api",
    "check_drift": "checks",
    "ConfigurationError": "exceptions",
    "MigrationCheckFailed": "exceptions",
    "MigrationsError": "exceptions",
    "MigrationStepFailed": "exceptions",
    "ProviderError": "exceptions",
    "RevisionGraphError": "exceptions",
    "SchemaMismatch": "exceptions",
    "UnsafeTargetError": "exceptions",
    "Revision": "history",
    "RevisionGraph": "history",
    "load_graph": "history",
    "MigrationRunner": "runner",
    "SchemaDiff": "schema",
    "SchemaSnapshot": "schema",
}
"""Each public name and the module it comes from, imported on first use (PEP 562): pytest
loads this package at every start, and a run that tests no migrations must not pay for
importing SQLAlchemy and Alembic (see :mod:`.catalog`)."""


def __getattr__(name: str) -> Any:
    module = _PUBLIC.get(name)
    if module is None:
        raise AttributeError(f"module 'pytest_migrations' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


__version__ = "0.1.0"

__all__ = [
    "ConfigurationError",
    "MigrationCheckFailed",
    "MigrationRunner",
    "MigrationStepFailed",
    "MigrationsError",
    "ProviderError",
    "Revision",
    "RevisionGraph",
    "RevisionGraphError",
    "SchemaDiff",
    "SchemaMismatch",
    "SchemaSnapshot",
    "UnsafeTargetError",
    "__version__",
    "assert_no_drift",
    "check_drift",
    "load_graph",
]
