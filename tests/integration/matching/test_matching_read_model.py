"""The profile read model from profile.state and the profile events: idempotent, order-safe,
replayable, forgets."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from mentorship_contracts import Envelope, Topic
from mentorship_contracts.profile import (
    ProfileDeactivated,
    ProfileErased,
    ProfileReactivated,
    ProfileRoleAdded,
    ProfileRoleRemoved,
    ProfileState,
)
from tests.support.kafka import eventually
from tests.support.processes import token

from .conftest import ADMIN, person, publish

pytestmark = pytest.mark.integration


async def test_all_profile_events_build_the_read_model_and_a_replay_builds_the_same(start_matching, infra, prefix):
    svc = await start_matching()
    t0 = datetime.now(UTC) - timedelta(hours=1)

    def at(seconds: int) -> datetime:
        return t0 + timedelta(seconds=seconds)

    p = person(["mentee"], skills=[{"name": "go", "proficiency": 2}])
    changed = p.model_copy(
        update={"skills": p.skills[:0] + [p.skills[0].model_copy(update={"proficiency": 5})], "job_title": "Engineer"}
    )
    gone = person(["mentor"])
    pid, gid = p.profile_id, gone.profile_id
    roles_added = changed.model_copy(update={"roles": ["mentee", "mentor"], "mentor_capacity": 3})
    mentor_only = roles_added.model_copy(update={"roles": ["mentor"]})

    def state(profile, version: int, second: int) -> Envelope:
        return Envelope.wrap(
            ProfileState(profile_id=profile.profile_id, version=version, profile=profile),
            source="profile",
            time=at(second),
        )

    # What the profile service publishes: the whole profile on profile.state after every change...
    states = [
        state(p, 1, 1),
        state(changed, 2, 2),
        state(roles_added, 3, 3),
        state(roles_added.model_copy(update={"active": False}), 4, 4),
        state(roles_added, 5, 5),
        state(mentor_only, 6, 6),
        state(gone, 1, 1),
    ]
    # ...and the events (ids and facts) on profile.events; the two topics are read independently.
    events = [
        Envelope.wrap(
            ProfileRoleAdded(profile_id=pid, role="mentor", roles=["mentee", "mentor"], mentor_capacity=3),
            source="profile",
            time=at(3),
        ),
        Envelope.wrap(ProfileDeactivated(profile_id=pid, reason="leave"), source="profile", time=at(4)),
        Envelope.wrap(ProfileReactivated(profile_id=pid), source="profile", time=at(5)),
        Envelope.wrap(
            ProfileRoleRemoved(profile_id=pid, role="mentee", roles=["mentor"]), source="profile", time=at(6)
        ),
        Envelope.wrap(ProfileErased(profile_id=gid), source="profile", time=at(7)),
    ]
    stale = state(p, 1, 0)  # older than everything: must change nothing
    await publish(infra, prefix, Topic.PROFILE, events + [events[1], events[4], events[3]])
    await publish(infra, prefix, Topic.PROFILE_STATE, states + [states[1], states[6], stale, states[5]])

    async def settled(app):
        doc = await app.app.state.profiles.get(pid)
        tomb = await app.app.state.profiles.coll.find_one({"_id": gid})
        if doc and doc["profile"]["roles"] == ["mentor"] and tomb and tomb.get("erased"):
            return doc
        return None

    doc = await eventually(lambda: settled(svc), timeout=90)
    _check(doc)
    assert (await svc.matching.store.load(pid))["capacity"] == 3
    r = await svc.http.get(f"/read-models/profiles/{gid}", headers=ADMIN)
    assert r.status_code == 404
    tomb = await svc.app.state.profiles.coll.find_one({"_id": gid})
    assert set(tomb) == {
        "_id",
        "erased",
        "as_of",
        "roles",
        "active",
        "seq",
    }  # no personal data left (seq: change number)
    r = await svc.http.get(f"/read-models/profiles/{pid}", headers=token(pid))
    assert r.status_code == 200 and r.json()["profile"]["job_title"] == "Engineer"
    # The erased mentor never shows up in suggestions; the live one (now a mentor) does not mentor themself.
    index, _ = await svc.matching.cache.fresh()
    assert gid not in index.ids and pid in index.ids

    # Replay from offset zero into a fresh database (another consumer group): the same result.
    replay = await start_matching(service_name="matching-replay")
    doc = await eventually(lambda: settled(replay), timeout=90)  # two groups to join, from the start
    _check(doc)
    assert await replay.app.state.profiles.get(gid) is None


def _check(doc):
    profile = doc["profile"]
    assert profile["roles"] == ["mentor"]
    assert profile["active"] is True
    assert profile["mentor_capacity"] == 3
    assert profile["skills"] == [{"name": "go", "proficiency": 5}]
