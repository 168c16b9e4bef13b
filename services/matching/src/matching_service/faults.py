"""Test-only fault injection: a process that dies at a named point (like a SIGKILL there), so a
test can show what another replica or a retry makes of the state left behind."""

from __future__ import annotations

import os

import structlog

from .settings import Settings

log = structlog.get_logger()
FAULT_EXIT_STATUS = 70


def crash_point(settings: Settings, point: str) -> None:
    """Exit the process at once (no cleanup, no flush) when `FAULT_EXIT_AT` names this point."""
    if settings.fault_exit_at == point:
        log.error("fault injection: exiting", point=point)
        os._exit(FAULT_EXIT_STATUS)
