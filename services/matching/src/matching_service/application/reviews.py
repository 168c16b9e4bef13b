"""Review of pairings that a session's feedback called "not a good fit" (admins decide)."""

from __future__ import annotations

from typing import Any

from mentorship_contracts import Envelope
from mentorship_contracts.scheduling import SessionFeedbackSubmittedV2
from mentorship_kit.auth import Principal
from mentorship_kit.usecase import UseCaseContext

from .ports import MentorshipStore


class ReviewUseCases:
    def __init__(self, ctx: UseCaseContext, *, mentorships: MentorshipStore) -> None:
        self.ctx = ctx
        self.mentorships = mentorships

    async def feedback_flag(self, event: Envelope[SessionFeedbackSubmittedV2]) -> None:
        """Scheduling says a session's participant found the pairing not a good fit: admins review."""
        data = event.data
        if not data.not_a_good_fit:
            return
        await self.mentorships.flag_for_review(
            data.mentorship_id,
            {"event_id": event.id, "session_id": data.session_id, "author_role": data.author_role, "at": event.time},
        )

    async def review_queue(self, principal: Principal) -> list[dict[str, Any]]:
        principal.require_admin()
        return await self.mentorships.flagged()
