"""Milestones of a mentorship and its progress figures."""

from __future__ import annotations

import statistics
import uuid
from datetime import UTC, datetime
from typing import Any

from mentorship_contracts.scheduling import MilestoneReachedV2
from mentorship_kit.auth import Principal
from mentorship_kit.problems import Conflict, NotFound

from .. import domain
from .base import SchedulingBase


class MilestoneUseCases(SchedulingBase):
    async def add_milestone(
        self, principal: Principal, mentorship_id: str, *, title: str, goal_id: str | None
    ) -> dict[str, Any]:
        m = await self.mentorship_for(principal, mentorship_id)
        order = len(m.get("milestones") or {}) + 1
        mid = f"m{uuid.uuid4().hex[:8]}"
        entry = {"title": title, "goal_id": goal_id, "reached_at": None, "order": order}
        await self.mentorships.add_milestone(mentorship_id, mid, entry)
        return {"milestone_id": mid, **entry}

    async def reach_milestone(self, principal: Principal, mentorship_id: str, milestone_id: str) -> dict[str, Any]:
        m = await self.mentorship_for(principal, mentorship_id)
        ms = (m.get("milestones") or {}).get(milestone_id)
        if ms is None:
            raise NotFound("milestone", milestone_id)
        if ms.get("reached_at"):
            raise Conflict("the milestone was reached already", reason="milestone_reached")
        now = self.now()
        event = self.ctx.events.new(
            MilestoneReachedV2(
                mentorship_id=mentorship_id,
                milestone_id=milestone_id,
                mentor_id=m["mentor_id"],
                mentee_id=m["mentee_id"],
                reached_at=now,
                goal_id=ms.get("goal_id"),
            )
        )
        if not await self.mentorships.reach_milestone(
            mentorship_id, milestone_id, at=now, by=principal.subject, events=[event]
        ):
            raise Conflict("the milestone was reached already", reason="milestone_reached")
        self.ctx.events_written()
        return {"milestone_id": milestone_id, **ms, "reached_at": now}

    async def progress(self, principal: Principal, mentorship_id: str) -> dict[str, Any]:
        m = await self.mentorship_for(principal, mentorship_id, active=False)
        sessions = await self.store.of_mentorship(mentorship_id)
        by_status: dict[str, int] = {}
        for s in sessions:
            by_status[s["status"]] = by_status.get(s["status"], 0) + 1
        # A participant sees only the ratings they gave: the other party's, even averaged, give
        # themselves away (one rating is its own average; each new one is the difference of two).
        ratings = [
            f["rating"]
            for s in sessions
            for role, f in (s.get("feedback") or {}).items()
            if principal.is_admin or s.get(f"{role}_id") == principal.subject
        ]
        now = self.now()
        planned_end = m.get("planned_end")
        horizon = now
        if planned_end:
            horizon = datetime.fromisoformat(str(planned_end)).replace(tzinfo=UTC)
        started = m.get("started_at") or now
        milestones = m.get("milestones") or {}
        cadence = m.get("cadence") or "biweekly"
        return {
            "mentorship_id": mentorship_id,
            "status": m.get("status"),
            "cadence": m.get("cadence"),
            "sessions": {
                "held": by_status.get("completed", 0),
                "scheduled": by_status.get("scheduled", 0),
                "cancelled": by_status.get("cancelled", 0),
                "no_show": by_status.get("no_show", 0),
                "planned_by_cadence": domain.planned_sessions(started, horizon, cadence),
                "planned_to_date": domain.planned_sessions(started, now, cadence),
            },
            "milestones": {
                "total": len(milestones),
                "reached": sum(1 for x in milestones.values() if x.get("reached_at")),
            },
            "average_rating": round(statistics.fmean(ratings), 2) if ratings else None,
            "ratings": len(ratings),
            "ratings_of": "both" if principal.is_admin else "caller",
            "last_session_at": m.get("last_session_at"),
        }
