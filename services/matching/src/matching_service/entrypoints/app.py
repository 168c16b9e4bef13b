"""The matching service's ASGI app (everything is built in `bootstrap`)."""

from __future__ import annotations

from fastapi import FastAPI

from mentorship_kit.runtime import create_app

from ..bootstrap import bootstrap
from ..settings import Settings
from .http import routers


def create(settings: Settings | None = None) -> FastAPI:
    runtime, matching = bootstrap(settings)
    app = create_app(
        runtime,
        title="Matching service",
        description="Explainable suggestions, requests and the mentorship lifecycle, "
        "programs and optimal cohort matching, introductions.",
        routers=routers,
    )
    app.state.profiles = matching.profiles
    app.state.matching = matching
    return app
