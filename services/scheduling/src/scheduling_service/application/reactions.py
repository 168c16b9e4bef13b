"""Reactions to matching's and profile's events: the read models, and what they set off here."""

from __future__ import annotations

import contextlib
from datetime import datetime
from typing import Any

from mentorship_contracts import Envelope, as_newest
from mentorship_kit.problems import Conflict

from .sessions import SessionUseCases


class EventReactions(SessionUseCases):
    async def mentorship_started(self, event: Envelope[Any]) -> None:
        event = as_newest(event)  # v1 read as v2: the agreement's facts, no goal titles
        d = event.data
        if await self.profiles.is_erased(d.mentor_id) or await self.profiles.is_erased(d.mentee_id):
            return  # late (a retry, a re-driven dead letter): nothing about an erased person comes back
        applied = await self.mentorships.started(
            mentorship_id=d.mentorship_id,
            mentor_id=d.mentor_id,
            mentee_id=d.mentee_id,
            cadence=d.agreement.cadence,
            goal_count=d.agreement.goal_count,
            goal_ids=list(d.agreement.goal_ids),
            planned_end=d.agreement.planned_end.isoformat() if d.agreement.planned_end else None,
            started_at=d.started_at,
            event_time=event.time,
        )
        m = await self.mentorships.get(d.mentorship_id)
        if applied and m and m.get("status") == "active":
            await self.plan_check_ins(m)

    async def agreement_revised(self, event: Envelope[Any]) -> None:
        """A revised agreement: new cadence and planned end, and the check-in and inactivity timers
        re-planned from the new cadence (same anchor: the last held session, or the start)."""
        event = as_newest(event)
        d = event.data
        applied = await self.mentorships.revised(
            d.mentorship_id,
            cadence=d.agreement.cadence,
            planned_end=d.agreement.planned_end.isoformat() if d.agreement.planned_end else None,
            event_time=event.time,
        )
        m = await self.mentorships.get(d.mentorship_id)
        if applied and m and m.get("status") == "active":
            await self.plan_check_ins(m)

    async def mentorship_closed(self, event: Envelope[Any]) -> None:
        mid = event.data.mentorship_id
        await self.mentorships.ended(mid, event.time)
        await self.ctx.timers.cancel_group(f"checkin:{mid}")
        now = self.now()
        for s in await self.store.of_mentorship(mid):
            if s["status"] == "scheduled" and s["start"] > now:
                # Conflict: changed meanwhile (e.g. cancelled by a participant), nothing to do.
                with contextlib.suppress(Conflict):
                    await self.cancel(None, s["_id"], reason="the mentorship ended", cause=event, by="system")

    async def profile_changed(self, event: Envelope[Any]) -> None:
        p = event.data.profile
        await self.profiles.upsert(
            p.profile_id,
            p.time_zone,
            [w.model_dump(mode="json") for w in p.availability],
            event.time,
            external_id=p.external_id,
        )

    async def profile_removed(self, profile_id: str, at: datetime) -> None:
        """A tombstone on `profile.state`: the person was erased (ProfileErased does the rest)."""
        await self.profiles.erase(profile_id, at)
