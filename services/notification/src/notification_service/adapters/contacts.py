"""The contact book: a read model of people's addresses and preferences, built only from
profile events (idempotent, replayable, out-of-order safe by event time).

An erased person leaves a tombstone with no personal data, so a late or replayed snapshot of
them is not stored again.
"""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Any

from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from mentorship_contracts.profile import ProfileSnapshot

CONTACTS = "contacts"
CONTACT_WAITS = "contact_waits"


class ContactBook:
    def __init__(self, db: AsyncDatabase[dict[str, Any]]) -> None:
        self.coll = db[CONTACTS]

    async def apply_snapshot(self, profile: ProfileSnapshot, as_of: datetime) -> None:
        fields = {
            "display_name": profile.display_name,
            "email": profile.email,
            "time_zone": profile.time_zone,
            "preferences": profile.notification_preferences.model_dump(mode="json"),
            "active": profile.active,
        }
        await self._apply(profile.profile_id, fields, as_of)

    async def set_active(self, profile_id: str, active: bool, as_of: datetime) -> None:
        await self._apply(profile_id, {"active": active}, as_of, create=False)

    async def erase(self, profile_id: str, as_of: datetime) -> None:
        await self.coll.replace_one(
            {"_id": profile_id}, {"_id": profile_id, "erased": True, "as_of": as_of}, upsert=True
        )

    async def _apply(self, profile_id: str, fields: dict[str, Any], as_of: datetime, *, create: bool = True) -> None:
        res = await self.coll.update_one(
            {"_id": profile_id, "erased": {"$ne": True}, "as_of": {"$lte": as_of}},
            {"$set": {**fields, "as_of": as_of}},
        )
        if res.matched_count or not create:
            return
        try:
            await self.coll.insert_one({"_id": profile_id, **fields, "as_of": as_of})
        except DuplicateKeyError:
            pass  # newer state or a tombstone is already there: it wins

    async def get_many(self, profile_ids: list[str]) -> dict[str, dict[str, Any]]:
        if not profile_ids:
            return {}
        # Point reads by `_id`, concurrently: FerretDB answers `_id: {$in}` by scanning the collection.
        found = await asyncio.gather(*(self.coll.find_one({"_id": pid}) for pid in dict.fromkeys(profile_ids)))
        return {doc["_id"]: doc for doc in found if doc is not None}

    async def get(self, profile_id: str) -> dict[str, Any] | None:
        return await self.coll.find_one({"_id": profile_id})


class ContactWaits:
    """Which held deliveries wait for a person to reach the contact book: one small document per
    person (`_id` = profile id), so a profile event finds them with one point read instead of a
    scan of the delivery log."""

    def __init__(self, db: AsyncDatabase[dict[str, Any]]) -> None:
        self.coll = db[CONTACT_WAITS]

    async def add(self, profile_id: str, delivery_ids: list[str]) -> None:
        await self.coll.update_one(
            {"_id": profile_id}, {"$addToSet": {"delivery_ids": {"$each": delivery_ids}}}, upsert=True
        )

    async def waiting(self, profile_id: str) -> list[str]:
        doc = await self.coll.find_one({"_id": profile_id})
        return list(doc.get("delivery_ids") or []) if doc else []

    async def done(self, profile_id: str, delivery_id: str) -> None:
        await self.coll.update_one({"_id": profile_id}, {"$pull": {"delivery_ids": delivery_id}})
        await self.coll.delete_one({"_id": profile_id, "delivery_ids": {"$size": 0}})
