"""Matching's read model of profiles, built only from profile events (idempotent, replayable).

Every change is a conditional single-document write guarded by the event time (`as_of`), so a
redelivered or older event changes nothing. An erased profile leaves a tombstone without any
personal data, so replaying older events from offset zero cannot bring the person back.
A counter in `meta` moves on every change, and the changed document keeps the counter's value
(`seq`): an in-memory mentor index reads everything once, then only what changed since (by
`seq`), so it follows every change in every replica without rebuilding.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from pymongo import ASCENDING, IndexModel, ReturnDocument
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from mentorship_contracts.profile import ProfileSnapshot
from mentorship_kit.mongo import Indexes
from mentorship_kit.oidc import Identity

CANDIDATES = "profiles"
META = "meta"
PROFILES_VERSION = "profiles_version"

INDEXES = Indexes(
    CANDIDATES, (IndexModel([("roles", ASCENDING)], name="roles"), IndexModel([("seq", ASCENDING)], name="seq"))
)


def _newer(event_time: datetime) -> dict[str, Any]:
    return {"$or": [{"as_of": {"$lte": event_time}}, {"as_of": None}]}


class ProfileReadModel:
    def __init__(self, db: AsyncDatabase[dict[str, Any]]) -> None:
        self.coll = db[CANDIDATES]
        self.meta = db[META]

    async def upsert(self, profile: ProfileSnapshot, event_time: datetime) -> bool:
        """Apply a snapshot unless a newer event was applied already (out-of-order safe)."""
        body = profile.model_dump(mode="json")
        fields = {
            "profile": body,
            "roles": body["roles"],
            "active": body["active"],
            "as_of": event_time,
            "erased": False,
        }
        # an erased person stays erased, whatever the event's time (a late retry, a re-driven dead letter)
        res = await self.coll.update_one(
            {"_id": profile.profile_id, "erased": {"$ne": True}, **_newer(event_time)}, {"$set": fields}
        )
        changed = res.modified_count == 1
        if res.matched_count == 0 and not await self.coll.find_one({"_id": profile.profile_id}, {"_id": 1}):
            try:
                await self.coll.insert_one({"_id": profile.profile_id, **fields})
                changed = True
            except DuplicateKeyError:  # a concurrent insert; the guarded update keeps order
                return await self.upsert(profile, event_time)
        if changed:
            await self._mark_changed(profile.profile_id)
        return changed

    async def patch(self, profile_id: str, changes: dict[str, Any], event_time: datetime) -> dict[str, Any] | None:
        """Set some snapshot fields (roles, active, capacity) on a live profile; returns the result."""
        update: dict[str, Any] = {f"profile.{k}": v for k, v in changes.items()}
        for top in ("roles", "active"):
            if top in changes:
                update[top] = changes[top]
        update["as_of"] = event_time
        res = await self.coll.update_one({"_id": profile_id, "erased": False, **_newer(event_time)}, {"$set": update})
        if res.modified_count == 1:
            await self._mark_changed(profile_id)
            return await self.get(profile_id)
        return None

    async def erase(self, profile_id: str, event_time: datetime) -> None:
        """Forget the person: keep only a tombstone (id and time) so replays and late events stay
        forgotten. A second erase changes nothing."""
        if await self.is_erased(profile_id):
            return
        seq = await self._bump()
        await self.coll.replace_one(
            {"_id": profile_id},
            {"_id": profile_id, "erased": True, "as_of": event_time, "roles": [], "active": False, "seq": seq},
            upsert=True,
        )

    async def is_erased(self, profile_id: str) -> bool:
        return await self.coll.find_one({"_id": profile_id, "erased": True}, {"_id": 1}) is not None

    async def get(self, profile_id: str) -> dict[str, Any] | None:
        doc = await self.coll.find_one({"_id": profile_id})
        return None if doc is None or doc.get("erased") else doc

    async def profile(self, profile_id: str) -> dict[str, Any] | None:
        doc = await self.get(profile_id)
        return doc["profile"] if doc else None

    async def many(self, profile_ids: Iterable[str]) -> list[dict[str, Any]]:
        ids = list(profile_ids)
        found: list[dict[str, Any]] = []
        for start in range(0, len(ids), 1000):
            async for doc in self.coll.find({"_id": {"$in": ids[start : start + 1000]}, "erased": False}):
                found.append(doc["profile"])
        return found

    async def all_live(self) -> list[dict[str, Any]]:
        return [doc["profile"] async for doc in self.coll.find({"erased": False}, {"profile": 1})]

    async def live_with_seq(self) -> list[dict[str, Any]]:
        """Every live profile with its change number: `{"_id", "seq", "profile"}`."""
        return [doc async for doc in self.coll.find({"erased": False}, {"profile": 1, "seq": 1})]

    async def changed_since(self, seq: int) -> list[tuple[str, int]]:
        """(profile id, change number) of every document changed after `seq`, tombstones too."""
        return [(str(d["_id"]), int(d["seq"])) async for d in self.coll.find({"seq": {"$gt": seq}}, {"seq": 1})]

    async def documents(self, profile_ids: list[str]) -> list[dict[str, Any]]:
        """The documents themselves (tombstones too): `{"_id", "seq", "erased", "profile"?}`."""
        found: list[dict[str, Any]] = []
        for start in range(0, len(profile_ids), 1000):
            query = {"_id": {"$in": profile_ids[start : start + 1000]}}
            found.extend([d async for d in self.coll.find(query, {"profile": 1, "seq": 1, "erased": 1})])
        return found

    async def profile_for(self, identity: Identity) -> str | None:
        """Identity map for company sign-on (kit `IdentityDirectory`): the live profile whose
        external_id is the provider's subject. Email is not used here: the events do not say whether
        an address is verified; the profile service links by verified email (GET /me), which sets
        external_id and reaches this map through ProfileUpdated."""
        doc = await self.coll.find_one({"profile.external_id": identity.subject, "erased": False}, {"_id": 1})
        return str(doc["_id"]) if doc else None

    async def version(self) -> int:
        doc = await self.meta.find_one({"_id": PROFILES_VERSION})
        return int(doc["value"]) if doc else 0

    async def _mark_changed(self, profile_id: str) -> None:
        await self.coll.update_one({"_id": profile_id}, {"$max": {"seq": await self._bump()}})

    async def _bump(self) -> int:
        """The next change number. A number is written to its document a moment after it is
        taken: a reader that catches up by `seq` looks back a few seconds, so it still sees it."""
        doc = await self.meta.find_one_and_update(
            {"_id": PROFILES_VERSION}, {"$inc": {"value": 1}}, upsert=True, return_document=ReturnDocument.AFTER
        )
        assert doc is not None  # upsert with AFTER returns the document
        return int(doc["value"])
