"""In-memory profile repository: the same contract as `adapters.repository.ProfileRepository`
(versions, unique email, tombstones), with the events of each write kept in `outbox` and the
states and tombstones for `profile.state` in `states`."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from mentorship_contracts import Envelope, Topic
from mentorship_contracts.profile import ProfileSnapshot
from profile_service.adapters.repository import (
    EmailTaken,
    ExternalIdTaken,
    Lookup,
    NewProfile,
    PlannedUpdate,
    ProfileExists,
    SearchFilters,
    StoredProfile,
    search_fields,
)
from profile_service.domain import email_key


class FakeProfileRepository:
    def __init__(self) -> None:
        self.profiles: dict[str, StoredProfile] = {}
        self.erased: set[str] = set()
        self.outbox: list[Envelope[Any]] = []
        self.states: list[Any] = []  # ProfileState envelopes and Tombstones, in order

    def _keep(self, items: Sequence[Any]) -> None:
        for item in items:
            if isinstance(item, Envelope) and item.data.topic == Topic.PROFILE:
                self.outbox.append(item)
            else:
                self.states.append(item)

    def _email_owner(self, profile: ProfileSnapshot) -> str | None:
        key = email_key(profile.email)
        return next((pid for pid, s in self.profiles.items() if email_key(s.profile.email) == key), None)

    def _external_id_owner(self, profile: ProfileSnapshot) -> str | None:
        if profile.external_id is None:
            return None
        return next((pid for pid, s in self.profiles.items() if s.profile.external_id == profile.external_id), None)

    async def add(
        self,
        profile: ProfileSnapshot,
        events: list[Envelope[Any]],
        *,
        email_verified: bool = False,
        marks: dict[str, Any] | None = None,
    ) -> None:
        if profile.profile_id in self.profiles or profile.profile_id in self.erased:
            raise ProfileExists(profile.profile_id)
        if self._email_owner(profile) is not None:
            raise EmailTaken()
        if self._external_id_owner(profile) is not None:
            raise ExternalIdTaken()
        self.profiles[profile.profile_id] = StoredProfile(profile, 1, email_verified=email_verified, **(marks or {}))
        self._keep(events)

    async def get(self, profile_id: str) -> StoredProfile | None:
        return self.profiles.get(profile_id)

    async def is_erased(self, profile_id: str) -> bool:
        return profile_id in self.erased

    async def save(
        self,
        profile: ProfileSnapshot,
        expected_version: int,
        changed_fields: Sequence[str],
        events: Sequence[Envelope[Any]],
        marks: dict[str, Any] | None = None,
    ) -> bool:
        current = self.profiles.get(profile.profile_id)
        if current is None or current.version != expected_version:
            return False
        if self._email_owner(profile) not in (None, profile.profile_id):
            raise EmailTaken()
        if self._external_id_owner(profile) not in (None, profile.profile_id):
            raise ExternalIdTaken()
        self.profiles[profile.profile_id] = replace(
            current, profile=profile, version=expected_version + 1, **(marks or {})
        )
        self._keep(events)
        return True

    async def erase(self, profile_id: str, events: Sequence[Any]) -> bool:
        if self.profiles.pop(profile_id, None) is None:
            return False
        self.erased.add(profile_id)
        self._keep(events)
        return True

    async def search(self, filters: SearchFilters, *, after: str | None, limit: int) -> list[StoredProfile]:
        def matches(stored: StoredProfile) -> bool:
            fields = search_fields(stored.profile)
            return (
                (filters.role is None or filters.role in fields["roles"])
                and (filters.skill is None or filters.skill in fields["skills"])
                and (filters.active is None or filters.active == fields["active"])
            )

        found = sorted(
            (s for pid, s in self.profiles.items() if (after is None or pid > after) and matches(s)),
            key=lambda s: s.profile.profile_id,
        )
        return found[:limit]

    async def lookup(self, lookup: Lookup, *, skip: int, limit: int) -> tuple[int, list[StoredProfile]]:
        def matches(s: StoredProfile) -> bool:
            user_name = s.scim_user_name or s.profile.email
            return (
                (lookup.profile_id is None or s.profile.profile_id == lookup.profile_id)
                and (lookup.external_id is None or s.profile.external_id == lookup.external_id)
                and (lookup.email is None or email_key(s.profile.email) == email_key(lookup.email))
                and (lookup.user_name is None or email_key(user_name) == email_key(lookup.user_name))
                and (lookup.active is None or s.profile.active == lookup.active)
            )

        found = (
            []
            if lookup.conflicting
            else sorted((s for s in self.profiles.values() if matches(s)), key=lambda s: s.profile.profile_id)
        )
        return len(found), found[skip : skip + limit]

    async def by_email_keys(self, keys: Sequence[str]) -> dict[str, StoredProfile]:
        return {email_key(s.profile.email): s for s in self.profiles.values() if email_key(s.profile.email) in keys}

    async def external_id_owners(self, external_ids: Sequence[str]) -> dict[str, str]:
        return {
            s.profile.external_id: pid
            for pid, s in self.profiles.items()
            if s.profile.external_id is not None and s.profile.external_id in external_ids
        }

    async def ids_in_use(self, ids: Sequence[str]) -> set[str]:
        return {i for i in ids if i in self.profiles or i in self.erased}

    async def add_many(self, profiles: Sequence[NewProfile]) -> set[int]:
        refused: set[int] = set()
        for i, new in enumerate(profiles):
            try:
                await self.add(new.profile, new.events, email_verified=new.email_verified)
            except (ProfileExists, EmailTaken, ExternalIdTaken):
                refused.add(i)
        return refused

    async def save_many(self, updates: Sequence[PlannedUpdate]) -> set[int]:
        missed: set[int] = set()
        for i, u in enumerate(updates):
            try:
                if not await self.save(u.profile, u.expected_version, u.changed_fields, u.events):
                    missed.add(i)
            except (EmailTaken, ExternalIdTaken):
                missed.add(i)
        return missed
