"""Use cases of the profile service."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from mentorship_contracts.profile import ProfileSnapshot, Role
from mentorship_kit.problems import Conflict, NotFound, Problem, Unprocessable
from mentorship_kit.usecase import UseCaseContext

from . import domain
from .adapters.repository import (
    EmailTaken,
    ProfileExists,
    ProfileRepository,
    SearchFilters,
    StoredProfile,
)
from .settings import Settings

# Without If-Match a change is re-applied on a fresh read this many times before giving up.
WRITE_ATTEMPTS = 5


class PreconditionFailed(Problem):
    def __init__(self, current_version: int) -> None:
        super().__init__(412, "Precondition failed",
                         "the profile changed since you read it; read it again and retry",
                         current_version=current_version)


def unprocessable(exc: domain.ProfileRuleViolation) -> Unprocessable:
    return Unprocessable(f"{exc.field}: {exc.message}", field=exc.field)


class ProfileUseCases:
    """Register, read, change, deactivate and erase profiles (one profile at a time)."""

    def __init__(self, ctx: UseCaseContext, *, settings: Settings, profiles: ProfileRepository) -> None:
        self.ctx = ctx
        self.settings = settings
        self.profiles = profiles

    async def register(self, profile: ProfileSnapshot, correlation_id: str | None = None) -> StoredProfile:
        try:
            event = domain.register(profile)
        except domain.ProfileRuleViolation as exc:
            raise unprocessable(exc) from exc
        try:
            await self.profiles.add(profile, self.ctx.events.many([event], correlation_id=correlation_id))
        except EmailTaken as exc:
            raise Conflict("a profile with this email already exists", field="email") from exc
        except ProfileExists as exc:
            raise Conflict("this profile is already registered", field="profile_id") from exc
        self.ctx.events_written()
        return StoredProfile(profile, 1)

    async def get(self, profile_id: str) -> StoredProfile:
        stored = await self.profiles.get(profile_id)
        if stored is None:
            raise NotFound("profile", profile_id)
        return stored

    async def update(self, profile_id: str, changes: dict[str, Any], *, expected_version: int | None = None,
                     correlation_id: str | None = None) -> StoredProfile:
        return await self._change(profile_id, lambda p: domain.update(p, changes),
                                  expected_version, correlation_id)

    async def add_role(self, profile_id: str, role: Role, mentor_capacity: int | None = None, *,
                       expected_version: int | None = None, correlation_id: str | None = None) -> StoredProfile:
        return await self._change(profile_id, lambda p: domain.add_role(p, role, mentor_capacity),
                                  expected_version, correlation_id)

    async def remove_role(self, profile_id: str, role: Role, *, expected_version: int | None = None,
                          correlation_id: str | None = None) -> StoredProfile:
        return await self._change(profile_id, lambda p: domain.remove_role(p, role),
                                  expected_version, correlation_id)

    async def deactivate(self, profile_id: str, reason: str | None = None, *,
                         correlation_id: str | None = None) -> StoredProfile:
        return await self._change(profile_id, lambda p: domain.deactivate(p, reason), None, correlation_id)

    async def reactivate(self, profile_id: str, *, correlation_id: str | None = None) -> StoredProfile:
        return await self._change(profile_id, domain.reactivate, None, correlation_id)

    async def erase(self, profile_id: str, *, correlation_id: str | None = None) -> None:
        """Right to be forgotten; erasing an erased profile again is a no-op."""
        events = self.ctx.events.many([domain.erase(profile_id)], correlation_id=correlation_id)
        if await self.profiles.erase(profile_id, events):
            self.ctx.events_written()
            return
        if not await self.profiles.is_erased(profile_id):
            raise NotFound("profile", profile_id)

    async def search(self, filters: SearchFilters, *, after: str | None, limit: int) -> list[StoredProfile]:
        return await self.profiles.search(filters, after=after, limit=limit)

    async def _change(self, profile_id: str, apply: Callable[[ProfileSnapshot], domain.Change],
                      expected_version: int | None, correlation_id: str | None) -> StoredProfile:
        """Optimistic concurrency: read, decide, write only if the version is still the one read."""
        for _ in range(WRITE_ATTEMPTS):
            stored = await self.get(profile_id)
            if expected_version is not None and stored.version != expected_version:
                raise PreconditionFailed(stored.version)
            try:
                change = apply(stored.profile)
            except domain.ProfileRuleViolation as exc:
                raise unprocessable(exc) from exc
            if not change.changed:
                return stored
            try:
                events = self.ctx.events.many(change.events, correlation_id=correlation_id)
                saved = await self.profiles.save(change.profile, stored.version, change.changed_fields, events)
            except EmailTaken as exc:
                raise Conflict("a profile with this email already exists", field="email") from exc
            if saved:
                if change.events:
                    self.ctx.events_written()
                return StoredProfile(change.profile, stored.version + 1)
        raise Conflict("the profile is being changed concurrently; retry")
