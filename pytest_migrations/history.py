"""A typed, read-only view of an Alembic revision graph, built from the script files alone.

Alembic's :class:`~alembic.script.ScriptDirectory` knows how to load revision files and
resolve names; this module turns its revision map into a small immutable graph with the
questions a migration test asks: *in which order do the revisions apply*, *which are
applied once these heads are*, *what does it take to go from here to there*.

The order is a topological order (every revision after its ``down_revision`` and its
``depends_on``) with ties broken by revision id, so it is the same in every process:
pytest-xdist requires every worker to collect the same items in the same order.

When the files do not form a valid history (a ``down_revision`` naming nothing, a
cycle, a duplicate id, a file that fails to import), :func:`load_graph` raises
:class:`~pytest_migrations.exceptions.RevisionGraphError` naming each file and its fix.
"""

from __future__ import annotations

import heapq
import re
import traceback
import warnings
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from alembic.script import Script, ScriptDirectory
from alembic.script.revision import CycleDetected, DependencyCycleDetected, RevisionError
from alembic.util import CommandError

from .exceptions import GraphProblem, RevisionGraphError

#: Module-level names a migration file may set to declare that it has no downgrade.
IRREVERSIBLE_ATTRIBUTE = "irreversible"


@dataclass(frozen=True)
class Revision:
    """One revision file, with its edges resolved to full revision ids."""

    id: str
    down_revisions: tuple[str, ...]
    """The revisions this one is applied on top of (two or more for a merge)."""
    dependencies: tuple[str, ...]
    """``depends_on`` revisions, resolved from ids or branch labels."""
    branch_labels: tuple[str, ...]
    path: Path
    doc: str
    irreversible: str | None
    """Why the revision cannot be downgraded, when it declares so; otherwise ``None``."""

    @property
    def short_id(self) -> str:
        """The id abbreviated for messages: its first 12 characters (alembic's own ids are 12 long)."""
        return self.id[:12]

    @property
    def requires(self) -> tuple[str, ...]:
        """Everything that must be applied before this revision: parents and dependencies."""
        return self.down_revisions + tuple(d for d in self.dependencies if d not in self.down_revisions)

    @property
    def is_merge(self) -> bool:
        return len(self.down_revisions) > 1

    @property
    def is_base(self) -> bool:
        return not self.down_revisions

    @property
    def label(self) -> str:
        """A one-line description used in messages: id, file name and docstring."""
        doc = f' "{self.doc}"' if self.doc else ""
        return f"{self.id}{doc} ({self.path.name})"


class RevisionGraph:
    """The revision DAG of one script directory. Immutable; cheap to query.

    >>> graph.order[0].id        # doctest: +SKIP
    '3f2a9c1d7e01'
    >>> graph.heads              # doctest: +SKIP
    ('9b1c0d2e3f4a',)
    """

    def __init__(self, revisions: Iterable[Revision]) -> None:
        self._by_id = {rev.id: rev for rev in revisions}
        self._children: dict[str, list[str]] = {rid: [] for rid in self._by_id}
        for rev in self._by_id.values():
            for parent in rev.requires:
                self._children[parent].append(rev.id)
        self.order: tuple[Revision, ...] = tuple(self._by_id[rid] for rid in self._topological_ids())
        """Every revision, each after all that it requires; ties broken by id."""
        self.position = {rev.id: index for index, rev in enumerate(self.order)}
        """Index of each revision id in :attr:`order`."""

    def _topological_ids(self) -> Iterator[str]:
        waiting = {rid: len(rev.requires) for rid, rev in self._by_id.items()}
        ready = [rid for rid, count in waiting.items() if count == 0]
        heapq.heapify(ready)
        while ready:
            rid = heapq.heappop(ready)
            yield rid
            for child in self._children[rid]:
                waiting[child] -= 1
                if waiting[child] == 0:
                    heapq.heappush(ready, child)

    def __len__(self) -> int:
        return len(self.order)

    def __contains__(self, revision_id: object) -> bool:
        return revision_id in self._by_id

    def __getitem__(self, revision_id: str) -> Revision:
        return self._by_id[revision_id]

    @property
    def heads(self) -> tuple[str, ...]:
        """Revisions nothing is applied on top of (dependencies do not count), in order."""
        parents = {p for rev in self.order for p in rev.down_revisions}
        return tuple(rev.id for rev in self.order if rev.id not in parents)

    @property
    def bases(self) -> tuple[str, ...]:
        return tuple(rev.id for rev in self.order if rev.is_base)

    @property
    def branch_points(self) -> tuple[str, ...]:
        counts: dict[str, int] = {}
        for rev in self.order:
            for parent in rev.down_revisions:
                counts[parent] = counts.get(parent, 0) + 1
        return tuple(rev.id for rev in self.order if counts.get(rev.id, 0) > 1)

    def ancestors(self, revision_ids: Iterable[str]) -> frozenset[str]:
        """The given revisions and everything they require, transitively."""
        return _closure(revision_ids, lambda rid: self._by_id[rid].requires)

    def descendants(self, revision_ids: Iterable[str]) -> frozenset[str]:
        """The given revisions and everything that requires them, transitively."""
        return _closure(revision_ids, self._children.__getitem__)

    def sorted(self, revision_ids: Iterable[str], *, reverse: bool = False) -> list[str]:
        """Revision ids in graph order (or its reverse, the order to downgrade them in)."""
        return sorted(revision_ids, key=self.position.__getitem__, reverse=reverse)

    def prefix(self, count: int) -> frozenset[str]:
        """The revisions applied after walking the first ``count`` revisions of :attr:`order`."""
        return frozenset(rev.id for rev in self.order[:count])

    def heads_of(self, applied: Iterable[str]) -> tuple[str, ...]:
        """The version-table heads of a set of applied revisions.

        Alembic records a ``depends_on`` target as covered by its dependant, as it does a parent.
        """
        applied = frozenset(applied)
        covered = {p for rid in applied for p in self._by_id[rid].requires}
        return tuple(rid for rid in self.sorted(applied) if rid not in covered)


def _closure(start: Iterable[str], edges: Callable[[str], Iterable[str]]) -> frozenset[str]:
    seen: set[str] = set()
    stack = list(start)
    while stack:
        rid = stack.pop()
        if rid not in seen:
            seen.add(rid)
            stack.extend(edges(rid))
    return frozenset(seen)


def load_graph(script: ScriptDirectory, irreversible: Sequence[str] = ()) -> RevisionGraph:
    """Build the graph of ``script``, or raise :class:`RevisionGraphError` saying what is broken.

    :param irreversible: revision ids (or unique prefixes) declared irreversible by
        configuration, in addition to those whose file sets ``irreversible = ...``.
    """
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            scripts = list(script.walk_revisions())
    except Exception as exc:
        raise RevisionGraphError(_diagnose(script, exc)) from exc
    problems = [_warning_problem(str(w.message), script) for w in caught if "present more than once" in str(w.message)]
    problems += [
        GraphProblem(
            "no-upgrade",
            f"revision {s.revision} has no upgrade() function; every revision file must define "
            "upgrade() and downgrade()",
            Path(s.path),
        )
        for s in scripts
        if not callable(getattr(s.module, "upgrade", None))
    ]
    if problems:
        raise RevisionGraphError(problems)
    declared = _resolve_declared(script, irreversible)
    return RevisionGraph(_revision(script, s, declared) for s in scripts)


def _revision(script: ScriptDirectory, s: Script, declared: dict[str, str]) -> Revision:
    dependencies: list[str] = []
    for dep in _as_tuple(s.dependencies):
        dependencies.extend(r.revision for r in script.get_revisions(dep) if r is not None)
    flag = getattr(s.module, IRREVERSIBLE_ATTRIBUTE, None)
    reason = declared.get(s.revision)
    if reason is None and flag:
        reason = flag if isinstance(flag, str) else f"{Path(s.path).name} sets {IRREVERSIBLE_ATTRIBUTE} = True"
    return Revision(
        id=s.revision,
        down_revisions=_as_tuple(s.down_revision),
        dependencies=tuple(dependencies),
        branch_labels=tuple(sorted(s.branch_labels)),
        path=Path(s.path),
        doc=(s.doc or "").strip(),
        irreversible=reason,
    )


def _resolve_declared(script: ScriptDirectory, ids: Sequence[str]) -> dict[str, str]:
    declared: dict[str, str] = {}
    for rid in ids:
        try:
            found = script.get_revision(rid)
        except (RevisionError, CommandError) as exc:
            raise RevisionGraphError(
                [GraphProblem("config", f"migrations_irreversible names {rid!r}, which is not a revision: {exc}")]
            ) from exc
        if found is not None:
            declared[found.revision] = "declared irreversible by the migrations_irreversible setting"
    return declared


def _as_tuple(value: str | Sequence[str] | None) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,)
    return tuple(value)


def _warning_problem(message: str, script: ScriptDirectory) -> GraphProblem:
    rid = message.split()[1]
    files = [p for p in _revision_files(script) if _declared_id(p) == rid]
    names = ", ".join(p.name for p in files)
    return GraphProblem(
        "duplicate",
        f"revision id {rid} is declared by more than one file ({names}); give one of them a new id "
        "(alembic revision generates one) and update any down_revision that pointed at it",
        files[0] if files else None,
    )


def _diagnose(script: ScriptDirectory, exc: Exception) -> list[GraphProblem]:
    """Explain why Alembic could not build the revision map."""
    import_problem = _import_problem(script, exc)
    if import_problem is not None:
        return [import_problem]
    cause: BaseException | None = exc
    while cause is not None and not isinstance(cause, (CycleDetected, DependencyCycleDetected)):
        cause = cause.__cause__ or cause.__context__
    missing = (
        re.match(r"module '(.+?)' has no attribute '(\w+)'", str(exc)) if isinstance(exc, AttributeError) else None
    )
    if missing:
        module, attribute = missing.groups()
        path = next((p for p in _revision_files(script) if p.name.replace(".", "_") == module), None)
        name = path.name if path else module
        fix = (
            "down_revision = None for a base revision, or the id of its parent" if attribute == "down_revision" else ""
        )
        return [GraphProblem("attribute", f"{name} sets no {attribute}; add {fix or attribute}", path)]
    if cause is not None:
        revs = ", ".join(cause.revisions)
        return [
            GraphProblem(
                "cycle",
                f"the revisions {revs} form a cycle through down_revision/depends_on; "
                "one of them must point further back",
            )
        ]
    if isinstance(exc, KeyError):
        return _dangling(script, str(exc.args[0]))
    return [GraphProblem("other", f"Alembic could not read the revision history: {type(exc).__name__}: {exc}")]


def _dangling(script: ScriptDirectory, missing: str) -> list[GraphProblem]:
    ids = {p: _declared_id(p) for p in _revision_files(script)}
    known = {rid for rid in ids.values() if rid}
    hints = sorted(rid for rid in known if rid.startswith(missing[:4]))
    hint = f"; did you mean {', '.join(hints)}?" if hints else ""
    problems = []
    for path in ids:
        text = path.read_text(encoding="utf-8", errors="replace")
        if re.search(rf"""(down_revision|depends_on)[^=\n]*=.*['"]{re.escape(missing)}['"]""", text):
            problems.append(
                GraphProblem(
                    "dangling",
                    f"{path.name} (revision {ids[path]}) points at down_revision/depends_on {missing!r}, "
                    f"which no revision file declares{hint} Fix the id, or restore the missing file.",
                    path,
                )
            )
    return problems or [GraphProblem("dangling", f"a revision refers to {missing!r}, which no file declares{hint}")]


def _import_problem(script: ScriptDirectory, exc: Exception) -> GraphProblem | None:
    files = {p.resolve() for p in _revision_files(script)}
    if isinstance(exc, SyntaxError) and exc.filename and Path(exc.filename).resolve() in files:
        return GraphProblem(
            "import",
            f"{Path(exc.filename).name} does not compile: {exc.msg} (line {exc.lineno})",
            Path(exc.filename),
        )
    for frame in reversed(traceback.extract_tb(exc.__traceback__)):
        if Path(frame.filename).resolve() in files:
            return GraphProblem(
                "import",
                f"{Path(frame.filename).name} raised while being imported: {type(exc).__name__}: {exc} "
                f"(line {frame.lineno}: {frame.line})",
                Path(frame.filename),
            )
    return None


def _revision_files(script: ScriptDirectory) -> list[Path]:
    from alembic.util import coerce_resource_to_filename

    locations = script.version_locations or [str(Path(script.dir, "versions"))]
    files: list[Path] = []
    for location in locations:
        root = Path(coerce_resource_to_filename(location))
        pattern = "**/*.py" if script.recursive_version_locations else "*.py"
        files.extend(p for p in sorted(root.glob(pattern)) if p.name != "__init__.py")
    return files


def _declared_id(path: Path) -> str | None:
    match = re.search(r"""^revision\s*(?::[^=]*)?=\s*['"]([^'"]+)['"]""", path.read_text(errors="replace"), re.M)
    return match.group(1) if match else None
