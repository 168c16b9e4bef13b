"""The suggestion index: built once (not ready before), then following changes in place, and
scoring exactly like an index built from scratch over the same mentors."""

from __future__ import annotations

import asyncio
from typing import Any

import numpy as np

from matching_service.application.profile_cache import ProfileCache
from matching_service.domain import Constraints, Weights
from matching_service.scoring import MentorIndex, Person

from .fakes import FixedClock
from .test_matching_candidates import _people


class FakeChanges:
    """The read model as a change feed (documents with a change number, tombstones too)."""

    def __init__(self) -> None:
        self.docs: dict[str, dict[str, Any]] = {}
        self.counter = 0
        self.full_reads = 0
        self.release_full_read = asyncio.Event()
        self.release_full_read.set()

    def write(self, profile_id: str, profile: dict[str, Any] | None) -> None:
        self.counter += 1
        if profile is None:
            self.docs[profile_id] = {"_id": profile_id, "erased": True, "seq": self.counter}
        else:
            self.docs[profile_id] = {"_id": profile_id, "erased": False, "seq": self.counter, "profile": profile}

    async def version(self) -> int:
        return self.counter

    async def live_with_seq(self) -> list[dict[str, Any]]:
        self.full_reads += 1
        await self.release_full_read.wait()
        return [d for d in self.docs.values() if not d["erased"]]

    async def changed_since(self, seq: int) -> list[tuple[str, int]]:
        return [(pid, d["seq"]) for pid, d in self.docs.items() if d["seq"] > seq]

    async def documents(self, profile_ids: list[str]) -> list[dict[str, Any]]:
        return [self.docs[p] for p in profile_ids if p in self.docs]


def mentor(pid: str, skill: str = "python", **fields: Any) -> dict[str, Any]:
    return {
        "profile_id": pid,
        "roles": ["mentor"],
        "active": True,
        "time_zone": "UTC",
        "languages": ["en"],
        "skills": [{"name": skill, "proficiency": 4}],
        "seniority": "staff",
        "mentor_capacity": 2,
        **fields,
    }


async def test_not_ready_until_built_then_changes_apply_in_place_without_rebuilding():
    feed = FakeChanges()
    feed.write("r1", mentor("r1"))
    feed.write("r2", mentor("r2", "go"))
    feed.release_full_read.clear()
    cache = ProfileCache(feed, FixedClock(), 2, poll_seconds=0.01, settle_seconds=0.05)
    job = asyncio.create_task(cache.run())
    try:
        await asyncio.sleep(0.05)
        assert not cache.ready and cache.readiness().startswith("building")
        feed.release_full_read.set()
        for _ in range(100):
            if cache.ready:
                break
            await asyncio.sleep(0.01)
        assert cache.readiness() == "ok"
        index, _ = await cache.get()
        assert sorted(p for p in index.ids if p) == ["r1", "r2"]

        feed.write("r3", mentor("r3", "rust"))  # new
        feed.write("r1", mentor("r1", active=False))  # deactivated
        feed.write("r2", mentor("r2", "python"))  # changed skills
        feed.write("r4", mentor("r4"))
        feed.write("r4", None)  # erased
        feed.write("e1", {**mentor("e1"), "roles": ["mentee"]})  # a mentee: a person, not a mentor
        for _ in range(100):
            if "r3" in index.position and "r1" not in index.position:
                break
            await asyncio.sleep(0.01)
        same, people = await cache.get()
        assert same is index and feed.full_reads == 1  # changed in place, never rebuilt
        assert sorted(index.position) == ["r2", "r3"]
        assert "r4" not in people and "e1" in people and "r1" in people
        assert index.mentors[index.position["r2"]].skills == {"python": 4}
        scores = index.score_one(people["e1"], Weights(), Constraints())
        assert (scores >= 0).sum() == 2  # vacant columns never score
    finally:
        job.cancel()


async def test_get_catches_up_with_a_change_the_poll_has_not_seen():
    feed = FakeChanges()
    cache = ProfileCache(feed, FixedClock(), 2)
    index, _ = await cache.get()
    assert len(index.position) == 0
    feed.write("r1", mentor("r1"))
    index, _ = await cache.get()
    assert list(index.position) == ["r1"] and feed.full_reads == 1


def test_in_place_changes_score_like_a_fresh_build():
    rng = np.random.default_rng(3)
    mentors, mentees = _people(rng, 300, True), _people(rng, 50, False)
    index = MentorIndex.build(mentors[:100])
    for m in mentors[100:]:
        index.upsert(m)
    for m in mentors[:40]:
        index.remove(m.profile_id)
    changed = [Person(**{**m.__dict__, "skills": {"s1": 5}, "slots": (3, 4)}) for m in mentors[40:60]]
    for m in changed:
        index.upsert(m)
    alive = changed + mentors[60:]
    fresh = MentorIndex.build(alive)
    constraints = Constraints(max_tz_distance_hours=6)
    order = [index.position[m.profile_id] for m in fresh.mentors]
    for mentee in mentees:
        got = index.score_one(mentee, Weights(), constraints)
        want = fresh.score_one(mentee, Weights(), constraints)
        np.testing.assert_allclose(got[order], want, atol=1e-6)
        assert (np.delete(got, order) == -1).all()
    block = index.score_block(mentees, Weights(), constraints)
    np.testing.assert_allclose(block[:, order], fresh.score_block(mentees, Weights(), constraints), atol=1e-6)
