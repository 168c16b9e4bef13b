"""Suggestions: the best mentors for a mentee (with rotation), and the explanation of one pair."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import numpy as np

from mentorship_kit.problems import NotFound
from mentorship_kit.usecase import UseCaseContext

from ..scoring import Person, explain, violations
from ..settings import Settings
from .ports import CapacityStore, ExposureStore, MentorshipStore, ProfileReader, ProgramReader
from .profile_cache import ProfileCache
from .shared import person_of, program_config


class SuggestionUseCases:
    def __init__(
        self,
        ctx: UseCaseContext,
        *,
        settings: Settings,
        profiles: ProfileReader,
        cache: ProfileCache,
        mentorships: MentorshipStore,
        capacity: CapacityStore,
        exposures: ExposureStore,
        programs: ProgramReader,
    ) -> None:
        self.ctx = ctx
        self.settings = settings
        self.profiles = profiles
        self.cache = cache
        self.mentorships = mentorships
        self.capacity = capacity
        self.exposures = exposures
        self.programs = programs

    async def suggestions(self, mentee_id: str, k: int, program_id: str | None = None) -> dict[str, Any]:
        # independent store reads run concurrently (each is a round trip, and a scan on FerretDB);
        # a missing mentee is still reported before a bad program
        cached, config = await asyncio.gather(
            self.cache.get(), program_config(self.programs, program_id), return_exceptions=True
        )
        if isinstance(cached, BaseException):
            raise cached
        index, people = cached
        mentee = people.get(mentee_id) or await self._person(mentee_id)
        if mentee is None:
            raise NotFound("profile", mentee_id)
        if isinstance(config, BaseException):
            raise config
        weights, constraints, _ = config
        excluded = await self.mentorships.excluded_mentors(
            [mentee_id], forbid_repeats=constraints.forbid_repeat_partners
        )
        scores = index.score_one(mentee, weights, constraints, excluded=excluded.get(mentee_id, ()))
        # the index changes in place while this call awaits the store: keep what was scored
        ids, mentors, capacity = list(index.ids), list(index.mentors), index.capacity.copy()
        now = self.ctx.clock.now()
        picked: list[int] = []
        # Look at the best few at a time: full mentors and ones already shown to as many other
        # mentees as they have free slots drop out (rotation), the next best step in.
        step = max(4 * k, 20)
        order = _best_first(scores, step)
        start = 0
        while len(picked) < k and start < len(scores):
            if start >= len(order):  # the first window was not enough: sort the rest too
                order = np.argsort(-scores, kind="stable")
            window = [int(j) for j in order[start : start + step] if scores[j] >= 0]
            start += step
            if not window:
                break
            window_ids = [ids[j] for j in window]
            held, shown = await asyncio.gather(
                self.capacity.slots_held(window_ids), self.exposures.exposures_by_others(window_ids, mentee_id, now)
            )
            for j, pid in zip(window, window_ids, strict=True):
                free = int(capacity[j]) - held.get(pid, 0)
                if free > 0 and shown.get(pid, 0) < free:
                    picked.append(j)
                    if len(picked) == k:
                        break
        chosen = [ids[j] for j in picked]
        hold = timedelta(minutes=self.settings.suggestion_hold_minutes)
        if hold:
            await self.exposures.expose(mentee_id, chosen, now + hold)
        items = [{"mentor_id": ids[j], **explain(mentee, mentors[j], weights, constraints)} for j in picked]
        return {"mentee_id": mentee_id, "program_id": program_id, "suggestions": items}

    async def explain_pair(self, mentee_id: str, mentor_id: str, program_id: str | None) -> dict[str, Any]:
        mentee, mentor = await self._person(mentee_id), await self._person(mentor_id)
        if mentee is None:
            raise NotFound("profile", mentee_id)
        if mentor is None:
            raise NotFound("profile", mentor_id)
        weights, constraints, _ = await program_config(self.programs, program_id)
        excluded = await self.mentorships.excluded_mentors(
            [mentee_id], forbid_repeats=constraints.forbid_repeat_partners
        )
        free = (await self.capacity.free_slots([mentor_id])).get(mentor_id, 0)
        found = violations(
            mentee, mentor, constraints, excluded=frozenset(excluded.get(mentee_id, ())), free_slots=free
        )
        return {
            "mentee_id": mentee_id,
            "mentor_id": mentor_id,
            "eligible": not found,
            "violations": found,
            **explain(mentee, mentor, weights, constraints),
        }

    async def _person(self, profile_id: str) -> Person | None:
        return await person_of(self.profiles, self.ctx.clock, self.settings.default_mentor_capacity, profile_id)


def _best_first(scores: np.ndarray, n: int) -> np.ndarray:
    """Indices of the n best scores, best first (a partial sort: 15k mentors, a few wanted)."""
    if n >= len(scores):
        return np.argsort(-scores, kind="stable")
    top = np.argpartition(-scores, n - 1)[:n]
    return top[np.argsort(-scores[top], kind="stable")]
