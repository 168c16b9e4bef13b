"""Erasure in insights over the real broker and store: a person with a full history (profile with
name, address, job title, skills and goals; a request with a message; an agreement; sessions with
agenda and notes; feedback with a comment; a milestone; an enrolment) is erased; then no string in
any document of any collection of insights' database holds any of it, the anonymous counts stay,
a second erasure changes nothing, and neither a ProfileState after the erase nor a re-driven
version 1 ProfileUpdated or ProfileRegistered brings the person back."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from mentorship_contracts import Envelope, EventData
from mentorship_contracts.matching import (
    Agreement,
    MentorshipRequested,
    MentorshipStarted,
    ProgramCreated,
    ProgramParticipantEnrolled,
)
from mentorship_contracts.profile import ProfileErased, ProfileRegistered, ProfileSnapshot, ProfileState, ProfileUpdated
from mentorship_contracts.scheduling import (
    MilestoneReached,
    SessionCompleted,
    SessionFeedbackSubmitted,
    SessionScheduled,
)
from mentorship_ops import kafka_ops
from tests.support.kafka import eventually
from tests.support.processes import token
from tests.support.scan import found_in

from .conftest import Running, publish

pytestmark = pytest.mark.integration

ADMIN = token("admin-1", "admin")
NOW = datetime.now(UTC)


def env(data: EventData, days_ago: float) -> Envelope[Any]:
    return Envelope.wrap(data, source="test", time=NOW - timedelta(days=days_ago))


async def own_state(svc: Running) -> dict[str, list[dict[str, Any]]]:
    db = svc.runtime.db
    return {
        name: [d async for d in db[name].find({}).sort("_id", 1)]
        for name in sorted(await db.list_collection_names())
        if name not in ("processed_events", "ops_consumers")
    }


# Read without processed marks: profile.state (a table) and the version 1 profile snapshots, which are
# read as version 2 and skipped (insights takes people from profile.state): their group's lag tells.
UNMARKED = {ProfileState: "profile-state", ProfileRegistered: "profiles", ProfileUpdated: "profiles"}


async def handled(svc: Running, *events: Envelope[Any]) -> bool:
    """Every event marked processed, or (see UNMARKED) its consumer group read up to the end."""
    db = svc.runtime.db
    bootstrap = svc.runtime.settings.kafka_bootstrap_servers
    for name in {UNMARKED[type(e.data)] for e in events if type(e.data) in UNMARKED}:
        group = svc.runtime.topics.group("insights", name)
        lags = [g for g in await kafka_ops.group_lags(bootstrap, group) if g.group == group]
        if not lags or any(g.lag for g in lags):
            return False
    for e in events:
        if type(e.data) in UNMARKED:
            continue
        if await db["processed_events"].find_one({"_id": {"$regex": f":{e.id}$"}}) is None:
            return False
    return True


async def test_an_erased_person_leaves_nothing_personal_and_late_events_bring_nothing_back(
    start_insights, infra, prefix
) -> None:
    u = uuid.uuid4().hex[:6]
    ada, grace, program = f"ada-{u}", f"grace-{u}", f"prog-{u}"
    skill = f"erasedskill{u}"
    ada_profile = ProfileSnapshot(
        profile_id=ada,
        display_name="Ada Lovelace",
        email=f"ada.{u}@example.org",
        roles=["mentee"],
        job_title="Analyst of engines",
        department="Difference dept",
        development_areas=[skill],
        goals=[{"goal_id": "g1", "title": "Publish the notes on the engine", "skills": [skill]}],
    )
    grace_profile = ProfileSnapshot(
        profile_id=grace,
        display_name="Grace Hopper",
        email=f"grace.{u}@example.org",
        roles=["mentor"],
        skills=[{"name": "cobol"}],
        mentor_capacity=2,
    )
    words = (
        "I keep freezing in front of the board",
        "Speak calmly at reviews",
        "Rehearse the pitch",
        "She rehearsed twice",
        "Ada was a delight",
        "First talk without notes",
        "Weekly calls, cameras on",
    )
    m = dict(mentorship_id=f"ms-{u}", mentee_id=ada, mentor_id=grace)
    s = dict(**m, session_id=f"s-{u}", ical_uid=f"s-{u}@x")
    start = NOW - timedelta(days=5)
    history = [
        env(ProfileState(profile_id=ada, version=1, profile=ada_profile), 30),
        env(ProfileState(profile_id=grace, version=1, profile=grace_profile), 30),
        env(
            ProgramCreated(program_id=program, name="Spring", mode="self-select", created_at=NOW - timedelta(days=29)),
            29,
        ),
        env(
            ProgramParticipantEnrolled(
                program_id=program,
                profile_id=ada,
                role="mentee",
                enrolment_id=f"{program}:mentee:{ada}#1",
                enrolled_at=NOW - timedelta(days=28),
            ),
            28,
        ),
        env(MentorshipRequested(**m, program_id=program, message=words[0], expires_at=NOW + timedelta(days=5)), 20),
        env(
            MentorshipStarted(
                **m,
                program_id=program,
                agreement=Agreement(goals=[words[1]], expectations=words[6]),
                started_at=NOW - timedelta(days=19),
            ),
            19,
        ),
        env(SessionScheduled(**s, start=start, duration_minutes=30, agenda=words[2], scheduled_by=ada), 10),
        env(SessionCompleted(**s, start=start, completed_at=start + timedelta(minutes=30), notes=words[3]), 5),
        env(
            SessionFeedbackSubmitted(
                mentorship_id=m["mentorship_id"],
                session_id=s["session_id"],
                author_id=grace,
                author_role="mentor",
                rating=5,
                comment=words[4],
            ),
            5,
        ),
        env(MilestoneReached(**m, milestone_id="mi1", title=words[5], reached_at=NOW - timedelta(days=4)), 4),
    ]
    secrets = (
        "Ada Lovelace",
        f"ada.{u}@example.org",
        "Analyst of engines",
        "Difference dept",
        "Publish the notes",
        *words,
    )
    svc = await start_insights()
    await publish(infra, prefix, history)
    await eventually(lambda: handled(svc, *history), timeout=60)
    r = await svc.http.get("/insights/supply-gap", headers=ADMIN)
    assert skill in {g["skill"] for g in r.json()["skills"]}  # what she sought was known
    health = (await svc.http.get(f"/programs/{program}/health", headers=ADMIN)).json()["figures"]

    erased = env(ProfileErased(profile_id=ada), 1)
    await publish(infra, prefix, [erased])
    await eventually(lambda: handled(svc, erased))
    assert await found_in(svc.runtime.db, (*secrets, skill)) == []
    tombstone = await svc.runtime.db["people"].find_one({"_id": ada})
    assert set(tombstone) == {"_id", "erased", "as_of"}
    r = await svc.http.get("/insights/supply-gap", headers=ADMIN)
    assert skill not in {g["skill"] for g in r.json()["skills"]}
    r = await svc.http.get(f"/programs/{program}/pairs.csv", headers=ADMIN)
    assert ada not in r.text and "erased" in r.text
    # The counts built from the pair stay (anonymous figures).
    after = (await svc.http.get(f"/programs/{program}/health", headers=ADMIN)).json()["figures"]
    assert after["active_pairs"]["value"] == health["active_pairs"]["value"]

    # Again: nothing changes. Late: a newer ProfileState (a replay before compaction), and a re-driven
    # version 1 ProfileUpdated and ProfileRegistered (read as version 2: no personal data).
    before = await own_state(svc)
    again = env(ProfileErased(profile_id=ada), 0.5)
    await publish(infra, prefix, [again])
    await eventually(lambda: handled(svc, again))
    assert await own_state(svc) == before
    late = [
        env(
            ProfileUpdated(
                profile_id=ada,
                changed_fields=["job_title"],
                changes={"job_title": "Analyst of engines"},
                profile=ada_profile,
            ),
            0,
        ),
        Envelope.wrap(
            ProfileRegistered(profile_id=ada, profile=ada_profile), source="test", time=NOW - timedelta(days=30)
        ),
        env(ProfileState(profile_id=ada, version=9, profile=ada_profile), 0),
    ]
    await publish(infra, prefix, late)
    await eventually(lambda: handled(svc, *late))
    assert await found_in(svc.runtime.db, (*secrets, skill)) == []
    assert await own_state(svc) == before
