"""Matching's read model of profiles, built only from profile events (idempotent, replayable)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pymongo.asynchronous.database import AsyncDatabase

from mentorship_contracts.profile import ProfileSnapshot

CANDIDATES = "profiles"


class ProfileReadModel:
    def __init__(self, db: AsyncDatabase[dict[str, Any]]) -> None:
        self.coll = db[CANDIDATES]

    async def upsert(self, profile: ProfileSnapshot, event_time: datetime) -> None:
        """Apply a snapshot unless a newer event was applied already (out-of-order safe)."""
        await self.coll.update_one(
            {"_id": profile.profile_id, "$or": [{"as_of": {"$lte": event_time}}, {"as_of": None}]},
            {"$set": {"profile": profile.model_dump(mode="json"), "as_of": event_time}},
            upsert=False,
        )
        if not await self.coll.find_one({"_id": profile.profile_id}, {"_id": 1}):
            try:
                await self.coll.insert_one(
                    {"_id": profile.profile_id, "profile": profile.model_dump(mode="json"), "as_of": event_time}
                )
            except Exception:  # a concurrent insert of the same id: the update path handles order
                pass

    async def get(self, profile_id: str) -> dict[str, Any] | None:
        return await self.coll.find_one({"_id": profile_id})
