"""The notification service's ASGI app (uvicorn factory: `notification_service.entrypoints.app:create`)."""

from __future__ import annotations

from fastapi import FastAPI

from mentorship_kit.runtime import create_app

from ..bootstrap import bootstrap
from ..settings import Settings
from .http import routers


def create(settings: Settings | None = None) -> FastAPI:
    runtime, notifications = bootstrap(settings)
    app = create_app(
        runtime,
        title="Notification service",
        description="Email, signed webhooks and the in-app inbox; preferences, quiet hours, delivery log.",
        routers=routers,
    )
    app.state.notifications = notifications
    return app
