"""The scheduling service's ASGI app (uvicorn factory: `scheduling_service.entrypoints.app:create`)."""

from __future__ import annotations

from fastapi import FastAPI

from mentorship_kit.runtime import create_app

from ..bootstrap import bootstrap
from ..settings import Settings
from .http import router


def create(settings: Settings | None = None) -> FastAPI:
    runtime, scheduling = bootstrap(settings)
    app = create_app(
        runtime,
        title="Scheduling service",
        description="Sessions across time zones, recurring check-ins, reminders, feedback, milestones.",
        routers=[router],
    )
    app.state.scheduling = scheduling
    return app
