"""SCIM provisioning use cases: the directory's creates, replaces, patches and deletes, carried out by
the profile use cases (the same writes, rules and events as an admin's calls; no second write path)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from mentorship_contracts.profile import Role
from mentorship_kit.problems import Problem

from . import domain
from .adapters.repository import Lookup, StoredProfile
from .application import ProfileUseCases
from .scim import ScimError, UserState, apply_patch, state_of

# Profile field -> SCIM attribute, to word errors in the directory's terms.
SCIM_NAMES = {
    "display_name": "displayName",
    "email": "emails.value",
    "job_title": "title",
    "department": "department",
    "manager_id": "manager",
    "external_id": "externalId",
    "profile_id": "id",
    "active": "active",
}
SCIM_TYPE_BY_STATUS = {409: "uniqueness", 400: "invalidValue"}


def _scim_words(text: str) -> str:
    for name, scim_name in SCIM_NAMES.items():
        if text.startswith(f"{name}:") or text.startswith(f"{name}."):
            return scim_name + text[len(name) :]
    return text


@contextmanager
def scim_errors() -> Iterator[None]:
    """A use case's problem, answered in the SCIM error format."""
    try:
        yield
    except Problem as exc:
        status = 400 if exc.status == 422 else exc.status
        if exc.status == 404:
            raise ScimError(404, "no such User") from exc
        detail = _scim_words(exc.detail or exc.title)
        if exc.status == 409 and exc.extra.get("field"):
            detail = f"{SCIM_NAMES.get(exc.extra['field'], exc.extra['field'])} is already in use"
        raise ScimError(status, detail, SCIM_TYPE_BY_STATUS.get(status)) from exc


class ScimProvisioning:
    """Users as SCIM sees them; every write is a profile use case called as an admin."""

    def __init__(self, profiles: ProfileUseCases) -> None:
        self.profiles = profiles

    async def get(self, profile_id: str) -> StoredProfile:
        with scim_errors():
            return await self.profiles.get(profile_id)

    async def search(self, lookup: Lookup, *, start_index: int, count: int) -> tuple[int, list[StoredProfile]]:
        return await self.profiles.lookup(lookup, skip=start_index - 1, limit=count)

    async def create(self, state: UserState, *, correlation_id: str | None = None) -> StoredProfile:
        """A new profile (a mentee until the person takes on another role), its email verified;
        created inactive when the directory says so, as an admin's deactivation."""
        await self._user_name_is_free(state, None)
        try:
            profile = domain.validate(
                {
                    **state.profile_changes(),
                    "profile_id": str(uuid.uuid4()),
                    "roles": [Role.MENTEE],
                    "active": state.active,
                }
            )
        except domain.ProfileRuleViolation as exc:
            raise ScimError(400, _scim_words(f"{exc.field}: {exc.message}"), "invalidValue") from exc
        marks = state.marks()
        if not state.active:
            marks["deactivated_by_admin"] = True
        with scim_errors():
            return await self.profiles.register(profile, correlation_id, by_admin=True, marks=marks)

    async def replace(
        self,
        profile_id: str,
        state: UserState,
        *,
        expected_version: int | None = None,
        correlation_id: str | None = None,
    ) -> StoredProfile:
        """PUT: the kept attributes become exactly these (absent optional ones are cleared)."""
        current = await self.get(profile_id)
        if expected_version is not None and current.version != expected_version:
            raise ScimError(412, f"the User changed since version {expected_version} (now {current.version})")
        await self._user_name_is_free(state, profile_id)
        changes = state.profile_changes()
        with scim_errors():
            if state.active and not current.profile.active:
                await self.profiles.reactivate(profile_id, correlation_id=correlation_id, by_admin=True)
            stored = await self.profiles.update(
                profile_id,
                changes,
                correlation_id=correlation_id,
                by_admin=True,
                marks={**state.marks(), "email_verified": True},
            )
            if not state.active:
                stored = await self.profiles.deactivate(
                    profile_id, "deactivated in the directory", correlation_id=correlation_id, by_admin=True
                )
        return stored

    async def patch(
        self, profile_id: str, body: Any, *, expected_version: int | None = None, correlation_id: str | None = None
    ) -> StoredProfile:
        """PATCH: the operations applied to the current state, then written like a PUT."""
        current = await self.get(profile_id)
        if expected_version is not None and current.version != expected_version:
            raise ScimError(412, f"the User changed since version {expected_version} (now {current.version})")
        state = apply_patch(state_of(current), body)
        return await self.replace(profile_id, state, correlation_id=correlation_id)

    async def delete(self, profile_id: str, *, correlation_id: str | None = None) -> None:
        """The profile is erased (ProfileErased); a second DELETE finds no User (404)."""
        await self.get(profile_id)
        with scim_errors():
            await self.profiles.erase(profile_id, correlation_id=correlation_id)

    async def _user_name_is_free(self, state: UserState, profile_id: str | None) -> None:
        _, found = await self.profiles.lookup(Lookup(user_name=state.user_name), skip=0, limit=2)
        if any(s.profile.profile_id != profile_id for s in found):
            raise ScimError(409, "userName is already in use", "uniqueness")
