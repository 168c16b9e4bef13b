"""What every scheduling use case shares: its collaborators, who may see what, the time rules."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from typing import Any

from mentorship_kit.auth import Principal
from mentorship_kit.problems import Conflict, Forbidden, NotFound, Unprocessable
from mentorship_kit.usecase import UseCaseContext

from .. import domain
from ..adapters.read_models import MentorshipReadModel, ProfileReadModel
from ..adapters.sessions import BookingConflict, SessionStore
from ..domain import RuleViolation
from ..settings import Settings


def utc(moment: datetime) -> datetime:
    return moment.astimezone(UTC)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def event_base(s: dict[str, Any]) -> dict[str, Any]:
    """The fields every session event carries."""
    return {
        "mentorship_id": s["mentorship_id"],
        "session_id": s["_id"],
        "mentor_id": s["mentor_id"],
        "mentee_id": s["mentee_id"],
        "ical_uid": s["ical_uid"],
        "sequence": s["sequence"],
    }


def stale() -> Conflict:
    return Conflict("the session changed meanwhile; reload it", reason="stale_sequence")


class SchedulingBase:
    """The constructor and the checks of every capability of `SchedulingUseCases`."""

    def __init__(
        self,
        ctx: UseCaseContext,
        *,
        settings: Settings,
        mentorships: MentorshipReadModel,
        profiles: ProfileReadModel,
        sessions: SessionStore,
    ) -> None:
        self.ctx = ctx
        self.settings = settings
        self.mentorships = mentorships
        self.profiles = profiles
        self.store = sessions  # the HTTP routes read sessions through it too

    def now(self) -> datetime:
        return self.ctx.clock.now()

    async def mentorship_for(self, principal: Principal, mentorship_id: str, *, active: bool = True) -> dict[str, Any]:
        m = await self.mentorships.get(mentorship_id)
        if m is None or "mentor_id" not in m:
            raise NotFound("mentorship", mentorship_id)
        if not (principal.is_admin or principal.subject in (m["mentor_id"], m["mentee_id"])):
            raise Forbidden("only the mentorship's participants or an admin may do this")
        if active and m.get("status") != "active":
            raise Conflict("the mentorship is not active", reason="mentorship_not_active")
        return m

    async def session_for(self, principal: Principal, session_id: str) -> dict[str, Any]:
        s = await self.store.get(session_id)
        if s is None:
            raise NotFound("session", session_id)
        if not (principal.is_admin or principal.subject in s["participants"]):
            raise Forbidden("only the session's participants or an admin may do this")
        return s

    async def zone_of(self, person_id: str) -> str:
        p = await self.profiles.get(person_id)
        return (p or {}).get("time_zone") or "UTC"

    def _times(self, start: datetime, duration: int, field: str = "start") -> datetime:
        try:
            return domain.validate_session_times(
                start,
                duration,
                self.now(),
                min_minutes=self.settings.session_min_minutes,
                max_minutes=self.settings.session_max_minutes,
                field=field,
            )
        except RuleViolation as exc:
            raise Unprocessable(str(exc), field=exc.field) from None

    @staticmethod
    def _conflict(exc: BookingConflict, m: dict[str, Any]) -> Conflict:
        role = "mentor" if exc.person_id == m["mentor_id"] else "mentee"
        when = exc.at.isoformat() if exc.at else "that time"
        return Conflict(
            f"the {role} already has a session at {when}",
            reason="double_booking",
            person_role=role,
            conflicting_session_id=exc.session_id,
        )
