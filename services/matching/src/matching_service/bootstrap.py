"""The one place that builds the matching service: stores, use cases, and what the runtime runs
for them (indexes, outbox collections, consumers, timers, background jobs, stop hooks)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import structlog

from mentorship_contracts import Topic
from mentorship_kit.runtime import ServiceRuntime

from .adapters import read_model, store
from .adapters.read_model import ProfileReadModel
from .adapters.store import Store
from .application import (
    EXPIRY_TIMER,
    ClaimsReconciler,
    CohortUseCases,
    ErasureUseCases,
    IntroductionUseCases,
    LifecycleUseCases,
    ProfileCache,
    ProgramUseCases,
    ReviewUseCases,
    RevisionUseCases,
    SuggestionUseCases,
)
from .entrypoints.consumers import register_consumers
from .settings import Settings

log = structlog.get_logger()
EXPOSURE_PURGE_SECONDS = 60


@dataclass(frozen=True)
class Matching:
    """The service's use cases (what the HTTP API and the consumers call) and its stores."""

    suggestions: SuggestionUseCases
    lifecycle: LifecycleUseCases
    reviews: ReviewUseCases
    revisions: RevisionUseCases
    programs: ProgramUseCases
    cohorts: CohortUseCases
    claims: ClaimsReconciler
    introductions: IntroductionUseCases
    erasure: ErasureUseCases
    store: Store
    profiles: ProfileReadModel
    cache: ProfileCache
    settings: Settings


def bootstrap(settings: Settings | None = None) -> tuple[ServiceRuntime, Matching]:
    settings = settings or Settings()
    runtime = ServiceRuntime(settings)
    ctx = runtime.context()
    profiles = ProfileReadModel(runtime.db)
    runtime.identities = profiles
    repo = Store(runtime.db)  # one adapter implements the mentorship, capacity, program ... ports
    cache = ProfileCache(
        profiles, runtime.clock, settings.default_mentor_capacity, poll_seconds=settings.profile_index_poll_seconds
    )
    cohorts = CohortUseCases(ctx, settings=settings, programs=repo, profiles=profiles, mentorships=repo, capacity=repo)
    matching = Matching(
        suggestions=SuggestionUseCases(
            ctx,
            settings=settings,
            profiles=profiles,
            cache=cache,
            mentorships=repo,
            capacity=repo,
            exposures=repo,
            programs=repo,
        ),
        lifecycle=LifecycleUseCases(
            ctx, settings=settings, profiles=profiles, mentorships=repo, capacity=repo, exposures=repo, programs=repo
        ),
        reviews=ReviewUseCases(ctx, mentorships=repo),
        revisions=RevisionUseCases(ctx, mentorships=repo),
        programs=ProgramUseCases(ctx, programs=repo, profiles=profiles),
        cohorts=cohorts,
        claims=ClaimsReconciler(
            ctx, settings=settings, mentorships=repo, capacity=repo, programs=repo, cohorts=cohorts
        ),
        introductions=IntroductionUseCases(ctx, introductions=repo, mentorships=repo, profiles=profiles),
        erasure=ErasureUseCases(
            ctx, profiles=profiles, mentorships=repo, capacity=repo, exposures=repo, programs=repo, introductions=repo
        ),
        store=repo,
        profiles=profiles,
        cache=cache,
        settings=settings,
    )

    runtime.indexes(read_model.INDEXES, *store.INDEXES)
    for name in store.OUTBOX_COLLECTIONS:
        # one document per mentorship version: version n+1 is never published before version n
        runtime.outbox_collection(name, ordered_by=store.OUTBOX_ORDER.get(name))
    runtime.produces(Topic.MATCHING)
    register_consumers(runtime, profiles, matching.lifecycle, matching.reviews, matching.erasure)
    runtime.timer(EXPIRY_TIMER, matching.lifecycle.expire)

    async def purge_old_exposures() -> None:
        while True:
            await asyncio.sleep(EXPOSURE_PURGE_SECONDS)
            try:
                await repo.purge_exposures(runtime.clock.now())
            except Exception as exc:  # expired exposures only cost space: try again next round
                log.warning("purging old suggestion exposures failed", error=repr(exc)[:300])

    runtime.background(purge_old_exposures)
    runtime.background(matching.cohorts.watch_runs)
    runtime.background(matching.claims.run_forever)
    # the mentor index is built at start and follows profile changes; /ready waits for the build
    runtime.background(cache.run)
    runtime.ready_check("mentor_index", cache.readiness)

    runtime.on_stop(matching.cohorts.stop)
    return runtime, matching
