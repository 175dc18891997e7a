"""The built-in check items: one per check, and one per revision for the stairway.

Items are collected from the Alembic ``env.py`` (never imported: the collector is a
``pytest.File``), so node ids read ``migrations/env.py::stairway[3f2a9c1d7e01]`` and
``-k``, ``--lf``, ``--deselect`` and xdist work as for any test. The revision graph is
built from the files alone, so ``--collect-only`` needs no database.
"""

from __future__ import annotations

from collections.abc import Container, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from .catalog import CHECKS, DATABASES, NOTES_PROPERTY, Check
from .checks import (
    check_downgrade_to_base,
    check_drift,
    check_history_unchanged,
    check_models_registered,
    check_single_head,
    check_stairway,
    check_upgrade_to_head,
)
from .exceptions import (
    ConfigurationError,
    MigrationCheckFailed,
    MigrationsError,
    MigrationStepFailed,
    RevisionBlocked,
    RevisionGraphError,
    SchemaMismatch,
)
from .history import Revision
from .rootcause import DIFFERENCES_PROPERTY, FAILURE_PROPERTY, differences, fingerprint
from .since import History, read_ref
from .state import project_key, settings_key
from .urls import mask_passwords

if TYPE_CHECKING:
    from _pytest._code.code import TerminalRepr  # the one tolerable _pytest import: typing only

check_key = pytest.StashKey[Check]()
revision_key = pytest.StashKey[Revision]()
database_key = pytest.StashKey[str]()
graph_error_key = pytest.StashKey[RevisionGraphError]()
history_key = pytest.StashKey[History]()
history_error_key = pytest.StashKey[ConfigurationError]()


class MigrationItem(pytest.Function):
    """One built-in check, applied to the history or to one revision."""

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException]) -> str | TerminalRepr:  # type: ignore[override]
        if isinstance(excinfo.value, MigrationsError):
            return mask_passwords(excinfo.value.render())
        return super().repr_failure(excinfo)

    def reportinfo(self) -> tuple[Path, int, str]:
        revision = self.stash.get(revision_key, None)
        path = revision.path if revision is not None else self.path
        return path, 0, self.name


selected_key = pytest.StashKey[frozenset[tuple[str, str]]]()
"""``(database, revision id)`` of every stairway item and ``(database, check name)`` of every other
built-in item in this session, after deselection (``-k``)."""


def _run_item(request: pytest.FixtureRequest, _migrations_harnesses: Any) -> None:
    """Body shared by every built-in item: dispatch to the check of the item."""
    __tracebackhide__ = True
    item = request.node
    if graph_error_key in item.stash:
        raise item.stash[graph_error_key]
    check = item.stash[check_key]
    settings = item.config.stash[settings_key]
    if check.name == "graph":
        return
    if check.name == "history_unchanged":  # about the files and git alone
        if history_error_key in item.stash:
            raise item.stash[history_error_key]
        result = check_history_unchanged(item.stash[history_key], _migrations_harnesses.project.graph)
        if result is not None:
            pytest.skip(result)
        return
    if check.name == "single_head":  # about the files alone: no database is needed
        result = check_single_head(_migrations_harnesses.project.graph, settings.expected_heads)
        if result is not None:
            pytest.skip(result)
        return
    database = item.stash[database_key]
    harness = _migrations_harnesses.get(database)
    notes: list[str] = []
    try:
        if check.name == "stairway":
            result = check_stairway(harness, item.stash[revision_key], notes)
        elif check.name == "upgrade_to_head":
            try:
                result = check_upgrade_to_head(harness)
            except MigrationStepFailed as exc:
                if not _is_skipped(settings.skip_revisions, exc.where.revision):
                    raise
                result = f"the walk stops at {exc.where.revision}, which is listed in migrations_skip: {exc.summary}"
        elif check.name == "downgrade_to_base":
            result = check_downgrade_to_base(harness, notes)
        elif check.name == "models_registered":
            assert settings.models_package is not None
            result = check_models_registered(harness, settings.models_package, settings.models)
        else:
            result = check_drift(harness, settings.models)
    except RevisionBlocked as exc:
        _blocked(item, database, exc)
        return
    except MigrationStepFailed as exc:
        failure = fingerprint(check.name, database, exc)
        if failure is not None:
            item.user_properties.append((FAILURE_PROPERTY, failure))
        raise
    except SchemaMismatch as exc:
        found = differences(check.name, database, exc)
        if found is not None:
            item.user_properties.append((DIFFERENCES_PROPERTY, found))
        raise
    finally:
        item.user_properties.extend((NOTES_PROPERTY, note) for note in notes)
    if result is not None:
        pytest.skip(result)


def _blocked(item: pytest.Item, database: str, exc: RevisionBlocked) -> None:
    """Skip an item a failing upgrade blocks when that revision's own item reports it; otherwise fail."""
    __tracebackhide__ = True
    selected = item.config.stash.get(selected_key, frozenset())
    several = len(item.config.stash[settings_key].databases) > 1
    blocker_item = f"stairway[{database}-{exc.blocker}]" if several else f"stairway[{exc.blocker}]"
    if _is_skipped(item.config.stash[settings_key].skip_revisions, exc.blocker):
        pytest.skip(f"blocked: {exc.render()} ({exc.blocker} is listed in migrations_skip)")
    if (database, exc.blocker) in selected:
        pytest.skip(f"blocked: {exc.render()} (reported by {blocker_item})")
    if exc.needs_head and (database, "upgrade_to_head") in selected:
        # The walk to head is what fails; upgrade_to_head reports it, naming the revision.
        pytest.skip(f"blocked: {exc.render()} (reported by upgrade_to_head)")
    raise MigrationCheckFailed(
        exc.render(),
        [("fix", f"fix that upgrade first; run {blocker_item} to see its failure in full")],
    )


def stairway_param(database: str, revision: str) -> str:
    """The parameter of a stairway item when several databases run: ``<database>-<revision>``."""
    return f"{database}-{revision}"


def parse_stairway_param(param: str, revisions: Container[str]) -> tuple[str, str | None]:
    """``(database, revision)`` of a stairway item's parameter: ``<rev>``, or :func:`stairway_param`'s form."""
    if param in revisions:
        return "", param
    database, _, revision = param.partition("-")
    if database in DATABASES and revision in revisions:
        return database, revision
    return "", None


def _is_skipped(skipped: tuple[str, ...], revision: str | None) -> bool:
    """Whether ``revision`` is listed in migrations_skip (by its id or its first 12 characters)."""
    return revision is not None and (revision in skipped or revision[:12] in skipped)


def _align_structured_id(item: pytest.Item) -> None:
    """Make ``--lf`` find ``stairway[<rev>]`` items on pytest >= 9.2.

    pytest 9.2 keys last-failed items by a structured id that it parses from the saved
    string: ``env.py::stairway[rev]`` becomes name ``stairway`` with params ``rev``. An
    item built with the name ``stairway[rev]`` gets a structured id whose name holds the
    brackets, so the two never match and ``--lf`` reruns everything. Re-parsing the
    item's own string id gives the form pytest will look for. No public API sets it;
    this touches the one private attribute, and only where the structured id exists.
    """
    structured = getattr(item, "_id", None)
    parse = getattr(type(structured), "parse", None)
    if structured is not None and callable(parse) and "[" in item.name:
        item._id = parse(item.nodeid)


class MigrationsCollector(pytest.File):
    """Collects the built-in checks of the Alembic environment whose env.py this is."""

    def collect(self) -> Iterator[MigrationItem]:
        settings = self.config.stash[settings_key]
        project = self.config.stash[project_key]
        try:
            graph = project.graph
        except RevisionGraphError as exc:
            item = self._item(CHECKS["graph"], "graph", settings.databases[0])
            item.stash[graph_error_key] = exc
            yield item
            return
        several = len(settings.databases) > 1
        history, history_error, order = None, None, graph.order
        if settings.since is not None:
            try:
                history = read_ref(settings.since, self._version_folders(graph))
                order = tuple(rev for rev in graph.order if rev.id not in history.revisions)
            except ConfigurationError as exc:
                history_error, order = exc, ()
        for name in settings.checks:
            check = CHECKS[name]
            if not check.per_revision:
                if check.name in ("graph", "single_head", "history_unchanged", "models_registered"):  # one item
                    item = self._item(check, name, settings.databases[0])
                    if history is not None:
                        item.stash[history_key] = history
                    if history_error is not None:
                        item.stash[history_error_key] = history_error
                    yield item
                    continue
                for database in settings.databases:
                    yield self._item(check, f"{name}[{database}]" if several else name, database)
                continue
            for database in settings.databases:
                for revision in order:
                    # The whole id: custom ids (dates, names) often share a long prefix.
                    param = stairway_param(database, revision.id) if several else revision.id
                    item = self._item(check, f"{name}[{param}]", database)
                    item.stash[revision_key] = revision
                    if revision.id in settings.skip_revisions or revision.short_id in settings.skip_revisions:
                        item.add_marker(pytest.mark.skip(reason=f"{revision.short_id} is listed in migrations_skip"))
                    yield item

    def _version_folders(self, graph: Any) -> list[Path]:
        """Where the revision files live: every folder holding one, and the project's versions folder."""
        project = self.config.stash[project_key]
        folders = {rev.path.resolve().parent for rev in graph.order}
        folders.add(Path(project.script.versions).resolve())
        return sorted(folders)

    def _item(self, check: Check, name: str, database: str) -> MigrationItem:
        # No originalname: pytest >= 9.2 builds the node id from it, and the id must carry the revision.
        item = MigrationItem.from_parent(self, name=name, callobj=_run_item)
        _align_structured_id(item)
        item.stash[check_key] = check
        item.stash[database_key] = database
        item.add_marker(pytest.mark.migrations)
        item.add_marker(getattr(pytest.mark, database))
        return item
