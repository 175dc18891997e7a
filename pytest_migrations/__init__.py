"""pytest-migrations: prove an Alembic migration history correct on real databases."""

from __future__ import annotations

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
