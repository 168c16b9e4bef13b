"""Slot proposals: free times both participants share, each shown in their own time zone."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from mentorship_kit.auth import Principal
from mentorship_kit.problems import Conflict, Unprocessable

from .. import domain
from ..domain import Interval, RuleViolation
from .base import SchedulingBase, utc


class SlotUseCases(SchedulingBase):
    async def propose_slots(
        self,
        principal: Principal,
        mentorship_id: str,
        *,
        count: int,
        duration: int,
        start_from: datetime | None,
        weeks: int | None,
    ) -> dict[str, Any]:
        m = await self.mentorship_for(principal, mentorship_id)
        people = []
        for pid in (m["mentor_id"], m["mentee_id"]):
            p = await self.profiles.get(pid)
            if p is None:
                raise Conflict(
                    "a participant's profile (time zone, availability) is not known yet", reason="profile_unknown"
                )
            people.append((p["time_zone"], domain.parse_windows(p.get("availability") or [])))
        now = self.now()
        begin = max(utc(start_from), now) if start_from else now
        span = Interval(begin, begin + timedelta(weeks=weeks or self.settings.slot_horizon_weeks))
        busy = [
            Interval(s["start"], s["end"])
            for s in await self.store.busy([m["mentor_id"], m["mentee_id"]], span.start, span.end, ("scheduled",))
        ]
        try:
            slots = domain.propose_slots(
                people=people,
                busy=busy,
                span=span,
                duration=timedelta(minutes=duration),
                step=timedelta(minutes=self.settings.slot_step_minutes),
                count=count,
            )
        except RuleViolation as exc:
            raise Unprocessable(str(exc), field=exc.field) from None
        zones = {"mentor": people[0][0], "mentee": people[1][0]}
        return {
            "mentorship_id": mentorship_id,
            "duration_minutes": duration,
            "searched": {"from": span.start, "to": span.end},
            "slots": [
                {
                    "start": s.start,
                    "end": s.end,
                    "local": {role: s.start.astimezone(domain.zone(z)).isoformat() for role, z in zones.items()},
                }
                for s in slots
            ],
        }
