"""Deliveries in Mongo: one document per (source event, recipient, channel).

The `_id` IS the delivery key, so the unique index on `_id` makes a redelivered or replayed
event unable to create a second delivery. Sending is guarded by a claim: a conditional
single-document write moves the delivery to `sending` with a lease before any byte leaves,
and the outcome (with its NotificationDelivered/Failed event, through the outbox) is recorded
by one more conditional write afterwards, only by the lease holder.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import datetime, timedelta
from typing import Any

from pymongo import ASCENDING, DESCENDING, IndexModel, ReturnDocument, UpdateOne
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import BulkWriteError

from mentorship_contracts import Envelope
from mentorship_kit.mongo import Indexes
from mentorship_kit.outbox import new_document, with_events

DELIVERIES = "deliveries"
DUPLICATE_KEY = 11000

# pending -> sending -> delivered | failed | retrying (-> pending) ; held (-> pending) ; skipped
# Recipient not in the contact book yet (one placeholder per event and person, channel "none"):
# waiting_for_contact -> checking_contact (leased) -> released (its channel deliveries exist) | failed
#                                                  | waiting_for_contact (still unknown, grace not over)
WAITING = "waiting_for_contact"
CHECKING = "checking_contact"
OPEN_STATES = ("pending", "held", "retrying", "sending", WAITING, CHECKING)

INDEXES = Indexes(
    DELIVERIES,
    (
        IndexModel(
            [("source_event_id", ASCENDING), ("recipient_id", ASCENDING), ("channel", ASCENDING)],
            unique=True,
            name="delivery_key_unique",
        ),
        IndexModel([("state", ASCENDING), ("lease_until", ASCENDING)], name="state_lease"),
        IndexModel([("recipient_id", ASCENDING), ("created_at", DESCENDING)], name="by_recipient"),
        IndexModel([("created_at", DESCENDING)], name="by_time"),
    ),
)


class DeliveryStore:
    def __init__(self, db: AsyncDatabase[dict[str, Any]], *, lease: timedelta) -> None:
        self.coll = db[DELIVERIES]
        self.lease = lease
        self.owner = uuid.uuid4().hex  # this process: only the lease holder records outcomes

    async def create_many(self, planned: list[tuple[dict[str, Any], list[Envelope[Any]]]]) -> list[bool]:
        """Insert the deliveries of one event in one round trip; per delivery, False when its key
        exists already (duplicate event). Unordered: a duplicate does not stop the others."""
        if not planned:
            return []
        try:
            await self.coll.insert_many([new_document(doc, events) for doc, events in planned], ordered=False)
        except BulkWriteError as exc:
            errors = exc.details.get("writeErrors", [])
            if any(err.get("code") != DUPLICATE_KEY for err in errors):
                raise
            duplicates = {err["index"] for err in errors}
            return [i not in duplicates for i in range(len(planned))]
        return [True] * len(planned)

    async def get(self, delivery_id: str) -> dict[str, Any] | None:
        return await self.coll.find_one({"_id": delivery_id})

    async def get_many(self, ids: list[str]) -> list[dict[str, Any]]:
        # One lookup by `_id` each rather than `_id: {$in}`, which FerretDB answers by scanning
        # the whole collection; a handful of concurrent point reads is cheap on any store.
        found = await asyncio.gather(*(self.coll.find_one({"_id": i}) for i in dict.fromkeys(ids)))
        return [d for d in found if d is not None]

    def claimed(self, doc: dict[str, Any], now: datetime) -> dict[str, Any]:
        """A new pending delivery as `claim` would leave it, to insert it already claimed by us."""
        return {
            **doc,
            "state": "sending",
            "lease_until": now + self.lease,
            "lease_owner": self.owner,
            "updated_at": now,
            "attempt_count": int(doc.get("attempt_count") or 0) + 1,
        }

    async def claim(self, delivery_id: str, now: datetime) -> dict[str, Any] | None:
        """pending (or sending with a lapsed lease: its sender died) -> sending, leased to us.

        Returns the document as it was BEFORE the claim (its state tells whether a crashed
        attempt is being recovered), or None if someone else holds it or it is finished.
        """
        update = {
            "$set": {"state": "sending", "lease_until": now + self.lease, "lease_owner": self.owner, "updated_at": now},
            "$inc": {"attempt_count": 1},
        }
        # Two plain filters rather than one $or: FerretDB resolves `_id` + equality cheaply.
        for condition in ({"state": "pending"}, {"state": "sending", "lease_until": {"$lt": now}}):
            before = await self.coll.find_one_and_update(
                {"_id": delivery_id, **condition}, update, return_document=ReturnDocument.BEFORE
            )
            if before is not None:
                return before
        return None

    async def claim_check(self, delivery_id: str, now: datetime) -> dict[str, Any] | None:
        """waiting_for_contact (or checking_contact with a lapsed lease) -> checking_contact, leased
        to us: one contact check at a time per held delivery, so it is released or failed once."""
        update = {
            "$set": {"state": CHECKING, "lease_until": now + self.lease, "lease_owner": self.owner, "updated_at": now}
        }
        for condition in ({"state": WAITING}, {"state": CHECKING, "lease_until": {"$lt": now}}):
            before = await self.coll.find_one_and_update(
                {"_id": delivery_id, **condition}, update, return_document=ReturnDocument.BEFORE
            )
            if before is not None:
                return before
        return None

    async def finish(
        self,
        delivery_id: str,
        fields: dict[str, Any],
        attempt_log: list[dict[str, Any]],
        events: list[Envelope[Any]],
        *,
        from_state: str = "sending",
    ) -> bool:
        """Record the outcome of our attempt or check (state + log + events in one write)."""
        update = with_events(
            {
                "$set": {**fields, "lease_until": None, "lease_owner": None},
                "$push": {"attempts": {"$each": attempt_log}},
            },
            events,
        )
        res = await self.coll.update_one({"_id": delivery_id, "state": from_state, "lease_owner": self.owner}, update)
        return res.modified_count == 1

    async def finish_many(
        self, outcomes: list[tuple[str, dict[str, Any], list[dict[str, Any]], list[Envelope[Any]]]]
    ) -> list[bool]:
        """`finish` of several attempts (from `sending`) in one bulk write; per delivery, whether it
        was recorded (False: our lease lapsed and another attempt took it over)."""
        if not outcomes:
            return []
        writes = [
            UpdateOne(
                {"_id": delivery_id, "state": "sending", "lease_owner": self.owner},
                with_events(
                    {
                        "$set": {**fields, "lease_until": None, "lease_owner": None},
                        "$push": {"attempts": {"$each": attempt_log}},
                    },
                    events,
                ),
            )
            for delivery_id, fields, attempt_log, events in outcomes
        ]
        result = await self.coll.bulk_write(writes, ordered=False)
        if result.modified_count == len(outcomes):
            return [True] * len(outcomes)
        # Some were taken over: those now carry our outcome's state and no lease of ours...
        # which the bulk result does not say, so each is read back (rare: a lease of minutes lapsed).
        states = await self.get_many([o[0] for o in outcomes])
        by_id = {d["_id"]: d for d in states}
        return [
            by_id.get(o[0], {}).get("state") == o[1]["state"] and by_id.get(o[0], {}).get("lease_owner") is None
            for o in outcomes
        ]

    async def move(self, delivery_id: str, from_state: str, to_state: str, now: datetime) -> bool:
        res = await self.coll.update_one(
            {"_id": delivery_id, "state": from_state}, {"$set": {"state": to_state, "updated_at": now}}
        )
        return res.modified_count == 1

    async def abandoned(self, now: datetime, limit: int = 100) -> list[dict[str, Any]]:
        """Deliveries whose sender died mid-attempt, that nobody picked up, or whose timer was lost."""
        grace = now - timedelta(seconds=30)
        cursor = self.coll.find(
            {
                "$or": [
                    {"state": "sending", "lease_until": {"$lt": now}},
                    {"state": CHECKING, "lease_until": {"$lt": now}},
                    {"state": "pending", "updated_at": {"$lt": grace}},
                    {"state": {"$in": ["held", "retrying", WAITING]}, "due_at": {"$lt": grace}},
                ]
            },
            {"_id": 1, "state": 1},
        ).limit(limit)
        return [d async for d in cursor]

    async def forget_recipient(self, recipient_id: str, now: datetime) -> None:
        """Erasure of a recipient: nothing more is sent to them, and their deliveries keep ids and
        states only (no message, no held event, no failure details that may quote an address)."""
        await self.coll.update_many(
            {"recipient_id": recipient_id, "state": {"$in": ["pending", "held", "retrying"]}},
            {"$set": {"state": "cancelled", "reason": "recipient erased", "updated_at": now}},
        )
        cursor = self.coll.find({"recipient_id": recipient_id}, {"state": 1, "reason": 1, "attempts": 1})
        async for doc in cursor:
            reason = doc.get("reason")
            if reason is not None and doc["state"] != "skipped":  # skip reasons are our own words
                reason = "recipient erased"
            attempts = [{**a, "detail": None} for a in doc.get("attempts") or []]
            await self.coll.update_one(
                {"_id": doc["_id"]},
                {"$set": {"message": None, "source_event": None, "reason": reason, "attempts": attempts}},
            )

    async def mentioning(self, profile_id: str) -> list[dict[str, Any]]:
        """Other people's deliveries whose event names this person (an erasure's scan: it is rare,
        and a multikey index would cost every insert)."""
        cursor = self.coll.find(
            {"mentions": profile_id, "recipient_id": {"$ne": profile_id}},
            {"state": 1, "channel": 1, "recipient_id": 1, "message": 1, "source_event": 1, "attempt_count": 1},
        )
        return [d async for d in cursor]

    async def rewrite(self, delivery_id: str, state: str, fields: dict[str, Any]) -> bool:
        """Set fields of a delivery still in `state` (a concurrent attempt or check moved it: False)."""
        res = await self.coll.update_one({"_id": delivery_id, "state": state}, {"$set": fields})
        return res.matched_count == 1

    async def log(
        self,
        *,
        recipient_id: str | None,
        state: str | None,
        source_event_id: str | None,
        channel: str | None,
        limit: int,
        before: datetime | None,
    ) -> list[dict[str, Any]]:
        query: dict[str, Any] = {}
        if recipient_id:
            query["recipient_id"] = recipient_id
        if state:
            query["state"] = state
        if source_event_id:
            query["source_event_id"] = source_event_id
        if channel:
            query["channel"] = channel
        if before:
            query["created_at"] = {"$lt": before}
        cursor = self.coll.find(query).sort([("created_at", DESCENDING), ("_id", DESCENDING)]).limit(limit)
        return [d async for d in cursor]
