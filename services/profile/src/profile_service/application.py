"""Use cases of the profile service."""

from __future__ import annotations

from mentorship_contracts import Envelope
from mentorship_contracts.profile import ProfileSnapshot
from mentorship_kit.problems import Conflict, NotFound, Unprocessable

from . import domain
from .adapters.repository import EmailTaken, ProfileRepository

SOURCE = "profile"


class ProfileService:
    def __init__(self, repo: ProfileRepository, on_events=lambda: None) -> None:  # noqa: ANN001
        self.repo = repo
        self.on_events = on_events

    async def register(self, profile: ProfileSnapshot, correlation_id: str | None = None) -> ProfileSnapshot:
        try:
            event = domain.register(profile)
        except domain.ProfileRuleViolation as exc:
            raise Unprocessable(exc.message, field=exc.field) from exc
        envelope = Envelope.wrap(event, source=SOURCE, correlation_id=correlation_id)
        try:
            await self.repo.add(profile, [envelope])
        except EmailTaken as exc:
            raise Conflict("a profile with this email already exists", field="email") from exc
        self.on_events()
        return profile

    async def get(self, profile_id: str) -> ProfileSnapshot:
        profile = await self.repo.get(profile_id)
        if profile is None:
            raise NotFound("profile", profile_id)
        return profile
