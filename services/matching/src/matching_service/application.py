"""Use cases of the matching service: suggestions, requests and the lifecycle, programs, cohorts,
introductions. Each state change is one conditional single-document write carrying its events."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import structlog

from mentorship_contracts import Envelope, EventData
from mentorship_contracts.matching import (
    Agreement,
    CohortMatchPublished,
    IntroductionAccepted,
    IntroductionDeclined,
    IntroductionMade,
    MatchQuality,
    MentorshipCompleted,
    MentorshipEnded,
    MentorshipRequestAccepted,
    MentorshipRequestDeclined,
    MentorshipRequested,
    MentorshipRequestExpired,
    MentorshipRequestWithdrawn,
    MentorshipStarted,
)
from mentorship_kit.auth import Principal
from mentorship_kit.clock import Clock
from mentorship_kit.problems import Conflict, Forbidden, NotFound, Problem, Unprocessable
from mentorship_kit.timers import Timers

from . import cohort as cohort_solver
from .adapters.read_model import ProfileReadModel
from .adapters.store import Store
from .domain import (
    HOLDS_SLOT,
    Constraints,
    MatchingMode,
    ProgramSpec,
    State,
    Weights,
    planned_end,
    request_expired,
)
from .scoring import MentorIndex, Person, explain, violations
from .settings import Settings

SOURCE = "matching"
EXPIRY_TIMER = "request_expiry"
AUTO_DECLINE_REASON = "the mentor reached their capacity"
log = structlog.get_logger()


def _new_id() -> str:
    return str(uuid.uuid4())


class ProfileCache:
    """Every profile as scoring features, and the active mentors as matrices, rebuilt when the
    read model's version moved. Suggestions then read no profile from the store per call.

    The first build waits; later rebuilds run in the background while calls keep using the
    previous build (a bounded staleness: a read model is eventually consistent anyway). A
    full read is slow on FerretDB (measured ~20 s for 15k profiles: it has no index use), so
    no request should wait for one once the service is warm."""

    def __init__(self, profiles: ProfileReadModel, clock: Clock, default_capacity: int) -> None:
        self.profiles = profiles
        self.clock = clock
        self.default_capacity = default_capacity
        self._version = -1
        self._index: MentorIndex | None = None
        self._people: dict[str, Person] = {}
        self._lock = asyncio.Lock()
        self._refresh: asyncio.Task[None] | None = None

    async def get(self) -> tuple[MentorIndex, dict[str, Person]]:
        version = await self.profiles.version()
        if self._index is None:
            async with self._lock:
                if self._index is None:
                    await self._rebuild(version)
        elif version != self._version and (self._refresh is None or self._refresh.done()):
            self._refresh = asyncio.create_task(self._rebuild_locked(version))
        assert self._index is not None
        return self._index, self._people

    async def fresh(self) -> tuple[MentorIndex, dict[str, Person]]:
        """Wait for a build of the current version (cohort runs, tests)."""
        version = await self.profiles.version()
        if self._index is None or version != self._version:
            await self._rebuild_locked(version)
        assert self._index is not None
        return self._index, self._people

    async def _rebuild_locked(self, version: int) -> None:
        async with self._lock:
            if version != self._version or self._index is None:
                await self._rebuild(version)

    async def _rebuild(self, version: int) -> None:
        docs = await self.profiles.all_live()
        now = self.clock.now()
        people = {p["profile_id"]: Person.from_profile(p, now, self.default_capacity) for p in docs}
        self._index = await asyncio.to_thread(MentorIndex.build, list(people.values()))
        self._people = people
        self._version = version


class MatchingService:
    def __init__(self, store: Store, profiles: ProfileReadModel, timers: Timers, clock: Clock,
                 settings: Settings, on_events: Callable[[], None] = lambda: None) -> None:
        self.store = store
        self.profiles = profiles
        self.timers = timers
        self.clock = clock
        self.settings = settings
        self.on_events = on_events
        self.cache = ProfileCache(profiles, clock, settings.default_mentor_capacity)
        self._runs: set[asyncio.Task[None]] = set()

    def _wrap(self, data: EventData, correlation_id: str | None = None) -> Envelope[Any]:
        return Envelope.wrap(data, source=SOURCE, correlation_id=correlation_id, time=self.clock.now())

    async def _person(self, profile_id: str) -> Person | None:
        profile = await self.profiles.profile(profile_id)
        if profile is None:
            return None
        return Person.from_profile(profile, self.clock.now(), self.settings.default_mentor_capacity)

    async def _config(self, program_id: str | None) -> tuple[Weights, Constraints, dict[str, Any] | None]:
        if program_id is None:
            return Weights(), Constraints(), None
        program = await self.store.get_program(program_id)
        if program is None:
            raise Unprocessable(f"no program with id {program_id!r}", field="program_id")
        return Weights(**program["weights"]), Constraints(**program["constraints"]), program

    # --- profile read model ---------------------------------------------------------------------
    async def profile_changed(self, profile: dict[str, Any] | None) -> None:
        """Keep the mentor's capacity document in step with their profile."""
        if profile and "mentor" in profile.get("roles", []):
            capacity = profile.get("mentor_capacity")
            await self.store.set_capacity(
                profile["profile_id"], self.settings.default_mentor_capacity if capacity is None else int(capacity))

    # --- suggestions ----------------------------------------------------------------------------
    async def suggestions(self, mentee_id: str, k: int, program_id: str | None = None) -> dict[str, Any]:
        # independent store reads run concurrently (each is a round trip, and a scan on FerretDB);
        # a missing mentee is still reported before a bad program
        cached, config = await asyncio.gather(self.cache.get(), self._config(program_id), return_exceptions=True)
        if isinstance(cached, BaseException):
            raise cached
        index, people = cached
        mentee = people.get(mentee_id) or await self._person(mentee_id)
        if mentee is None:
            raise NotFound("profile", mentee_id)
        if isinstance(config, BaseException):
            raise config
        weights, constraints, _ = config
        excluded = await self.store.excluded_mentors([mentee_id], forbid_repeats=constraints.forbid_repeat_partners)
        scores = index.score_one(mentee, weights, constraints, excluded=excluded.get(mentee_id, ()))
        now = self.clock.now()
        picked: list[int] = []
        # Look at the best few at a time: full mentors and ones already shown to as many other
        # mentees as they have free slots drop out (rotation), the next best step in.
        step = max(4 * k, 20)
        order = _best_first(scores, step)
        start = 0
        while len(picked) < k and start < len(scores):
            if start >= len(order):  # the first window was not enough: sort the rest too
                order = np.argsort(-scores, kind="stable")
            window = [int(j) for j in order[start:start + step] if scores[j] >= 0]
            start += step
            if not window:
                break
            ids = [index.ids[j] for j in window]
            held, shown = await asyncio.gather(self.store.slots_held(ids),
                                               self.store.exposures_by_others(ids, mentee_id, now))
            for j, pid in zip(window, ids, strict=True):
                free = int(index.capacity[j]) - held.get(pid, 0)
                if free > 0 and shown.get(pid, 0) < free:
                    picked.append(j)
                    if len(picked) == k:
                        break
        chosen = [index.ids[j] for j in picked]
        hold = timedelta(minutes=self.settings.suggestion_hold_minutes)
        if hold:
            await self.store.expose(mentee_id, chosen, now + hold)
        items = [{"mentor_id": index.ids[j], **explain(mentee, index.mentors[j], weights, constraints)}
                 for j in picked]
        return {"mentee_id": mentee_id, "program_id": program_id, "suggestions": items}

    async def explain_pair(self, mentee_id: str, mentor_id: str, program_id: str | None) -> dict[str, Any]:
        mentee, mentor = await self._person(mentee_id), await self._person(mentor_id)
        if mentee is None:
            raise NotFound("profile", mentee_id)
        if mentor is None:
            raise NotFound("profile", mentor_id)
        weights, constraints, _ = await self._config(program_id)
        excluded = await self.store.excluded_mentors([mentee_id], forbid_repeats=constraints.forbid_repeat_partners)
        free = (await self.store.free_slots([mentor_id])).get(mentor_id, 0)
        found = violations(mentee, mentor, constraints, excluded=frozenset(excluded.get(mentee_id, ())),
                           free_slots=free)
        return {"mentee_id": mentee_id, "mentor_id": mentor_id, "eligible": not found, "violations": found,
                **explain(mentee, mentor, weights, constraints)}

    # --- requests and the lifecycle ---------------------------------------------------------------
    async def request(self, principal: Principal, mentor_id: str, message: str, program_id: str | None,
                      mentee_id: str | None = None, correlation_id: str | None = None) -> dict[str, Any]:
        mentee_id = mentee_id if (mentee_id and principal.is_admin) else principal.subject
        if mentee_id == mentor_id:
            raise Unprocessable("you cannot request yourself as a mentor", field="mentor_id")
        mentee = await self._person(mentee_id)
        if mentee is None:
            raise Unprocessable("the mentee has no profile (yet)", field="mentee_id")
        mentor = await self._person(mentor_id)
        if mentor is None:
            raise Unprocessable(f"no profile with id {mentor_id!r}", field="mentor_id")
        if "mentor" not in mentor.roles:
            raise Unprocessable("this person is not a mentor", field="mentor_id")
        if not mentor.active:
            raise Unprocessable("this mentor is not active", field="mentor_id")
        weights, constraints, program = await self._config(program_id)
        excluded = await self.store.excluded_mentors([mentee_id], forbid_repeats=constraints.forbid_repeat_partners)
        excluded_here = frozenset(excluded.get(mentee_id, ()))
        # an open request to the same mentor is reported as a duplicate (409) below, not as excluded
        found = violations(mentee, mentor, constraints, excluded=excluded_here)
        load = await self.store.load(mentor_id)
        if load is not None and load["free"] <= 0:
            raise Conflict("this mentor has no free capacity", field="mentor_id")
        mentorship_id = _new_id()
        holder = await self.store.lock_pair(mentee_id, mentor_id, mentorship_id)
        if holder is not None:
            raise Conflict("you already have an open request to this mentor", mentorship_id=holder)
        if found:
            await self.store.unlock_pair(mentee_id, mentor_id, mentorship_id)
            raise Unprocessable(found[0], field="mentor_id", violations=found)
        now = self.clock.now()
        expires_at = now + timedelta(hours=self.settings.request_expiry_hours)
        event = self._wrap(MentorshipRequested(mentorship_id=mentorship_id, mentee_id=mentee_id,
                                               mentor_id=mentor_id, program_id=program_id, message=message,
                                               expires_at=expires_at), correlation_id)
        doc = {"mentorship_id": mentorship_id, "mentee_id": mentee_id, "mentor_id": mentor_id, "program_id": program_id,
               "state": State.REQUESTED.value, "message": message, "requested_at": now,
               "expires_at": expires_at, "origin": "request",
               "approval_required": bool(program and program["mode"] == MatchingMode.ADMIN_APPROVED)}
        # The timer first: a request never exists without its expiry.
        await self.timers.schedule(f"expiry:{mentorship_id}", EXPIRY_TIMER, expires_at,
                                   {"mentorship_id": mentorship_id}, group=mentorship_id)
        try:
            await self.store.insert_mentorship(doc, [event])
        except Exception:
            await self.timers.cancel(f"expiry:{mentorship_id}")
            await self.store.unlock_pair(mentee_id, mentor_id, mentorship_id)
            raise
        self.on_events()
        return await self.get(principal, mentorship_id)

    async def get(self, principal: Principal, mentorship_id: str) -> dict[str, Any]:
        doc = await self.store.get_mentorship(mentorship_id)
        if doc is None:
            raise NotFound("mentorship", mentorship_id)
        if not (principal.is_admin or principal.subject in (doc["mentee_id"], doc["mentor_id"])):
            raise Forbidden("only the participants or an admin may see this mentorship")
        flags = await self.store.review_flags(mentorship_id)
        return {**doc, "review_flags": flags} if flags else doc

    async def list_for(self, principal: Principal, profile_id: str) -> list[dict[str, Any]]:
        principal.require_self_or_admin(profile_id)
        return await self.store.mentorships_of(profile_id)

    async def _load_for(self, principal: Principal, mentorship_id: str, *, as_: tuple[str, ...]) -> dict[str, Any]:
        doc = await self.store.current(mentorship_id)
        if doc is None:
            raise NotFound("mentorship", mentorship_id)
        allowed = {doc[f"{who}_id"] for who in as_}
        if not (principal.is_admin or principal.subject in allowed):
            raise Forbidden(f"only the {' or '.join(as_)} or an admin may do this")
        return doc

    def _fail(self, doc: dict[str, Any], action: str, allowed: tuple[State, ...] = ()) -> Problem:
        return Conflict(f"cannot {action} a mentorship that is {doc['state']}", state=doc["state"])

    async def accept(self, principal: Principal, mentorship_id: str, agreement: Agreement | None,
                     correlation_id: str | None = None) -> dict[str, Any]:
        doc = await self._load_for(principal, mentorship_id, as_=("mentor",))
        now = self.clock.now()
        if doc["state"] != State.REQUESTED:
            raise self._fail(doc, "accept", ())
        if request_expired(doc["expires_at"], now):
            raise Conflict("cannot accept: the request has expired")
        _, _, program = await self._config(doc.get("program_id"))
        taken = await self.store.take_slot(doc["mentor_id"], mentorship_id)
        if taken is None:
            raise Conflict("the mentor has no free capacity", field="mentor_id")
        awaiting = bool(doc.get("approval_required"))
        accepted = self._wrap(MentorshipRequestAccepted(
            mentorship_id=mentorship_id, mentee_id=doc["mentee_id"], mentor_id=doc["mentor_id"],
            program_id=doc.get("program_id"), awaiting_admin_approval=awaiting), correlation_id)
        agreement = self._agreement(agreement, program, now)
        changes: dict[str, Any] = {"accepted_at": now, "agreement": agreement.model_dump(mode="json")}
        events = [accepted]
        if awaiting:
            changes["state"] = State.AWAITING_APPROVAL.value
        else:
            changes.update(state=State.ACTIVE.value, started_at=now)
            events.append(self._started(doc, agreement, now, "request", correlation_id))
        updated = await self.store.transition(doc, changes, events)
        if updated is None:  # withdrawn, declined, expired or accepted meanwhile: give the slot back
            await self.store.release_claim(taken["claim_id"])
            current = await self.store.get_mentorship(mentorship_id)
            raise Conflict(f"cannot accept a mentorship that is {current['state'] if current else 'gone'}")
        await self.timers.cancel(f"expiry:{mentorship_id}")
        await self.store.unlock_pair(doc["mentee_id"], doc["mentor_id"], mentorship_id)
        await self.store.forget_exposures(doc["mentee_id"])
        if taken["free"] <= 0:
            await self._decline_open_requests(doc["mentor_id"], correlation_id)
        self.on_events()
        return updated

    def _agreement(self, agreement: Agreement | None, program: dict[str, Any] | None, now: datetime) -> Agreement:
        cadence = program["cadence"] if program else "biweekly"
        weeks = program["duration_weeks"] if program else 12
        if agreement is None:
            return Agreement(cadence=cadence, planned_end=planned_end(now.date(), weeks))
        if agreement.planned_end is None:
            return agreement.model_copy(update={"planned_end": planned_end(now.date(), weeks)})
        if agreement.planned_end <= now.date():
            raise Unprocessable("planned_end must be in the future", field="agreement.planned_end")
        return agreement

    def _started(self, doc: dict[str, Any], agreement: Agreement, now: datetime, origin: str,
                 correlation_id: str | None) -> Envelope[Any]:
        return self._wrap(MentorshipStarted(
            mentorship_id=doc["mentorship_id"], mentee_id=doc["mentee_id"], mentor_id=doc["mentor_id"],
            program_id=doc.get("program_id"), agreement=agreement, started_at=now, origin=origin), correlation_id)

    async def _decline_open_requests(self, mentor_id: str, correlation_id: str | None) -> None:
        """The mentor is at capacity: their other open requests are declined with that reason."""
        for other in await self.store.open_requests_of_mentor(mentor_id):
            await self._close_request(other, State.DECLINED, MentorshipRequestDeclined(
                mentorship_id=other["mentorship_id"], mentee_id=other["mentee_id"], mentor_id=mentor_id,
                program_id=other.get("program_id"), reason=AUTO_DECLINE_REASON, automatic=True),
                {"reason": AUTO_DECLINE_REASON, "automatic": True}, correlation_id)

    async def _close_request(self, doc: dict[str, Any], state: State, data: EventData, extra: dict[str, Any],
                             correlation_id: str | None, *, cancel_timer: bool = True) -> dict[str, Any] | None:
        """Close an open (or awaiting) request: next version, then timer, lock and slot let go."""
        mid = doc["mentorship_id"]
        updated = await self.store.transition(doc, {"state": state.value, "closed_at": self.clock.now(), **extra},
                                              [self._wrap(data, correlation_id)])
        if updated is not None:
            if cancel_timer:
                await self.timers.cancel(f"expiry:{mid}")
            await self.store.unlock_pair(doc["mentee_id"], doc["mentor_id"], mid)
            if doc["state"] in HOLDS_SLOT:
                await self.store.release_slot(doc["mentor_id"], mid)
        return updated

    async def decline(self, principal: Principal, mentorship_id: str, reason: str,
                      correlation_id: str | None = None) -> dict[str, Any]:
        doc = await self._load_for(principal, mentorship_id, as_=("mentor",))
        allowed = (State.REQUESTED, State.AWAITING_APPROVAL) if principal.is_admin else (State.REQUESTED,)
        if doc["state"] not in allowed:
            raise self._fail(doc, "decline", ())
        updated = await self._close_request(doc, State.DECLINED, MentorshipRequestDeclined(
            mentorship_id=mentorship_id, mentee_id=doc["mentee_id"], mentor_id=doc["mentor_id"],
            program_id=doc.get("program_id"), reason=reason), {"reason": reason}, correlation_id)
        return await self._after(updated, mentorship_id, "decline")

    async def withdraw(self, principal: Principal, mentorship_id: str, correlation_id: str | None = None,
                       ) -> dict[str, Any]:
        doc = await self._load_for(principal, mentorship_id, as_=("mentee",))
        allowed = (State.REQUESTED, State.AWAITING_APPROVAL)
        if doc["state"] not in allowed:
            raise self._fail(doc, "withdraw", ())
        updated = await self._close_request(doc, State.WITHDRAWN, MentorshipRequestWithdrawn(
            mentorship_id=mentorship_id, mentee_id=doc["mentee_id"], mentor_id=doc["mentor_id"],
            program_id=doc.get("program_id")), {}, correlation_id)
        return await self._after(updated, mentorship_id, "withdraw")

    async def _after(self, updated: dict[str, Any] | None, mentorship_id: str, action: str) -> dict[str, Any]:
        if updated is None:
            current = await self.store.get_mentorship(mentorship_id)
            raise Conflict(f"cannot {action} a mentorship that is {current['state'] if current else 'gone'}")
        self.on_events()
        return updated

    async def approve(self, principal: Principal, mentorship_id: str, correlation_id: str | None = None,
                      ) -> dict[str, Any]:
        principal.require_admin()
        doc = await self._load_for(principal, mentorship_id, as_=())
        if doc["state"] != State.AWAITING_APPROVAL:
            raise self._fail(doc, "approve", ())
        now = self.clock.now()
        agreement = Agreement(**doc["agreement"])
        updated = await self.store.transition(
            doc,
            {"state": State.ACTIVE.value, "started_at": now, "approved_by": principal.subject},
            [self._started(doc, agreement, now, "request", correlation_id)])
        return await self._after(updated, mentorship_id, "approve")

    async def complete(self, principal: Principal, mentorship_id: str, correlation_id: str | None = None,
                       ) -> dict[str, Any]:
        doc = await self._load_for(principal, mentorship_id, as_=("mentee", "mentor"))
        if doc["state"] != State.ACTIVE:
            raise self._fail(doc, "complete", ())
        now = self.clock.now()
        updated = await self.store.transition(
            doc, {"state": State.COMPLETED.value, "closed_at": now},
            [self._wrap(MentorshipCompleted(mentorship_id=mentorship_id, mentee_id=doc["mentee_id"],
                                            mentor_id=doc["mentor_id"], program_id=doc.get("program_id"),
                                            completed_at=now), correlation_id)])
        if updated is not None:
            await self.store.release_slot(doc["mentor_id"], mentorship_id)
        return await self._after(updated, mentorship_id, "complete")

    async def end(self, principal: Principal, mentorship_id: str, reason: str, not_a_good_fit: bool,
                  correlation_id: str | None = None) -> dict[str, Any]:
        doc = await self._load_for(principal, mentorship_id, as_=("mentee", "mentor"))
        if doc["state"] != State.ACTIVE:
            raise self._fail(doc, "end", ())
        now = self.clock.now()
        updated = await self.store.transition(
            doc,
            {"state": State.ENDED.value, "closed_at": now, "reason": reason, "not_a_good_fit": not_a_good_fit,
             "ended_by": principal.subject},
            [self._wrap(MentorshipEnded(mentorship_id=mentorship_id, mentee_id=doc["mentee_id"],
                                        mentor_id=doc["mentor_id"], program_id=doc.get("program_id"),
                                        reason=reason, not_a_good_fit=not_a_good_fit, ended_at=now),
                        correlation_id)])
        if updated is not None:
            await self.store.release_slot(doc["mentor_id"], mentorship_id)
        return await self._after(updated, mentorship_id, "end")

    async def expire(self, timer: dict[str, Any], now: datetime) -> list[Envelope[Any]]:
        """Timer handler: an unanswered request expires (the conditional write makes it once)."""
        doc = await self.store.current(timer["payload"]["mentorship_id"])
        if doc is None or doc["state"] != State.REQUESTED:
            return []
        await self._close_request(doc, State.EXPIRED, MentorshipRequestExpired(
            mentorship_id=doc["mentorship_id"], mentee_id=doc["mentee_id"], mentor_id=doc["mentor_id"],
            program_id=doc.get("program_id")), {}, None, cancel_timer=False)
        return []

    async def feedback_flag(self, event: Envelope[Any]) -> None:
        """Scheduling says a session's participant found the pairing not a good fit: admins review."""
        data = event.data
        if not data.not_a_good_fit:
            return
        await self.store.flag_for_review(data.mentorship_id, {
            "event_id": event.id, "session_id": data.session_id, "author_role": data.author_role,
            "at": event.time})

    async def review_queue(self, principal: Principal) -> list[dict[str, Any]]:
        principal.require_admin()
        return await self.store.flagged()

    # --- programs -----------------------------------------------------------------------------
    async def create_program(self, principal: Principal, spec: ProgramSpec) -> dict[str, Any]:
        principal.require_admin()
        program_id = _new_id()
        await self.store.insert_program({"_id": program_id, **spec.model_dump(mode="json"), "version": 1,
                                         "created_by": principal.subject, "created_at": self.clock.now()})
        return await self.get_program(principal, program_id)

    async def get_program(self, principal: Principal, program_id: str) -> dict[str, Any]:
        program = await self.store.get_program(program_id)
        if program is None:
            raise NotFound("program", program_id)
        out = present_program(program)
        if principal.is_admin:
            out["enrolled"] = {role: len(await self.store.enrolled(program_id, role)) for role in ("mentee", "mentor")}
        return out

    async def update_program(self, principal: Principal, program_id: str, spec: ProgramSpec) -> dict[str, Any]:
        principal.require_admin()
        updated = await self.store.update_program(program_id, spec.model_dump(mode="json"))
        if updated is None:
            raise NotFound("program", program_id)
        return present_program(updated)

    async def enroll(self, principal: Principal, program_id: str, profile_id: str, role: str) -> dict[str, Any]:
        principal.require_self_or_admin(profile_id)
        if await self.store.get_program(program_id) is None:
            raise NotFound("program", program_id)
        profile = await self.profiles.profile(profile_id)
        if profile is None:
            raise Unprocessable(f"no profile with id {profile_id!r}", field="profile_id")
        if role not in profile.get("roles", []):
            raise Unprocessable(f"this person does not have the {role} role", field="role")
        if await self.store.enroll(program_id, profile_id, role, self.clock.now()):
            await self.store.update_program(program_id, {})  # a new version: older dry runs are stale
        return {"program_id": program_id, "profile_id": profile_id, "role": role}

    async def unenroll(self, principal: Principal, program_id: str, profile_id: str, role: str) -> None:
        principal.require_self_or_admin(profile_id)
        if not await self.store.unenroll(program_id, profile_id, role):
            raise NotFound("enrollment", f"{program_id}:{role}:{profile_id}")
        await self.store.update_program(program_id, {})

    # --- cohort runs ----------------------------------------------------------------------------
    async def start_run(self, principal: Principal, program_id: str, *, k: int | None,
                        pins: list[tuple[str, str]], forbids: list[tuple[str, str]]) -> dict[str, Any]:
        principal.require_admin()
        program = await self.store.get_program(program_id)
        if program is None:
            raise NotFound("program", program_id)
        overlap = set(pins) & set(forbids)
        if overlap:
            raise Unprocessable("a pair cannot be both pinned and forbidden", field="pins",
                                pairs=[list(p) for p in sorted(overlap)])
        run_id = _new_id()
        doc = {"_id": run_id, "program_id": program_id, "program_version": program["version"],
               "status": "running", "progress": 0.0, "created_at": self.clock.now(), "created_by": principal.subject,
               "k": k or self.settings.cohort_candidates_k,
               "pins": [{"mentee_id": a, "mentor_id": b} for a, b in pins],
               "forbids": [{"mentee_id": a, "mentor_id": b} for a, b in forbids]}
        await self.store.insert_run(doc)
        task = asyncio.create_task(self._execute_run(doc, program, principal))
        self._runs.add(task)
        task.add_done_callback(self._runs.discard)
        return present_run(doc)

    async def _execute_run(self, run: dict[str, Any], program: dict[str, Any], principal: Principal) -> None:
        progress = {"value": 0.0}

        async def report() -> None:
            last = -1.0
            while True:
                await asyncio.sleep(0.3)
                if progress["value"] != last:
                    last = progress["value"]
                    await self.store.update_run(run["_id"], {"progress": round(last, 3)})

        reporter = asyncio.create_task(report())

        async def stop_reporting() -> None:
            # the store's updates are read-modify-write: no progress write may land after the result
            reporter.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await reporter

        try:
            result = await self._compute_run(run, program, lambda f: progress.__setitem__("value", f))
            await stop_reporting()
            await self.store.update_run(run["_id"], {"status": "done", "progress": 1.0, **result})
        except cohort_solver.CohortInputError as exc:
            await stop_reporting()
            await self.store.update_run(run["_id"], {"status": "failed", "error": str(exc),
                                                     "bad_pairs": [list(p) for p in exc.pairs]})
            return
        except Exception as exc:  # the run document tells the admin; details go to the log
            await stop_reporting()
            log.exception("cohort run failed", run_id=run["_id"])
            await self.store.update_run(run["_id"], {"status": "failed", "error": type(exc).__name__})
            return
        if program["mode"] == MatchingMode.AUTOMATIC:
            try:
                await self.publish(principal, program["_id"], run["_id"])
            except Problem as exc:
                log.warning("automatic publish failed", run_id=run["_id"], detail=exc.detail)

    async def _compute_run(self, run: dict[str, Any], program: dict[str, Any],
                           progress: Callable[[float], None]) -> dict[str, Any]:
        now = self.clock.now()
        cap = self.settings.default_mentor_capacity
        weights, constraints = Weights(**program["weights"]), Constraints(**program["constraints"])
        mentee_ids = await self.store.enrolled(program["_id"], "mentee")
        mentor_ids = await self.store.enrolled(program["_id"], "mentor")
        busy = {d["mentee_id"] for d in await self._program_mentorships(program["_id"])}
        mentees = [Person.from_profile(p, now, cap) for p in await self.profiles.many(mentee_ids)
                   if p["profile_id"] not in busy and p.get("active", True)]
        mentors = [Person.from_profile(p, now, cap) for p in await self.profiles.many(mentor_ids)]
        index = MentorIndex.build(mentors)
        free_by_id = await self.store.free_slots(index.ids)
        free = np.array([free_by_id.get(pid, 0) for pid in index.ids], dtype=np.int64)
        excluded = await self.store.excluded_mentors([m.profile_id for m in mentees],
                                                     forbid_repeats=constraints.forbid_repeat_partners)
        pins = [(p["mentee_id"], p["mentor_id"]) for p in run["pins"]]
        forbids = [(p["mentee_id"], p["mentor_id"]) for p in run["forbids"]]
        result = await asyncio.to_thread(
            cohort_solver.match_cohort, mentees, index, weights, constraints, free_slots=free, k=run["k"],
            excluded=excluded, pins=pins, forbids=forbids, progress=progress)
        pinned = set(pins)
        assignments = [
            {"mentee_id": p.profile_id, "mentor_id": index.ids[int(j)], "score": round(float(s), 6),
             "pinned": (p.profile_id, index.ids[int(j)]) in pinned}
            for p, j, s in zip(mentees, result.assignment, result.scores, strict=True) if j >= 0]
        unmatched = [p.profile_id for p, j in zip(mentees, result.assignment, strict=True) if j < 0]
        return {"quality": result.quality.as_dict(), "assignments": assignments, "unmatched": unmatched}

    async def _program_mentorships(self, program_id: str) -> list[dict[str, Any]]:
        busy = (State.REQUESTED, *HOLDS_SLOT)
        return [d for d in await self.store.program_mentorships(program_id) if d["state"] in busy]

    async def get_run(self, principal: Principal, program_id: str, run_id: str) -> dict[str, Any]:
        principal.require_admin()
        run = await self.store.get_run(run_id)
        if run is None or run["program_id"] != program_id:
            raise NotFound("run", run_id)
        return present_run(run)

    async def publish(self, principal: Principal, program_id: str, run_id: str,
                      correlation_id: str | None = None) -> dict[str, Any]:
        """Start every proposed mentorship at once; a stale dry run (the program, its enrollment
        or a mentor's capacity changed since) is refused and nothing is written."""
        principal.require_admin()
        run = await self.store.get_run(run_id)
        if run is None or run["program_id"] != program_id:
            raise NotFound("run", run_id)
        if run["status"] == "published" or await self.store.publication(run_id):
            raise Conflict("this run is already published")
        if run["status"] != "done":
            raise Conflict(f"only a finished dry run can be published (this one is {run['status']})")
        program = await self.store.get_program(program_id)
        if program is None:
            raise NotFound("program", program_id)
        if program["version"] != run["program_version"]:
            raise Conflict("the dry run is stale: the program or its enrollment changed since; run it again",
                           program_version=program["version"], run_program_version=run["program_version"])
        if not await self.store.claim_publication(run_id, {"by": principal.subject, "at": self.clock.now()}):
            raise Conflict("this run is being published already")
        now = self.clock.now()
        pairs = [(str(uuid.uuid5(uuid.NAMESPACE_URL, f"{run_id}:{a['mentee_id']}")), a) for a in run["assignments"]]
        taken: list[str] = []
        for mid, a in pairs:
            claim = await self.store.take_slot(a["mentor_id"], mid)
            if claim is None:
                for claim_id in taken:
                    await self.store.release_claim(claim_id)
                await self.store.drop_publication_claim(run_id)
                raise Conflict("the dry run is stale: a mentor's capacity changed since; run it again",
                               mentor_id=a["mentor_id"])
            taken.append(claim["claim_id"])
        agreement = Agreement(cadence=program["cadence"], planned_end=planned_end(now.date(), program["duration_weeks"]))
        correlation = correlation_id or run_id
        docs = []
        for mid, a in pairs:
            doc = {"mentorship_id": mid, "mentee_id": a["mentee_id"], "mentor_id": a["mentor_id"],
                   "program_id": program_id, "state": State.ACTIVE.value, "origin": "cohort", "run_id": run_id,
                   "score": a["score"], "requested_at": now, "accepted_at": now, "started_at": now,
                   "agreement": agreement.model_dump(mode="json")}
            docs.append((doc, [self._started(doc, agreement, now, "cohort", correlation)]))
        await self.store.insert_started(docs)
        published = self._wrap(CohortMatchPublished(
            program_id=program_id, program_name=program["name"], run_id=run_id,
            mentorship_ids=[mid for mid, _ in pairs], quality=MatchQuality(**run["quality"]),
            admin_ids=[principal.subject]), correlation)
        await self.store.record_publication(run_id, {"program_id": program_id, "published_at": now,
                                                     "mentorship_ids": [mid for mid, _ in pairs]}, [published])
        await self.store.update_run(run_id, {"status": "published", "published_at": now})
        self.on_events()
        return present_run(await self.store.get_run(run_id) or run)

    # --- introductions --------------------------------------------------------------------------
    async def introduce(self, principal: Principal, mentorship_id: str, contact_id: str, message: str,
                        correlation_id: str | None = None) -> dict[str, Any]:
        doc = await self._load_for(principal, mentorship_id, as_=("mentor",))
        if doc["state"] != State.ACTIVE:
            raise Conflict(f"introductions need an active mentorship (this one is {doc['state']})")
        if contact_id in (doc["mentee_id"], doc["mentor_id"]):
            raise Unprocessable("introduce the mentee to someone else", field="contact_id")
        contact = await self.profiles.profile(contact_id)
        if contact is None or not contact.get("active", True):
            raise Unprocessable(f"no active member with id {contact_id!r}", field="contact_id")
        introduction_id = _new_id()
        event = self._wrap(IntroductionMade(introduction_id=introduction_id, mentorship_id=mentorship_id,
                                            introduced_by=doc["mentor_id"], mentee_id=doc["mentee_id"],
                                            contact_id=contact_id, message=message), correlation_id)
        intro = {"_id": introduction_id, "mentorship_id": mentorship_id, "introduced_by": doc["mentor_id"],
                 "mentee_id": doc["mentee_id"], "contact_id": contact_id, "message": message,
                 "state": "pending", "made_at": self.clock.now()}
        await self.store.insert_introduction(intro, [event])
        self.on_events()
        return present_introduction(intro)

    async def answer_introduction(self, principal: Principal, introduction_id: str, accept: bool,
                                  correlation_id: str | None = None) -> dict[str, Any]:
        intro = await self.store.get_introduction(introduction_id)
        if intro is None:
            raise NotFound("introduction", introduction_id)
        if not (principal.is_admin or principal.subject == intro["contact_id"]):
            raise Forbidden("only the introduced person may answer")
        if intro["state"] != "pending":
            raise Conflict(f"this introduction was {intro['state']} already")
        model = IntroductionAccepted if accept else IntroductionDeclined
        event = self._wrap(model(introduction_id=introduction_id, mentee_id=intro["mentee_id"],
                                 contact_id=intro["contact_id"], introduced_by=intro["introduced_by"]),
                           correlation_id)
        if not await self.store.answer_introduction(introduction_id, "accepted" if accept else "declined",
                                                    self.clock.now(), [event]):
            raise Conflict("this introduction was answered already")
        self.on_events()
        return present_introduction(await self.store.get_introduction(introduction_id) or intro)

    async def get_introduction(self, principal: Principal, introduction_id: str) -> dict[str, Any]:
        intro = await self.store.get_introduction(introduction_id)
        if intro is None:
            raise NotFound("introduction", introduction_id)
        if not (principal.is_admin or principal.subject in (intro["contact_id"], intro["mentee_id"],
                                                            intro["introduced_by"])):
            raise Forbidden("only the people involved may see this introduction")
        return present_introduction(intro)


def _best_first(scores: np.ndarray, n: int) -> np.ndarray:
    """Indices of the n best scores, best first (a partial sort: 15k mentors, a few wanted)."""
    if n >= len(scores):
        return np.argsort(-scores, kind="stable")
    top = np.argpartition(-scores, n - 1)[:n]
    return top[np.argsort(-scores[top], kind="stable")]


_HIDDEN = ("outbox", "outbox_pending", "outbox_lease_until")


def present_program(doc: dict[str, Any]) -> dict[str, Any]:
    return {"program_id": doc["_id"], **{k: v for k, v in doc.items() if k not in _HIDDEN and k != "_id"}}


def present_run(doc: dict[str, Any]) -> dict[str, Any]:
    return {"run_id": doc["_id"], **{k: v for k, v in doc.items() if k != "_id"}}


def present_introduction(doc: dict[str, Any]) -> dict[str, Any]:
    return {"introduction_id": doc["_id"], **{k: v for k, v in doc.items() if k not in _HIDDEN and k != "_id"}}

