"""Right to be forgotten: what matching does when a person erased their profile.

The rules are the aggregate's (`Mentorship.leave`, `Mentorship.scrubbed`); this module applies
them to everything matching holds about the person. Every step is idempotent, so a duplicate
`ProfileErased` changes nothing more and one that crashed half-way finishes on redelivery. The
read model's tombstone keeps the person forgotten when events about them arrive later.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import structlog

from mentorship_contracts import Envelope
from mentorship_contracts.matching import ProgramParticipantWithdrawn
from mentorship_kit.usecase import UseCaseContext

from ..domain import Change, Mentorship
from .ports import CapacityStore, ExposureStore, IntroductionStore, MentorshipStore, ProfileTombstones, ProgramStore
from .shared import expiry_timer_id

log = structlog.get_logger()
CLOSED = "closed"  # an introduction that can no longer be answered: someone in it left
_ALL = 1_000_000
_ATTEMPTS = 5


class ErasureUseCases:
    def __init__(
        self,
        ctx: UseCaseContext,
        *,
        profiles: ProfileTombstones,
        mentorships: MentorshipStore,
        capacity: CapacityStore,
        exposures: ExposureStore,
        programs: ProgramStore,
        introductions: IntroductionStore,
    ) -> None:
        self.ctx = ctx
        self.profiles = profiles
        self.mentorships = mentorships
        self.capacity = capacity
        self.exposures = exposures
        self.programs = programs
        self.introductions = introductions

    async def profile_erased(self, event: Envelope[Any]) -> None:
        person_id: str = event.data.profile_id
        await self.profiles.erase(person_id, event.time)
        for mentorship in await self.mentorships.mentorships_of(person_id):
            await self._leave(mentorship.mentorship_id, person_id, event)
            await self.mentorships.rewrite_versions(mentorship.mentorship_id, Mentorship.scrubbed)
        await self.capacity.forget_mentor(person_id)
        await self.exposures.forget_exposures_of(person_id)
        await self._close_introductions(person_id)
        await self._withdraw_enrolments(person_id, event)
        self.ctx.events_written()

    async def _leave(self, mentorship_id: str, person_id: str, cause: Envelope[Any]) -> None:
        """Close what is still open in the mentorship, on top of its latest version (a concurrent
        change wins the version race: read again and decide again)."""
        for _ in range(_ATTEMPTS):
            current = await self.mentorships.mentorship(mentorship_id)
            if current is None:
                return
            # decided on the scrubbed aggregate: the new version carries no free text from the start
            change = current.scrubbed().leave(person_id, self.ctx.clock.now())
            if change is None:
                return
            events = [self.ctx.events.caused_by(cause, data) for data in change.events]
            if await self.mentorships.save(change.after, events):
                await self._let_go(change)
                return
        log.warning(
            "erasure could not close a mentorship (changed concurrently); the redelivery retries",
            mentorship_id=mentorship_id,
        )
        raise RuntimeError(f"mentorship {mentorship_id} kept changing during erasure")

    async def _let_go(self, change: Change) -> None:
        m = change.after
        if change.answers_request:
            await self.ctx.timers.cancel(expiry_timer_id(m.mentorship_id))
            await self.mentorships.unlock_pair(m.mentee_id, m.mentor_id, m.mentorship_id)
        if change.frees_slot:
            await self.capacity.release_slot(m.mentor_id, m.mentorship_id)

    async def _close_introductions(self, person_id: str) -> None:
        found, _ = await self.introductions.introductions_of(person_id, as_=None, state=None, offset=0, limit=_ALL)
        for intro in found:
            if intro["state"] == "pending":
                # nobody is asked any more; no event: the other people are told nothing about the person
                await self.introductions.answer_introduction(intro["_id"], CLOSED, self.ctx.clock.now(), [])
            await self.introductions.scrub_introduction(intro["_id"])

    async def _withdraw_enrolments(self, person_id: str, cause: Envelope[Any]) -> None:
        for spell in await self.programs.enrolments_of(person_id):
            if spell["withdrawn_at"] is not None:
                continue
            now: datetime = self.ctx.clock.now()
            withdrawn = self.ctx.events.caused_by(
                cause,
                ProgramParticipantWithdrawn(
                    program_id=spell["program_id"],
                    profile_id=person_id,
                    role=spell["role"],
                    enrolment_id=spell["_id"],
                    enrolled_at=spell["enrolled_at"],
                    withdrawn_at=now,
                ),
            )
            doc = {
                "_id": spell["_id"],
                "program_id": spell["program_id"],
                "profile_id": person_id,
                "role": spell["role"],
                "enrolled_at": spell["enrolled_at"],
                "withdrawn_at": now,
            }
            if await self.programs.insert_withdrawal(doc, [withdrawn]):
                await self.programs.update_program(spell["program_id"], {})  # older dry runs are stale
