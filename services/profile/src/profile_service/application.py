"""Use cases of the profile service."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from mentorship_contracts import Topic
from mentorship_contracts.profile import ProfileSnapshot, Role
from mentorship_kit.oidc import Identity
from mentorship_kit.outbox import OutboxItem, Tombstone
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
                self.ctx.events.many([event, domain.state(profile, 1)], correlation_id=correlation_id),
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
        """Right to be forgotten; erasing an erased profile again is a no-op.

        ProfileErased tells every reader to forget the person; the tombstone on `profile.state`
        makes compaction remove every earlier state of theirs (their name, email, goals, ...)."""
        events: list[OutboxItem] = [
            *self.ctx.events.many([domain.erase(profile_id)], correlation_id=correlation_id),
            Tombstone(Topic.PROFILE_STATE, profile_id, time=self.ctx.clock.now()),
        ]
        if await self.profiles.erase(profile_id, events):
            self.ctx.events_written()
            return
        if not await self.profiles.is_erased(profile_id):
            raise NotFound("profile", profile_id)

    async def sign_in(self, identity: Identity, correlation_id: str | None = None) -> tuple[StoredProfile, bool]:
        """First (or any) company sign-on: the person's profile, and whether it was created now.

        Found by external_id (= the identity provider's subject); else the profile whose email is
        verified and equals the provider's verified email is linked (external_id set, ProfileUpdated);
        else a new mentee profile is created with the name and email from the claims (the email
        verified only if the provider says so). An unverified email on either side never links.
        Repeating it returns the same profile.
        """
        for _ in range(WRITE_ATTEMPTS):
            linked = await self.profiles.by_external_id(identity.subject)
            if linked is not None:
                return linked, False
            if not identity.email:
                raise Unprocessable(
                    "the identity provider sent no email for this person (OIDC_EMAIL_CLAIM): "
                    "a profile cannot be created",
                    field="email",
                )
            holder = await self.profiles.by_email(identity.email)
            if holder is not None:
                return await self._link(holder, identity, correlation_id), False
            try:
                return await self._create_signed_in(identity, correlation_id), True
            except EmailTaken:
                continue  # someone (maybe this person's other request) took the email meanwhile: look again
        raise Conflict("the profile is being changed concurrently; retry")

    async def _link(self, holder: StoredProfile, identity: Identity, correlation_id: str | None) -> StoredProfile:
        if not (identity.email_verified and holder.email_verified) or holder.profile.external_id is not None:
            # Linking on an unverified address would hand someone else's profile to whoever claims it.
            raise Conflict(
                "this email belongs to a profile that cannot be linked to your sign-on automatically "
                "(an address not verified on both sides, or linked to another sign-on); ask an admin"
            )
        subject = identity.subject

        def link(stored: StoredProfile) -> domain.Change:
            if stored.profile.external_id not in (None, subject):
                raise domain.NotAllowed("the profile was linked to another sign-on meanwhile")
            return domain.update(stored.profile, {"external_id": subject}, allowed=frozenset({"external_id"}))

        return await self._change(holder.profile.profile_id, link, None, correlation_id)

    async def _create_signed_in(self, identity: Identity, correlation_id: str | None) -> StoredProfile:
        assert identity.email is not None
        name = (identity.name or identity.email.split("@")[0])[:200]
        try:
            profile = domain.validate(
                {
                    "profile_id": str(uuid.uuid4()),
                    "display_name": name,
                    "email": identity.email,
                    "roles": [Role.MENTEE],
                    "external_id": identity.subject,
                }
            )
            event = domain.register(profile)
        except domain.ProfileRuleViolation as exc:
            raise unprocessable(exc) from exc
        await self.profiles.add(
            profile,
            self.ctx.events.many([event, domain.state(profile, 1)], correlation_id=correlation_id),
            email_verified=identity.email_verified,
        )
        self.ctx.events_written()
        return StoredProfile(profile, 1, email_verified=identity.email_verified)

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
                events = self.ctx.events.many(
                    domain.with_state(change, stored.version + 1), correlation_id=correlation_id
                )
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


class ProfileIdentities:
    """The profile service's `IdentityDirectory`: a signed-in person's profile from its own store, by
    external_id, or by an email verified both by the provider and here (not yet linked elsewhere)."""

    def __init__(self, profiles: ProfileRepository) -> None:
        self.profiles = profiles

    async def profile_for(self, identity: Identity) -> str | None:
        linked = await self.profiles.by_external_id(identity.subject)
        if linked is not None:
            return linked.profile.profile_id
        if identity.email_verified and identity.email:
            holder = await self.profiles.by_email(identity.email)
            if holder is not None and holder.email_verified and holder.profile.external_id is None:
                return holder.profile.profile_id
        return None
