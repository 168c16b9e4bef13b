"""Cohort runs: a dry run proposes an optimal matching of a program's enrollees (in the
background, with progress); an admin reviews it and publishes it, which starts every proposed
mentorship at once.

Both survive the replica doing them:
- a run is computed under a lease held by its replica and renewed with each progress write; a
  replica whose lease lapsed (it died) loses the run to another replica, which computes it again
  (`take_over_runs`, a background job on every replica), up to `cohort_run_max_attempts`; then the
  run is marked failed with the reason, and the admin starts a new one. No run stays `running`.
- a publish goes in steps, each one idempotent, recorded on its publication claim (`claiming`:
  slots being taken, undone if one is missing; `committed`: every slot held, the mentorships,
  the publication event and the run's status follow; `published`), and is leased like a run.
  A retry of the same run's publish, or the claims reconciler once the lease lapsed, finishes a
  publish cut short: each pair starts exactly once (deterministic mentorship ids, insert-once
  versions), with one capacity claim each."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import numpy as np
import structlog
from prometheus_client import Counter

from mentorship_contracts.matching import Agreement, CohortMatchPublished, MatchQuality
from mentorship_kit.auth import Principal
from mentorship_kit.clock import Clock
from mentorship_kit.metrics import REGISTRY
from mentorship_kit.problems import Conflict, NotFound, Problem, Unprocessable
from mentorship_kit.usecase import UseCaseContext

from .. import cohort as cohort_solver
from ..domain import HOLDS_SLOT, Constraints, MatchingMode, Mentorship, State, Weights, planned_end, start_from_cohort
from ..faults import crash_point
from ..scoring import MentorIndex, Person
from ..settings import Settings
from .ports import CapacityStore, MentorshipStore, ProfileReader, ProgramStore
from .shared import new_id, page, present_run

log = structlog.get_logger()
Pair = tuple[str, str]
RENEW_EVERY_PAIRS = 50

COHORT_RUNS_TAKEN_OVER = Counter(
    "mentorship_cohort_runs_taken_over_total",
    "Cohort runs whose replica stopped while computing: outcome=resumed (computed again here) or "
    "failed (attempts used up, or the program changed meanwhile)",
    ["service", "outcome"],
    registry=REGISTRY,
)


def system_admin(subject: str) -> Principal:
    """Who a publish finished by the platform itself (automatic program, reconciler) acts as."""
    return Principal(subject=subject, roles=frozenset({"admin"}))


def publication_key(program_id: str, program_version: int) -> str:
    return f"{program_id}@{program_version}"


class CohortUseCases:
    def __init__(
        self,
        ctx: UseCaseContext,
        *,
        settings: Settings,
        programs: ProgramStore,
        profiles: ProfileReader,
        mentorships: MentorshipStore,
        capacity: CapacityStore,
    ) -> None:
        self.ctx = ctx
        self.settings = settings
        self.programs = programs
        self.profiles = profiles
        self.mentorships = mentorships
        self.capacity = capacity
        self.owner = uuid.uuid4().hex  # this replica, as the holder of run and publish leases
        # Leases run on real time, not the dev-controllable clock: moving that clock (tests, demos)
        # must not make a live replica's leases look lapsed.
        self.lease_clock = Clock()
        self._runs: set[asyncio.Task[None]] = set()

    async def start_run(
        self, principal: Principal, program_id: str, *, k: int | None, pins: list[Pair], forbids: list[Pair]
    ) -> dict[str, Any]:
        principal.require_admin()
        program = await self.programs.get_program(program_id)
        if program is None:
            raise NotFound("program", program_id)
        overlap = set(pins) & set(forbids)
        if overlap:
            raise Unprocessable(
                "a pair cannot be both pinned and forbidden", field="pins", pairs=[list(p) for p in sorted(overlap)]
            )
        run_id = new_id()
        now = self.ctx.clock.now()
        doc = {
            "_id": run_id,
            "program_id": program_id,
            "program_version": program["version"],
            "status": "running",
            "progress": 0.0,
            "created_at": now,
            "created_by": principal.subject,
            "k": k or self.settings.cohort_candidates_k,
            "pins": [{"mentee_id": a, "mentor_id": b} for a, b in pins],
            "forbids": [{"mentee_id": a, "mentor_id": b} for a, b in forbids],
            "auto_publish": program["mode"] == MatchingMode.AUTOMATIC,
            "lease_owner": self.owner,
            "lease_until": self.lease_clock.now() + self._run_lease,
            "attempts": 1,
        }
        await self.programs.insert_run(doc)
        self._launch(doc, program, principal)
        return present_run(doc)

    @property
    def _run_lease(self) -> timedelta:
        return timedelta(seconds=self.settings.cohort_run_lease_seconds)

    @property
    def _publish_lease(self) -> timedelta:
        return timedelta(seconds=self.settings.cohort_publish_lease_seconds)

    def _launch(self, run: dict[str, Any], program: dict[str, Any], principal: Principal) -> None:
        task = asyncio.create_task(self._execute_run(run, program, principal))
        self._runs.add(task)
        task.add_done_callback(self._runs.discard)

    async def get_run(self, principal: Principal, program_id: str, run_id: str) -> dict[str, Any]:
        principal.require_admin()
        run = await self.programs.get_run(run_id)
        if run is None or run["program_id"] != program_id:
            raise NotFound("run", run_id)
        return present_run(run)

    async def list_runs(self, principal: Principal, program_id: str, *, offset: int, limit: int) -> dict[str, Any]:
        """A program's cohort runs, newest first: status, progress, quality and counts, without the
        proposal's pair lists (fetch one run for those)."""
        principal.require_admin()
        if await self.programs.get_program(program_id) is None:
            raise NotFound("program", program_id)
        found, total = await self.programs.runs_of(program_id, offset=offset, limit=limit)
        return page([present_run(run) for run in found], total, offset, limit)

    async def publish(
        self, principal: Principal, program_id: str, run_id: str, correlation_id: str | None = None
    ) -> dict[str, Any]:
        """Start every proposed mentorship at once; a stale dry run (the program, its enrollment
        or a mentor's capacity changed since) is refused and nothing is written. Publishing the
        same run again finishes a publish that a crash cut short (and is refused once it is done)."""
        principal.require_admin()
        run = await self.programs.get_run(run_id)
        if run is None or run["program_id"] != program_id:
            raise NotFound("run", run_id)
        if run["status"] == "published":
            raise Conflict("this run is already published")
        if run["status"] != "done":
            raise Conflict(f"only a finished dry run can be published (this one is {run['status']})")
        program = await self.programs.get_program(program_id)
        if program is None:
            raise NotFound("program", program_id)
        key = publication_key(program_id, run["program_version"])
        claim = await self.programs.publication_claim(key)
        if claim is None:
            if program["version"] != run["program_version"]:
                raise Conflict(
                    "the dry run is stale: the program or its enrollment changed since; run it again",
                    program_version=program["version"],
                    run_program_version=run["program_version"],
                )
            # One publication per program version, whichever dry run of it comes first: the claim is
            # one insert with a unique id (atomic on every store), so concurrent publishes cannot both win.
            won = await self.programs.claim_publication(
                key,
                {
                    "run_id": run_id,
                    "by": principal.subject,
                    "at": self.ctx.clock.now(),
                    "state": "claiming",
                    "lease_owner": self.owner,
                    "lease_until": self.lease_clock.now() + self._publish_lease,
                },
            )
            claim = await self.programs.publication_claim(key) if not won else {"state": "claiming"}
        if claim is None or claim.get("run_id", run_id) != run_id:
            raise Conflict(
                "this version of the program is published already (by this or another dry run); "
                "a new enrollment makes a new version to run and publish",
                program_version=run["program_version"],
            )
        # This run holds the claim: a publish of it started (here, or on a replica that stopped).
        if not await self._hold_publication(key, run_id):
            raise Conflict("a publish of this run is in progress; try again shortly", run_id=run_id)
        return await self._complete_publication(run, program, key, principal.subject, correlation_id)

    async def _hold_publication(self, key: str, run_id: str) -> bool:
        now = self.lease_clock.now()
        return await self.programs.lease_publication(key, run_id, self.owner, now, now + self._publish_lease)

    async def _complete_publication(
        self, run: dict[str, Any], program: dict[str, Any], key: str, admin_id: str, correlation_id: str | None
    ) -> dict[str, Any]:
        """The publish's steps from wherever the claim says it stopped; each step is idempotent."""
        run_id, program_id = run["_id"], program["_id"]
        claim = await self.programs.publication_claim(key) or {}
        pairs = [(str(uuid.uuid5(uuid.NAMESPACE_URL, f"{run_id}:{a['mentee_id']}")), a) for a in run["assignments"]]
        state = claim.get("state")
        if state is None:  # a claim from before publishes had steps: they took every slot first
            state = "committed" if await self.programs.publication(run_id) else "claiming"
        if state == "claiming":
            await self._take_publication_slots(key, run_id, pairs)
            if not await self.programs.set_publication_state(key, self.owner, "committed"):
                raise Conflict("this publish was taken over by another replica", run_id=run_id)
        now = self.ctx.clock.now()
        agreement = Agreement(
            cadence=program["cadence"], planned_end=planned_end(now.date(), program["duration_weeks"])
        )
        correlation = correlation_id or run_id
        for n, (mid, a) in enumerate(pairs):
            change = start_from_cohort(
                mentorship_id=mid,
                mentee_id=a["mentee_id"],
                mentor_id=a["mentor_id"],
                program_id=program_id,
                run_id=run_id,
                score=a["score"],
                agreement=agreement,
                now=now,
            )
            # a mentorship started by an earlier attempt stays as it is, with its own events
            await self.mentorships.insert_started(
                [(change.after, self.ctx.events.many(change.events, correlation_id=correlation))]
            )
            if n == 0:
                crash_point(self.settings, "cohort_publish_midway")
            if n % RENEW_EVERY_PAIRS == RENEW_EVERY_PAIRS - 1 and not await self._hold_publication(key, run_id):
                raise Conflict("this publish was taken over by another replica", run_id=run_id)
        published = self.ctx.events.new(
            CohortMatchPublished(
                program_id=program_id,
                program_name=program["name"],
                run_id=run_id,
                mentorship_ids=[mid for mid, _ in pairs],
                quality=MatchQuality(**run["quality"]),
                admin_ids=[admin_id],
            ),
            correlation_id=correlation,
        )
        await self.programs.record_publication(  # once per run: a retry's copy is dropped
            run_id,
            {"program_id": program_id, "published_at": now, "mentorship_ids": [mid for mid, _ in pairs]},
            [published],
        )
        await self.programs.update_run(run_id, {"status": "published", "published_at": now})
        # its mentees are busy now: every other dry run of this version is stale
        await self.programs.update_program(program_id, {})
        await self.programs.set_publication_state(key, self.owner, "published")
        self.ctx.events_written()
        return present_run(await self.programs.get_run(run_id) or run)

    async def _take_publication_slots(self, key: str, run_id: str, pairs: list[tuple[str, dict[str, Any]]]) -> None:
        """A capacity slot per pair (one taken by an earlier attempt counts); when a mentor has
        none left, every slot of this publish goes back and the claim is dropped: stale."""
        for n, (mid, a) in enumerate(pairs):
            if await self.capacity.slot_of(a["mentor_id"], mid) is not None:
                continue
            if await self.capacity.take_slot(a["mentor_id"], mid, publication=key) is None:
                await self.capacity.release_publication_slots(key)
                await self.programs.drop_publication_claim(key)
                raise Conflict(
                    "the dry run is stale: a mentor's capacity changed since; run it again", mentor_id=a["mentor_id"]
                )
            if n % RENEW_EVERY_PAIRS == RENEW_EVERY_PAIRS - 1 and not await self._hold_publication(key, run_id):
                raise Conflict("this publish was taken over by another replica", run_id=run_id)

    async def resume_publication(self, claim: dict[str, Any]) -> str:
        """The reconciler's part: finish a publish whose replica stopped (its lease lapsed).
        Returns what became of it: published, marked (it was, only the claim said otherwise),
        rolled_back (stale), dropped (run gone), busy (another replica holds it)."""
        key, run_id = str(claim["_id"]), str(claim.get("run_id") or "")
        run = await self.programs.get_run(run_id) if run_id else None
        program = await self.programs.get_program(run["program_id"]) if run else None
        if run is None or program is None:
            await self.capacity.release_publication_slots(key)
            await self.programs.drop_publication_claim(key)
            return "dropped"
        if not await self._hold_publication(key, run_id):
            return "busy"
        if run["status"] == "published":  # only the claim's last step was left (or a claim from before steps)
            await self.programs.set_publication_state(key, self.owner, "published")
            return "marked"
        try:
            await self._complete_publication(run, program, key, str(claim.get("by") or "platform"), None)
        except Conflict as exc:
            log.warning("resumed cohort publish refused", run_id=run_id, detail=exc.detail)
            return "rolled_back" if await self.programs.publication_claim(key) is None else "busy"
        return "published"

    # --- the dry run, in the background ---------------------------------------------------------
    async def _execute_run(self, run: dict[str, Any], program: dict[str, Any], principal: Principal) -> None:
        progress = {"value": 0.0}
        lost = asyncio.Event()

        async def report() -> None:
            """Progress and the run's lease, renewed well before it lapses."""
            last, renewed = -1.0, asyncio.get_running_loop().time()
            renew_every = self.settings.cohort_run_lease_seconds / 3
            while True:
                await asyncio.sleep(min(0.3, renew_every))
                clock = asyncio.get_running_loop().time()
                if progress["value"] != last or clock - renewed >= renew_every:
                    last, renewed = progress["value"], clock
                    until = self.lease_clock.now() + self._run_lease
                    if not await self.programs.renew_run(run["_id"], self.owner, until, {"progress": round(last, 3)}):
                        lost.set()  # another replica took it over: its result counts, not ours
                        return

        reporter = asyncio.create_task(report())

        async def stop_reporting() -> None:
            # the store's updates are read-modify-write: no progress write may land after the result
            reporter.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await reporter

        async def finish(changes: dict[str, Any]) -> bool:
            await stop_reporting()
            done = await self.programs.finish_run(
                run["_id"], self.owner, {**changes, "finished_at": self.ctx.clock.now()}
            )
            if not done:
                log.warning("cohort run lost to another replica; result dropped", run_id=run["_id"])
            return done

        try:
            result = await self._compute_run(run, program, lambda f: progress.__setitem__("value", f))
            crash_point(self.settings, "cohort_run_computed")
            if lost.is_set() or not await finish({"status": "done", "progress": 1.0, **result}):
                await stop_reporting()
                return
        except cohort_solver.CohortInputError as exc:
            await finish({"status": "failed", "error": str(exc), "bad_pairs": [list(p) for p in exc.pairs]})
            return
        except Exception as exc:  # the run document tells the admin; details go to the log
            log.exception("cohort run failed", run_id=run["_id"])
            await finish({"status": "failed", "error": type(exc).__name__})
            return
        if program["mode"] == MatchingMode.AUTOMATIC:
            await self._auto_publish(run, principal)

    async def _auto_publish(self, run: dict[str, Any], principal: Principal) -> None:
        try:
            await self.publish(principal, run["program_id"], run["_id"])
        except Problem as exc:
            log.warning("automatic publish failed", run_id=run["_id"], detail=exc.detail)
            await self.programs.update_run(run["_id"], {"auto_publish_error": exc.detail})

    # --- runs whose replica stopped ------------------------------------------------------------
    async def take_over_runs(self) -> int:
        """Take over every running run whose lease lapsed: compute it here, or mark it failed with
        the reason when its attempts are used up or its program changed meanwhile. Returns how many."""
        taken = 0
        while True:
            now = self.lease_clock.now()
            run = await self.programs.take_over_run(now, self.owner, now + self._run_lease)
            if run is None:
                return taken
            taken += 1
            attempts = int(run.get("attempts") or 1)
            program = await self.programs.get_program(run["program_id"])
            reason = None
            if attempts > self.settings.cohort_run_max_attempts:
                reason = f"the replica computing this run stopped {attempts - 1} times; start a new run"
            elif program is None or program["version"] != run["program_version"]:
                reason = "the program or its enrollment changed while the run was computing; start a new run"
            if reason is not None:
                await self.programs.finish_run(
                    run["_id"], self.owner, {"status": "failed", "error": reason, "finished_at": self.ctx.clock.now()}
                )
                COHORT_RUNS_TAKEN_OVER.labels(self.settings.service_name, "failed").inc()
                log.warning("cohort run taken over and failed", run_id=run["_id"], attempts=attempts, reason=reason)
                continue
            assert program is not None
            COHORT_RUNS_TAKEN_OVER.labels(self.settings.service_name, "resumed").inc()
            log.warning("cohort run taken over from a stopped replica", run_id=run["_id"], attempts=attempts)
            self._launch(run, program, system_admin(str(run.get("created_by") or "platform")))

    async def publish_finished_automatic_runs(self) -> int:
        """Runs of automatic programs that finished but whose replica stopped before publishing."""
        grace = timedelta(seconds=self.settings.claims_grace_seconds)
        published = 0
        for run in await self.programs.runs_awaiting_auto_publish(self.ctx.clock.now() - grace):
            log.warning("publishing a finished automatic run left unpublished", run_id=run["_id"])
            await self._auto_publish(run, system_admin(str(run.get("created_by") or "platform")))
            published += 1
        return published

    async def watch_runs(self) -> None:
        """Background job on every replica: take over runs whose replica stopped."""
        while True:
            try:
                await self.take_over_runs()
            except Exception as exc:  # keep watching; the next pass retries
                log.warning("watching cohort runs failed", error=repr(exc)[:300])
            await asyncio.sleep(self.settings.cohort_run_watch_seconds)

    async def _compute_run(
        self, run: dict[str, Any], program: dict[str, Any], progress: Callable[[float], None]
    ) -> dict[str, Any]:
        now = self.ctx.clock.now()
        cap = self.settings.default_mentor_capacity
        weights, constraints = Weights(**program["weights"]), Constraints(**program["constraints"])
        mentee_ids = await self.programs.enrolled(program["_id"], "mentee")
        mentor_ids = await self.programs.enrolled(program["_id"], "mentor")
        busy = {m.mentee_id for m in await self._program_mentorships(program["_id"])}
        mentees = [
            Person.from_profile(p, now, cap)
            for p in await self.profiles.many(mentee_ids)
            if p["profile_id"] not in busy and p.get("active", True)
        ]
        mentors = [Person.from_profile(p, now, cap) for p in await self.profiles.many(mentor_ids)]
        index = MentorIndex.build(mentors)
        free_by_id = await self.capacity.free_slots(index.ids)
        free = np.array([free_by_id.get(pid, 0) for pid in index.ids], dtype=np.int64)
        excluded = await self.mentorships.excluded_mentors(
            [m.profile_id for m in mentees], forbid_repeats=constraints.forbid_repeat_partners
        )
        pins = [(p["mentee_id"], p["mentor_id"]) for p in run["pins"]]
        forbids = [(p["mentee_id"], p["mentor_id"]) for p in run["forbids"]]
        result = await asyncio.to_thread(
            cohort_solver.match_cohort,
            mentees,
            index,
            weights,
            constraints,
            free_slots=free,
            k=run["k"],
            excluded=excluded,
            pins=pins,
            forbids=forbids,
            progress=progress,
        )
        pinned = set(pins)
        assignments = [
            {
                "mentee_id": p.profile_id,
                "mentor_id": index.ids[int(j)],
                "score": round(float(s), 6),
                "pinned": (p.profile_id, index.ids[int(j)]) in pinned,
            }
            for p, j, s in zip(mentees, result.assignment, result.scores, strict=True)
            if j >= 0
        ]
        unmatched = [p.profile_id for p, j in zip(mentees, result.assignment, strict=True) if j < 0]
        return {"quality": result.quality.as_dict(), "assignments": assignments, "unmatched": unmatched}

    async def _program_mentorships(self, program_id: str) -> list[Mentorship]:
        busy = (State.REQUESTED, *HOLDS_SLOT)
        return [m for m in await self.mentorships.program_mentorships(program_id) if m.state in busy]

    async def stop(self) -> None:
        """At shutdown: dry runs still computing are handed over (their lease ends now, so another
        replica takes them over at its next look)."""
        for task in list(self._runs):
            task.cancel()
        for task in list(self._runs):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        try:
            await self.programs.release_runs(self.owner, self.lease_clock.now())
        except Exception as exc:  # the leases lapse on their own
            log.warning("handing over cohort runs failed", error=repr(exc)[:300])
