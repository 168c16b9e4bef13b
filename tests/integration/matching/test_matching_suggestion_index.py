"""Warm start of suggestions on the real broker and store: /ready says ready only with the mentor
index built; afterwards a new, changed or erased mentor shows up in or leaves the suggestions
without a restart and without a rebuild of the index."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from mentorship_contracts import Envelope, Topic
from mentorship_contracts.profile import ProfileDeactivated, ProfileErased, ProfileState
from tests.support.kafka import eventually
from tests.support.processes import token

from .conftest import person, publish

pytestmark = pytest.mark.integration


def mentee():
    return person(["mentee"], development_areas=["python", "kubernetes"], seniority="junior", skills=[])


async def test_ready_with_the_index_built_and_mentors_follow_changes_in_place(start_matching, register, infra, prefix):
    svc = await start_matching()
    ready = await eventually(lambda: _ready(svc), timeout=180)  # a loaded shared machine
    assert ready["checks"]["mentor_index"] == "ok" and svc.matching.cache.ready
    index, _ = await svc.matching.cache.get()

    seeker = mentee()
    strong = person(["mentor"], skills=[{"name": "python", "proficiency": 5}, {"name": "kubernetes", "proficiency": 5}])
    other = person(["mentor"], skills=[{"name": "python", "proficiency": 2}])
    await register(svc, seeker, strong, other)
    me = token(seeker.profile_id, "mentee")

    async def suggested() -> list[str]:
        r = await svc.http.get(f"/suggestions/{seeker.profile_id}?k=5", headers=me)
        assert r.status_code == 200, r.text
        return [s["mentor_id"] for s in r.json()["suggestions"]]

    assert await suggested() == [strong.profile_id, other.profile_id]  # new mentors, no restart

    # A changed mentor (their new state on profile.state): the strong one now only cooks, so the
    # other one ranks first.
    cooking = strong.model_copy(update={"skills": [strong.skills[0].model_copy(update={"name": "cooking"})]})
    now = datetime.now(UTC)
    await publish(
        infra,
        prefix,
        Topic.PROFILE_STATE,
        [
            Envelope.wrap(
                ProfileState(profile_id=strong.profile_id, version=2, profile=cooking), source="profile", time=now
            )
        ],
    )
    await eventually(lambda: _equals(suggested, [other.profile_id, strong.profile_id]), timeout=60)

    # A deactivated mentor and an erased one leave the suggestions.
    await publish(
        infra,
        prefix,
        Topic.PROFILE,
        [
            Envelope.wrap(ProfileDeactivated(profile_id=other.profile_id, reason="leave"), source="profile", time=now),
            Envelope.wrap(ProfileErased(profile_id=strong.profile_id), source="profile", time=now),
        ],
    )
    await eventually(lambda: _equals(suggested, []), timeout=60)
    same, people = await svc.matching.cache.get()
    assert same is index  # followed every change in place: never rebuilt
    assert strong.profile_id not in same.position and strong.profile_id not in people


async def _ready(svc):
    r = await svc.http.get("/ready")
    return r.json() if r.status_code == 200 else None


async def _equals(check, want):
    return await check() == want
