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

``downgrade_to_base`` that finds something left behind at base likewise names the
stairway items whose downgrade differences include the same objects: the revision to fix,
which its own report ("the stairway items show which") left the user to look for.

Reports are changed in place before the terminal summary prints them; an item that
is not in the run (``-k``, ``--lf``) never reports, and the walk keeps its full report.
"""

from __future__ import annotations

import re
import traceback
from typing import Any

import pytest

from .backends import PREFIX
from .exceptions import MigrationStepFailed, SchemaMismatch, first_line

FAILURE_PROPERTY = "pytest_migrations_step_failure"
"""The ``user_properties`` name under which a report carries its step failure's fingerprint."""

DIFFERENCES_PROPERTY = "pytest_migrations_differences"
"""The ``user_properties`` name under which a report carries the objects its schema mismatch names."""

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


def differences(check: str, database: str, exc: SchemaMismatch) -> dict[str, Any] | None:
    """The objects and facts a stairway or downgrade_to_base mismatch names, to match one with the other."""
    if exc.diff is None or check not in ("stairway", "downgrade_to_base"):
        return None
    keys = sorted({(d.kind, d.name, d.fact or "") for d in exc.diff})
    return {"check": check, "database": database, "keys": [list(key) for key in keys]}


class RootCauseHooks:
    """Shortens a walk's report that repeats a revision item's failure; on the controller only."""

    def __init__(self) -> None:
        self.walks: dict[str, tuple[pytest.TestReport, dict[str, Any]]] = {}
        """Failed walk reports by fingerprint key."""
        self.items: dict[str, str] = {}
        """The item name of each revision item's failure, by fingerprint key."""
        self.bases: dict[str, tuple[pytest.TestReport, str, set[tuple[str, ...]]]] = {}
        """Per database: downgrade_to_base's failed report, its text as it came, the objects it names."""
        self.revisions: dict[str, dict[str, set[tuple[str, ...]]]] = {}
        """Per database: the objects each failed stairway item's mismatch names, by item name."""

    @pytest.hookimpl(tryfirst=True)  # before junitxml and the terminal take the text
    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if report.when != "call" or not report.failed:
            return
        for name, value in report.user_properties:
            if name == FAILURE_PROPERTY and isinstance(value, dict):
                self._add(report, value)
            elif name == DIFFERENCES_PROPERTY and isinstance(value, dict):
                self._add_differences(report, value)

    def _add(self, report: pytest.TestReport, failure: dict[str, Any]) -> None:
        check, key = failure["check"], repr(failure["key"])
        if check in WALKS:
            self.walks[key] = (report, failure)
        else:
            self.items[key] = report.nodeid.rpartition("::")[2]
        if key in self.walks and key in self.items:
            walk, walk_failure = self.walks.pop(key)
            walk.longrepr = _brief(walk_failure["headline"], self.items[key], failure["key"][2])

    def _add_differences(self, report: pytest.TestReport, found: dict[str, Any]) -> None:
        database, keys = found["database"], {tuple(key) for key in found["keys"]}
        if found["check"] == "downgrade_to_base":
            self.bases[database] = (report, str(report.longrepr), keys)
        else:
            self.revisions.setdefault(database, {})[report.nodeid.rpartition("::")[2]] = keys
        if database not in self.bases:
            return
        base, text, left = self.bases[database]
        named = {item: left & theirs for item, theirs in self.revisions.get(database, {}).items() if left & theirs}
        if named:
            base.longrepr = text + _named(named, left)


def _named(named: dict[str, set[tuple[str, ...]]], left: set[tuple[str, ...]]) -> str:
    covered = set().union(*named.values())
    head = (
        "every one of these differences is also a failure of a revision's own item"
        if covered == left
        else f"{len(covered)} of these {len(left)} differences are also failures of the revisions' own items"
    )
    lines = [f"    - {item}: {len(keys)} of them" for item, keys in sorted(named.items())]
    return f"\n  the revisions to fix:\n    {head}; fix those downgrades first:\n" + "\n".join(lines)


def _brief(headline: str, item: str, step: str) -> str:
    return (
        f"{headline}\n"
        f"  reported in full by {item}:\n"
        f"    the same {step}, run on its own, fails there with the same error at the same line; "
        f"its report shows the traceback and the database state"
    )
