"""Profiles in Mongo: state and pending events written together (outbox).

One document per person:
  {_id: profile id, email_key: lower-cased email (unique), version: n,
   external_key: "id:<external id>" (unique; "none:<profile id>" when the profile has none),
   profile: {...ProfileSnapshot...}, search: {roles, skills, department, time_zone, active},
   email_verified: bool, deactivated_by_admin: bool, deactivation_reason: the words given when it
   was deactivated (events carry only whether there were any), scim_user_name / scim_user_key: the SCIM
   userName as given / lower-cased (only when SCIM set one other than the email), outbox: [...], outbox_pending: bool}
(`email_verified` missing, as on documents written before it existed, counts as not verified.)
Every change is one conditional single-document write on (_id, version) that also carries
the events it causes. After erasure only a tombstone remains:
  {_id, email_key: "erased:<id>", external_key: "erased:<id>", erased: true, version,
   outbox: [ProfileErased, a null value for profile.state]}
(the keys are replaced, not removed, because a unique index counts a missing key as a value; for
the same reason a profile without an external id gets a placeholder key of its own: FerretDB has
no partial indexes).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from pymongo import ASCENDING, IndexModel, UpdateOne
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import BulkWriteError, DuplicateKeyError, OperationFailure

from mentorship_contracts import Envelope
from mentorship_contracts.profile import ProfileSnapshot
from mentorship_kit.mongo import Indexes
from mentorship_kit.outbox import OutboxItem, new_document, with_events, with_replaced_events

from ..domain import email_key, external_key, external_key_of

PROFILES = "profiles"

INDEXES = Indexes(
    PROFILES,
    (
        IndexModel([("email_key", ASCENDING)], unique=True, name="email_unique"),
        IndexModel([("external_key", ASCENDING)], unique=True, name="external_id_unique"),
        IndexModel([("search.roles", ASCENDING)], name="search_roles"),
        IndexModel([("search.skills", ASCENDING)], name="search_skills"),
        IndexModel([("search.department", ASCENDING)], name="search_department"),
    ),
)


class EmailTaken(Exception):
    pass


class ExternalIdTaken(Exception):
    pass


class ProfileExists(Exception):
    pass


@dataclass(frozen=True)
class StoredProfile:
    profile: ProfileSnapshot
    version: int
    email_verified: bool = False
    deactivated_by_admin: bool = False
    deactivation_reason: str | None = None
    scim_user_name: str | None = None


# What a read returns besides the profile: its version and the marks kept beside it.
PROJECTION = {
    "profile": 1,
    "version": 1,
    "email_verified": 1,
    "deactivated_by_admin": 1,
    "deactivation_reason": 1,
    "scim_user_name": 1,
}


@dataclass(frozen=True)
class SearchFilters:
    role: str | None = None
    skill: str | None = None
    department: str | None = None
    time_zone: str | None = None
    active: bool | None = None
    external_id: str | None = None


@dataclass(frozen=True)
class Lookup:
    """Exact matches (SCIM filters): every given field must match; a field given twice with two
    different values matches nothing (`conflicting`)."""

    profile_id: str | None = None
    user_name: str | None = None
    external_id: str | None = None
    email: str | None = None
    active: bool | None = None
    conflicting: bool = False


@dataclass(frozen=True)
class NewProfile:
    """One insert of a bulk write."""

    profile: ProfileSnapshot
    events: list[Envelope[Any]]
    email_verified: bool = False


@dataclass(frozen=True)
class PlannedUpdate:
    """One conditional update of a bulk write."""

    profile_id: str
    expected_version: int
    profile: ProfileSnapshot
    changed_fields: list[str]
    events: list[Envelope[Any]]


def search_fields(profile: ProfileSnapshot) -> dict[str, Any]:
    """Flat copies of the filterable fields, so searches need no queries into arrays of objects."""
    return {
        "roles": [str(r) for r in profile.roles],
        "skills": [s.name for s in profile.skills],
        "department": profile.department.strip().lower() if profile.department else None,
        "time_zone": profile.time_zone,
        "active": profile.active,
    }


def _mark_fields(marks: dict[str, Any] | None) -> dict[str, Any]:
    """Marks as stored: None means "remove"; the SCIM userName also gets its lower-cased key."""
    fields = dict(marks or {})
    if "scim_user_name" in fields:
        name = fields["scim_user_name"]
        fields["scim_user_key"] = email_key(name) if name is not None else None
    return fields


def profile_document(
    profile: ProfileSnapshot,
    events: Sequence[Envelope[Any]],
    *,
    email_verified: bool = False,
    marks: dict[str, Any] | None = None,
) -> dict[str, Any]:
    return new_document(
        {
            "_id": profile.profile_id,
            "email_key": email_key(profile.email),
            "external_key": external_key(profile),
            "version": 1,
            "profile": profile.model_dump(mode="json"),
            "search": search_fields(profile),
            "email_verified": email_verified,
            **{name: value for name, value in _mark_fields(marks).items() if value is not None},
        },
        events,
    )


def _update_document(
    profile: ProfileSnapshot,
    expected_version: int,
    changed_fields: Sequence[str],
    events: Sequence[Envelope[Any]],
    write_id: str | None = None,
    marks: dict[str, Any] | None = None,
) -> dict[str, Any]:
    # $set only what changed: a concurrent reader never sees a half-written profile anyway
    # (single-document write), and the write stays small.
    dumped = profile.model_dump(mode="json")
    changes: dict[str, Any] = {f"profile.{name}": dumped[name] for name in changed_fields}
    changes["version"] = expected_version + 1
    changes["search"] = search_fields(profile)
    changes["email_key"] = email_key(profile.email)
    changes["external_key"] = external_key(profile)
    fields = _mark_fields(marks)
    cleared = {name: "" for name, value in fields.items() if value is None}
    changes.update({name: value for name, value in fields.items() if value is not None})
    if write_id:
        changes["write_id"] = write_id
    update: dict[str, Any] = {"$set": changes}
    if cleared:
        update["$unset"] = cleared
    return with_events(update, events)


def _live(profile_id: str, **extra: Any) -> dict[str, Any]:
    return {"_id": profile_id, "erased": {"$ne": True}, **extra}


class ProfileRepository:
    def __init__(self, db: AsyncDatabase[dict[str, Any]]) -> None:
        self.coll = db[PROFILES]

    async def add(
        self,
        profile: ProfileSnapshot,
        events: list[Envelope[Any]],
        *,
        email_verified: bool = False,
        marks: dict[str, Any] | None = None,
    ) -> None:
        try:
            await self.coll.insert_one(profile_document(profile, events, email_verified=email_verified, marks=marks))
        except DuplicateKeyError as exc:
            if await self.coll.find_one({"_id": profile.profile_id}, {"_id": 1}):
                raise ProfileExists(profile.profile_id) from exc
            raise await self._clash(profile) from exc

    async def _clash(self, profile: ProfileSnapshot) -> Exception:
        """Which unique key a refused write ran into (the store's message does not say reliably)."""
        if profile.external_id is not None and await self.coll.find_one(
            {"external_key": external_key(profile), "_id": {"$ne": profile.profile_id}}, {"_id": 1}
        ):
            return ExternalIdTaken()
        return EmailTaken()

    async def get(self, profile_id: str) -> StoredProfile | None:
        doc = await self.coll.find_one(_live(profile_id), PROJECTION)
        return _stored(doc) if doc else None

    async def is_erased(self, profile_id: str) -> bool:
        return await self.coll.find_one({"_id": profile_id, "erased": True}, {"_id": 1}) is not None

    async def save(
        self,
        profile: ProfileSnapshot,
        expected_version: int,
        changed_fields: Sequence[str],
        events: Sequence[Envelope[Any]],
        marks: dict[str, Any] | None = None,
    ) -> bool:
        """Conditional write: False when someone else changed the profile since it was read."""
        try:
            result = await self.coll.update_one(
                _live(profile.profile_id, version=expected_version),
                _update_document(profile, expected_version, changed_fields, events, marks=marks),
            )
        except OperationFailure as exc:
            if _is_duplicate_key(exc):
                raise await self._clash(profile) from exc
            raise
        return result.modified_count == 1

    async def erase(self, profile_id: str, events: Sequence[OutboxItem]) -> bool:
        """Replace the document by a tombstone; False when there was no live profile.

        Unpublished events (and states) are dropped with the rest: they carry the personal data being
        erased, and ProfileErased tells every reader to forget whatever did get out.
        """
        result = await self.coll.update_one(
            _live(profile_id),
            with_replaced_events(
                {
                    "$set": {
                        "erased": True,
                        "email_key": f"erased:{profile_id}",
                        "external_key": f"erased:{profile_id}",
                    },
                    "$unset": {
                        "profile": "",
                        "search": "",
                        "write_id": "",
                        "email_verified": "",
                        "deactivated_by_admin": "",
                        "deactivation_reason": "",
                        "scim_user_name": "",
                        "scim_user_key": "",
                    },
                    "$inc": {"version": 1},
                },
                events,
            ),
        )
        return result.modified_count == 1

    async def search(self, filters: SearchFilters, *, after: str | None, limit: int) -> list[StoredProfile]:
        query: dict[str, Any] = {"erased": {"$ne": True}}
        if filters.role:
            query["search.roles"] = filters.role
        if filters.skill:
            query["search.skills"] = filters.skill
        if filters.department:
            query["search.department"] = filters.department.strip().lower()
        if filters.time_zone:
            query["search.time_zone"] = filters.time_zone
        if filters.active is not None:
            query["search.active"] = filters.active
        if filters.external_id:
            query["external_key"] = external_key_of(filters.external_id)
        if after:
            query["_id"] = {"$gt": after}
        cursor = self.coll.find(query, PROJECTION).sort("_id", ASCENDING).limit(limit)
        return [_stored(doc) async for doc in cursor]

    async def lookup(self, lookup: Lookup, *, skip: int, limit: int) -> tuple[int, list[StoredProfile]]:
        """Profiles matching every given field, by id: (how many match in all, the page asked for)."""
        if lookup.conflicting:
            return 0, []
        clauses: list[dict[str, Any]] = [{"erased": {"$ne": True}}]
        if lookup.profile_id is not None:
            clauses.append({"_id": lookup.profile_id})
        if lookup.external_id is not None:
            clauses.append({"external_key": external_key_of(lookup.external_id)})
        if lookup.email is not None:
            clauses.append({"email_key": email_key(lookup.email)})
        if lookup.active is not None:
            clauses.append({"search.active": lookup.active})
        if lookup.user_name is not None:
            # userName is the email unless SCIM set another one (kept beside the profile as given;
            # compared case-insensitively, as RFC 7643 makes userName caseExact=false).
            clauses.append(
                {
                    "$or": [
                        {"scim_user_key": {"$exists": False}, "email_key": email_key(lookup.user_name)},
                        {"scim_user_key": email_key(lookup.user_name)},
                    ]
                }
            )
        query = {"$and": clauses}
        total = await self.coll.count_documents(query)
        if limit <= 0 or skip >= total:
            return total, []
        cursor = self.coll.find(query, PROJECTION).sort("_id", ASCENDING).skip(skip).limit(limit)
        return total, [_stored(doc) async for doc in cursor]

    # --- sign-on --------------------------------------------------------------------------------
    async def by_external_id(self, external_id: str) -> StoredProfile | None:
        doc = await self.coll.find_one(
            {"external_key": external_key_of(external_id), "erased": {"$ne": True}}, PROJECTION
        )
        return _stored(doc) if doc else None

    async def by_email(self, email: str) -> StoredProfile | None:
        doc = await self.coll.find_one({"email_key": email_key(email), "erased": {"$ne": True}}, PROJECTION)
        return _stored(doc) if doc else None

    # --- bulk (import) ----------------------------------------------------------------------
    async def by_email_keys(self, keys: Sequence[str]) -> dict[str, StoredProfile]:
        """One read for a whole batch of rows."""
        if not keys:
            return {}
        found: dict[str, StoredProfile] = {}
        async for doc in self.coll.find(
            {"email_key": {"$in": list(keys)}, "erased": {"$ne": True}}, {**PROJECTION, "email_key": 1}
        ):
            found[doc["email_key"]] = _stored(doc)
        return found

    async def external_id_owners(self, external_ids: Sequence[str]) -> dict[str, str]:
        """external id -> the profile holding it, for those in use."""
        if not external_ids:
            return {}
        keys = [external_key_of(e) for e in external_ids]
        return {
            doc["profile"]["external_id"]: doc["_id"]
            async for doc in self.coll.find(
                {"external_key": {"$in": keys}, "erased": {"$ne": True}}, {"profile.external_id": 1}
            )
        }

    async def ids_in_use(self, ids: Sequence[str]) -> set[str]:
        if not ids:
            return set()
        return {doc["_id"] async for doc in self.coll.find({"_id": {"$in": list(ids)}}, {"_id": 1})}

    async def add_many(self, profiles: Sequence[NewProfile]) -> set[int]:
        """Insert new profiles in one unordered batch; returns the indices that were refused."""
        if not profiles:
            return set()
        try:
            await self.coll.insert_many(
                [profile_document(p.profile, p.events, email_verified=p.email_verified) for p in profiles],
                ordered=False,
            )
        except BulkWriteError as exc:
            return {err["index"] for err in exc.details.get("writeErrors", [])}
        return set()

    async def save_many(self, updates: Sequence[PlannedUpdate]) -> set[int]:
        """Conditional updates in one unordered batch; returns the indices that did not apply
        (changed concurrently, or the new email is taken)."""
        if not updates:
            return set()
        write_ids = [uuid.uuid4().hex for _ in updates]
        ops = [
            UpdateOne(
                _live(u.profile_id, version=u.expected_version),
                _update_document(u.profile, u.expected_version, u.changed_fields, u.events, wid),
            )
            for u, wid in zip(updates, write_ids, strict=True)
        ]
        failed: set[int] = set()
        try:
            result = await self.coll.bulk_write(ops, ordered=False)
            all_applied = result.modified_count == len(ops)
        except BulkWriteError as exc:
            failed = {err["index"] for err in exc.details.get("writeErrors", [])}
            all_applied = False
        if all_applied:
            return failed
        # A bulk result counts matches but does not say which missed: our write ids tell.
        applied = {
            doc["write_id"]
            async for doc in self.coll.find({"_id": {"$in": [u.profile_id for u in updates]}}, {"write_id": 1})
            if doc.get("write_id")
        }
        return failed | {i for i, wid in enumerate(write_ids) if wid not in applied}


def _is_duplicate_key(exc: OperationFailure) -> bool:
    # FerretDB reports a unique-index violation on update as InternalError (code 1), MongoDB as 11000.
    return isinstance(exc, DuplicateKeyError) or exc.code == 11000 or "UNIQUE constraint failed" in str(exc)


def _stored(doc: dict[str, Any]) -> StoredProfile:
    return StoredProfile(
        ProfileSnapshot.model_validate(doc["profile"]),
        int(doc.get("version", 1)),
        email_verified=bool(doc.get("email_verified")),
        deactivated_by_admin=bool(doc.get("deactivated_by_admin")),
        deactivation_reason=doc.get("deactivation_reason"),
        scim_user_name=doc.get("scim_user_name"),
    )
