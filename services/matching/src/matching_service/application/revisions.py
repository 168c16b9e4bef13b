"""Agreement revisions: either participant of an active mentorship proposes a revised agreement,
the other accepts or declines it, the proposer may withdraw it; one open proposal at a time.

Only the two participants take part (an admin is not one of them: 403). A participant answering
the proposal from the wrong side (the proposer accepting or declining their own, the other
withdrawing it) gets 409, like any answer the proposal's state does not allow: they may act on
the mentorship, just not in that way now. Each step is one conditional single-document write of
the next version; an accepted revision carries `MentorshipAgreementRevised` in the same write."""

from __future__ import annotations

from collections.abc import Callable

from mentorship_contracts.matching import Agreement
from mentorship_kit.auth import Principal
from mentorship_kit.problems import Conflict, Forbidden, NotFound
from mentorship_kit.usecase import UseCaseContext

from ..domain import Change, LifecycleError, Mentorship
from .ports import MentorshipStore
from .shared import problem_of


class RevisionUseCases:
    def __init__(self, ctx: UseCaseContext, *, mentorships: MentorshipStore) -> None:
        self.ctx = ctx
        self.mentorships = mentorships

    async def propose(
        self, principal: Principal, mentorship_id: str, agreement: Agreement, correlation_id: str | None = None
    ) -> Mentorship:
        mentorship = await self._load_for(principal, mentorship_id)
        now = self.ctx.clock.now()
        return await self._apply(
            lambda: mentorship.propose_revision(principal.subject, agreement, now), "propose", correlation_id
        )

    async def accept(self, principal: Principal, mentorship_id: str, correlation_id: str | None = None) -> Mentorship:
        mentorship = await self._load_for(principal, mentorship_id)
        now = self.ctx.clock.now()
        return await self._apply(lambda: mentorship.accept_revision(principal.subject, now), "accept", correlation_id)

    async def decline(self, principal: Principal, mentorship_id: str, correlation_id: str | None = None) -> Mentorship:
        mentorship = await self._load_for(principal, mentorship_id)
        return await self._apply(lambda: mentorship.decline_revision(principal.subject), "decline", correlation_id)

    async def withdraw(self, principal: Principal, mentorship_id: str, correlation_id: str | None = None) -> Mentorship:
        mentorship = await self._load_for(principal, mentorship_id)
        return await self._apply(lambda: mentorship.withdraw_revision(principal.subject), "withdraw", correlation_id)

    async def _apply(self, decide: Callable[[], Change], action: str, correlation_id: str | None) -> Mentorship:
        try:
            change = decide()
        except LifecycleError as exc:
            raise problem_of(exc) from exc
        envelopes = self.ctx.events.many(change.events, correlation_id=correlation_id)
        if not await self.mentorships.save(change.after, envelopes):
            # someone changed the mentorship since it was read (answered, ended, another proposal)
            raise Conflict(f"cannot {action} the revision: the mentorship changed meanwhile, read it again")
        if change.events:
            self.ctx.events_written()
        return change.after

    async def _load_for(self, principal: Principal, mentorship_id: str) -> Mentorship:
        mentorship = await self.mentorships.mentorship(mentorship_id)
        if mentorship is None:
            raise NotFound("mentorship", mentorship_id)
        if not mentorship.has_participant(principal.subject, "mentee", "mentor"):
            raise Forbidden("only the mentee or the mentor may revise their agreement")
        return mentorship
