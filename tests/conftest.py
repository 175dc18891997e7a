from __future__ import annotations

import pytest

from .helpers import Project


@pytest.fixture
def project(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> Project:
    """A generic-template Alembic project in the pytester directory."""
    monkeypatch.delenv("PYTEST_ADDOPTS", raising=False)
    return Project(pytester)
