"""Requests and the mentorship lifecycle: who may ask for, answer and close a mentorship.

The rules of each transition are the `Mentorship` aggregate's; this module loads it, checks who
is calling, asks the aggregate for the change, then writes the new version with its events in
one conditional single-document write and lets go of what the change released (the expiry
timer, the open-request lock, the mentor's capacity slot)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal

import structlog

from mentorship_contracts import Envelope
from mentorship_contracts.matching import Agreement
from mentorship_kit.auth import Principal
from mentorship_kit.problems import Conflict, Forbidden, NotFound, Unprocessable
from mentorship_kit.usecase import UseCaseContext

from ..domain import (
    AgreementDefaults,
    Change,
    LifecycleError,
    MatchingMode,
    Mentorship,
    request_mentorship,
)
from ..faults import crash_point
from ..scoring import Person, violations
from ..settings import Settings
from .ports import CapacityStore, ExposureStore, MentorshipStore, ProfileReader, ProgramReader
from .shared import EXPIRY_TIMER, expiry_timer_id, new_id, person_of, problem_of, program_config

log = structlog.get_logger()
Role = Literal["mentee", "mentor"]


@dataclass(frozen=True)
class MentorshipView:
    """A mentorship as its reader may see it (review flags are for admins only)."""

    mentorship: Mentorship
    review_flags: list[dict[str, Any]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        out = self.mentorship.as_dict()
        return {**out, "review_flags": self.review_flags} if self.review_flags else out


class LifecycleUseCases:
    def __init__(
        self,
        ctx: UseCaseContext,
        *,
        settings: Settings,
        profiles: ProfileReader,
        mentorships: MentorshipStore,
        capacity: CapacityStore,
        exposures: ExposureStore,
        programs: ProgramReader,
    ) -> None:
        self.ctx = ctx
        self.settings = settings
        self.profiles = profiles
        self.mentorships = mentorships
        self.capacity = capacity
        self.exposures = exposures
        self.programs = programs

    # --- the profile read model's part: capacity ------------------------------------------------
    async def profile_changed(self, profile: dict[str, Any] | None) -> None:
        """Keep the mentor's capacity document in step with their profile."""
        if profile and "mentor" in profile.get("roles", []):
            capacity = profile.get("mentor_capacity")
            await self.capacity.set_capacity(
                profile["profile_id"], self.settings.default_mentor_capacity if capacity is None else int(capacity)
            )

    # --- asking ---------------------------------------------------------------------------------
    async def request(
        self,
        principal: Principal,
        mentor_id: str,
        message: str,
        program_id: str | None,
        mentee_id: str | None = None,
        correlation_id: str | None = None,
    ) -> Mentorship:
        mentee_id = mentee_id if (mentee_id and principal.is_admin) else principal.subject
        if mentee_id == mentor_id:
            raise Unprocessable("you cannot request yourself as a mentor", field="mentor_id")
        mentee = await self._person(mentee_id)
        if mentee is None:
            raise Unprocessable("the mentee has no profile (yet)", field="mentee_id")
        mentor = await self._person(mentor_id)
        if mentor is None:
            raise Unprocessable(f"no profile with id {mentor_id!r}", field="mentor_id")
        if "mentor" not in mentor.roles:
            raise Unprocessable("this person is not a mentor", field="mentor_id")
        if not mentor.active:
            raise Unprocessable("this mentor is not active", field="mentor_id")
        _, constraints, program = await program_config(self.programs, program_id)
        excluded = await self.mentorships.excluded_mentors(
            [mentee_id], forbid_repeats=constraints.forbid_repeat_partners
        )
        # an open request to the same mentor is reported as a duplicate (409) below, not as excluded
        found = violations(mentee, mentor, constraints, excluded=frozenset(excluded.get(mentee_id, ())))
        load = await self.capacity.load(mentor_id)
        if load is not None and load["free"] <= 0:
            raise Conflict("this mentor has no free capacity", field="mentor_id")
        now = self.ctx.clock.now()
        change = self._decide(
            lambda: request_mentorship(
                mentorship_id=new_id(),
                mentee_id=mentee_id,
                mentor_id=mentor_id,
                program_id=program_id,
                message=message,
                approval_required=bool(program and program["mode"] == MatchingMode.ADMIN_APPROVED),
                now=now,
                expires_at=now + timedelta(hours=self.settings.request_expiry_hours),
            )
        )
        created = change.after
        mid = created.mentorship_id
        holder = await self.mentorships.lock_pair(mentee_id, mentor_id, mid)
        if holder is not None:
            raise Conflict("you already have an open request to this mentor", mentorship_id=holder)
        if found:
            await self.mentorships.unlock_pair(mentee_id, mentor_id, mid)
            raise Unprocessable(found[0], field="mentor_id", violations=found)
        assert created.expires_at is not None
        # The timer first: a request never exists without its expiry.
        await self.ctx.timers.schedule(
            expiry_timer_id(mid), EXPIRY_TIMER, created.expires_at, {"mentorship_id": mid}, group=mid
        )
        try:
            await self.mentorships.save(created, self._envelopes(change, correlation_id))
        except BaseException:
            await self.ctx.timers.cancel(expiry_timer_id(mid))
            await self.mentorships.unlock_pair(mentee_id, mentor_id, mid)
            raise
        self.ctx.events_written()
        return created

    # --- reading --------------------------------------------------------------------------------
    async def get(self, principal: Principal, mentorship_id: str) -> MentorshipView:
        mentorship = await self.mentorships.mentorship(mentorship_id)
        if mentorship is None:
            raise NotFound("mentorship", mentorship_id)
        if not (principal.is_admin or mentorship.has_participant(principal.subject, "mentee", "mentor")):
            raise Forbidden("only the participants or an admin may see this mentorship")
        # who said "not a good fit" (and when) is for the program's admins only
        flags = await self.mentorships.review_flags(mentorship_id) if principal.is_admin else []
        return MentorshipView(mentorship, flags)

    async def list_for(self, principal: Principal, profile_id: str) -> list[Mentorship]:
        principal.require_self_or_admin(profile_id)
        return await self.mentorships.mentorships_of(profile_id)

    # --- answering and closing ------------------------------------------------------------------
    async def accept(
        self, principal: Principal, mentorship_id: str, agreement: Agreement | None, correlation_id: str | None = None
    ) -> Mentorship:
        mentorship = await self._load_for(principal, mentorship_id, "mentor")
        _, _, program = await program_config(self.programs, mentorship.program_id)
        defaults = (
            AgreementDefaults(cadence=program["cadence"], duration_weeks=program["duration_weeks"])
            if program
            else AgreementDefaults()
        )
        now = self.ctx.clock.now()
        # every rule is checked before the capacity slot is taken: a refused accept holds nothing
        change = self._decide(lambda: mentorship.accept(agreement, defaults, now))
        taken = await self.capacity.take_slot(mentorship.mentor_id, mentorship_id)
        if taken is None:
            raise Conflict("the mentor has no free capacity", field="mentor_id")
        crash_point(self.settings, "accept_after_slot")
        try:
            saved = await self.mentorships.save(change.after, self._envelopes(change, correlation_id))
        except BaseException:
            await self.capacity.release_claim(taken["claim_id"])
            raise
        if not saved:  # withdrawn, declined, expired or accepted meanwhile: give the slot back
            await self.capacity.release_claim(taken["claim_id"])
            raise await self._lost_race(mentorship_id, "accept")
        await self._let_go(change)
        await self.exposures.forget_exposures(mentorship.mentee_id)
        if taken["free"] <= 0:
            await self._decline_open_requests(mentorship.mentor_id, correlation_id)
        self.ctx.events_written()
        return change.after

    async def decline(
        self, principal: Principal, mentorship_id: str, reason: str, correlation_id: str | None = None
    ) -> Mentorship:
        mentorship = await self._load_for(principal, mentorship_id, "mentor")
        now = self.ctx.clock.now()
        return await self._apply(
            lambda: mentorship.decline(reason, now, by_admin=principal.is_admin), "decline", correlation_id
        )

    async def withdraw(
        self,
        principal: Principal,
        mentorship_id: str,
        correlation_id: str | None = None,
    ) -> Mentorship:
        mentorship = await self._load_for(principal, mentorship_id, "mentee")
        now = self.ctx.clock.now()
        return await self._apply(lambda: mentorship.withdraw(now), "withdraw", correlation_id)

    async def approve(
        self,
        principal: Principal,
        mentorship_id: str,
        correlation_id: str | None = None,
    ) -> Mentorship:
        principal.require_admin()
        mentorship = await self._load_for(principal, mentorship_id)
        now = self.ctx.clock.now()
        return await self._apply(lambda: mentorship.approve(principal.subject, now), "approve", correlation_id)

    async def complete(
        self,
        principal: Principal,
        mentorship_id: str,
        correlation_id: str | None = None,
    ) -> Mentorship:
        mentorship = await self._load_for(principal, mentorship_id, "mentee", "mentor")
        now = self.ctx.clock.now()
        return await self._apply(lambda: mentorship.complete(now), "complete", correlation_id)

    async def end(
        self,
        principal: Principal,
        mentorship_id: str,
        reason: str,
        not_a_good_fit: bool,
        correlation_id: str | None = None,
    ) -> Mentorship:
        mentorship = await self._load_for(principal, mentorship_id, "mentee", "mentor")
        now = self.ctx.clock.now()
        return await self._apply(
            lambda: mentorship.end(reason, not_a_good_fit, principal.subject, now), "end", correlation_id
        )

    async def expire(self, timer: dict[str, Any], now: datetime) -> list[Envelope[Any]]:
        """Timer handler: an unanswered request expires (the conditional write makes it once)."""
        mentorship = await self.mentorships.mentorship(timer["payload"]["mentorship_id"])
        if mentorship is None:
            return []
        try:
            change = mentorship.expire(now)
        except LifecycleError:  # answered meanwhile
            return []
        if await self.mentorships.save(change.after, self._envelopes(change, None)):
            await self._let_go(change, timer_fired=True)
            self.ctx.events_written()
        return []

    # --- helpers --------------------------------------------------------------------------------
    async def _decline_open_requests(self, mentor_id: str, correlation_id: str | None) -> None:
        """The mentor is at capacity: their other open requests are declined with that reason."""
        now = self.ctx.clock.now()
        for other in await self.mentorships.open_requests_of_mentor(mentor_id):
            try:
                change = other.auto_decline(now)
            except LifecycleError:
                continue
            if await self.mentorships.save(change.after, self._envelopes(change, correlation_id)):
                await self._let_go(change)

    async def _apply(self, decide: Callable[[], Change], action: str, correlation_id: str | None) -> Mentorship:
        """Decide the change, write it on top of the version it was decided from, let go."""
        change = self._decide(decide)
        if not await self.mentorships.save(change.after, self._envelopes(change, correlation_id)):
            raise await self._lost_race(change.after.mentorship_id, action)
        await self._let_go(change)
        self.ctx.events_written()
        return change.after

    async def _let_go(self, change: Change, *, timer_fired: bool = False) -> None:
        """Release what the change no longer needs: timer and pair lock of an answered request,
        the capacity slot of a mentorship that closed."""
        m = change.after
        if change.answers_request:
            if not timer_fired:
                await self.ctx.timers.cancel(expiry_timer_id(m.mentorship_id))
            await self.mentorships.unlock_pair(m.mentee_id, m.mentor_id, m.mentorship_id)
        if change.frees_slot:
            await self.capacity.release_slot(m.mentor_id, m.mentorship_id)

    @staticmethod
    def _decide(decide: Callable[[], Change]) -> Change:
        try:
            return decide()
        except LifecycleError as exc:
            raise problem_of(exc) from exc

    def _envelopes(self, change: Change, correlation_id: str | None) -> list[Envelope[Any]]:
        return self.ctx.events.many(change.events, correlation_id=correlation_id)

    async def _lost_race(self, mentorship_id: str, action: str) -> Conflict:
        current = await self.mentorships.mentorship(mentorship_id)
        return Conflict(f"cannot {action} a mentorship that is {current.state.value if current else 'gone'}")

    async def _load_for(self, principal: Principal, mentorship_id: str, *roles: Role) -> Mentorship:
        mentorship = await self.mentorships.mentorship(mentorship_id)
        if mentorship is None:
            raise NotFound("mentorship", mentorship_id)
        if not (principal.is_admin or mentorship.has_participant(principal.subject, *roles)):
            raise Forbidden(f"only the {' or '.join(roles)} or an admin may do this")
        return mentorship

    async def _person(self, profile_id: str) -> Person | None:
        return await person_of(self.profiles, self.ctx.clock, self.settings.default_mentor_capacity, profile_id)
