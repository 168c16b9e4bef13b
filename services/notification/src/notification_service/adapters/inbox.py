"""The in-app inbox: one item per in-app delivery (item id = delivery id, so it is written once)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pymongo import ASCENDING, DESCENDING, IndexModel
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import BulkWriteError, DuplicateKeyError

from mentorship_kit.mongo import Indexes

INBOX = "inbox"
DUPLICATE_KEY = 11000

INDEXES = Indexes(
    INBOX,
    (
        IndexModel(
            [("recipient_id", ASCENDING), ("created_at", DESCENDING), ("_id", DESCENDING)], name="by_recipient_time"
        ),
        IndexModel([("recipient_id", ASCENDING), ("read_at", ASCENDING)], name="unread"),
    ),
)


class Inbox:
    def __init__(self, db: AsyncDatabase[dict[str, Any]]) -> None:
        self.coll = db[INBOX]

    async def put(self, item: dict[str, Any]) -> None:
        """Idempotent: the same delivery never becomes a second item."""
        try:
            await self.coll.insert_one(item)
        except DuplicateKeyError:
            pass

    async def put_many(self, items: list[dict[str, Any]]) -> None:
        """`put` of several items in one round trip; items that exist already are left as they are."""
        try:
            await self.coll.insert_many(items, ordered=False)
        except BulkWriteError as exc:
            if any(err.get("code") != DUPLICATE_KEY for err in exc.details.get("writeErrors", [])):
                raise

    async def page(
        self, recipient_id: str, *, limit: int, after: tuple[datetime, str] | None, unread_only: bool
    ) -> list[dict[str, Any]]:
        """Newest first; `after` is the (created_at, id) of the last item of the previous page."""
        query: dict[str, Any] = {"recipient_id": recipient_id}
        if unread_only:
            query["read_at"] = None
        if after:
            at, item_id = after
            query["$or"] = [{"created_at": {"$lt": at}}, {"created_at": at, "_id": {"$lt": item_id}}]
        cursor = self.coll.find(query).sort([("created_at", DESCENDING), ("_id", DESCENDING)]).limit(limit)
        return [d async for d in cursor]

    async def unread_count(self, recipient_id: str) -> int:
        return await self.coll.count_documents({"recipient_id": recipient_id, "read_at": None})

    async def mark_read(self, recipient_id: str, item_id: str, now: datetime) -> bool | None:
        """True if marked now, False if it was read already, None if there is no such item."""
        res = await self.coll.update_one(
            {"_id": item_id, "recipient_id": recipient_id, "read_at": None}, {"$set": {"read_at": now}}
        )
        if res.modified_count:
            return True
        return False if await self.coll.find_one({"_id": item_id, "recipient_id": recipient_id}) else None

    async def mark_all_read(self, recipient_id: str, now: datetime) -> int:
        res = await self.coll.update_many({"recipient_id": recipient_id, "read_at": None}, {"$set": {"read_at": now}})
        return res.modified_count

    async def forget(self, recipient_id: str) -> None:
        await self.coll.delete_many({"recipient_id": recipient_id})

    async def redact(self, item_id: str) -> None:
        item = await self.coll.find_one({"_id": item_id}, {"redacted": 1})
        if item and item.get("redacted"):
            await self.coll.update_one(
                {"_id": item_id},
                {"$set": {"title": item["redacted"]["title"], "text": item["redacted"]["text"], "redacted": None}},
            )

    async def redact_mentions(self, profile_id: str) -> int:
        """Other people's items naming this (erased) person: their text without free text replaces
        the original. Names are references resolved when read, so they need no change."""
        cursor = self.coll.find({"mentions": profile_id, "redacted": {"$ne": None}}, {"redacted": 1})
        changed = 0
        async for item in cursor:
            redacted = item["redacted"]
            await self.coll.update_one(
                {"_id": item["_id"]}, {"$set": {"title": redacted["title"], "text": redacted["text"], "redacted": None}}
            )
            changed += 1
        return changed
