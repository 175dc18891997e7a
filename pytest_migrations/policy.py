"""What a team has decided not to test, or to accept: upgrade-only revisions and known differences.

Real histories carry decisions the schema cannot show. Some teams never write
downgrades; some stop supporting downgrades below a release; some knowingly keep an
enum label or a widened column after a downgrade. A :class:`Policy` holds those
decisions, from revision files and the pytest ini, so that the checks test everything
else and say what they did not test and why:

- a revision that defines no ``downgrade()`` is *upgrade-only*: its upgrade is tested,
  its downgrade is not;
- ``irreversible = True | "why"`` in a file, ``migrations_irreversible = REV`` (or ``*``
  for every revision) and ``migrations_downgrade_floor = REV`` (REV and everything
  below it) exempt downgrades the same way;
- ``stairway_accept = ["enum state_type"]`` in a file, or
  ``migrations_stairway_accept = REV: enum state_type`` in the ini, accepts exactly
  those differences of that revision's round trip; they are shown as accepted and
  every other difference still fails.

An accept entry is ``<kind> <name>`` (every difference of that object) or
``<kind> <name>: <fact>`` (one fact of it), as the failure lists them: ``table users:
column legacy``, ``enum state_type``; shell wildcards (``*``) are allowed.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .history import Revision, RevisionGraph
    from .schema import Difference

#: Module-level name of a revision file's accepted differences.
ACCEPT_ATTRIBUTE = "stairway_accept"


@dataclass(frozen=True)
class Policy:
    """The downgrades not to test and the differences to accept, across the history."""

    all_irreversible: bool = False
    """``migrations_irreversible = *``: no downgrade is tested."""
    downgrade_floor: str | None = None
    """A revision id (or unique prefix): downgrades at or below it are not tested."""
    accept: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    """Accept entries from the ini, by revision id or prefix."""

    def downgrade_exemption(self, graph: RevisionGraph, revision: Revision, module: object) -> str | None:
        """Why ``revision``'s downgrade is not tested, or ``None`` when it is."""
        if revision.irreversible:
            return revision.irreversible
        if not callable(getattr(module, "downgrade", None)):
            return f"upgrade-only: {revision.path.name} defines no downgrade()"
        if self.all_irreversible:
            return "migrations_irreversible = * (no downgrade is tested)"
        floor = self._floor(graph)
        if floor is not None and revision.id in graph.ancestors([floor]):
            return f"at or below migrations_downgrade_floor = {self.downgrade_floor}"
        return None

    def _floor(self, graph: RevisionGraph) -> str | None:
        if not self.downgrade_floor:
            return None
        return _resolve(graph, self.downgrade_floor, "migrations_downgrade_floor")

    def accepted_entries(self, revision: Revision, module: object) -> tuple[str, ...]:
        """Every accept entry of ``revision``: its file's, then the ini's."""
        declared = getattr(module, ACCEPT_ATTRIBUTE, ())
        entries = [declared] if isinstance(declared, str) else list(declared or ())
        for key, values in self.accept.items():
            if revision.id.startswith(key):
                entries.extend(values)
        return tuple(str(e) for e in entries)


def accept_entry(difference: Difference) -> str:
    """The entry that accepts exactly ``difference``: ``table users: column legacy``, or
    ``enum state_type`` for an object missing or extra as a whole. (``table users`` alone would
    accept every difference of the table, a forgotten column as well.)"""
    whole = f"{difference.kind} {difference.name}"
    return whole if difference.fact is None else f"{whole}: {difference.fact}"


def matches(entry: str, difference: Difference) -> bool:
    """Whether an accept entry covers one difference (the whole object, or one fact of it).

    An entry as :func:`accept_entry` writes it matches as it stands, even where its text holds
    a wildcard's characters (``check constraint (tags = ANY (ARRAY['a']))``)."""
    entry = " ".join(entry.split())
    whole = f"{difference.kind} {difference.name}"
    if entry == " ".join(accept_entry(difference).split()) or fnmatchcase(whole, entry):
        return True
    return difference.fact is not None and fnmatchcase(f"{whole}: {difference.fact}", entry)


def split_accepted(
    entries: Sequence[str], differences: Iterable[Difference]
) -> tuple[list[Difference], list[Difference]]:
    """``(accepted, rest)``: the differences some entry covers, and the others."""
    accepted: list[Difference] = []
    rest: list[Difference] = []
    for difference in differences:
        (accepted if any(matches(e, difference) for e in entries) else rest).append(difference)
    return accepted, rest


def parse_accept_lines(lines: Iterable[str]) -> dict[str, tuple[str, ...]]:
    """``REV: entry`` ini lines as ``{REV: (entry, ...)}``; raises ``ValueError`` on a line without ``:``."""
    found: dict[str, list[str]] = {}
    for line in lines:
        rev, sep, entry = line.partition(":")
        if not sep or not rev.strip() or not entry.strip():
            raise ValueError(line)
        found.setdefault(rev.strip(), []).append(entry.strip())
    return {rev: tuple(entries) for rev, entries in found.items()}


def _resolve(graph: RevisionGraph, prefix: str, setting: str) -> str:
    found = [rev.id for rev in graph.order if rev.id.startswith(prefix)]
    if len(found) != 1:
        from .exceptions import ConfigurationError

        what = "no revision" if not found else f"{len(found)} revisions ({', '.join(found[:5])})"
        raise ConfigurationError(f"{setting} = {prefix} names {what}; give one revision id")
    return found[0]
