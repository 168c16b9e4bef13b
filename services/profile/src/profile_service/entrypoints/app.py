"""The profile service's ASGI app (uvicorn factory: `profile_service.entrypoints.app:create`)."""

from __future__ import annotations

from fastapi import FastAPI

from mentorship_kit.runtime import create_app

from ..bootstrap import bootstrap
from ..settings import Settings
from .http import me_router, router
from .scim_http import install_scim_errors
from .scim_http import router as scim_router


def create(settings: Settings | None = None) -> FastAPI:
    runtime, use_cases = bootstrap(settings)
    app = create_app(
        runtime,
        title="Profile service",
        description="People: roles, skills, goals, availability, preferences. Source of truth for profile.events.",
        routers=[router, me_router, scim_router],
    )
    install_scim_errors(app)
    app.state.profiles = use_cases.profiles
    app.state.bulk_import = use_cases.imports
    app.state.scim = use_cases.scim
    return app
