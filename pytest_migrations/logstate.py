"""The logging configuration as it was: env.py's ``fileConfig()`` must not change the user's loggers.

The ``alembic.ini`` templates' env.py calls ``logging.config.fileConfig()``, which by
default disables every logger that exists already and replaces the root logger's
handlers. Run inside a test session, that silences the application's loggers for every
later test (a known complaint about pytest-alembic). The plugin saves the state of every
logger before env.py runs and puts it back once env.py has configured itself, before the
first migration step.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class _LoggerState:
    level: int
    handlers: list[logging.Handler]
    filters: list[Any]
    disabled: bool
    propagate: bool


_DEFAULT = _LoggerState(logging.NOTSET, [], [], False, True)


def _loggers() -> dict[str, logging.Logger]:
    found = {name: lg for name, lg in logging.Logger.manager.loggerDict.items() if isinstance(lg, logging.Logger)}
    found[""] = logging.getLogger()
    return found


@dataclass(frozen=True)
class LoggingState:
    """Levels, handlers, filters and flags of every logger, and the global ``logging.disable`` level."""

    loggers: dict[str, _LoggerState]
    disabled_below: int

    @classmethod
    def save(cls) -> LoggingState:
        return cls(
            {
                name: _LoggerState(lg.level, list(lg.handlers), list(lg.filters), lg.disabled, lg.propagate)
                for name, lg in _loggers().items()
            },
            logging.root.manager.disable,
        )

    def restore(self) -> None:
        """Put every logger back as it was; loggers made since are reset to the defaults."""
        for name, lg in _loggers().items():
            state = self.loggers.get(name, _DEFAULT)
            lg.level, lg.disabled, lg.propagate = state.level, state.disabled, state.propagate
            lg.handlers[:] = state.handlers
            lg.filters[:] = state.filters
        logging.disable(self.disabled_below)  # also clears the loggers' cached levels
