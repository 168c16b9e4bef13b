"""Wiring of the profile service process."""

from __future__ import annotations

from fastapi import FastAPI

from mentorship_contracts import Topic
from mentorship_kit.runtime import ServiceRuntime, create_app

from ..adapters.repository import INDEXES, PROFILES, ProfileRepository
from ..application import ProfileService
from ..importing import BulkImport
from ..settings import Settings
from .http import router


def create(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()
    runtime = ServiceRuntime(settings)
    runtime.indexes(INDEXES)
    runtime.outbox_collection(PROFILES)
    runtime.produces(Topic.PROFILE)
    app = create_app(runtime, title="Profile service",
                     description="People: roles, skills, goals, availability, preferences. "
                                 "Source of truth for profile.events.",
                     routers=[router])
    repo = ProfileRepository(runtime.db)
    app.state.profiles = ProfileService(repo, on_events=runtime.wake_relay)
    app.state.bulk_import = BulkImport(repo, on_events=runtime.wake_relay,
                                       batch_size=settings.profile_import_batch_size)
    return app
