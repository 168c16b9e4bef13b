"""Profiles in Mongo: state and pending events written together (outbox)."""

from __future__ import annotations

from typing import Any

from pymongo import ASCENDING, IndexModel
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from mentorship_contracts import Envelope
from mentorship_contracts.profile import ProfileSnapshot
from mentorship_kit.mongo import Indexes
from mentorship_kit.outbox import new_document

PROFILES = "profiles"

INDEXES = Indexes(
    PROFILES,
    (IndexModel([("email_key", ASCENDING)], unique=True, name="email_unique"),),
)


class EmailTaken(Exception):
    pass


class ProfileRepository:
    def __init__(self, db: AsyncDatabase[dict[str, Any]]) -> None:
        self.coll = db[PROFILES]

    async def add(self, profile: ProfileSnapshot, events: list[Envelope[Any]]) -> None:
        doc = {
            "_id": profile.profile_id,
            "email_key": profile.email.lower(),
            "version": 1,
            "profile": profile.model_dump(mode="json"),
        }
        try:
            await self.coll.insert_one(new_document(doc, events))
        except DuplicateKeyError as exc:
            raise EmailTaken(profile.email) from exc

    async def get(self, profile_id: str) -> ProfileSnapshot | None:
        doc = await self.coll.find_one({"_id": profile_id}, {"profile": 1})
        return ProfileSnapshot.model_validate(doc["profile"]) if doc else None
