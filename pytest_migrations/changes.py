"""What a migration step may have changed: the tables whose rows it can have touched.

Comparing every row of every table after every step costs a walk of N revisions
O(N x tables). But a step changes only what its statements name: the plugin records
each statement a step sends on the migration's connection (see
:mod:`pytest_migrations.envrun`), and a table no statement of the step names, whose
schema facts did not change, still holds the rows it held before the step.

A table is written by a statement that names it as its target (``INSERT INTO``,
``UPDATE``, ``DELETE FROM``, ``ALTER TABLE``, ``DROP TABLE``, ...); a table it only names
(``REFERENCES t0`` in SQLite's batch copy of a child table) keeps its rows. The answer
is conservative: it is "every table" (``None``) whenever it cannot be told from the
statements alone:

- a statement that runs code of the database (``DO``, ``CALL``, ``EXECUTE``) or names a
  function the database has (a ``SELECT refresh_totals()``): what it writes is unknown;
- ``ALTER TYPE`` / ``ALTER DOMAIN``: values change in every table using the type;
- a statement sent on another connection than the migration's (an engine of its own,
  an ORM session bound to an engine): it was not recorded;
- a touched table with triggers, which may write elsewhere.

Foreign keys are followed the other way: a table whose foreign key refers to a touched
table is touched too (``ON DELETE CASCADE``, ``SET NULL``, a parent dropped and
re-created).

Nothing here imports pytest or talks to a database.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable, Mapping

_IDENT = r'"(?:[^"]|"")+"|`[^`]+`|\[[^\]]+\]|[A-Za-z_][\w$]*'
_QUALIFIED = rf"(?:{_IDENT})(?:\s*\.\s*(?:{_IDENT}))*"
_TOKEN = re.compile(_IDENT)
_WRITES = re.compile(
    r"\b(?:INSERT(?:\s+OR\s+\w+)?\s+INTO|REPLACE\s+INTO|MERGE\s+INTO|INTO\s+TABLE|UPDATE(?:\s+OR\s+\w+)?(?:\s+ONLY)?"
    r"|DELETE\s+FROM(?:\s+ONLY)?|TRUNCATE(?:\s+TABLE)?(?:\s+ONLY)?|COPY"
    r"|ALTER\s+TABLE(?:\s+IF\s+EXISTS)?(?:\s+ONLY)?|DROP\s+TABLE(?:\s+IF\s+EXISTS)?"
    r"|CREATE\s+(?:TEMP\w*\s+|UNLOGGED\s+)?TABLE(?:\s+IF\s+NOT\s+EXISTS)?|RENAME\s+TABLE|RENAME\s+TO|,)"
    rf"\s+(?P<name>{_QUALIFIED})",
    re.IGNORECASE,
)
"""A table a statement writes: what follows INSERT INTO, UPDATE, DELETE FROM, ALTER/DROP/CREATE TABLE, ...

(also a name after a comma, for ``DROP TABLE a, b``: at worst a table is read again for nothing)."""
_MULTI_TABLE = re.compile(
    r"^\s*(?:UPDATE\b.*?(?:\bJOIN\b|,[^=]*\bSET\b)|DELETE\s+(?!FROM\b))", re.IGNORECASE | re.DOTALL
)
"""MySQL's multi-table ``UPDATE a JOIN b SET ...``, ``DELETE a, b FROM ...``: any table named may be written."""
_OPAQUE = re.compile(r"^\s*(?:DO|CALL|EXEC|EXECUTE|PERFORM)\b|\bALTER\s+(?:TYPE|DOMAIN)\b", re.IGNORECASE)
"""Code of the database, or a type change that alters values in every table using the type: anything may change."""


def _name(word: str) -> str:
    if word[0] in '"`[':
        return word[1:-1].replace('""', '"').lower()
    return word.lower()


def written_tables(
    statements: Iterable[str], tables: Collection[str], functions: Collection[str] = ()
) -> set[str] | None:
    """The tables among ``tables`` the statements may write; ``None`` when one runs code whose writes are unknown.

    A table only named (in a foreign key's ``REFERENCES``, a ``SELECT``'s ``FROM``) is
    not written. Names compare case-insensitively, which at worst reads a table again.

    :param functions: names of the database's own functions (without schema or arguments).
    """
    by_name = {name.lower(): name for name in tables}
    called = {f.lower() for f in functions}
    found: set[str] = set()
    for sql in statements:
        if _OPAQUE.search(sql):
            return None
        words = [_name(w) for w in _TOKEN.findall(sql)]
        if called.intersection(words):
            return None
        if _MULTI_TABLE.search(sql):
            found.update(by_name[w] for w in words if w in by_name)
            continue
        for match in _WRITES.finditer(sql):
            last = _name(_TOKEN.findall(match["name"])[-1])
            if last in by_name:
                found.add(by_name[last])
    return found


def with_dependents(
    touched: set[str], referrers: Mapping[str, Collection[str]], triggered: Collection[str] = ()
) -> set[str] | None:
    """``touched`` with every table whose foreign key refers to one in it, transitively.

    :param referrers: table -> the tables with a foreign key to it.
    :param triggered: tables with triggers: touching one gives ``None`` (anything may have changed).
    """
    if any(name in touched for name in triggered):
        return None
    out, todo = set(touched), list(touched)
    while todo:
        for child in referrers.get(todo.pop(), ()):
            if child not in out:
                out.add(child)
                todo.append(child)
    return out
