"""Wiring of the matching service process."""

from __future__ import annotations

from fastapi import FastAPI

from mentorship_kit.runtime import ServiceRuntime, create_app

from ..adapters.read_model import ProfileReadModel
from ..settings import Settings
from .consumers import register_consumers
from .http import router


def create(settings: Settings | None = None) -> FastAPI:
    runtime = ServiceRuntime(settings or Settings())
    profiles = ProfileReadModel(runtime.db)
    register_consumers(runtime, profiles)
    app = create_app(runtime, title="Matching service", description="Matching and mentorship lifecycle.",
                     routers=[router])
    app.state.profiles = profiles
    return app
