"""The insights read models in Mongo, built only from events (idempotent, order-tolerant, replayable).

Every event writes only its own facts with `$set` / `$min` / `$max` on one document (upserted),
so applying an event twice, or two events in either order, gives the same document. Reports
derive states from these facts (see `domain.Pair.state_at`).

Collections (all rebuildable by replaying the four topics):
- `pairs`: one per mentorship: ids, program, origin, cadence, lifecycle times, sessions,
  ratings (number and time only), milestones (time only), check-in signals.
- `programs`: one per program seen in an event (+ the pseudo-program `direct`): name, mode and
  creation time (ProgramCreated), runs.
- `enrolments`: one per enrolment (ProgramParticipantEnrolled / ProgramParticipantWithdrawn):
  program, profile id, role, enrolled and withdrawn times.
- `people`: roles, activity, mentor capacity, skill tags offered and sought. No names, emails,
  goal titles or free text. An erased person becomes a tombstone `{_id, erased, as_of}`.
- `failures`: one per failed notification delivery: time, channel, category, source event id.
- `event_refs`: which mentorship or program a matching/scheduling event belongs to, so that a
  notification failure can be counted against its program.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from pymongo import ASCENDING, IndexModel
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from mentorship_contracts.profile import ProfileSnapshot
from mentorship_kit.mongo import Indexes

from ..domain import Enrolment, Failure, Pair, Person, Rating, Session

PAIRS = "pairs"
PROGRAMS = "programs"
PEOPLE = "people"
FAILURES = "failures"
EVENT_REFS = "event_refs"
ENROLMENTS = "enrolments"

INDEXES = (
    Indexes(
        PAIRS,
        (
            IndexModel([("program_id", ASCENDING)], name="program"),
            IndexModel([("mentor_id", ASCENDING)], name="mentor"),
        ),
    ),
    Indexes(
        EVENT_REFS,
        (
            IndexModel([("mentorship_id", ASCENDING)], name="mentorship"),
            IndexModel([("program_id", ASCENDING)], name="program"),
        ),
    ),
    Indexes(FAILURES, (IndexModel([("source_event_id", ASCENDING)], name="source_event"),)),
    Indexes(ENROLMENTS, (IndexModel([("program_id", ASCENDING)], name="program"),)),
)

_SAFE_KEY = re.compile(r"^[A-Za-z0-9_-]{1,100}$")
_CHUNK = 1000


def field_key(raw: str) -> str:
    """An id from an event used as a field name: kept if plain, else hashed (never a `.` or `$`)."""
    return raw if _SAFE_KEY.match(raw) else "h" + hashlib.sha256(raw.encode()).hexdigest()[:32]


Doc = dict[str, Any]


class InsightsStore:
    def __init__(self, db: AsyncDatabase[Doc]) -> None:
        self.pairs = db[PAIRS]
        self.programs = db[PROGRAMS]
        self.people = db[PEOPLE]
        self.failures = db[FAILURES]
        self.refs = db[EVENT_REFS]
        self.enrolments = db[ENROLMENTS]

    # --- writes (each one idempotent and commutative) ------------------------------------------
    async def _upsert(self, coll: Any, _id: str, update: Doc) -> None:
        try:
            await coll.update_one({"_id": _id}, update, upsert=True)
        except DuplicateKeyError:  # two first writes raced: the document exists now
            await coll.update_one({"_id": _id}, update, upsert=True)

    async def pair_facts(
        self, mentorship_id: str, facts: Doc, *, earliest: Doc | None = None, latest: Doc | None = None
    ) -> None:
        update: Doc = {"$set": facts}
        if earliest:
            update["$min"] = earliest
        if latest:
            update["$max"] = latest
        await self._upsert(self.pairs, mentorship_id, update)

    async def program_seen(
        self,
        program_id: str,
        at: datetime,
        *,
        name: str | None = None,
        run_id: str | None = None,
        created: Doc | None = None,
    ) -> None:
        update: Doc = {"$min": {"seen_at": at}}
        facts: Doc = dict(created or {})
        if name is not None:
            facts["name"] = name
        if run_id is not None:
            facts[f"runs.{field_key(run_id)}"] = at
        if facts:
            update["$set"] = facts
        await self._upsert(self.programs, program_id, update)

    async def enrolment_facts(self, enrolment_id: str, facts: Doc) -> None:
        await self._upsert(self.enrolments, enrolment_id, {"$set": facts})

    async def event_ref(
        self, event_id: str, *, mentorship_id: str | None = None, program_id: str | None = None
    ) -> None:
        ref: Doc = {}
        if mentorship_id:
            ref["mentorship_id"] = mentorship_id
        if program_id:
            ref["program_id"] = program_id
        await self._upsert(self.refs, event_id, {"$set": ref})

    async def failure(self, delivery_id: str, facts: Doc) -> None:
        await self._upsert(self.failures, delivery_id, {"$set": facts})

    async def person(self, snapshot: ProfileSnapshot, at: datetime) -> None:
        """Apply a whole profile unless a newer event (or the erasure) was applied already."""
        sought = list(snapshot.development_areas)
        sought += [skill for goal in snapshot.goals for skill in goal.skills]
        fields = {
            "roles": [str(r) for r in snapshot.roles],
            "active": snapshot.active,
            "mentor_capacity": snapshot.mentor_capacity,
            "skills_offered": sorted({s.name for s in snapshot.skills}),
            "skills_sought": sorted(set(sought)),
            "as_of": at,
            "erased": False,
        }
        await self._guarded(snapshot.profile_id, at, fields, insert=True)

    async def person_patch(self, profile_id: str, at: datetime, changes: Doc) -> None:
        await self._guarded(profile_id, at, {**changes, "as_of": at}, insert=False)

    async def _guarded(self, profile_id: str, at: datetime, fields: Doc, *, insert: bool) -> None:
        newer = {"$or": [{"as_of": {"$lte": at}}, {"as_of": None}]}
        res = await self.people.update_one({"_id": profile_id, "erased": {"$ne": True}, **newer}, {"$set": fields})
        if res.matched_count == 0 and insert and not await self.people.find_one({"_id": profile_id}, {"_id": 1}):
            try:
                await self.people.insert_one({"_id": profile_id, **fields})
            except DuplicateKeyError:
                await self._guarded(profile_id, at, fields, insert=False)

    async def erase_person(self, profile_id: str, at: datetime) -> None:
        """Forget the person's skills, goals and roles; keep a tombstone so a replay stays forgotten.
        Counts built from pairs stay (they hold ids only, shown as `erased` in reports). Erasing
        again changes nothing: the first tombstone stands."""
        try:
            await self.people.replace_one(
                {"_id": profile_id, "erased": {"$ne": True}},
                {"_id": profile_id, "erased": True, "as_of": at},
                upsert=True,
            )
        except DuplicateKeyError:
            pass  # a tombstone already

    # --- reads ---------------------------------------------------------------------------------
    async def program(self, program_id: str) -> Doc | None:
        return await self.programs.find_one({"_id": program_id})

    async def all_programs(self) -> list[Doc]:
        return [d async for d in self.programs.find({}).sort("_id", ASCENDING)]

    async def program_enrolments(self, program_id: str) -> list[Enrolment]:
        return [to_enrolment(d) async for d in self.enrolments.find({"program_id": program_id})]

    async def all_enrolments(self) -> list[Enrolment]:
        return [to_enrolment(d) async for d in self.enrolments.find({})]

    async def program_pairs(self, program_id: str) -> list[Pair]:
        return [to_pair(d) async for d in self.pairs.find({"program_id": program_id})]

    async def all_pairs(self) -> list[Pair]:
        return [to_pair(d) async for d in self.pairs.find({"program_id": {"$exists": True}})]

    async def mentor_pairs(self, mentor_ids: Iterable[str]) -> list[Pair]:
        ids = list(mentor_ids)
        found: list[Pair] = []
        for start in range(0, len(ids), _CHUNK):
            async for d in self.pairs.find(
                {"mentor_id": {"$in": ids[start : start + _CHUNK]}, "program_id": {"$exists": True}}
            ):
                found.append(to_pair(d))
        return found

    async def people_by_id(self, ids: Iterable[str]) -> dict[str, Person]:
        wanted = list(set(ids))
        out: dict[str, Person] = {}
        for start in range(0, len(wanted), _CHUNK):
            async for d in self.people.find({"_id": {"$in": wanted[start : start + _CHUNK]}, "erased": {"$ne": True}}):
                out[d["_id"]] = to_person(d)
        return out

    async def live_people(self) -> list[Person]:
        return [to_person(d) async for d in self.people.find({"erased": {"$ne": True}})]

    async def erased_ids(self, ids: Iterable[str]) -> set[str]:
        wanted = list(set(ids))
        out: set[str] = set()
        for start in range(0, len(wanted), _CHUNK):
            async for d in self.people.find(
                {"_id": {"$in": wanted[start : start + _CHUNK]}, "erased": True}, {"_id": 1}
            ):
                out.add(d["_id"])
        return out

    async def failures_of(self, program_id: str, mentorship_ids: Iterable[str]) -> list[Failure]:
        """Failed deliveries caused by an event of these mentorships or of the program itself."""
        event_ids = [d["_id"] async for d in self.refs.find({"program_id": program_id}, {"_id": 1})]
        ids = list(mentorship_ids)
        for start in range(0, len(ids), _CHUNK):
            async for d in self.refs.find({"mentorship_id": {"$in": ids[start : start + _CHUNK]}}, {"_id": 1}):
                event_ids.append(d["_id"])
        found: list[Failure] = []
        for start in range(0, len(event_ids), _CHUNK):
            async for d in self.failures.find({"source_event_id": {"$in": event_ids[start : start + _CHUNK]}}):
                found.append(to_failure(d))
        return found

    async def all_failures(self) -> list[Failure]:
        return [to_failure(d) async for d in self.failures.find({})]


# --- documents to domain values ------------------------------------------------------------------


def to_session(session_id: str, d: Doc) -> Session:
    starts = d.get("starts") or {}
    start = d.get("held_start")
    if start is None and starts:
        start = starts[max(starts, key=lambda k: int(k.lstrip("s") or 0))]
    return Session(
        session_id,
        start=start,
        completed_at=d.get("completed_at"),
        cancelled_at=d.get("cancelled_at"),
        no_show_at=d.get("no_show_at"),
    )


def to_pair(d: Doc) -> Pair:
    return Pair(
        mentorship_id=d["_id"],
        program_id=d.get("program_id"),
        mentee_id=d.get("mentee_id"),
        mentor_id=d.get("mentor_id"),
        origin=d.get("origin") or ("request" if d.get("requested_at") else "cohort"),
        cadence=d.get("cadence") or "biweekly",
        requested_at=d.get("requested_at"),
        expires_at=d.get("expires_at"),
        accepted_at=d.get("accepted_at"),
        declined_at=d.get("declined_at"),
        expired_at=d.get("expired_at"),
        withdrawn_at=d.get("withdrawn_at"),
        started_at=d.get("started_at"),
        completed_at=d.get("completed_at"),
        ended_at=d.get("ended_at"),
        ended_not_a_good_fit=bool(d.get("ended_not_a_good_fit")),
        overdue_since=d.get("overdue_since"),
        inactive_since=d.get("inactive_since"),
        sessions=tuple(to_session(k, v) for k, v in sorted((d.get("sessions") or {}).items())),
        ratings=tuple(
            Rating(int(v["rating"]), v["at"], bool(v.get("not_a_good_fit")))
            for _, v in sorted((d.get("ratings") or {}).items())
        ),
        milestones=tuple(v for _, v in sorted((d.get("milestones") or {}).items())),
    )


def to_enrolment(d: Doc) -> Enrolment:
    return Enrolment(
        enrolment_id=d["_id"],
        profile_id=d["profile_id"],
        role=d["role"],
        enrolled_at=d.get("enrolled_at"),
        withdrawn_at=d.get("withdrawn_at"),
    )


def to_person(d: Doc) -> Person:
    return Person(
        profile_id=d["_id"],
        roles=tuple(d.get("roles") or ()),
        active=bool(d.get("active", True)),
        mentor_capacity=d.get("mentor_capacity"),
        skills_offered=tuple(d.get("skills_offered") or ()),
        skills_sought=tuple(d.get("skills_sought") or ()),
    )


def to_failure(d: Doc) -> Failure:
    return Failure(
        delivery_id=d["_id"], failed_at=d["failed_at"], channel=d.get("channel", ""), category=d.get("category", "")
    )
