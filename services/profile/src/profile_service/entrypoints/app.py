"""Wiring of the profile service process."""

from __future__ import annotations

from fastapi import FastAPI

from mentorship_contracts import Topic
from mentorship_kit.runtime import ServiceRuntime, create_app

from ..adapters.repository import INDEXES, PROFILES, ProfileRepository
from ..application import ProfileService
from ..settings import Settings
from .http import router


def create(settings: Settings | None = None) -> FastAPI:
    runtime = ServiceRuntime(settings or Settings())
    runtime.indexes(INDEXES)
    runtime.outbox_collection(PROFILES)
    runtime.produces(Topic.PROFILE)
    app = create_app(runtime, title="Profile service", description="People, roles, skills, goals.",
                     routers=[router])
    app.state.profiles = ProfileService(ProfileRepository(runtime.db), on_events=runtime.wake_relay)
    return app
