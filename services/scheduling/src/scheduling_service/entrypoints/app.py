"""Wiring of the scheduling service process."""

from __future__ import annotations

from fastapi import FastAPI

from mentorship_kit.runtime import ServiceRuntime, create_app

from ..settings import Settings


def create(settings: Settings | None = None) -> FastAPI:
    runtime = ServiceRuntime(settings or Settings())
    return create_app(runtime, title="Scheduling service")
