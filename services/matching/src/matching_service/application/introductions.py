"""Introductions: a mentor introduces their mentee to another member, who accepts or declines."""

from __future__ import annotations

from typing import Any

from mentorship_contracts.matching import IntroductionAccepted, IntroductionDeclined, IntroductionMadeV2
from mentorship_kit.auth import Principal
from mentorship_kit.problems import Conflict, Forbidden, NotFound, Unprocessable
from mentorship_kit.usecase import UseCaseContext

from ..domain import State
from .ports import IntroductionStore, MentorshipStore, ProfileReader
from .shared import new_id, page, present_introduction


class IntroductionUseCases:
    def __init__(
        self,
        ctx: UseCaseContext,
        *,
        introductions: IntroductionStore,
        mentorships: MentorshipStore,
        profiles: ProfileReader,
    ) -> None:
        self.ctx = ctx
        self.introductions = introductions
        self.mentorships = mentorships
        self.profiles = profiles

    async def introduce(
        self, principal: Principal, mentorship_id: str, contact_id: str, message: str, correlation_id: str | None = None
    ) -> dict[str, Any]:
        mentorship = await self.mentorships.mentorship(mentorship_id)
        if mentorship is None:
            raise NotFound("mentorship", mentorship_id)
        if not (principal.is_admin or mentorship.has_participant(principal.subject, "mentor")):
            raise Forbidden("only the mentor or an admin may do this")
        if mentorship.state != State.ACTIVE:
            raise Conflict(f"introductions need an active mentorship (this one is {mentorship.state.value})")
        if contact_id in (mentorship.mentee_id, mentorship.mentor_id):
            raise Unprocessable("introduce the mentee to someone else", field="contact_id")
        contact = await self.profiles.profile(contact_id)
        if contact is None or not contact.get("active", True):
            raise Unprocessable(f"no active member with id {contact_id!r}", field="contact_id")
        introduction_id = new_id()
        event = self.ctx.events.new(
            IntroductionMadeV2(
                introduction_id=introduction_id,
                mentorship_id=mentorship_id,
                introduced_by=mentorship.mentor_id,
                mentee_id=mentorship.mentee_id,
                contact_id=contact_id,
                has_message=bool(message.strip()),
            ),
            correlation_id=correlation_id,
        )
        intro = {
            "_id": introduction_id,
            "mentorship_id": mentorship_id,
            "introduced_by": mentorship.mentor_id,
            "mentee_id": mentorship.mentee_id,
            "contact_id": contact_id,
            "message": message,
            "state": "pending",
            "made_at": self.ctx.clock.now(),
        }
        await self.introductions.insert_introduction(intro, [event])
        self.ctx.events_written()
        return present_introduction(intro)

    async def answer_introduction(
        self, principal: Principal, introduction_id: str, accept: bool, correlation_id: str | None = None
    ) -> dict[str, Any]:
        intro = await self.introductions.get_introduction(introduction_id)
        if intro is None:
            raise NotFound("introduction", introduction_id)
        if not (principal.is_admin or principal.subject == intro["contact_id"]):
            raise Forbidden("only the introduced person may answer")
        if intro["state"] != "pending":
            raise Conflict(f"this introduction was {intro['state']} already")
        model = IntroductionAccepted if accept else IntroductionDeclined
        event = self.ctx.events.new(
            model(
                introduction_id=introduction_id,
                mentee_id=intro["mentee_id"],
                contact_id=intro["contact_id"],
                introduced_by=intro["introduced_by"],
            ),
            correlation_id=correlation_id,
        )
        if not await self.introductions.answer_introduction(
            introduction_id, "accepted" if accept else "declined", self.ctx.clock.now(), [event]
        ):
            raise Conflict("this introduction was answered already")
        self.ctx.events_written()
        return present_introduction(await self.introductions.get_introduction(introduction_id) or intro)

    async def get_introduction(self, principal: Principal, introduction_id: str) -> dict[str, Any]:
        intro = await self.introductions.get_introduction(introduction_id)
        if intro is None:
            raise NotFound("introduction", introduction_id)
        if not (
            principal.is_admin or principal.subject in (intro["contact_id"], intro["mentee_id"], intro["introduced_by"])
        ):
            raise Forbidden("only the people involved may see this introduction")
        return present_introduction(intro)

    async def introductions_of(
        self, principal: Principal, profile_id: str, *, as_: str | None, state: str | None, offset: int, limit: int
    ) -> dict[str, Any]:
        """The introductions a person made, received or was introduced in (the person or an admin)."""
        principal.require_self_or_admin(profile_id)
        found, total = await self.introductions.introductions_of(
            profile_id, as_=as_, state=state, offset=offset, limit=limit
        )
        return page([present_introduction(intro) for intro in found], total, offset, limit)
