"""In-memory fakes of matching's ports (see `matching_service.application.ports`), for the fast
layer: the use cases run against them without Kafka or the store."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from matching_service.application import ErasureUseCases, LifecycleUseCases, ReviewUseCases
from matching_service.domain import Mentorship, State
from matching_service.settings import Settings
from mentorship_contracts import Envelope
from mentorship_kit.clock import Clock
from mentorship_kit.usecase import EventFactory, UseCaseContext

START = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


class FixedClock(Clock):
    def __init__(self, at: datetime = START) -> None:
        super().__init__()
        self.at = at

    def now(self) -> datetime:
        return self.at

    def advance(self, delta: timedelta) -> datetime:
        self.at += delta
        return self.at


class FakeTimers:
    def __init__(self) -> None:
        self.planned: dict[str, dict[str, Any]] = {}
        self.cancelled: list[str] = []

    async def schedule(
        self, timer_id: str, kind: str, due: datetime, payload: dict[str, Any], *, group: str | None = None
    ) -> None:
        self.planned[timer_id] = {"_id": timer_id, "kind": kind, "due": due, "payload": payload, "group": group}

    async def cancel(self, timer_id: str) -> bool:
        self.cancelled.append(timer_id)
        return self.planned.pop(timer_id, None) is not None


class FakeProfiles:
    """The profile read model: plain profile snapshots by id (and what the consumers write)."""

    def __init__(self) -> None:
        self.by_id: dict[str, dict[str, Any]] = {}
        self.bumps = 0
        self.erased: set[str] = set()

    def add(self, profile_id: str, roles: list[str], **fields: Any) -> str:
        self.by_id[profile_id] = {
            "profile_id": profile_id,
            "roles": roles,
            "active": True,
            "time_zone": "UTC",
            "languages": ["en"],
            "skills": [],
            "development_areas": [],
            "seniority": "mid",
            **fields,
        }
        return profile_id

    async def profile(self, profile_id: str) -> dict[str, Any] | None:
        return self.by_id.get(profile_id)

    async def many(self, profile_ids: Iterable[str]) -> list[dict[str, Any]]:
        return [self.by_id[i] for i in profile_ids if i in self.by_id]

    async def all_live(self) -> list[dict[str, Any]]:
        return list(self.by_id.values())

    async def version(self) -> int:
        return self.bumps

    # what the consumers call (the Mongo read model's writing side)
    async def upsert(self, profile: Any, event_time: datetime) -> bool:
        if profile.profile_id in self.erased:  # the tombstone keeps an erased person forgotten
            return False
        if self.by_id.get(profile.profile_id) == profile.model_dump(mode="json"):
            return False  # the same snapshot again (a redelivery) changes nothing, as in the store
        self.by_id[profile.profile_id] = profile.model_dump(mode="json")
        self.bumps += 1
        return True

    async def patch(self, profile_id: str, changes: dict[str, Any], event_time: datetime) -> dict[str, Any] | None:
        if profile_id not in self.by_id:
            return None
        self.by_id[profile_id].update(changes)
        return {"profile": self.by_id[profile_id]}

    async def erase(self, profile_id: str, event_time: datetime) -> None:
        self.by_id.pop(profile_id, None)
        self.erased.add(profile_id)

    async def is_erased(self, profile_id: str) -> bool:
        return profile_id in self.erased


@dataclass
class FakeStore:
    """Mentorship versions, pair locks, review flags, slot claims, exposures and programs."""

    versions: dict[tuple[str, int], tuple[Mentorship, list[Envelope[Any]]]] = field(default_factory=dict)
    locks: dict[tuple[str, str], str] = field(default_factory=dict)
    flags: list[dict[str, Any]] = field(default_factory=list)
    capacity: dict[str, int] = field(default_factory=dict)
    claims: dict[str, str] = field(default_factory=dict)  # claim id -> mentorship id
    programs: dict[str, dict[str, Any]] = field(default_factory=dict)
    forgotten: list[str] = field(default_factory=list)
    exposures: dict[str, list[str]] = field(default_factory=dict)  # mentee id -> mentors shown

    # --- mentorships
    async def save(self, mentorship: Mentorship, events: Sequence[Envelope[Any]]) -> bool:
        key = (mentorship.mentorship_id, mentorship.version)
        if key in self.versions:
            return False
        self.versions[key] = (mentorship, list(events))
        return True

    async def mentorship(self, mentorship_id: str) -> Mentorship | None:
        found = [m for (mid, _), (m, _) in self.versions.items() if mid == mentorship_id]
        return max(found, key=lambda m: m.version) if found else None

    def latest(self) -> list[Mentorship]:
        ids = {mid for mid, _ in self.versions}
        return [m for m in (self._latest(i) for i in ids) if m is not None]

    def _latest(self, mentorship_id: str) -> Mentorship | None:
        found = [m for (mid, _), (m, _) in self.versions.items() if mid == mentorship_id]
        return max(found, key=lambda m: m.version) if found else None

    def events(self) -> list[Envelope[Any]]:
        return [e for _, (_, events) in sorted(self.versions.items()) for e in events]

    async def mentorships_of(self, profile_id: str) -> list[Mentorship]:
        return [m for m in self.latest() if profile_id in (m.mentee_id, m.mentor_id)]

    async def open_requests_of_mentor(self, mentor_id: str) -> list[Mentorship]:
        return [m for m in self.latest() if m.mentor_id == mentor_id and m.state == State.REQUESTED]

    async def program_mentorships(self, program_id: str) -> list[Mentorship]:
        return [m for m in self.latest() if m.program_id == program_id]

    async def excluded_mentors(self, mentee_ids: Sequence[str], *, forbid_repeats: bool) -> dict[str, set[str]]:
        out: dict[str, set[str]] = {}
        for m in self.latest():
            if m.mentee_id in mentee_ids and (
                m.not_a_good_fit
                or m.state in (State.AWAITING_APPROVAL, State.ACTIVE)
                or (forbid_repeats and m.state in (State.COMPLETED, State.ENDED))
            ):
                out.setdefault(m.mentee_id, set()).add(m.mentor_id)
        for mentee, mentor in self.locks:
            if mentee in mentee_ids:
                out.setdefault(mentee, set()).add(mentor)
        return out

    async def lock_pair(self, mentee_id: str, mentor_id: str, mentorship_id: str) -> str | None:
        holder = self.locks.get((mentee_id, mentor_id))
        if holder is not None:
            return holder
        self.locks[(mentee_id, mentor_id)] = mentorship_id
        return None

    async def unlock_pair(self, mentee_id: str, mentor_id: str, mentorship_id: str) -> None:
        if self.locks.get((mentee_id, mentor_id)) == mentorship_id:
            del self.locks[(mentee_id, mentor_id)]

    async def flag_for_review(self, mentorship_id: str, flag: dict[str, Any]) -> bool:
        if any(f["event_id"] == flag["event_id"] for f in self.flags):
            return False
        self.flags.append({"mentorship_id": mentorship_id, **flag})
        return True

    async def review_flags(self, mentorship_id: str) -> list[dict[str, Any]]:
        return [
            {k: v for k, v in f.items() if k != "mentorship_id"}
            for f in self.flags
            if f["mentorship_id"] == mentorship_id
        ]

    async def flagged(self) -> list[dict[str, Any]]:
        ids = sorted({f["mentorship_id"] for f in self.flags})
        return [{"mentorship_id": i, "review_flags": await self.review_flags(i)} for i in ids]

    async def insert_started(self, started: Sequence[tuple[Mentorship, Sequence[Envelope[Any]]]]) -> None:
        for m, events in started:
            await self.save(m, events)

    async def rewrite_versions(self, mentorship_id: str, rewrite: Callable[[Mentorship], Mentorship]) -> int:
        changed = 0
        for key, (m, events) in list(self.versions.items()):
            if key[0] == mentorship_id and (new := rewrite(m)) != m:
                self.versions[key] = (new, events)
                changed += 1
        return changed

    # --- capacity
    async def set_capacity(self, mentor_id: str, capacity: int) -> None:
        self.capacity[mentor_id] = capacity

    def holders(self, mentor_id: str) -> list[str]:
        return sorted(mid for cid, mid in self.claims.items() if cid.startswith(f"{mentor_id}#"))

    async def load(self, mentor_id: str) -> dict[str, Any] | None:
        if mentor_id not in self.capacity:
            return None
        holders = self.holders(mentor_id)
        return {
            "mentor_id": mentor_id,
            "capacity": self.capacity[mentor_id],
            "holders": holders,
            "free": self.capacity[mentor_id] - len(holders),
        }

    async def take_slot(
        self, mentor_id: str, mentorship_id: str, *, publication: str | None = None
    ) -> dict[str, Any] | None:
        capacity = self.capacity.get(mentor_id, 0)
        for n in range(capacity):
            claim_id = f"{mentor_id}#{n}"
            if claim_id not in self.claims:
                self.claims[claim_id] = mentorship_id
                return {"claim_id": claim_id, "free": capacity - len(self.holders(mentor_id))}
        return None

    async def release_claim(self, claim_id: str) -> None:
        self.claims.pop(claim_id, None)

    async def release_slot(self, mentor_id: str, mentorship_id: str) -> None:
        for cid in [c for c, m in self.claims.items() if m == mentorship_id and c.startswith(f"{mentor_id}#")]:
            del self.claims[cid]

    async def slots_held(self, mentor_ids: Sequence[str]) -> dict[str, int]:
        return {m: len(self.holders(m)) for m in mentor_ids if self.holders(m)}

    async def free_slots(self, mentor_ids: Sequence[str]) -> dict[str, int]:
        return {m: self.capacity[m] - len(self.holders(m)) for m in mentor_ids if m in self.capacity}

    async def forget_mentor(self, mentor_id: str) -> None:
        self.capacity.pop(mentor_id, None)
        for cid in [c for c in self.claims if c.startswith(f"{mentor_id}#")]:
            del self.claims[cid]

    # --- exposures
    async def exposures_by_others(self, mentor_ids: Sequence[str], mentee_id: str, now: datetime) -> dict[str, int]:
        return {}

    async def expose(self, mentee_id: str, mentor_ids: Sequence[str], until: datetime) -> None:
        self.exposures.setdefault(mentee_id, []).extend(mentor_ids)

    async def forget_exposures(self, mentee_id: str) -> None:
        self.forgotten.append(mentee_id)

    async def forget_exposures_of(self, profile_id: str) -> None:
        self.exposures = {
            mentee: shown
            for mentee, shown in self.exposures.items()
            if mentee != profile_id and profile_id not in shown
        }

    # --- programs
    async def get_program(self, program_id: str) -> dict[str, Any] | None:
        return self.programs.get(program_id)


@dataclass
class World:
    """The lifecycle use cases wired to fakes, and the fakes to look at."""

    clock: FixedClock
    timers: FakeTimers
    profiles: FakeProfiles
    store: FakeStore
    lifecycle: LifecycleUseCases
    reviews: ReviewUseCases
    written: list[int]


def world(**settings: Any) -> World:
    clock, timers, profiles, store = FixedClock(), FakeTimers(), FakeProfiles(), FakeStore()
    written: list[int] = []
    ctx = UseCaseContext(
        clock=clock,
        timers=timers,
        events=EventFactory("matching", clock),  # type: ignore[arg-type]
        events_written=lambda: written.append(1),
    )
    config = Settings(jwt_secret="unit-test-secret-0123456789abcdef", **settings)
    lifecycle = LifecycleUseCases(
        ctx, settings=config, profiles=profiles, mentorships=store, capacity=store, exposures=store, programs=store
    )
    return World(clock, timers, profiles, store, lifecycle, ReviewUseCases(ctx, mentorships=store), written)


@dataclass
class FakeProgramStore:
    """Programs with their enrolment spells and withdrawals, each stored with its events."""

    programs: dict[str, dict[str, Any]] = field(default_factory=dict)
    enrolments: dict[str, dict[str, Any]] = field(default_factory=dict)
    withdrawals: dict[str, dict[str, Any]] = field(default_factory=dict)
    outbox: list[Envelope[Any]] = field(default_factory=list)

    async def get_program(self, program_id: str) -> dict[str, Any] | None:
        return self.programs.get(program_id)

    async def insert_program(self, doc: dict[str, Any], events: Sequence[Envelope[Any]]) -> None:
        self.programs[doc["_id"]] = dict(doc)
        self.outbox.extend(events)

    async def list_programs(
        self,
        *,
        name_contains: str | None,
        mode: str | None,
        starts_after: Any,
        starts_before: Any,
        ends_after: Any,
        ends_before: Any,
        offset: int,
        limit: int,
    ) -> tuple[list[dict[str, Any]], int]:
        def keep(p: dict[str, Any]) -> bool:
            return (
                (not name_contains or name_contains.lower() in p["name"].lower())
                and (not mode or p["mode"] == mode)
                and (not starts_after or p["starts_on"] > starts_after.isoformat())
                and (not starts_before or p["starts_on"] <= starts_before.isoformat())
                and (not ends_after or p["ends_on"] >= ends_after.isoformat())
                and (not ends_before or p["ends_on"] < ends_before.isoformat())
            )

        found = sorted((p for p in self.programs.values() if keep(p)), key=lambda p: p["created_at"], reverse=True)
        return found[offset : offset + limit], len(found)

    async def update_program(self, program_id: str, changes: dict[str, Any]) -> dict[str, Any] | None:
        program = self.programs.get(program_id)
        if program is None:
            return None
        program.update(changes, version=program["version"] + 1)
        return program

    async def latest_enrolment(self, program_id: str, role: str, profile_id: str) -> dict[str, Any] | None:
        spells = [
            e
            for e in self.enrolments.values()
            if (e["program_id"], e["role"], e["profile_id"]) == (program_id, role, profile_id)
        ]
        if not spells:
            return None
        latest = max(spells, key=lambda e: e["spell"])
        withdrawal = self.withdrawals.get(latest["_id"])
        return {**latest, "withdrawn_at": withdrawal["withdrawn_at"] if withdrawal else None}

    async def insert_enrolment(self, doc: dict[str, Any], events: Sequence[Envelope[Any]]) -> bool:
        if doc["_id"] in self.enrolments:
            return False
        self.enrolments[doc["_id"]] = dict(doc)
        self.outbox.extend(events)
        return True

    async def insert_withdrawal(self, doc: dict[str, Any], events: Sequence[Envelope[Any]]) -> bool:
        if doc["_id"] in self.withdrawals:
            return False
        self.withdrawals[doc["_id"]] = dict(doc)
        self.outbox.extend(events)
        return True

    async def enrolments_of(self, profile_id: str) -> list[dict[str, Any]]:
        keys = {(e["program_id"], e["role"]) for e in self.enrolments.values() if e["profile_id"] == profile_id}
        found = [await self.latest_enrolment(p, r, profile_id) for p, r in sorted(keys)]
        return [f for f in found if f is not None]

    async def enrolled(self, program_id: str, role: str) -> list[str]:
        people = {
            e["profile_id"] for e in self.enrolments.values() if e["program_id"] == program_id and e["role"] == role
        }
        out = []
        for pid in sorted(people):
            latest = await self.latest_enrolment(program_id, role, pid)
            if latest is not None and latest["withdrawn_at"] is None:
                out.append(pid)
        return out


@dataclass
class FakeIntroductions:
    """Introductions and their answers, each stored with its events."""

    intros: dict[str, dict[str, Any]] = field(default_factory=dict)
    outbox: list[Envelope[Any]] = field(default_factory=list)

    async def insert_introduction(self, doc: dict[str, Any], events: Sequence[Envelope[Any]]) -> None:
        self.intros[doc["_id"]] = dict(doc)
        self.outbox.extend(events)

    async def get_introduction(self, introduction_id: str) -> dict[str, Any] | None:
        found = self.intros.get(introduction_id)
        return dict(found) if found else None

    async def answer_introduction(
        self, introduction_id: str, state: str, at: datetime, events: Sequence[Envelope[Any]]
    ) -> bool:
        intro = self.intros[introduction_id]
        if intro["state"] != "pending":
            return False
        intro.update(state=state, answered_at=at)
        self.outbox.extend(events)
        return True

    async def introductions_of(
        self, profile_id: str, *, as_: str | None, state: str | None, offset: int, limit: int
    ) -> tuple[list[dict[str, Any]], int]:
        found = [
            dict(i)
            for i in self.intros.values()
            if profile_id in (i["introduced_by"], i["contact_id"], i["mentee_id"])
            and (state is None or i["state"] == state)
        ]
        return found[offset : offset + limit], len(found)

    async def scrub_introduction(self, introduction_id: str) -> bool:
        intro = self.intros[introduction_id]
        changed = intro["message"] != ""
        intro["message"] = ""
        return changed


@dataclass
class ErasureWorld:
    """The lifecycle and erasure use cases over one set of fakes."""

    base: World
    programs: FakeProgramStore
    introductions: FakeIntroductions
    erasure: ErasureUseCases


def erasure_world() -> ErasureWorld:
    base = world()
    programs, introductions = FakeProgramStore(), FakeIntroductions()
    erasure = ErasureUseCases(
        base.lifecycle.ctx,
        profiles=base.profiles,
        mentorships=base.store,  # type: ignore[arg-type]
        capacity=base.store,
        exposures=base.store,
        programs=programs,
        introductions=introductions,
    )
    return ErasureWorld(base, programs, introductions, erasure)
