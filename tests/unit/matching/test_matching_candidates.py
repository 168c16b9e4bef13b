"""Candidate generation works in blocks on threads and merges each mentor's list block by block:
it must return exactly what sorting every pair's score returns."""

from __future__ import annotations

import numpy as np

from matching_service.cohort import generate_candidates
from matching_service.domain import Constraints, Weights
from matching_service.scoring import MentorIndex, Person, top_k

SKILLS = [f"s{i}" for i in range(60)]
OFFSETS = [-480, -300, 0, 60, 330, 540]


def _people(rng: np.random.Generator, n: int, mentor: bool) -> list[Person]:
    popularity = 1.0 / np.arange(1, len(SKILLS) + 1)
    popularity /= popularity.sum()
    out = []
    for i in range(n):
        picked = rng.choice(len(SKILLS), size=int(rng.integers(3, 9)), replace=False, p=popularity)
        out.append(
            Person(
                profile_id=f"{'r' if mentor else 'e'}{i}",
                skills={SKILLS[s]: int(rng.integers(1, 6)) for s in picked} if mentor else {},
                needs={} if mentor else {SKILLS[s]: float(rng.choice([0.4, 0.7, 1.0])) for s in picked},
                seniority=int(rng.integers(0, 8)),
                languages=frozenset(["en"] if rng.random() < 0.8 else ["de"]),
                offset_minutes=int(rng.choice(OFFSETS)),
                slots=tuple(sorted(set(rng.integers(0, 168, size=int(rng.integers(0, 8))).tolist()))),
                meeting=int(rng.integers(0, 4)),
                manager_id=f"r{i % 7}" if not mentor and i % 50 == 0 else None,
                roles=frozenset({"mentor"} if mentor else {"mentee"}),
                capacity=int(rng.integers(0, 4)),
            )
        )
    return out


def test_candidates_equal_sorting_every_pair():
    rng = np.random.default_rng(7)
    mentees, mentors = _people(rng, 2600, False), _people(rng, 1500, True)
    index = MentorIndex.build(mentors)
    free = index.capacity.copy()
    excluded = {"e3": {"r1", "r2"}}
    for constraints in (Constraints(max_tz_distance_hours=6), Constraints()):
        full = index.score_block(mentees, Weights(), constraints, free_slots=free, excluded=excluded)
        _, want_rows = top_k(full, 10)
        _, want_mentors = top_k(np.ascontiguousarray(full.T), 50)
        cand = generate_candidates(
            mentees, index, Weights(), constraints, k=10, free_slots=free, excluded=excluded, block_cells=200_000
        )
        np.testing.assert_array_equal(cand.scores, want_rows)
        np.testing.assert_array_equal(cand.mentor_scores, want_mentors)
        got = np.take_along_axis(full, np.maximum(cand.cols, 0), axis=1)
        np.testing.assert_array_equal(np.where(cand.cols >= 0, got, -1.0), cand.scores)
