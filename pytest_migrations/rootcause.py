"""One root cause, one failure: a whole walk that fails where a revision's own item fails says so briefly.

``upgrade_to_head`` walks every upgrade and ``downgrade_to_base`` every downgrade, so a
revision whose upgrade raises fails both its ``stairway[<rev>]`` item and the walk, and
both used to show the same traceback and database state. Which of the two fails, and
whether it fails the same way, is only known once both have run, possibly on two xdist
workers. So each item puts a fingerprint of its step failure in its report's
``user_properties`` (xdist carries it to the controller), and the controller, where
every report arrives, shortens the walk's report once the revision's own item reported
the same failure: same database, revision and step, same exception type and message, at
the same lines of the revision file. The walk still fails (production's command does);
its report keeps the headline and names the item that shows the rest. When the two
failures differ (a walk that fails because of what another branch did), both stay whole.

Reports are shortened in place before the terminal summary prints them; an item that
is not in the run (``-k``, ``--lf``) never reports, and the walk keeps its full report.
"""

from __future__ import annotations

import re
import traceback
from typing import Any

import pytest

from .backends import PREFIX
from .exceptions import MigrationStepFailed, first_line

FAILURE_PROPERTY = "pytest_migrations_step_failure"
"""The ``user_properties`` name under which a report carries its step failure's fingerprint."""

WALKS = ("upgrade_to_head", "downgrade_to_base")
"""The whole-walk checks: each step of theirs is a step of some revision's own item."""

_DATABASE_NAME = re.compile(rf"{PREFIX}_[0-9a-f]{{8}}_\w+")


def fingerprint(check: str, database: str, exc: MigrationStepFailed) -> dict[str, Any] | None:
    """What identifies ``exc`` across items: ``None`` for a failure that no other item can repeat."""
    from .urls import mask_passwords  # with SQLAlchemy: only where an item failed, never at pytest's start

    where = exc.where
    if where.revision is None or where.path is None or (check != "stairway" and check not in WALKS):
        return None
    frames = traceback.extract_tb(exc.cause.__traceback__)
    lines = [frame.lineno for frame in frames if frame.filename == str(where.path)]
    # Each item has a database of its own, and a server's message may name it.
    message = _DATABASE_NAME.sub("<database>", first_line(exc.cause))
    return {
        "check": check,
        "key": [database, where.revision, where.step, type(exc.cause).__name__, message, lines],
        "headline": mask_passwords(exc.summary),
    }


class RootCauseHooks:
    """Shortens a walk's report that repeats a revision item's failure; on the controller only."""

    def __init__(self) -> None:
        self.walks: dict[str, tuple[pytest.TestReport, dict[str, Any]]] = {}
        """Failed walk reports by fingerprint key."""
        self.items: dict[str, str] = {}
        """The item name of each revision item's failure, by fingerprint key."""

    @pytest.hookimpl(tryfirst=True)  # before junitxml and the terminal take the text
    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if report.when != "call" or not report.failed:
            return
        for name, value in report.user_properties:
            if name == FAILURE_PROPERTY and isinstance(value, dict):
                self._add(report, value)

    def _add(self, report: pytest.TestReport, failure: dict[str, Any]) -> None:
        check, key = failure["check"], repr(failure["key"])
        if check in WALKS:
            self.walks[key] = (report, failure)
        else:
            self.items[key] = report.nodeid.rpartition("::")[2]
        if key in self.walks and key in self.items:
            walk, walk_failure = self.walks.pop(key)
            walk.longrepr = _brief(walk_failure["headline"], self.items[key], failure["key"][2])


def _brief(headline: str, item: str, step: str) -> str:
    return (
        f"{headline}\n"
        f"  reported in full by {item}:\n"
        f"    the same {step}, run on its own, fails there with the same error at the same line; "
        f"its report shows the traceback and the database state"
    )
