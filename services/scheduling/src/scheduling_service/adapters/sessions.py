"""Sessions, per-person booking claims and calendar feed tokens in Mongo.

Double-booking guard: a person's time is claimed in 5-minute buckets, one document per
(person, bucket) with that pair as its `_id`. The store's unique `_id` makes the claim atomic,
so two concurrent bookings of overlapping time for one person cannot both succeed, whichever
replica serves them, without multi-document transactions. A claim names its session; a claim
whose session does not exist (a crash between claiming and writing the session), or no longer
holds that time, is stale and is reclaimed.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from pymongo import ASCENDING, IndexModel
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import BulkWriteError, DuplicateKeyError

from mentorship_contracts import Envelope
from mentorship_kit.erasure import scrubbed_pending
from mentorship_kit.mongo import Indexes
from mentorship_kit.outbox import DEAD, new_document, with_events, with_replaced_events

from ..domain import OPEN_STATUSES, PLATFORM_REASONS, buckets

SESSIONS = "sessions"
CLAIMS = "booking_claims"
FEEDS = "calendar_feeds"
# A claim without its session is only stale after this long: the booking may still be writing it.
ORPHAN_AFTER = timedelta(seconds=60)


def session_indexes() -> list[Indexes]:
    return [
        Indexes(
            SESSIONS,
            (
                IndexModel([("participants", ASCENDING), ("start", ASCENDING)], name="participant_start"),
                IndexModel([("mentorship_id", ASCENDING), ("start", ASCENDING)], name="mentorship_start"),
                IndexModel([("series_id", ASCENDING)], name="series"),
            ),
        ),
        Indexes(CLAIMS, (IndexModel([("session_id", ASCENDING)], name="session"),)),
        Indexes(FEEDS, (IndexModel([("person_id", ASCENDING)], name="person"),)),
    ]


def claim_id(person_id: str, bucket: datetime) -> str:
    return f"{person_id}|{bucket.strftime('%Y%m%dT%H%M')}"


class BookingConflict(Exception):
    def __init__(self, person_id: str, session_id: str | None, at: datetime | None) -> None:
        super().__init__(f"{person_id} is booked at {at}")
        self.person_id = person_id
        self.session_id = session_id
        self.at = at


class SessionStore:
    def __init__(self, db: AsyncDatabase[dict[str, Any]]) -> None:
        self.db = db
        self.sessions = db[SESSIONS]
        self.claims = db[CLAIMS]
        self.feeds = db[FEEDS]

    # --- sessions -----------------------------------------------------------------------------
    async def get(self, session_id: str) -> dict[str, Any] | None:
        return await self.sessions.find_one({"_id": session_id})

    async def add(self, session: dict[str, Any], events: list[Envelope[Any]]) -> None:
        await self.sessions.insert_one(new_document(session, events))

    async def move(
        self,
        session_id: str,
        expected_sequence: int,
        *,
        start: datetime,
        duration_minutes: int,
        location: str | None,
        now: datetime,
        events: list[Envelope[Any]],
    ) -> dict[str, Any] | None:
        """Reschedule; the new sequence tells calendars this is an update of the same event."""
        return await self._update(
            session_id,
            expected_sequence,
            with_events(
                {
                    "$set": {
                        "start": start,
                        "end": start + timedelta(minutes=duration_minutes),
                        "duration_minutes": duration_minutes,
                        "location": location,
                        "updated_at": now,
                    },
                    "$inc": {"sequence": 1},
                },
                events,
            ),
        )

    async def cancel(
        self,
        session_id: str,
        expected_sequence: int,
        *,
        reason: str,
        by: str | None,
        now: datetime,
        events: list[Envelope[Any]],
    ) -> dict[str, Any] | None:
        return await self._update(
            session_id,
            expected_sequence,
            with_events(
                {
                    "$set": {"status": "cancelled", "cancel_reason": reason, "cancelled_by": by, "updated_at": now},
                    "$inc": {"sequence": 1},
                },
                events,
            ),
        )

    async def complete(
        self, session_id: str, expected_sequence: int, *, notes: str, now: datetime, events: list[Envelope[Any]]
    ) -> dict[str, Any] | None:
        return await self._update(
            session_id,
            expected_sequence,
            with_events(
                {"$set": {"status": "completed", "notes": notes, "completed_at": now, "updated_at": now}}, events
            ),
        )

    async def no_show(
        self,
        session_id: str,
        expected_sequence: int,
        *,
        absent_ids: list[str],
        now: datetime,
        events: list[Envelope[Any]],
    ) -> dict[str, Any] | None:
        return await self._update(
            session_id,
            expected_sequence,
            with_events({"$set": {"status": "no_show", "absent_ids": absent_ids, "updated_at": now}}, events),
        )

    async def add_feedback(
        self, session_id: str, role: str, feedback: dict[str, Any], events: list[Envelope[Any]]
    ) -> bool:
        """One feedback per role, on a completed session; False if this role gave it already."""
        res = await self.sessions.update_one(
            {"_id": session_id, "status": "completed", f"feedback.{role}": {"$exists": False}},
            with_events({"$set": {f"feedback.{role}": feedback}}, events),
        )
        return res.modified_count == 1

    async def _update(
        self, session_id: str, expected_sequence: int, update: dict[str, Any], statuses: Sequence[str] = OPEN_STATUSES
    ) -> dict[str, Any] | None:
        """Conditional write: only if nobody changed the session meanwhile (optimistic version)."""
        res = await self.sessions.update_one(
            {"_id": session_id, "sequence": expected_sequence, "status": {"$in": list(statuses)}}, update
        )
        return await self.get(session_id) if res.modified_count else None

    async def of_mentorship(self, mentorship_id: str) -> list[dict[str, Any]]:
        return await self.sessions.find({"mentorship_id": mentorship_id}).sort("start", ASCENDING).to_list(None)

    async def upcoming(self, now: datetime) -> list[dict[str, Any]]:
        return await self.sessions.find({"status": "scheduled", "start": {"$gt": now}}).to_list(None)

    async def of_series(self, series_id: str) -> list[dict[str, Any]]:
        return await self.sessions.find({"series_id": series_id}).sort("series_index", ASCENDING).to_list(None)

    async def of_person(self, person_id: str, since: datetime) -> list[dict[str, Any]]:
        return (
            await self.sessions.find({"participants": person_id, "start": {"$gte": since}})
            .sort("start", ASCENDING)
            .to_list(None)
        )

    async def busy(
        self, people: Sequence[str], start: datetime, end: datetime, statuses: Sequence[str]
    ) -> list[dict[str, Any]]:
        # Sessions last at most a day, so a start window widened by a day finds every overlap.
        return await self.sessions.find(
            {
                "participants": {"$in": list(people)},
                "status": {"$in": list(statuses)},
                "start": {"$gte": start - timedelta(days=1), "$lt": end},
            }
        ).to_list(None)

    # --- booking claims -----------------------------------------------------------------------
    async def claim(
        self, session_id: str, people: Sequence[str], start: datetime, duration_minutes: int, now: datetime
    ) -> list[str]:
        """Claim the time for everyone or nobody; returns the claim ids newly taken.

        Buckets this session already holds (a reschedule that overlaps itself) are kept.
        """
        wanted = [claim_id(p, b) for p in people for b in buckets(start, duration_minutes)]
        held = {
            d["_id"]
            for d in await self.claims.find({"_id": {"$in": wanted}, "session_id": session_id}, {"_id": 1}).to_list(
                None
            )
        }
        todo = [c for c in wanted if c not in held]
        taken: list[str] = []
        for attempt in range(2):
            docs: list[dict[str, Any]] = [
                {"_id": c, "session_id": session_id, "claimed_at": now} for c in todo if c not in taken
            ]
            try:
                if docs:
                    await self.claims.insert_many(docs, ordered=True)
                taken.extend(d["_id"] for d in docs)
                return taken
            except BulkWriteError as exc:
                inserted = exc.details.get("nInserted", 0)
                taken.extend(d["_id"] for d in docs[:inserted])
                clash = docs[inserted]["_id"]
                holder = await self.claims.find_one({"_id": clash})
                if attempt == 0 and holder is not None and await self._stale(holder, now):
                    await self.claims.delete_one({"_id": clash, "session_id": holder["session_id"]})
                    continue
                await self.release_ids(taken)
                person, _, stamp = str(clash).partition("|")
                at = datetime.strptime(stamp, "%Y%m%dT%H%M").replace(tzinfo=start.tzinfo)
                raise BookingConflict(person, holder["session_id"] if holder else None, at) from None
        await self.release_ids(taken)
        raise BookingConflict(people[0], None, start)

    async def _stale(self, claim: dict[str, Any], now: datetime) -> bool:
        session = await self.get(claim["session_id"])
        if session is None:
            claimed_at = claim.get("claimed_at")
            return claimed_at is None or now - claimed_at > ORPHAN_AFTER
        person, _, stamp = claim["_id"].partition("|")
        at = datetime.strptime(stamp, "%Y%m%dT%H%M").replace(tzinfo=session["start"].tzinfo)
        holds_time = session["start"] <= at < session["end"] and person in session["participants"]
        return session["status"] == "cancelled" or not holds_time

    async def release_ids(self, ids: Sequence[str]) -> None:
        if ids:
            await self.claims.delete_many({"_id": {"$in": list(ids)}})

    async def release_except(
        self, session_id: str, keep_people: Sequence[str], start: datetime, duration_minutes: int
    ) -> None:
        """Free the claims of a session that it no longer needs (after a move or a cancel)."""
        keep = [claim_id(p, b) for p in keep_people for b in buckets(start, duration_minutes)]
        await self.claims.delete_many({"session_id": session_id, "_id": {"$nin": keep}})

    # --- calendar feeds -----------------------------------------------------------------------
    async def set_feed(self, token_hash: str, person_id: str, now: datetime) -> None:
        """One live feed per person: a new token replaces the old one."""
        await self.feeds.delete_many({"person_id": person_id})
        with contextlib.suppress(DuplicateKeyError):
            await self.feeds.insert_one({"_id": token_hash, "person_id": person_id, "created_at": now})

    async def feed_owner(self, token_hash: str) -> str | None:
        doc = await self.feeds.find_one({"_id": token_hash})
        return doc["person_id"] if doc else None

    async def forget_person(self, person_id: str) -> None:
        """Revoke the person's calendar feed tokens."""
        await self.feeds.delete_many({"person_id": person_id})

    # --- erasure ------------------------------------------------------------------------------
    async def all_of_person(self, person_id: str) -> list[dict[str, Any]]:
        return await self.sessions.find({"participants": person_id}).to_list(None)

    async def scrub(self, session_id: str, changes: dict[str, Any]) -> bool:
        """Overwrite free text (see `domain.scrubbed_session`); unpublished events lose their
        personal fields before they leave, and outbox entries set aside for good go (never
        published, and they may carry the text). Nothing is written when nothing is left to do."""
        doc = await self.get(session_id)
        if doc is None:
            return False
        update: dict[str, Any] = {"$set": changes} if changes else {}
        if doc.get(DEAD):
            update["$unset"] = {DEAD: ""}
        pending = scrubbed_pending(doc, PLATFORM_REASONS)
        if pending is not None:
            update = with_replaced_events(update, pending)
        if update:
            await self.sessions.update_one({"_id": session_id}, update)
        return bool(update)

    async def release_person(self, person_id: str) -> int:
        """Every booking claim of the person's time (claim ids start with the person's id)."""
        prefix = re.escape(f"{person_id}|")
        return (await self.claims.delete_many({"_id": {"$regex": f"^{prefix}"}})).deleted_count
