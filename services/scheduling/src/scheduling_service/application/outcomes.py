"""After a session: complete it, report a no-show, give feedback.

Each is one conditional single-document write carrying its event (outbox); completing a session
also re-anchors the mentorship's check-ins at the session held.
"""

from __future__ import annotations

from typing import Any

from mentorship_contracts.scheduling import SessionCompletedV2, SessionFeedbackSubmittedV2, SessionNoShow
from mentorship_kit.auth import Principal
from mentorship_kit.problems import Conflict, Forbidden, Unprocessable

from .base import event_base, stale
from .timers import ReminderPlans


class SessionOutcomes(ReminderPlans):
    def _require_started(self, s: dict[str, Any]) -> None:
        if s["status"] != "scheduled":
            raise Conflict(f"the session is {s['status']}", reason="session_not_scheduled")
        if self.now() < s["start"]:
            raise Conflict("the session has not started yet", reason="session_not_started")

    async def complete(self, principal: Principal, session_id: str, *, notes: str) -> dict[str, Any]:
        s = await self.session_for(principal, session_id)
        self._require_started(s)
        now = self.now()
        event = self.ctx.events.new(
            SessionCompletedV2(**event_base(s), start=s["start"], completed_at=now, has_notes=bool(notes.strip()))
        )
        updated = await self.store.complete(s["_id"], s["sequence"], notes=notes, now=now, events=[event])
        if updated is None:
            raise stale()
        await self.ctx.timers.cancel_group(f"session:{s['_id']}")
        await self.mentorships.session_held(s["mentorship_id"], s["start"])
        m = await self.mentorships.get(s["mentorship_id"])
        if m and m.get("status") == "active":
            await self.plan_check_ins(m)
        self.ctx.events_written()
        return updated

    async def no_show(self, principal: Principal, session_id: str, *, absent_ids: list[str]) -> dict[str, Any]:
        s = await self.session_for(principal, session_id)
        if not absent_ids or any(a not in s["participants"] for a in absent_ids):
            raise Unprocessable("absent_ids must name one or both participants", field="absent_ids")
        self._require_started(s)
        event = self.ctx.events.new(
            SessionNoShow(**event_base(s), start=s["start"], absent_ids=absent_ids, reported_by=principal.subject)
        )
        updated = await self.store.no_show(
            s["_id"], s["sequence"], absent_ids=absent_ids, now=self.now(), events=[event]
        )
        if updated is None:
            raise stale()
        await self.ctx.timers.cancel_group(f"session:{s['_id']}")
        self.ctx.events_written()
        return updated

    async def feedback(
        self, principal: Principal, session_id: str, *, rating: int, comment: str, not_a_good_fit: bool
    ) -> dict[str, Any]:
        s = await self.session_for(principal, session_id)
        if principal.subject not in s["participants"]:
            raise Forbidden("only the session's participants can give feedback")
        if s["status"] != "completed":
            raise Conflict("feedback is possible once the session is completed", reason="session_not_completed")
        role = "mentor" if principal.subject == s["mentor_id"] else "mentee"
        event = self.ctx.events.new(
            SessionFeedbackSubmittedV2(
                mentorship_id=s["mentorship_id"],
                session_id=s["_id"],
                author_id=principal.subject,
                author_role=role,
                rating=rating,
                has_comment=bool(comment.strip()),
                not_a_good_fit=not_a_good_fit,
            )
        )
        entry = {"rating": rating, "comment": comment, "not_a_good_fit": not_a_good_fit, "at": self.now()}
        if not await self.store.add_feedback(s["_id"], role, entry, [event]):
            raise Conflict("you already gave feedback on this session", reason="feedback_exists")
        self.ctx.events_written()
        return {"session_id": s["_id"], "author_role": role, **entry}
