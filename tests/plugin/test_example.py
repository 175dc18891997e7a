"""The bundled example, as the README's first command runs it: correct, with and without rows."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

EXAMPLE = Path(__file__).resolve().parents[2] / "example"


@pytest.mark.parametrize("data", [[], ["--migrations-data"]], ids=["empty tables", "with rows"])
def test_the_bundled_example_passes(pytester: pytest.Pytester, data: list[str]) -> None:
    shutil.copytree(EXAMPLE, pytester.path, dirs_exist_ok=True, ignore=shutil.ignore_patterns("__pycache__", "*.db"))
    result = pytester.runpytest_subprocess("--migrations", "-p", "no:cacheprovider", "-p", "no:randomly", *data)
    result.assert_outcomes(passed=10)
