"""Mongo repositories of matching.

The store (FerretDB 1.24) applies an update as read-modify-write, so two concurrent updates of
one document can lose one of them (measured: 200 concurrent `$inc` ended at 8), and a
conditional update is no compare-and-set. An insert with a unique `_id` IS atomic there (and
on MongoDB). So every change that must happen at most once is an insert:

- `mentorship_versions`: a mentorship is a chain of immutable versions `<id>:<seq>`; a state
  change inserts version seq+1 carrying its events in its outbox (one single-document write).
  Two concurrent changes from the same version race for the same `_id`: exactly one wins.
- `slot_claims`: a mentor's capacity is `capacity` numbered slots; taking a slot inserts
  `<mentor>#<n>` for a free n, so two accepts of the last slot cannot both win. Freeing a slot
  deletes the claim. A claim records when it was taken (`taken_at`) and, for a cohort publish,
  which publication took it; the claims reconciler releases claims no mentorship holds (after a
  grace period) and re-takes missing ones. `mentor_loads` only mirrors the profile's capacity
  (one writer: the consumer).
- `open_requests`: one lock document per (mentee, mentor) while a request is open.
- `publication_claims`: one per published program version (`<program>@<version>`), so two dry runs
  of one version cannot both be published, not even at the same moment. It also carries the
  publish's progress (`state`: claiming -> committed -> published) and a lease (`lease_owner`,
  `lease_until`), so a publish cut short by a crash is resumed, by a retry or the reconciler.
- `publications` (outbox): one per published cohort run, carrying CohortMatchPublished.
- `introductions` + `introduction_answers` (outbox each): made once, answered once.
- `review_flags`: one per feedback event that said "not a good fit".
- `programs` (outbox): inserted with ProgramCreated; settings changes are updates that move the
  program's `version`. The relay's own updates (lease, removal of published events) touch a
  program only right after its creation, before anyone can have computed a dry run of it.
- `enrollments` (outbox): one per enrolment spell `<program>:<role>:<profile>#<n>`, inserted with
  ProgramParticipantEnrolled; enrolling again after a withdrawal inserts spell n+1, so two
  concurrent enrolments race for one `_id` and one wins. (Spells written before enrolment
  events existed have the id `<program>:<role>:<profile>` and count as spell 0.)
- `enrollment_withdrawals` (outbox): one per ended spell (same `_id`), inserted with
  ProgramParticipantWithdrawn: a spell is withdrawn at most once. A person is enrolled while
  their latest spell has no withdrawal.
- `runs`: a cohort run; while `running` it is leased (`lease_owner`, `lease_until`) to the replica
  computing it, which renews the lease; another replica takes over a run whose lease lapsed.
- `exposures` (who was shown which mentor, for rotation).
"""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime
from typing import Any

from pymongo import ASCENDING, DESCENDING, IndexModel, ReturnDocument
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from mentorship_contracts import Envelope
from mentorship_kit.clock import Clock
from mentorship_kit.erasure import scrubbed_pending
from mentorship_kit.mongo import Indexes
from mentorship_kit.outbox import DEAD, LEASE, OUTBOX, OWNER, PENDING, SEQ, new_document, with_replaced_events

from ..domain import HOLDS_SLOT, Mentorship, State
from ..domain.mentorship import PLATFORM_REASONS

VERSIONS = "mentorship_versions"
LOADS = "mentor_loads"
CLAIMS = "slot_claims"
OPEN_REQUESTS = "open_requests"
PROGRAMS = "programs"
PUBLICATIONS = "publications"
ENROLLMENTS = "enrollments"
WITHDRAWALS = "enrollment_withdrawals"
RUNS = "runs"
INTRODUCTIONS = "introductions"
ANSWERS = "introduction_answers"
REVIEW_FLAGS = "review_flags"
EXPOSURES = "exposures"
PUBLICATION_CLAIMS = "publication_claims"
OUTBOX_COLLECTIONS = (VERSIONS, PUBLICATIONS, INTRODUCTIONS, ANSWERS, PROGRAMS, ENROLLMENTS, WITHDRAWALS)
# Collections where one aggregate's events span several documents: (aggregate key, sequence) fields,
# so the relay publishes them in order (the `mentorship_seq` index answers its lookup).
OUTBOX_ORDER = {VERSIONS: ("mentorship_id", "seq")}
_INTERNAL = (OUTBOX, PENDING, SEQ, LEASE, OWNER, DEAD, "_id", "seq")
_NO_OUTBOX = {OUTBOX: 0, PENDING: 0, SEQ: 0, LEASE: 0, OWNER: 0}

INDEXES = (
    Indexes(
        VERSIONS,
        (
            IndexModel([("mentorship_id", ASCENDING), ("seq", DESCENDING)], name="mentorship_seq"),
            IndexModel([("mentee_id", ASCENDING)], name="mentee"),
            IndexModel([("mentor_id", ASCENDING), ("state", ASCENDING)], name="mentor_state"),
            IndexModel([("program_id", ASCENDING)], name="program"),
        ),
    ),
    Indexes(
        CLAIMS,
        (
            IndexModel([("mentor_id", ASCENDING)], name="mentor"),
            IndexModel([("mentorship_id", ASCENDING)], name="mentorship"),
            IndexModel([("publication", ASCENDING)], name="publication"),
        ),
    ),
    Indexes(
        ENROLLMENTS,
        (
            IndexModel([("program_id", ASCENDING), ("role", ASCENDING)], name="program_role"),
            IndexModel([("profile_id", ASCENDING)], name="profile"),
        ),
    ),
    Indexes(WITHDRAWALS, (IndexModel([("program_id", ASCENDING), ("role", ASCENDING)], name="program_role"),)),
    Indexes(PROGRAMS, (IndexModel([("created_at", DESCENDING)], name="created"),)),
    Indexes(
        RUNS,
        (
            IndexModel([("program_id", ASCENDING), ("created_at", DESCENDING)], name="program_created"),
            IndexModel([("status", ASCENDING)], name="status"),
        ),
    ),
    Indexes(
        INTRODUCTIONS,
        (
            IndexModel([("mentee_id", ASCENDING)], name="mentee"),
            IndexModel([("contact_id", ASCENDING)], name="contact"),
            IndexModel([("introduced_by", ASCENDING)], name="introduced_by"),
        ),
    ),
    Indexes(REVIEW_FLAGS, (IndexModel([("mentorship_id", ASCENDING)], name="mentorship"),)),
    Indexes(
        EXPOSURES,
        (
            IndexModel([("mentor_ids", ASCENDING), ("until", ASCENDING)], name="mentor_until"),
            IndexModel([("mentee_id", ASCENDING)], name="mentee"),
        ),
    ),
)

Events = Sequence[Envelope[Any]]


def version_id(mentorship_id: str, seq: int) -> str:
    return f"{mentorship_id}:{seq:06d}"


def state_of(version: dict[str, Any]) -> dict[str, Any]:
    """The mentorship as callers see it (no version or outbox bookkeeping)."""
    return {k: v for k, v in version.items() if k not in _INTERNAL}


def _opened_at(version: dict[str, Any]) -> datetime:
    """When a mentorship began: its request, or its start for one that began active (a cohort's)."""
    opened: datetime = version.get("requested_at") or version["started_at"]
    return opened


def mentorship_of(version: dict[str, Any]) -> Mentorship:
    """The aggregate of a stored version (its `seq` is the aggregate's version)."""
    return Mentorship.model_validate({**state_of(version), "version": version["seq"]})


def _naive(moment: datetime | None) -> datetime:
    """UTC without tzinfo (the store may hand datetimes back naive); None as the distant past."""
    if moment is None:
        return datetime.min
    return moment.astimezone(UTC).replace(tzinfo=None) if moment.tzinfo else moment


def _scrub_update(doc: dict[str, Any], fields: dict[str, Any]) -> dict[str, Any]:
    """The update that erases free text from a document: `fields` overwritten, unpublished events
    without personal data, entries set aside for good dropped. Empty when nothing is left to do."""
    update: dict[str, Any] = {"$set": fields} if fields else {}
    if doc.get(DEAD):
        update["$unset"] = {DEAD: ""}
    pending = scrubbed_pending(doc, PLATFORM_REASONS)
    return with_replaced_events(update, pending) if pending is not None else update


class Store:
    def __init__(self, db: AsyncDatabase[dict[str, Any]], clock: Clock | None = None) -> None:
        self.db = db
        self.clock = clock or Clock()  # real time (a claim's `taken_at`), not the dev-controllable clock
        self.publication_claims = db[PUBLICATION_CLAIMS]
        self.versions = db[VERSIONS]
        self.loads = db[LOADS]
        self.claims = db[CLAIMS]
        self.locks = db[OPEN_REQUESTS]
        self.programs = db[PROGRAMS]
        self.publications = db[PUBLICATIONS]
        self.enrollments = db[ENROLLMENTS]
        self.withdrawals = db[WITHDRAWALS]
        self.runs = db[RUNS]
        self.introductions = db[INTRODUCTIONS]
        self.answers = db[ANSWERS]
        self.flags = db[REVIEW_FLAGS]
        self.exposures = db[EXPOSURES]

    # --- mentorships: chains of immutable versions ------------------------------------------
    async def save(self, mentorship: Mentorship, events: Events) -> bool:
        """Store this version of the mentorship with its events (one single-document insert).
        False when that version exists already: someone else changed the mentorship first."""
        seq = mentorship.version
        doc = {**mentorship.as_dict(), "_id": version_id(mentorship.mentorship_id, seq), "seq": seq}
        try:
            await self.versions.insert_one(new_document(doc, events))
            return True
        except DuplicateKeyError:
            return False

    async def mentorship(self, mentorship_id: str) -> Mentorship | None:
        doc = await self.current(mentorship_id)
        return mentorship_of(doc) if doc else None

    async def current(self, mentorship_id: str) -> dict[str, Any] | None:
        """The latest version as stored (with its `seq`)."""
        cursor = self.versions.find({"mentorship_id": mentorship_id}, {OUTBOX: 0}).sort("seq", -1).limit(1)
        found = await cursor.to_list(1)
        return found[0] if found else None

    async def get_mentorship(self, mentorship_id: str) -> dict[str, Any] | None:
        doc = await self.current(mentorship_id)
        return state_of(doc) if doc else None

    async def _latest_of(self, query: dict[str, Any]) -> list[dict[str, Any]]:
        """Current versions of the mentorships that have a version matching `query`."""
        ids = {d["mentorship_id"] async for d in self.versions.find(query, {"mentorship_id": 1})}
        latest: dict[str, dict[str, Any]] = {}
        for start in range(0, len(ids), 500):
            chunk = sorted(ids)[start : start + 500]
            async for d in self.versions.find({"mentorship_id": {"$in": chunk}}, {OUTBOX: 0}):
                best = latest.get(d["mentorship_id"])
                if best is None or d["seq"] > best["seq"]:
                    latest[d["mentorship_id"]] = d
        return list(latest.values())

    async def open_requests_of_mentor(self, mentor_id: str) -> list[Mentorship]:
        found = await self._latest_of({"mentor_id": mentor_id, "state": State.REQUESTED.value})
        return [mentorship_of(d) for d in found if d["state"] == State.REQUESTED]

    async def mentorships_of(self, profile_id: str) -> list[Mentorship]:
        found = await self._latest_of({"$or": [{"mentee_id": profile_id}, {"mentor_id": profile_id}]})
        found.sort(key=_opened_at, reverse=True)
        return [mentorship_of(d) for d in found[:500]]

    async def program_mentorships(self, program_id: str) -> list[Mentorship]:
        return [mentorship_of(d) for d in await self._latest_of({"program_id": program_id})]

    async def excluded_mentors(self, mentee_ids: Sequence[str], *, forbid_repeats: bool) -> dict[str, set[str]]:
        """Per mentee, mentors they may not be offered: not a good fit, a previous or current
        partner (when repeats are forbidden; else only a current one), or an open request."""
        out: dict[str, set[str]] = {}
        paired = [s.value for s in (State.AWAITING_APPROVAL, State.ACTIVE, State.COMPLETED, State.ENDED)]
        for start in range(0, len(mentee_ids), 1000):
            chunk = list(mentee_ids[start : start + 1000])
            query = {"mentee_id": {"$in": chunk}, "$or": [{"state": {"$in": paired}}, {"not_a_good_fit": True}]}
            # the two reads are independent: concurrently (a round trip each)
            if forbid_repeats:
                paired_docs = self.versions.find(query, {"mentee_id": 1, "mentor_id": 1}).to_list()
            else:
                paired_docs = self._latest_of(query)
            found, locks = await asyncio.gather(
                paired_docs, self.locks.find({"mentee_id": {"$in": chunk}}, {"mentee_id": 1, "mentor_id": 1}).to_list()
            )
            for d in found:
                if forbid_repeats or d.get("not_a_good_fit") or d["state"] in (State.AWAITING_APPROVAL, State.ACTIVE):
                    out.setdefault(d["mentee_id"], set()).add(d["mentor_id"])
            for lock in locks:
                out.setdefault(lock["mentee_id"], set()).add(lock["mentor_id"])
        return out

    async def rewrite_versions(self, mentorship_id: str, rewrite: Callable[[Mentorship], Mentorship]) -> int:
        """Rewrite every stored version of a mentorship (erasure: its free text goes); returns how
        many changed. Unpublished events of a version lose their personal fields before they leave,
        and outbox entries set aside for good go (never published, and they may carry the text). A
        version whose rewrite changes nothing is not written (idempotent)."""
        changed = 0
        async for doc in self.versions.find({"mentorship_id": mentorship_id}):
            before = mentorship_of(doc)
            old, new = before.as_dict(), rewrite(before).as_dict()
            fields = {k: v for k, v in new.items() if old.get(k) != v}
            update = _scrub_update(doc, fields)
            if update:
                await self.versions.update_one({"_id": doc["_id"]}, update)
                changed += 1
        return changed

    async def flag_for_review(self, mentorship_id: str, flag: dict[str, Any]) -> bool:
        try:
            await self.flags.insert_one({"_id": flag["event_id"], "mentorship_id": mentorship_id, **flag})
            return True
        except DuplicateKeyError:
            return False

    async def flagged(self) -> list[dict[str, Any]]:
        by_mentorship: dict[str, list[dict[str, Any]]] = {}
        async for f in self.flags.find({}).limit(2000):
            by_mentorship.setdefault(f["mentorship_id"], []).append(
                {k: v for k, v in f.items() if k not in ("_id", "mentorship_id")}
            )
        out = []
        for mid, flags in by_mentorship.items():
            doc = await self.get_mentorship(mid)
            if doc is not None:
                out.append({**doc, "review_flags": flags})
        return out

    async def review_flags(self, mentorship_id: str) -> list[dict[str, Any]]:
        return [
            {k: v for k, v in f.items() if k not in ("_id", "mentorship_id")}
            async for f in self.flags.find({"mentorship_id": mentorship_id})
        ]

    # --- open-request locks ------------------------------------------------------------------
    async def lock_pair(self, mentee_id: str, mentor_id: str, mentorship_id: str) -> str | None:
        """Take the (mentee, mentor) open-request lock; returns the holder's id when taken."""
        key = f"{mentee_id}:{mentor_id}"
        for _ in range(3):
            try:
                await self.locks.insert_one(
                    {"_id": key, "mentorship_id": mentorship_id, "mentee_id": mentee_id, "mentor_id": mentor_id}
                )
                return None
            except DuplicateKeyError:
                held = await self.locks.find_one({"_id": key})
                holder = held["mentorship_id"] if held else None
                current = await self.get_mentorship(holder) if holder else None
                if current is not None and current["state"] == State.REQUESTED:
                    return holder
                # A stale lock (a crash between the lock and the request, or a missed unlock).
                await self.locks.delete_one({"_id": key, "mentorship_id": holder})
        return mentorship_id

    async def unlock_pair(self, mentee_id: str, mentor_id: str, mentorship_id: str) -> None:
        await self.locks.delete_one({"_id": f"{mentee_id}:{mentor_id}", "mentorship_id": mentorship_id})

    # --- mentor capacity -----------------------------------------------------------------------
    async def set_capacity(self, mentor_id: str, capacity: int) -> None:
        """Mirror the profile's capacity (only the profile consumer writes this document)."""
        await self.loads.update_one({"_id": mentor_id}, {"$set": {"capacity": capacity}}, upsert=True)

    async def load(self, mentor_id: str) -> dict[str, Any] | None:
        """Capacity, slots held (with their mentorships) and free slots of a mentor."""
        doc = await self.loads.find_one({"_id": mentor_id})
        if doc is None:
            return None
        holders = [c["mentorship_id"] async for c in self.claims.find({"mentor_id": mentor_id})]
        return {
            "mentor_id": mentor_id,
            "capacity": doc["capacity"],
            "holders": sorted(holders),
            "free": doc["capacity"] - len(holders),
        }

    async def take_slot(
        self, mentor_id: str, mentorship_id: str, *, publication: str | None = None
    ) -> dict[str, Any] | None:
        """Take a free slot for this mentorship: insert a claim on a free slot number (atomic).
        Returns the claim with the mentor's free slots after it, or None when full."""
        doc = await self.loads.find_one({"_id": mentor_id})
        capacity = int(doc["capacity"]) if doc else 0
        held = {c["_id"] async for c in self.claims.find({"mentor_id": mentor_id}, {"_id": 1})}
        if len(held) >= capacity:
            return None
        for n in range(capacity):
            claim_id = f"{mentor_id}#{n}"
            if claim_id in held:
                continue
            try:
                claim: dict[str, Any] = {"_id": claim_id, "mentor_id": mentor_id, "mentorship_id": mentorship_id}
                claim["taken_at"] = self.clock.now()
                if publication is not None:
                    claim["publication"] = publication
                await self.claims.insert_one(claim)
            except DuplicateKeyError:
                continue
            count = await self.claims.count_documents({"mentor_id": mentor_id})
            return {"claim_id": claim_id, "free": capacity - count}
        return None

    async def release_claim(self, claim_id: str) -> None:
        await self.claims.delete_one({"_id": claim_id})

    async def slot_of(self, mentor_id: str, mentorship_id: str) -> dict[str, Any] | None:
        """The claim this mentorship holds on the mentor's capacity, if any."""
        return await self.claims.find_one({"mentor_id": mentor_id, "mentorship_id": mentorship_id})

    async def release_claim_of(self, claim_id: str, mentorship_id: str) -> bool:
        """Release a claim only while this mentorship still holds it (the slot number may have been
        freed and taken by another mentorship since it was read)."""
        res = await self.claims.delete_one({"_id": claim_id, "mentorship_id": mentorship_id})
        return res.deleted_count == 1

    async def release_publication_slots(self, publication: str) -> int:
        """A cohort publish rolled back: every slot it took goes."""
        return (await self.claims.delete_many({"publication": publication})).deleted_count

    async def all_claims(self) -> list[dict[str, Any]]:
        return await self.claims.find({}).to_list()

    async def slot_holders(self) -> dict[str, str]:
        """Mentorships whose current state holds a capacity slot: mentorship id -> mentor id."""
        found = await self._latest_of({"state": {"$in": [s.value for s in HOLDS_SLOT]}})
        return {d["mentorship_id"]: d["mentor_id"] for d in found if d["state"] in HOLDS_SLOT}

    async def release_slot(self, mentor_id: str, mentorship_id: str) -> None:
        await self.claims.delete_many({"mentor_id": mentor_id, "mentorship_id": mentorship_id})

    async def slots_held(self, mentor_ids: Sequence[str]) -> dict[str, int]:
        out: dict[str, int] = {}
        async for c in self.claims.find({"mentor_id": {"$in": list(mentor_ids)}}, {"mentor_id": 1}):
            out[c["mentor_id"]] = out.get(c["mentor_id"], 0) + 1
        return out

    async def free_slots(self, mentor_ids: Sequence[str]) -> dict[str, int]:
        out: dict[str, int] = {}
        for start in range(0, len(mentor_ids), 1000):
            chunk = list(mentor_ids[start : start + 1000])
            async for d in self.loads.find({"_id": {"$in": chunk}}, {"capacity": 1}):
                out[d["_id"]] = int(d["capacity"])
            async for c in self.claims.find({"mentor_id": {"$in": chunk}}, {"mentor_id": 1}):
                if c["mentor_id"] in out:
                    out[c["mentor_id"]] -= 1
        return out

    async def forget_mentor(self, mentor_id: str) -> None:
        """An erased mentor: no capacity document, no slot claims left."""
        await self.claims.delete_many({"mentor_id": mentor_id})
        await self.loads.delete_one({"_id": mentor_id})

    # --- rotation of suggestions ---------------------------------------------------------------
    async def exposures_by_others(self, mentor_ids: Sequence[str], mentee_id: str, now: datetime) -> dict[str, int]:
        """Per mentor, how many OTHER mentees are being shown them right now."""
        seen: dict[str, set[str]] = {}
        wanted = set(mentor_ids)
        async for d in self.exposures.find(
            {"mentor_ids": {"$in": list(mentor_ids)}, "until": {"$gt": now}, "mentee_id": {"$ne": mentee_id}},
            {"mentor_ids": 1, "mentee_id": 1},
        ):
            for m in d["mentor_ids"]:
                if m in wanted:
                    seen.setdefault(m, set()).add(d["mentee_id"])
        return {m: len(v) for m, v in seen.items()}

    async def expose(self, mentee_id: str, mentor_ids: Sequence[str], until: datetime) -> None:
        """One insert per suggestion call (cheap everywhere); expired ones are purged."""
        if mentor_ids:
            await self.exposures.insert_one(
                {"_id": str(uuid.uuid4()), "mentee_id": mentee_id, "mentor_ids": list(mentor_ids), "until": until}
            )

    async def forget_exposures(self, mentee_id: str) -> None:
        await self.exposures.delete_many({"mentee_id": mentee_id})

    async def forget_exposures_of(self, profile_id: str) -> None:
        """Every exposure the person was shown in or was shown as a mentor (rotation forgets them)."""
        await self.exposures.delete_many({"$or": [{"mentee_id": profile_id}, {"mentor_ids": profile_id}]})

    async def purge_exposures(self, now: datetime) -> int:
        return (await self.exposures.delete_many({"until": {"$lte": now}})).deleted_count

    # --- programs, enrollments, runs ---------------------------------------------------------
    async def insert_program(self, doc: dict[str, Any], events: Events) -> None:
        await self.programs.insert_one(new_document(doc, events))

    async def get_program(self, program_id: str) -> dict[str, Any] | None:
        return await self.programs.find_one({"_id": program_id}, _NO_OUTBOX)

    async def list_programs(
        self,
        *,
        name_contains: str | None,
        mode: str | None,
        starts_after: date | None,
        starts_before: date | None,
        ends_after: date | None,
        ends_before: date | None,
        offset: int,
        limit: int,
    ) -> tuple[list[dict[str, Any]], int]:
        """A page of programs, newest first, and how many match. Dates are stored as ISO strings,
        so comparing them as strings compares the dates."""
        query: dict[str, Any] = {}
        if name_contains:
            query["name"] = {"$regex": re.escape(name_contains), "$options": "i"}
        if mode:
            query["mode"] = mode
        starts = {op: d.isoformat() for op, d in (("$gt", starts_after), ("$lte", starts_before)) if d}
        ends = {op: d.isoformat() for op, d in (("$gte", ends_after), ("$lt", ends_before)) if d}
        if starts:
            query["starts_on"] = starts
        if ends:
            query["ends_on"] = ends
        total = await self.programs.count_documents(query)
        cursor = self.programs.find(query, _NO_OUTBOX).sort([("created_at", DESCENDING), ("_id", ASCENDING)])
        return await cursor.skip(offset).limit(limit).to_list(), total

    async def update_program(self, program_id: str, changes: dict[str, Any]) -> dict[str, Any] | None:
        """Change settings and move the version (any move makes older dry runs stale)."""
        update: dict[str, Any] = {"$inc": {"version": 1}}
        if changes:
            update["$set"] = changes
        # no projection: FerretDB's findAndModify has none (the presenter hides the outbox)
        return await self.programs.find_one_and_update(
            {"_id": program_id}, update, return_document=ReturnDocument.AFTER
        )

    async def latest_enrolment(self, program_id: str, role: str, profile_id: str) -> dict[str, Any] | None:
        """The person's latest enrolment spell in this role (`spell`, and `withdrawn_at` if it ended)."""
        found = await self.enrollments.find(
            {"program_id": program_id, "role": role, "profile_id": profile_id}, _NO_OUTBOX
        ).to_list()
        if not found:
            return None
        latest = max(found, key=lambda d: d.get("spell", 0))
        withdrawal = await self.withdrawals.find_one({"_id": latest["_id"]}, {"withdrawn_at": 1})
        return {
            **latest,
            "spell": latest.get("spell", 0),
            "withdrawn_at": withdrawal["withdrawn_at"] if withdrawal else None,
        }

    async def insert_enrolment(self, doc: dict[str, Any], events: Events) -> bool:
        """False when this spell exists already (a concurrent enrolment won)."""
        try:
            await self.enrollments.insert_one(new_document(doc, events))
            return True
        except DuplicateKeyError:
            return False

    async def insert_withdrawal(self, doc: dict[str, Any], events: Events) -> bool:
        """False when this spell was withdrawn already."""
        try:
            await self.withdrawals.insert_one(new_document(doc, events))
            return True
        except DuplicateKeyError:
            return False

    async def enrolled(self, program_id: str, role: str) -> list[str]:
        query = {"program_id": program_id, "role": role}
        ended = {d["_id"] async for d in self.withdrawals.find(query, {"_id": 1})}
        latest: dict[str, dict[str, Any]] = {}
        async for d in self.enrollments.find(query, {"profile_id": 1, "spell": 1}):
            best = latest.get(d["profile_id"])
            if best is None or d.get("spell", 0) > best.get("spell", 0):
                latest[d["profile_id"]] = d
        return [pid for pid, d in latest.items() if d["_id"] not in ended]

    async def enrolments_of(self, profile_id: str) -> list[dict[str, Any]]:
        """The person's latest spell per (program, role), each with `withdrawn_at` (None while enrolled)."""
        latest: dict[tuple[str, str], dict[str, Any]] = {}
        async for d in self.enrollments.find({"profile_id": profile_id}, _NO_OUTBOX):
            key = (d["program_id"], d["role"])
            if key not in latest or d.get("spell", 0) > latest[key].get("spell", 0):
                latest[key] = d
        out = []
        for d in latest.values():
            withdrawal = await self.withdrawals.find_one({"_id": d["_id"]}, {"withdrawn_at": 1})
            out.append(
                {**d, "spell": d.get("spell", 0), "withdrawn_at": withdrawal["withdrawn_at"] if withdrawal else None}
            )
        return out

    async def runs_of(self, program_id: str, *, offset: int, limit: int) -> tuple[list[dict[str, Any]], int]:
        """A page of the program's cohort runs, newest first, without the proposal's pair lists."""
        query = {"program_id": program_id}
        total = await self.runs.count_documents(query)
        cursor = self.runs.find(query, {"assignments": 0, "unmatched": 0, "pins": 0, "forbids": 0, "bad_pairs": 0})
        newest_first = [("created_at", DESCENDING), ("_id", ASCENDING)]
        return await cursor.sort(newest_first).skip(offset).limit(limit).to_list(), total

    async def insert_run(self, doc: dict[str, Any]) -> None:
        await self.runs.insert_one(doc)

    async def get_run(self, run_id: str) -> dict[str, Any] | None:
        return await self.runs.find_one({"_id": run_id})

    async def update_run(self, run_id: str, changes: dict[str, Any]) -> None:
        await self.runs.update_one({"_id": run_id}, {"$set": changes})

    async def renew_run(self, run_id: str, owner: str, until: datetime, changes: dict[str, Any]) -> bool:
        """Extend the lease of a running run (with progress); False when this replica lost it
        (taken over, or failed meanwhile)."""
        res = await self.runs.update_one(
            {"_id": run_id, "status": "running", "lease_owner": owner}, {"$set": {**changes, "lease_until": until}}
        )
        return res.matched_count == 1

    async def finish_run(self, run_id: str, owner: str, changes: dict[str, Any]) -> bool:
        """Write a run's outcome, only if this replica still holds its lease."""
        res = await self.runs.update_one(
            {"_id": run_id, "status": "running", "lease_owner": owner}, {"$set": changes, "$unset": {"lease_until": ""}}
        )
        return res.matched_count == 1

    async def take_over_run(self, now: datetime, owner: str, until: datetime) -> dict[str, Any] | None:
        """Lease one running run whose lease lapsed (its replica stopped) to this replica, counting
        the attempt; None when there is none. Atomic: two replicas never take over the same run."""
        return await self.runs.find_one_and_update(
            {"status": "running", "$or": [{"lease_until": {"$lt": now}}, {"lease_until": {"$exists": False}}]},
            {"$set": {"lease_owner": owner, "lease_until": until, "taken_over_at": now}, "$inc": {"attempts": 1}},
            return_document=ReturnDocument.AFTER,
        )

    async def release_runs(self, owner: str, now: datetime) -> int:
        """Shutdown: this replica's running runs are for another replica to take over at once."""
        res = await self.runs.update_many({"status": "running", "lease_owner": owner}, {"$set": {"lease_until": now}})
        return res.modified_count

    async def runs_awaiting_auto_publish(self, finished_before: datetime) -> list[dict[str, Any]]:
        """Finished runs of automatic programs whose publish never happened (the replica stopped)."""
        query = {"status": "done", "auto_publish": True, "auto_publish_error": {"$exists": False}}
        return [r async for r in self.runs.find(query) if _naive(r.get("finished_at")) < _naive(finished_before)]

    async def claim_publication(self, key: str, doc: dict[str, Any]) -> bool:
        """The one right to publish (atomic insert of a unique id, e.g. one per program version);
        the events follow in `record_publication`."""
        try:
            await self.publication_claims.insert_one({"_id": key, **doc})
            return True
        except DuplicateKeyError:
            return False

    async def publication_claim(self, key: str) -> dict[str, Any] | None:
        return await self.publication_claims.find_one({"_id": key})

    async def lease_publication(self, key: str, run_id: str, owner: str, now: datetime, until: datetime) -> bool:
        """Take (or renew) the lease on this run's publication claim: only when its lease lapsed or
        is this replica's own, so one replica at a time carries a publish forward."""
        taken = await self.publication_claims.find_one_and_update(
            {
                "_id": key,
                "run_id": run_id,
                "$or": [
                    {"lease_owner": owner},
                    {"lease_until": {"$lt": now}},
                    {"lease_until": {"$exists": False}},
                ],
            },
            {"$set": {"lease_owner": owner, "lease_until": until}},
            return_document=ReturnDocument.AFTER,
        )
        return taken is not None

    async def set_publication_state(self, key: str, owner: str, state: str) -> bool:
        res = await self.publication_claims.update_one({"_id": key, "lease_owner": owner}, {"$set": {"state": state}})
        return res.matched_count == 1

    async def unfinished_publications(self, now: datetime) -> list[dict[str, Any]]:
        """Publication claims whose publish has not finished and whose publisher's lease lapsed."""
        return [
            c
            async for c in self.publication_claims.find({"state": {"$ne": "published"}})
            if c.get("lease_until") is None or _naive(c["lease_until"]) < _naive(now)
        ]

    async def drop_publication_claim(self, key: str) -> None:
        await self.publication_claims.delete_one({"_id": key})

    async def record_publication(self, run_id: str, doc: dict[str, Any], events: Events) -> None:
        try:
            await self.publications.insert_one(new_document({"_id": run_id, **doc}, events))
        except DuplicateKeyError:
            pass

    async def publication(self, run_id: str) -> dict[str, Any] | None:
        return await self.publications.find_one({"_id": run_id}, {OUTBOX: 0})

    # --- introductions ---------------------------------------------------------------------
    async def insert_introduction(self, doc: dict[str, Any], events: Events) -> None:
        await self.introductions.insert_one(new_document(doc, events))

    async def get_introduction(self, introduction_id: str) -> dict[str, Any] | None:
        intro = await self.introductions.find_one({"_id": introduction_id}, _NO_OUTBOX)
        if intro is None:
            return None
        answer = await self.answers.find_one({"_id": introduction_id}, {OUTBOX: 0, PENDING: 0})
        if answer:
            intro.update(state=answer["state"], answered_at=answer["answered_at"])
        return intro

    async def introductions_of(
        self, profile_id: str, *, as_: str | None, state: str | None, offset: int, limit: int
    ) -> tuple[list[dict[str, Any]], int]:
        """A page of the introductions a person made (`introduced_by`), received (`contact`) or was
        introduced in (`mentee`), newest first, with their answers; and how many match."""
        fields = {
            "introduced_by": ["introduced_by"],
            "contact": ["contact_id"],
            "mentee": ["mentee_id"],
            None: ["introduced_by", "contact_id", "mentee_id"],
        }[as_]
        query: dict[str, Any] = {"$or": [{f: profile_id} for f in fields]}
        found = await self.introductions.find(query, _NO_OUTBOX).to_list()
        answers: dict[str, dict[str, Any]] = {}
        ids = [d["_id"] for d in found]
        for start in range(0, len(ids), 1000):
            chunk = ids[start : start + 1000]
            async for a in self.answers.find({"_id": {"$in": chunk}}, {"state": 1, "answered_at": 1}):
                answers[a["_id"]] = a
        for d in found:
            if (answer := answers.get(d["_id"])) is not None:
                d.update(state=answer["state"], answered_at=answer["answered_at"])
        if state:
            found = [d for d in found if d["state"] == state]
        found.sort(key=lambda d: (d["made_at"], d["_id"]), reverse=True)
        return found[offset : offset + limit], len(found)

    async def scrub_introduction(self, introduction_id: str) -> bool:
        """Erasure: the introduction's message goes, from the document and its unpublished event."""
        doc = await self.introductions.find_one({"_id": introduction_id})
        if doc is None:
            return False
        update = _scrub_update(doc, {"message": ""} if doc.get("message") else {})
        if update:
            await self.introductions.update_one({"_id": introduction_id}, update)
        return bool(update)

    async def answer_introduction(self, introduction_id: str, state: str, at: datetime, events: Events) -> bool:
        try:
            await self.answers.insert_one(
                new_document({"_id": introduction_id, "state": state, "answered_at": at}, events)
            )
            return True
        except DuplicateKeyError:
            return False

    async def insert_started(self, started: Sequence[tuple[Mentorship, Events]]) -> None:
        """Insert cohort mentorships; ones already there (a retried publish) are kept as they are."""
        for mentorship, events in started:
            await self.save(mentorship, events)
