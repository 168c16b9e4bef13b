"""Wiring of the insights service process."""

from __future__ import annotations

from fastapi import FastAPI

from mentorship_kit.runtime import create_app

from ..bootstrap import bootstrap
from ..settings import Settings
from .http import routers


def create(settings: Settings | None = None) -> FastAPI:
    runtime, insights = bootstrap(settings)
    app = create_app(
        runtime,
        title="Insights service",
        description="Program health, pairs that need attention, mentor load, supply gap and "
        "CSV exports for program managers, built only from the event stream.",
        routers=routers,
    )
    app.state.insights = insights
    return app
