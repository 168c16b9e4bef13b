"""Cohort runs: a dry run proposes an optimal matching of a program's enrollees (in the
background, with progress); an admin reviews it and publishes it, which starts every proposed
mentorship at once."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Callable
from typing import Any

import numpy as np
import structlog

from mentorship_contracts.matching import Agreement, CohortMatchPublished, MatchQuality
from mentorship_kit.auth import Principal
from mentorship_kit.problems import Conflict, NotFound, Problem, Unprocessable
from mentorship_kit.usecase import UseCaseContext

from .. import cohort as cohort_solver
from ..domain import HOLDS_SLOT, Constraints, MatchingMode, Mentorship, State, Weights, planned_end, start_from_cohort
from ..scoring import MentorIndex, Person
from ..settings import Settings
from .ports import CapacityStore, MentorshipStore, ProfileReader, ProgramStore
from .shared import new_id, page, present_run

log = structlog.get_logger()
Pair = tuple[str, str]


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
        doc = {
            "_id": run_id,
            "program_id": program_id,
            "program_version": program["version"],
            "status": "running",
            "progress": 0.0,
            "created_at": self.ctx.clock.now(),
            "created_by": principal.subject,
            "k": k or self.settings.cohort_candidates_k,
            "pins": [{"mentee_id": a, "mentor_id": b} for a, b in pins],
            "forbids": [{"mentee_id": a, "mentor_id": b} for a, b in forbids],
        }
        await self.programs.insert_run(doc)
        task = asyncio.create_task(self._execute_run(doc, program, principal))
        self._runs.add(task)
        task.add_done_callback(self._runs.discard)
        return present_run(doc)

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
        or a mentor's capacity changed since) is refused and nothing is written."""
        principal.require_admin()
        run = await self.programs.get_run(run_id)
        if run is None or run["program_id"] != program_id:
            raise NotFound("run", run_id)
        if run["status"] == "published" or await self.programs.publication(run_id):
            raise Conflict("this run is already published")
        if run["status"] != "done":
            raise Conflict(f"only a finished dry run can be published (this one is {run['status']})")
        program = await self.programs.get_program(program_id)
        if program is None:
            raise NotFound("program", program_id)
        if program["version"] != run["program_version"]:
            raise Conflict(
                "the dry run is stale: the program or its enrollment changed since; run it again",
                program_version=program["version"],
                run_program_version=run["program_version"],
            )
        # One publication per program version, whichever dry run of it comes first: the claim is
        # one insert with a unique id (atomic on every store), so concurrent publishes cannot both win.
        claim = publication_key(program_id, run["program_version"])
        if not await self.programs.claim_publication(
            claim, {"run_id": run_id, "by": principal.subject, "at": self.ctx.clock.now()}
        ):
            raise Conflict(
                "this version of the program is published already (by this or another dry run); "
                "a new enrollment makes a new version to run and publish",
                program_version=run["program_version"],
            )
        now = self.ctx.clock.now()
        pairs = [(str(uuid.uuid5(uuid.NAMESPACE_URL, f"{run_id}:{a['mentee_id']}")), a) for a in run["assignments"]]
        taken: list[str] = []
        for mid, a in pairs:
            slot = await self.capacity.take_slot(a["mentor_id"], mid)
            if slot is None:
                for claim_id in taken:
                    await self.capacity.release_claim(claim_id)
                await self.programs.drop_publication_claim(claim)
                raise Conflict(
                    "the dry run is stale: a mentor's capacity changed since; run it again", mentor_id=a["mentor_id"]
                )
            taken.append(slot["claim_id"])
        agreement = Agreement(
            cadence=program["cadence"], planned_end=planned_end(now.date(), program["duration_weeks"])
        )
        correlation = correlation_id or run_id
        started = []
        for mid, a in pairs:
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
            started.append((change.after, self.ctx.events.many(change.events, correlation_id=correlation)))
        await self.mentorships.insert_started(started)
        published = self.ctx.events.new(
            CohortMatchPublished(
                program_id=program_id,
                program_name=program["name"],
                run_id=run_id,
                mentorship_ids=[mid for mid, _ in pairs],
                quality=MatchQuality(**run["quality"]),
                admin_ids=[principal.subject],
            ),
            correlation_id=correlation,
        )
        await self.programs.record_publication(
            run_id,
            {"program_id": program_id, "published_at": now, "mentorship_ids": [mid for mid, _ in pairs]},
            [published],
        )
        await self.programs.update_run(run_id, {"status": "published", "published_at": now})
        # its mentees are busy now: every other dry run of this version is stale
        await self.programs.update_program(program_id, {})
        self.ctx.events_written()
        return present_run(await self.programs.get_run(run_id) or run)

    # --- the dry run, in the background ---------------------------------------------------------
    async def _execute_run(self, run: dict[str, Any], program: dict[str, Any], principal: Principal) -> None:
        progress = {"value": 0.0}

        async def report() -> None:
            last = -1.0
            while True:
                await asyncio.sleep(0.3)
                if progress["value"] != last:
                    last = progress["value"]
                    await self.programs.update_run(run["_id"], {"progress": round(last, 3)})

        reporter = asyncio.create_task(report())

        async def stop_reporting() -> None:
            # the store's updates are read-modify-write: no progress write may land after the result
            reporter.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await reporter

        try:
            result = await self._compute_run(run, program, lambda f: progress.__setitem__("value", f))
            await stop_reporting()
            await self.programs.update_run(run["_id"], {"status": "done", "progress": 1.0, **result})
        except cohort_solver.CohortInputError as exc:
            await stop_reporting()
            await self.programs.update_run(
                run["_id"], {"status": "failed", "error": str(exc), "bad_pairs": [list(p) for p in exc.pairs]}
            )
            return
        except Exception as exc:  # the run document tells the admin; details go to the log
            await stop_reporting()
            log.exception("cohort run failed", run_id=run["_id"])
            await self.programs.update_run(run["_id"], {"status": "failed", "error": type(exc).__name__})
            return
        if program["mode"] == MatchingMode.AUTOMATIC:
            try:
                await self.publish(principal, program["_id"], run["_id"])
            except Problem as exc:
                log.warning("automatic publish failed", run_id=run["_id"], detail=exc.detail)

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
        """At shutdown: dry runs still computing are abandoned (their run stays `running`)."""
        for task in list(self._runs):
            task.cancel()
        for task in list(self._runs):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
