"""Which revision modules hold state a step consumes: decided per module object, never per id()."""

from __future__ import annotations

import gc
from types import ModuleType

from pytest_migrations.envrun import _stateful


def test_a_new_module_at_a_freed_modules_address_is_judged_on_its_own() -> None:
    """CPython gives a new object the address of one just freed: a cache keyed by id() answered for the dead one."""
    for _ in range(20):
        plain = ModuleType("revision_plain")
        plain.revision = "a1"
        assert not _stateful(plain)
        del plain
        gc.collect()
        stateful = ModuleType("revision_stateful")
        stateful.PENDING = ["audit"]
        assert _stateful(stateful)
        del stateful
        gc.collect()
