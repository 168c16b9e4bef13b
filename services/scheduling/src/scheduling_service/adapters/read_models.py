"""Read models built only from matching and profile events (idempotent, replayable).

Each document remembers the event time it reflects (`as_of`), so a late, older event never
overwrites newer state. Removal leaves a small tombstone so a replayed older event cannot
bring the data back.
"""

from __future__ import annotations

import contextlib
from datetime import datetime
from typing import Any

from pymongo import ASCENDING, IndexModel
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from mentorship_contracts import Envelope
from mentorship_kit.mongo import Indexes
from mentorship_kit.oidc import Identity
from mentorship_kit.outbox import with_events

MENTORSHIPS = "mentorships"
PROFILES = "profiles"


def read_model_indexes() -> list[Indexes]:
    return [
        Indexes(MENTORSHIPS, (IndexModel([("participants", ASCENDING)], name="participants"),)),
    ]


async def _apply(
    coll: Any,
    doc_id: str,
    event_time: datetime,
    update: dict[str, Any],
    insert: dict[str, Any] | None,
    *,
    only_if: dict[str, Any] | None = None,
) -> bool:
    """Update if not newer already (and matching `only_if`); insert if absent. True when the
    change was applied."""
    res = await coll.update_one(
        {"_id": doc_id, "as_of": {"$lte": event_time}, **(only_if or {})},
        {**update, "$set": {**update.get("$set", {}), "as_of": event_time}},
    )
    if res.modified_count or res.matched_count:
        return True
    if insert is None or await coll.find_one({"_id": doc_id}, {"_id": 1}):
        return False
    with contextlib.suppress(DuplicateKeyError):
        await coll.insert_one({"_id": doc_id, **insert, "as_of": event_time})
        return True
    return False


class MentorshipReadModel:
    def __init__(self, db: AsyncDatabase[dict[str, Any]]) -> None:
        self.coll = db[MENTORSHIPS]

    async def started(
        self,
        *,
        mentorship_id: str,
        mentor_id: str,
        mentee_id: str,
        cadence: str,
        goal_count: int,
        goal_ids: list[str],
        planned_end: str | None,
        started_at: datetime,
        event_time: datetime,
    ) -> bool:
        # One milestone per agreed goal; the goal's title is matching's (its API shows it to the
        # participants), events carry only ids and counts, so it is not copied here.
        milestones = {
            f"m{i + 1}": {
                "title": None,
                "goal_id": goal_ids[i] if i < len(goal_ids) else None,
                "reached_at": None,
                "order": i + 1,
            }
            for i in range(max(goal_count, len(goal_ids)))
        }
        fields = {
            "status": "active",
            "mentor_id": mentor_id,
            "mentee_id": mentee_id,
            "participants": [mentor_id, mentee_id],
            "cadence": cadence,
            "planned_end": planned_end,
            "started_at": started_at,
        }
        # Milestones are set once, from the agreement; later ones are added over HTTP.
        return await _apply(
            self.coll,
            mentorship_id,
            event_time,
            {"$set": fields},
            {**fields, "milestones": milestones, "last_session_at": None, "outbox": [], "outbox_pending": False},
        )

    async def revised(self, mentorship_id: str, *, cadence: str, planned_end: str | None, event_time: datetime) -> bool:
        """The agreement was revised: the new cadence and planned end (milestones stay as they are,
        later ones are added over HTTP). Only a known, still active mentorship changes."""
        return await _apply(
            self.coll,
            mentorship_id,
            event_time,
            {"$set": {"cadence": cadence, "planned_end": planned_end}},
            None,
            only_if={"status": "active"},
        )

    async def ended(self, mentorship_id: str, event_time: datetime) -> bool:
        """Forget participants and goals; keep only the state (events may still be pending)."""
        return await _apply(
            self.coll,
            mentorship_id,
            event_time,
            {"$set": {"status": "ended", "milestones": {}, "participants": []}},
            {"status": "ended", "milestones": {}, "participants": [], "outbox": [], "outbox_pending": False},
        )

    async def get(self, mentorship_id: str) -> dict[str, Any] | None:
        return await self.coll.find_one({"_id": mentorship_id})

    async def participant_left(self, mentorship_id: str) -> None:
        """A participant erased their profile: the mentorship is over here (matching ends it too)
        and keeps no participants and no milestones (their titles are the person's goals). The
        event time is kept, so a late start cannot revive it."""
        await self.coll.update_one(
            {"_id": mentorship_id},
            {"$set": {"status": "ended", "milestones": {}, "participants": []}, "$unset": {"outbox_dead": ""}},
        )

    async def session_held(self, mentorship_id: str, start: datetime) -> None:
        """Remember the latest held session (an older one, completed late, changes nothing)."""
        await self.coll.update_one(
            {"_id": mentorship_id, "$or": [{"last_session_at": None}, {"last_session_at": {"$lt": start}}]},
            {"$set": {"last_session_at": start}},
        )

    async def add_milestone(self, mentorship_id: str, milestone_id: str, milestone: dict[str, Any]) -> None:
        await self.coll.update_one({"_id": mentorship_id}, {"$set": {f"milestones.{milestone_id}": milestone}})

    async def reach_milestone(
        self, mentorship_id: str, milestone_id: str, *, at: datetime, by: str, events: list[Envelope[Any]]
    ) -> bool:
        """Mark a milestone reached, with its event, unless it was reached already."""
        res = await self.coll.update_one(
            {"_id": mentorship_id, f"milestones.{milestone_id}.reached_at": None},
            with_events(
                {"$set": {f"milestones.{milestone_id}.reached_at": at, f"milestones.{milestone_id}.reached_by": by}},
                events,
            ),
        )
        return bool(res.modified_count)

    async def of_person(self, person_id: str) -> list[dict[str, Any]]:
        return await self.coll.find({"participants": person_id}).to_list(None)


class ProfileReadModel:
    """Only what scheduling needs: time zone and weekly availability."""

    def __init__(self, db: AsyncDatabase[dict[str, Any]]) -> None:
        self.coll = db[PROFILES]

    async def upsert(
        self,
        profile_id: str,
        time_zone: str,
        availability: list[dict[str, Any]],
        event_time: datetime,
        *,
        external_id: str | None = None,
    ) -> bool:
        fields = {"time_zone": time_zone, "availability": availability, "external_id": external_id}
        # An erased person stays erased: the tombstone blocks older replays.
        res = await self.coll.update_one(
            {"_id": profile_id, "as_of": {"$lte": event_time}, "erased": {"$ne": True}},
            {"$set": {**fields, "as_of": event_time}},
        )
        if res.matched_count:
            return True
        if await self.coll.find_one({"_id": profile_id}, {"_id": 1}):
            return False
        with contextlib.suppress(DuplicateKeyError):
            await self.coll.insert_one({"_id": profile_id, **fields, "as_of": event_time})
            return True
        return False

    async def erase(self, profile_id: str, event_time: datetime) -> None:
        if await self.is_erased(profile_id):
            return  # a second erase changes nothing
        await self.coll.replace_one(
            {"_id": profile_id}, {"_id": profile_id, "erased": True, "as_of": event_time}, upsert=True
        )

    async def get(self, profile_id: str) -> dict[str, Any] | None:
        doc = await self.coll.find_one({"_id": profile_id})
        return None if doc is None or doc.get("erased") else doc

    async def profile_for(self, identity: Identity) -> str | None:
        """Identity map for company sign-on (kit `IdentityDirectory`): the live profile whose
        external_id is the provider's subject. Email is not used here: the events do not say whether
        an address is verified; the profile service links by verified email (GET /me), which sets
        external_id and reaches this map through ProfileUpdated."""
        doc = await self.coll.find_one({"external_id": identity.subject, "erased": {"$ne": True}}, {"_id": 1})
        return str(doc["_id"]) if doc else None

    async def is_erased(self, profile_id: str) -> bool:
        return await self.coll.find_one({"_id": profile_id, "erased": True}, {"_id": 1}) is not None
