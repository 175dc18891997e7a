"""Everything pytest-migrations raises, under one root.

The tree::

    MigrationsError
    ├── ConfigurationError        the alembic config, an option or env.py is unusable
    │   └── UnsafeTargetError     env.py connected to a database the plugin did not create
    ├── RevisionGraphError        the revision files do not form a valid history
    ├── ProviderError             no database server could be had (unreachable, no Docker, ...)
    ├── RevisionBlocked           a check cannot run: a revision it needs fails its upgrade
    └── MigrationCheckFailed      a check found a defect in the history (also an AssertionError)
        ├── MigrationStepFailed   an upgrade/downgrade (or env.py itself) raised
        └── SchemaMismatch        two schemas that must be equal are not

Every error carries the fields a report needs (revision, file, step) and renders itself
as plain text through :meth:`MigrationsError.render`, so the pytest layer never has to
know the details.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .schema import SchemaDiff


def first_line(exc: BaseException | None) -> str:
    """The first line of an error's message (drivers append SQL and links), or its type when it has none."""
    text = str(exc).strip() if exc is not None else ""
    return text.splitlines()[0] if text else type(exc).__name__


class MigrationsError(Exception):
    """Root of every error raised by pytest-migrations."""

    def render(self) -> str:
        """The complete, user-facing text of this error."""
        return str(self)


class ConfigurationError(MigrationsError):
    """The Alembic configuration, a plugin option or ``env.py`` cannot be used as given.

    The message says what was wrong and how to fix it.
    """


class UnsafeTargetError(ConfigurationError):
    """``env.py`` connected to a database that the plugin did not create.

    Raised *before* any migration runs on that connection: the plugin never migrates
    a database it does not own.
    """


class ProviderError(MigrationsError):
    """No database could be provisioned (server unreachable, bad credentials, no Docker...)."""


class RevisionBlocked(MigrationsError):
    """A check needs a revision whose upgrade fails, so it cannot run: one root cause, one failure.

    The revision's own ``stairway`` item reports the failure in full; the items it
    blocks are skipped naming it when that item is in the run, and fail (briefly, naming
    it) when it is not, so that nothing is silently left untested.

    :param blocker: id of the revision whose upgrade fails.
    :param blocker_label: its one-line description (id, docstring, file).
    :param failure: the failure of its upgrade, one line.
    :param what: what could not be tested ("stairway of c3", "drift").
    """

    def __init__(self, blocker: str, blocker_label: str, failure: str, what: str, *, needs_head: bool = False) -> None:
        self.needs_head = needs_head
        """The check needs every revision applied (``drift``, ``downgrade_to_base``)."""
        self.blocker = blocker
        self.blocker_label = blocker_label
        self.failure = failure
        self.what = what
        super().__init__(self.render())

    def render(self) -> str:
        return f"{self.what} is not tested: it needs revision {self.blocker_label}, whose upgrade fails: {self.failure}"


@dataclass(frozen=True)
class GraphProblem:
    """One defect in the revision graph, found from the script files alone."""

    kind: str
    """Short machine-readable kind: ``import``, ``dangling``, ``cycle``, ``duplicate``, ``no-upgrade``..."""
    message: str
    """What is wrong and how to fix it."""
    path: Path | None = None
    """The revision file concerned, when there is one."""


class RevisionGraphError(MigrationsError):
    """The revision files do not form a valid Alembic history."""

    def __init__(self, problems: Sequence[GraphProblem]) -> None:
        self.problems = tuple(problems)
        super().__init__(self.render())

    def render(self) -> str:
        lines = [f"the revision history is broken ({len(self.problems)} problem(s)):"]
        for problem in self.problems:
            where = f"  [{problem.path}]" if problem.path else ""
            lines.append(f"  - {problem.message}{where}")
        return "\n".join(lines)


class MigrationCheckFailed(MigrationsError, AssertionError):
    """A built-in check found a defect; pytest counts it as a failure, not an error.

    :param summary: one line saying what is wrong.
    :param sections: ``(title, body)`` pairs rendered below the summary.
    """

    def __init__(self, summary: str, sections: Sequence[tuple[str, str]] = ()) -> None:
        self.summary = summary
        self.sections = tuple(sections)
        super().__init__(summary)

    def render(self) -> str:
        parts = [self.summary]
        for title, body in self.sections:
            indented = "\n".join(f"    {line}" if line else "" for line in body.splitlines())
            parts.append(f"  {title}:\n{indented}")
        return "\n".join(parts)

    def __str__(self) -> str:
        return self.render()


@dataclass
class StepContext:
    """Where in a walk something happened: used to name the revision, file and step."""

    revision: str | None
    """Full revision id, or ``None`` when the failure is in env.py itself."""
    path: Path | None
    step: str
    """``upgrade``, ``downgrade``, ``re-upgrade``, ``env.py``..."""
    applied: Sequence[str] = field(default_factory=tuple)
    """Revisions whose steps completed in the same walk before the failure."""


class MigrationStepFailed(MigrationCheckFailed):
    """An ``upgrade()`` or ``downgrade()`` raised, or ``env.py`` itself did."""

    def __init__(
        self,
        summary: str,
        where: StepContext,
        cause: BaseException,
        sections: Sequence[tuple[str, str]] = (),
        statements: Sequence[str] = (),
    ) -> None:
        self.where = where
        self.cause = cause
        self.statements = tuple(statements)
        """The SQL the step sent before it failed, the failing statement last when there is one."""
        super().__init__(summary, sections)


class SchemaMismatch(MigrationCheckFailed):
    """Two schemas that must be equal (for example before an upgrade and after its downgrade) differ.

    :param diff: the :class:`~pytest_migrations.schema.SchemaDiff`, when there is one.
    """

    def __init__(self, summary: str, sections: Sequence[tuple[str, str]] = (), diff: SchemaDiff | None = None) -> None:
        self.diff = diff
        super().__init__(summary, sections)
