"""Use cases of the profile service."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

from mentorship_contracts.profile import ProfileSnapshot, Role
from mentorship_kit.problems import Conflict, Forbidden, NotFound, Problem, Unprocessable
from mentorship_kit.usecase import UseCaseContext

from . import domain
from .adapters.repository import (
    EmailTaken,
    ExternalIdTaken,
    Lookup,
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
        super().__init__(
            412,
            "Precondition failed",
            "the profile changed since you read it; read it again and retry",
            current_version=current_version,
        )


def unprocessable(exc: domain.ProfileRuleViolation) -> Unprocessable:
    return Unprocessable(f"{exc.field}: {exc.message}", field=exc.field)


def taken(by_admin: bool) -> Conflict:
    """Only an admin learns that it is the email that is taken: anyone else gets one answer for
    every uniqueness clash, which names neither the address nor whose it is."""
    if by_admin:
        return Conflict("a profile with this email already exists", field="email")
    return Conflict("these details cannot be used: they clash with a registered profile")


def external_id_taken() -> Conflict:
    return Conflict("a profile with this external id already exists", field="external_id")


# The directory's id links a person to their sign-on: only an admin (or the directory) sets it.
EXTERNAL_ID_IS_ADMINS = "only an admin or the directory (SCIM, the import) sets external_id"


class ProfileUseCases:
    """Register, read, change, deactivate and erase profiles (one profile at a time)."""

    def __init__(self, ctx: UseCaseContext, *, settings: Settings, profiles: ProfileRepository) -> None:
        self.ctx = ctx
        self.settings = settings
        self.profiles = profiles

    async def register(
        self,
        profile: ProfileSnapshot,
        correlation_id: str | None = None,
        *,
        by_admin: bool = False,
        marks: dict[str, Any] | None = None,
    ) -> StoredProfile:
        """A person registering themselves gives an unverified email; an admin's is verified.

        `marks` are kept beside the profile (e.g. the SCIM userName), not in any event."""
        if profile.external_id is not None and not by_admin:
            raise Forbidden(EXTERNAL_ID_IS_ADMINS)
        try:
            event = domain.register(profile)
        except domain.ProfileRuleViolation as exc:
            raise unprocessable(exc) from exc
        try:
            await self.profiles.add(
                profile,
                self.ctx.events.many([event], correlation_id=correlation_id),
                email_verified=by_admin,
                marks=marks,
            )
        except EmailTaken as exc:
            raise taken(by_admin) from exc
        except ExternalIdTaken as exc:
            raise external_id_taken() from exc
        except ProfileExists as exc:
            if not by_admin:
                raise taken(by_admin) from exc
            raise Conflict("this profile is already registered", field="profile_id") from exc
        self.ctx.events_written()
        return StoredProfile(profile, 1, email_verified=by_admin, scim_user_name=(marks or {}).get("scim_user_name"))

    async def get(self, profile_id: str) -> StoredProfile:
        stored = await self.profiles.get(profile_id)
        if stored is None:
            raise NotFound("profile", profile_id)
        return stored

    async def update(
        self,
        profile_id: str,
        changes: dict[str, Any],
        *,
        expected_version: int | None = None,
        correlation_id: str | None = None,
        by_admin: bool = False,
        marks: dict[str, Any] | None = None,
    ) -> StoredProfile:
        """`marks` (facts kept beside the profile, e.g. the SCIM userName) are written only if they differ."""
        if "external_id" in changes and not by_admin:
            raise Forbidden(EXTERNAL_ID_IS_ADMINS)

        def apply(stored: StoredProfile) -> domain.Change:
            change = domain.update(stored.profile, changes, by_admin=by_admin)
            new_marks = {name: value for name, value in (marks or {}).items() if getattr(stored, name, None) != value}
            return replace(change, marks={**change.marks, **new_marks}) if new_marks else change

        return await self._change(profile_id, apply, expected_version, correlation_id, by_admin=by_admin)

    async def add_role(
        self,
        profile_id: str,
        role: Role,
        mentor_capacity: int | None = None,
        *,
        expected_version: int | None = None,
        correlation_id: str | None = None,
    ) -> StoredProfile:
        return await self._change(
            profile_id, lambda s: domain.add_role(s.profile, role, mentor_capacity), expected_version, correlation_id
        )

    async def remove_role(
        self, profile_id: str, role: Role, *, expected_version: int | None = None, correlation_id: str | None = None
    ) -> StoredProfile:
        return await self._change(
            profile_id, lambda s: domain.remove_role(s.profile, role), expected_version, correlation_id
        )

    async def deactivate(
        self, profile_id: str, reason: str | None = None, *, correlation_id: str | None = None, by_admin: bool = False
    ) -> StoredProfile:
        return await self._change(
            profile_id,
            lambda s: domain.deactivate(s.profile, reason, by_admin=by_admin, held_by_admin=s.deactivated_by_admin),
            None,
            correlation_id,
        )

    async def reactivate(
        self, profile_id: str, *, correlation_id: str | None = None, by_admin: bool = False
    ) -> StoredProfile:
        """An admin's deactivation is lifted only by an admin (403 to the person)."""
        return await self._change(
            profile_id,
            lambda s: domain.reactivate(s.profile, by_admin=by_admin, held_by_admin=s.deactivated_by_admin),
            None,
            correlation_id,
        )

    async def verify_email(self, profile_id: str) -> StoredProfile:
        """An admin vouches for the email (the HR import then merges into this profile)."""
        return await self._change(
            profile_id, lambda s: domain.verify_email(s.profile, already=s.email_verified), None, None
        )

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

    async def lookup(self, lookup: Lookup, *, skip: int, limit: int) -> tuple[int, list[StoredProfile]]:
        """Exact matches (the directory's filters) with their total, paged by position."""
        return await self.profiles.lookup(lookup, skip=skip, limit=limit)

    async def _change(
        self,
        profile_id: str,
        apply: Callable[[StoredProfile], domain.Change],
        expected_version: int | None,
        correlation_id: str | None,
        *,
        by_admin: bool = False,
    ) -> StoredProfile:
        """Optimistic concurrency: read, decide, write only if the version is still the one read."""
        for _ in range(WRITE_ATTEMPTS):
            stored = await self.get(profile_id)
            if expected_version is not None and stored.version != expected_version:
                raise PreconditionFailed(stored.version)
            try:
                change = apply(stored)
            except domain.ProfileRuleViolation as exc:
                raise unprocessable(exc) from exc
            except domain.NotAllowed as exc:
                raise Forbidden(str(exc)) from exc
            if not change.changed:
                return stored
            try:
                events = self.ctx.events.many(change.events, correlation_id=correlation_id)
                saved = await self.profiles.save(
                    change.profile, stored.version, change.changed_fields, events, change.marks
                )
            except EmailTaken as exc:
                raise taken(by_admin) from exc
            except ExternalIdTaken as exc:
                raise external_id_taken() from exc
            if saved:
                if change.events:
                    self.ctx.events_written()
                return replace(stored, profile=change.profile, version=stored.version + 1, **change.marks)
        raise Conflict("the profile is being changed concurrently; retry")
