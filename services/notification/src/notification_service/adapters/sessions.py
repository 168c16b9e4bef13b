"""How long each known session lasts, so a cancellation's calendar update carries the right end.

A cancellation has no duration; the scheduled/rescheduled events that came before it have.
One small document per session, keyed by its iCalendar UID.
"""

from __future__ import annotations

from typing import Any

from pymongo.asynchronous.database import AsyncDatabase

SESSION_DURATIONS = "session_durations"


class SessionDurations:
    def __init__(self, db: AsyncDatabase[dict[str, Any]]) -> None:
        self.coll = db[SESSION_DURATIONS]

    async def remember(self, ical_uid: str, duration_minutes: int) -> None:
        await self.coll.update_one({"_id": ical_uid}, {"$set": {"duration_minutes": duration_minutes}}, upsert=True)

    async def minutes(self, ical_uid: str) -> int | None:
        known = await self.coll.find_one({"_id": ical_uid})
        return int(known["duration_minutes"]) if known else None
