"""The claims reconciler: capacity and publication claims checked against the mentorships.

A crash between taking a mentor's slot and writing the accept (or between closing a mentorship
and freeing its slot) leaves a claim no mentorship holds: the mentor's capacity leaks. A publish
cut short leaves its publication claim and its slots behind. One replica at a time (a lease),
every `claims_reconcile_seconds`, this job:

1. finishes cohort publishes whose replica stopped (their lease lapsed more than
   `claims_grace_seconds` ago: until then a retry by the admin does it), or rolls them back when
   they can no longer be finished (see `CohortUseCases.resume_publication`), and publishes
   finished runs of automatic programs whose replica stopped before publishing them;
2. releases capacity claims that no mentorship holds (unknown mentorship, one that no longer holds
   a slot, or a second claim of one mentorship), once older than `claims_grace_seconds`: an
   accept in flight takes its slot just before writing the mentorship;
3. re-takes the claim of a mentorship that holds a slot without one.

Each repair is counted (`mentorship_claims_repaired_total{kind}`) and logged."""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter as Tally
from datetime import UTC, datetime, timedelta
from typing import Any

import structlog
from prometheus_client import Counter

from mentorship_kit.metrics import REGISTRY
from mentorship_kit.timers import JobLease
from mentorship_kit.usecase import UseCaseContext

from ..domain import HOLDS_SLOT
from ..settings import Settings
from .cohorts import CohortUseCases
from .ports import CapacityStore, MentorshipStore, ProgramStore

log = structlog.get_logger()
RECONCILER = "claims-reconciler"

CLAIMS_REPAIRED = Counter(
    "mentorship_claims_repaired_total",
    "Repairs by the claims reconciler: kind=orphan_released (a slot no mentorship holds), "
    "duplicate_released, missing_retaken, over_capacity (missing but the mentor is full), "
    "publication_resumed, publication_rolled_back, publication_dropped",
    ["service", "kind"],
    registry=REGISTRY,
)


def _utc(moment: datetime | None) -> datetime:
    if moment is None:
        return datetime.min.replace(tzinfo=UTC)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


class ClaimsReconciler:
    def __init__(
        self,
        ctx: UseCaseContext,
        *,
        settings: Settings,
        mentorships: MentorshipStore,
        capacity: CapacityStore,
        programs: ProgramStore,
        cohorts: CohortUseCases,
    ) -> None:
        self.ctx = ctx
        self.settings = settings
        self.mentorships = mentorships
        self.capacity = capacity
        self.programs = programs
        self.cohorts = cohorts

    def _repaired(self, kind: str, tally: Tally[str], **fields: Any) -> None:
        tally[kind] += 1
        CLAIMS_REPAIRED.labels(self.settings.service_name, kind).inc()
        log.warning("claims reconciler repaired", kind=kind, **fields)

    async def reconcile(self) -> dict[str, int]:
        """One pass; returns the repairs made, by kind."""
        tally: Tally[str] = Tally()
        now = self.cohorts.lease_clock.now()  # real time: leases and claims' `taken_at` use it
        grace = timedelta(seconds=self.settings.claims_grace_seconds)
        # a publish cut short is the admin's to retry for the grace period, then the reconciler's
        for claim in await self.programs.unfinished_publications(now - grace):
            outcome = await self.cohorts.resume_publication(claim)
            if outcome not in ("busy", "marked"):
                kind = {"published": "publication_resumed"}.get(outcome, f"publication_{outcome}")
                self._repaired(kind, tally, publication=claim["_id"], run_id=claim.get("run_id"))
        await self.cohorts.publish_finished_automatic_runs()
        unfinished = {c["_id"] for c in await self.programs.unfinished_publications(datetime.max.replace(tzinfo=UTC))}

        # mentorships first, claims second: a claim taken meanwhile is seen, a mentorship is re-read
        holders = await self.mentorships.slot_holders()
        claims = sorted(await self.capacity.all_claims(), key=lambda c: str(c["_id"]))
        kept: set[str] = set()
        for c in claims:
            mid, mentor = c["mentorship_id"], c["mentor_id"]
            if c.get("publication") in unfinished:
                continue  # the publish that took it is still under way (or to be resumed)
            if holders.get(mid) == mentor and mid not in kept:
                kept.add(mid)
                continue
            if _utc(c.get("taken_at")) + grace > now:
                continue  # an accept in flight: its mentorship is about to be written
            duplicate = mid in kept
            if not duplicate and await self._holds_slot(mid, mentor):
                kept.add(mid)  # it became a holder since the snapshot
                continue
            if await self.capacity.release_claim_of(c["_id"], mid):
                kind = "duplicate_released" if duplicate else "orphan_released"
                self._repaired(kind, tally, claim_id=c["_id"], mentor_id=mentor, mentorship_id=mid)
        for mid, mentor in holders.items():
            if mid in kept or not await self._holds_slot(mid, mentor):
                continue
            if await self.capacity.slot_of(mentor, mid) is not None:
                continue
            if await self.capacity.take_slot(mentor, mid) is None:
                # the mentor is over capacity: nothing to take; an operator decides
                self._repaired("over_capacity", tally, mentor_id=mentor, mentorship_id=mid)
            else:
                self._repaired("missing_retaken", tally, mentor_id=mentor, mentorship_id=mid)
        return dict(tally)

    async def _holds_slot(self, mentorship_id: str, mentor_id: str) -> bool:
        current = await self.mentorships.mentorship(mentorship_id)
        return current is not None and current.state in HOLDS_SLOT and current.mentor_id == mentor_id

    async def run_forever(self) -> None:
        """Background job: the replica holding the reconciler's lease runs a pass each period."""
        lease = JobLease(
            self.ctx.timers.db,
            self.cohorts.lease_clock,
            RECONCILER,
            lease_seconds=self.settings.claims_reconcile_lease_seconds,
        )
        try:
            while True:
                try:
                    if await lease.hold():
                        await self.reconcile()
                except Exception as exc:  # keep the job alive; the next pass retries
                    log.warning("claims reconciliation failed", error=repr(exc)[:300])
                await asyncio.sleep(self.settings.claims_reconcile_seconds)
        finally:
            with contextlib.suppress(Exception):
                await asyncio.shield(lease.release())
