"""The run's timings as pytest reports carry them: ``--migrations-durations`` and ``--migrations-report``.

Each item takes what the engine recorded while it ran (:mod:`pytest_migrations.timings`)
into its report's ``user_properties``, which xdist sends from the worker to the
controller with the report. The controller alone gathers them, prints the slowest
steps in the terminal summary and writes the JSON report at the end of the session.
"""

from __future__ import annotations

import sys
from collections.abc import Generator
from typing import Any

import pytest

from .backends import run_id
from .settings import Settings
from .state import worker_id
from .timings import RECORDER, RunReport

TIMINGS_PROPERTY = "pytest_migrations_timings"
"""The ``user_properties`` name under which a report carries its item's steps."""

_mark_key = pytest.StashKey[tuple[int, int]]()


class ReportHooks:
    """Registered on every run: cheap when nothing is asked for (a mark and a dict per item)."""

    def __init__(self, config: pytest.Config, settings: Settings) -> None:
        self.config = config
        self.settings = settings
        self.worker = worker_id(config) or "main"
        self.report = RunReport(run_id())

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_setup(self, item: pytest.Item) -> None:
        item.stash[_mark_key] = RECORDER.mark()

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_makereport(
        self, item: pytest.Item, call: pytest.CallInfo[None]
    ) -> Generator[None, pytest.TestReport, pytest.TestReport]:
        report = yield
        mark = item.stash.get(_mark_key, None)
        if mark is None:
            return report
        data = RECORDER.since(mark)
        item.stash[_mark_key] = RECORDER.mark()
        # Without it imported there is no built-in item (and no SQLAlchemy to import for asking).
        collection = sys.modules.get("pytest_migrations.collection")
        builtin = collection is not None and isinstance(item, collection.MigrationItem)
        if builtin or data["steps"] or data["snapshots"]["count"]:
            data["worker"] = self.worker
            if builtin:
                assert collection is not None
                data["database"] = item.stash[collection.database_key]
                data["check"] = item.stash[collection.check_key].name
                revision_key = collection.revision_key
                data["revision"] = item.stash[revision_key].id if revision_key in item.stash else None
            report.user_properties.append((TIMINGS_PROPERTY, data))
        return report

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if worker_id(self.config) is not None:
            return  # the controller gathers
        for name, value in report.user_properties:
            if name == TIMINGS_PROPERTY and isinstance(value, dict):
                self.report.add(report.nodeid, report.outcome, report.duration, value)

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        count = self.settings.durations
        if not count or not self.report.items:
            return
        terminalreporter.write_sep("=", f"pytest-migrations: slowest {count} migration steps")
        for line in self.report.slowest(count):
            terminalreporter.write_line(line)

    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        path = self.settings.report
        if path is None or worker_id(self.config) is not None:
            return
        self.report.write(path)
