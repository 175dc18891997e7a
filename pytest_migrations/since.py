"""CI mode: what a branch changed in the migration history since a git ref (``--migrations-since REF``).

A revision that exists at ``REF`` (``origin/main``, a release tag) has most likely run in
production already: its stairway item was proven then, and it must not change now. So
with ``--migrations-since REF`` only the revisions added after REF get stairway items
(the walk reaches REF's heads first, without checks, as any walk does), and the check
``history_unchanged`` fails when

- a revision of REF was **edited**: its code (``upgrade()``, ``downgrade()``, a helper,
  its imports) or its ids (``revision``, ``down_revision``, ``depends_on``,
  ``branch_labels``). Code is compared as Python's syntax tree, so comments, blank
  lines, formatting and docstrings may change freely;
- a revision of REF was **deleted** (or its id changed);
- a new revision does **not descend from REF's heads**: it builds on revisions of REF,
  but on none of its heads (it branches off below what production runs). A merge of
  two branches that both added revisions is fine once merged; a new independent base
  is fine too.

REF's files are read with ``git`` in a subprocess (``ls-tree`` and one ``cat-file
--batch``), never imported, and nothing touches the network: fetch the ref first in CI.

Nothing here imports pytest.
"""

from __future__ import annotations

import ast
import difflib
import subprocess
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from .exceptions import ConfigurationError
from .history import RevisionGraph

_IDS = ("revision", "down_revision", "depends_on", "branch_labels")


@dataclass(frozen=True)
class RevisionSource:
    """A revision file as source: its ids and its code, statement by statement."""

    path: str
    """Relative to the repository's top folder."""
    ids: Mapping[str, object]
    code: Mapping[str, str] = field(default_factory=dict)
    """Top-level statement (``upgrade()``, ``imports``, ``_backfill()``) -> its syntax tree, dumped."""
    text: Mapping[str, str] = field(default_factory=dict)
    """The same statements as source, for the diff shown."""

    @property
    def revision(self) -> str | None:
        value = self.ids.get("revision")
        return value if isinstance(value, str) else None

    @property
    def parents(self) -> tuple[str, ...]:
        return _tuple(self.ids.get("down_revision"))


def parse(path: str, source: str) -> RevisionSource | None:
    """The revision in ``source``, or ``None`` when it is not a revision file (or not Python)."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return None
    body = _without_docstring(tree.body)
    ids: dict[str, object] = {}
    code: dict[str, str] = {}
    text: dict[str, str] = {}
    for index, node in enumerate(body):
        key = _key(node, index)
        if isinstance(node, (ast.Assign, ast.AnnAssign)) and key in _IDS:
            try:
                ids[key] = ast.literal_eval(node.value) if node.value is not None else None
            except ValueError:
                ids[key] = ast.dump(node.value) if node.value is not None else None
            continue
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            node.body = _without_docstring(node.body) or [ast.Pass()]
        code[key] = code.get(key, "") + ast.dump(node, include_attributes=False)
        text[key] = (text[key] + "\n" if key in text else "") + ast.unparse(node)
    if "revision" not in ids:
        return None
    return RevisionSource(path, ids, code, text)


def _without_docstring(body: list[ast.stmt]) -> list[ast.stmt]:
    first = body[0] if body else None
    if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) and isinstance(first.value.value, str):
        return body[1:]
    return body


def _key(node: ast.stmt, index: int) -> str:
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
        return f"{node.name}()"
    if isinstance(node, ast.ClassDef):
        return f"class {node.name}"
    if isinstance(node, (ast.Import, ast.ImportFrom)):
        return "imports"
    targets = node.targets if isinstance(node, ast.Assign) else [node.target] if isinstance(node, ast.AnnAssign) else []
    names = [t.id for t in targets if isinstance(t, ast.Name)]
    return names[0] if names else f"statement {index + 1}"


def _tuple(value: object) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,)
    if isinstance(value, (list, tuple)):
        return tuple(str(v) for v in value)
    return (str(value),)


# ---------------------------------------------------------------------------- git


def _git(root: Path, *args: str, stdin: str | None = None) -> str:
    try:
        done = subprocess.run(
            ["git", "-C", str(root), *args], input=stdin, capture_output=True, text=True, check=False, timeout=60
        )
    except FileNotFoundError:
        raise ConfigurationError("--migrations-since needs git, which is not installed here") from None
    if done.returncode != 0:
        raise ConfigurationError(f"git {' '.join(args[:2])} failed: {done.stderr.strip() or done.stdout.strip()}")
    return done.stdout


@dataclass(frozen=True)
class History:
    """The revision files of a git ref."""

    ref: str
    commit: str
    root: Path
    revisions: Mapping[str, RevisionSource]
    """By revision id."""

    @property
    def heads(self) -> frozenset[str]:
        parents = {p for source in self.revisions.values() for p in source.parents}
        return frozenset(r for r in self.revisions if r not in parents)


def read_ref(ref: str, folders: Iterable[Path]) -> History:
    """The revision files under ``folders`` (the history's version locations) as they are at ``ref``.

    :raises ConfigurationError: not a git repository, or ``ref`` unknown: one message with the fix.
    """
    folders = [f.resolve() for f in folders]
    start = next((f for f in folders if f.exists()), folders[0])
    try:
        root = Path(_git(start, "rev-parse", "--show-toplevel").strip())
    except ConfigurationError as exc:
        raise ConfigurationError(
            f"--migrations-since {ref}: {start} is not in a git repository ({exc}); run from a clone"
        ) from None
    try:
        commit = _git(root, "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}").strip()
    except ConfigurationError:
        raise ConfigurationError(
            f"--migrations-since {ref}: git knows no commit {ref!r} in {root}. In CI, fetch it first "
            "(git fetch origin main, or actions/checkout with fetch-depth: 0), or name a ref that exists"
        ) from None
    relative = sorted({str(f.relative_to(root)) for f in folders if f.is_relative_to(root)})
    listed = _git(root, "ls-tree", "-r", "--name-only", commit, "--", *relative).splitlines()
    files = [name for name in listed if name.endswith(".py")]
    revisions: dict[str, RevisionSource] = {}
    for path, source in _blobs(root, commit, files).items():
        parsed = parse(path, source)
        if parsed is not None and parsed.revision:
            revisions[parsed.revision] = parsed
    return History(ref, commit, root, revisions)


def _blobs(root: Path, commit: str, paths: list[str]) -> dict[str, str]:
    """The contents of ``paths`` at ``commit``, in one ``git cat-file --batch``."""
    if not paths:
        return {}
    done = subprocess.run(
        ["git", "-C", str(root), "cat-file", "--batch"],
        input="".join(f"{commit}:{path}\n" for path in paths).encode(),
        capture_output=True,
        check=True,
        timeout=120,
    )
    out, data, offset = {}, done.stdout, 0
    for path in paths:
        end = data.index(b"\n", offset)
        header = data[offset:end].split()
        offset = end + 1
        if len(header) < 3 or header[1] != b"blob":
            continue
        size = int(header[2])
        out[path] = data[offset : offset + size].decode("utf-8", errors="replace")
        offset += size + 1
    return out


# ---------------------------------------------------------------------------- the check


@dataclass(frozen=True)
class Change:
    """One way the history differs from REF that must not happen."""

    path: str
    what: str


def new_revisions(history: History, graph: RevisionGraph) -> frozenset[str]:
    """The revisions of the graph that REF does not have."""
    return frozenset(rev.id for rev in graph.order if rev.id not in history.revisions)


def changes(history: History, graph: RevisionGraph) -> list[Change]:
    """Every edited or deleted revision of REF, and every new one that does not build on REF's heads."""
    found: list[Change] = []
    current = {rev.id: rev for rev in graph.order}
    for rid, old in sorted(history.revisions.items(), key=lambda item: item[1].path):
        rev = current.get(rid)
        if rev is None:
            found.append(
                Change(old.path, f"revision {rid} exists at {history.ref} but not any more: deleted, or its id changed")
            )
            continue
        now = parse(str(_relative(rev.path, history.root)), rev.path.read_text(encoding="utf-8", errors="replace"))
        if now is None:
            found.append(Change(str(rev.path), f"revision {rid} can no longer be parsed"))
            continue
        found.extend(_edits(history.ref, old, now))
    heads = history.heads
    for rid in sorted(new_revisions(history, graph)):
        below = graph.ancestors([rid]) - {rid}
        known = below & history.revisions.keys()
        if known and not (below & heads):
            found.append(
                Change(
                    str(_relative(current[rid].path, history.root)),
                    f"new revision {rid} builds on {', '.join(sorted(known)[:3])} of {history.ref} but on none of its "
                    f"head(s) {', '.join(sorted(heads))}: it branches off below what databases at {history.ref} run. "
                    "Point its down_revision at the head (alembic revision --head heads), or merge",
                )
            )
    return found


def _edits(ref: str, old: RevisionSource, now: RevisionSource) -> list[Change]:
    out = []
    for name in _IDS:
        if old.ids.get(name) != now.ids.get(name):
            out.append(Change(now.path, f"{name} changed since {ref}: {old.ids.get(name)!r} -> {now.ids.get(name)!r}"))
    for key in sorted(old.code.keys() | now.code.keys()):
        if old.code.get(key) == now.code.get(key):
            continue
        diff = difflib.unified_diff(
            old.text.get(key, "").splitlines(), now.text.get(key, "").splitlines(), ref, "now", lineterm="", n=1
        )
        out.append(Change(now.path, f"{key} changed since {ref}:\n" + "\n".join(diff)))
    return out


def _relative(path: Path, root: Path) -> Path:
    resolved = path.resolve()
    return resolved.relative_to(root) if resolved.is_relative_to(root) else resolved
