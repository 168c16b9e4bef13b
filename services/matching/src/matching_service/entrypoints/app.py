"""Wiring of the matching service process."""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Any

from fastapi import FastAPI

from mentorship_contracts import Topic
from mentorship_kit.runtime import ServiceRuntime, create_app

from ..adapters import read_model, store
from ..adapters.read_model import ProfileReadModel
from ..adapters.store import Store
from ..application import EXPIRY_TIMER, MatchingService
from ..settings import Settings
from .consumers import register_consumers
from .http import routers


def create(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()
    runtime = ServiceRuntime(settings)
    profiles = ProfileReadModel(runtime.db)
    repo = Store(runtime.db)
    matching = MatchingService(repo, profiles, runtime.timers, runtime.clock, settings,
                               on_events=runtime.wake_relay)
    runtime.indexes(read_model.INDEXES, *store.INDEXES)
    for name in store.OUTBOX_COLLECTIONS:
        runtime.outbox_collection(name)
    runtime.produces(Topic.MATCHING)
    register_consumers(runtime, profiles, matching)

    async def expire(timer: dict[str, Any], now: datetime) -> list[Any]:
        return await matching.expire(timer, now)

    runtime.timer(EXPIRY_TIMER, expire)

    async def purge_old_exposures() -> None:
        while True:
            await asyncio.sleep(60)
            try:
                await repo.purge_exposures(runtime.clock.now())
            except Exception:  # next round
                pass

    runtime.background(purge_old_exposures)
    app = create_app(runtime, title="Matching service",
                     description="Explainable suggestions, requests and the mentorship lifecycle, "
                                 "programs and optimal cohort matching, introductions.",
                     routers=routers)
    app.state.profiles = profiles
    app.state.matching = matching
    return app
