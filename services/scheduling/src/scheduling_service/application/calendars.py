"""Calendars: one session as iCalendar, and a personal feed behind a secret token."""

from __future__ import annotations

import secrets
from datetime import timedelta

from mentorship_kit.auth import Principal
from mentorship_kit.problems import NotFound

from ..adapters import ical
from .base import SchedulingBase, token_hash


class CalendarUseCases(SchedulingBase):
    async def session_ical(self, principal: Principal, session_id: str) -> bytes:
        s = await self.session_for(principal, session_id)
        tz_name = "UTC" if principal.subject not in s["participants"] else await self.zone_of(principal.subject)
        return ical.calendar(
            [s], tz_name, self.now(), name="Mentoring session", cancelled_method=s["status"] == "cancelled"
        )

    async def new_feed(self, principal: Principal) -> str:
        token = secrets.token_urlsafe(32)
        await self.store.set_feed(token_hash(token), principal.subject, self.now())
        return token

    async def feed(self, token: str) -> bytes:
        person = await self.store.feed_owner(token_hash(token))
        if person is None:
            raise NotFound("calendar feed", "…")
        since = self.now() - timedelta(days=90)
        sessions = await self.store.of_person(person, since)
        return ical.calendar(sessions, await self.zone_of(person), self.now(), name="Mentoring sessions")
