"""Defects found by trying matching as a curious employee or an attacker would (issue 11), each
reproduced over HTTP on the real broker and store."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from mentorship_contracts import Envelope, Topic
from mentorship_contracts.scheduling import SessionFeedbackSubmitted
from mentorship_kit.policy import Policy
from tests.support.kafka import eventually
from tests.support.processes import token

from .conftest import ADMIN, person, publish

pytestmark = pytest.mark.integration

PROGRAM = {
    "name": "Autumn cohort",
    "starts_on": "2026-09-01",
    "ends_on": "2026-12-31",
    "mode": "admin-approved",
    "cadence": "weekly",
    "duration_weeks": 12,
}


async def test_a_program_is_for_admins_only(start_matching, register):
    svc = await start_matching()
    mentee = person(["mentee"])
    await register(svc, mentee)
    program_id = (await svc.http.post("/programs", headers=ADMIN, json=PROGRAM)).json()["program_id"]
    r = await svc.http.get(f"/programs/{program_id}", headers=token(mentee.profile_id, "mentee"))
    assert r.status_code == 403 and r.headers["content-type"].startswith("application/problem+json")
    r = await svc.http.get(f"/programs/{program_id}", headers=ADMIN)
    assert r.status_code == 200 and r.json()["enrolled"] == {"mentee": 0, "mentor": 0}


async def test_review_flags_are_shown_to_admins_only(start_matching, register, infra, prefix):
    svc = await start_matching()
    mentor, mentee = person(["mentor"]), person(["mentee"])
    await register(svc, mentor, mentee)
    mid = (
        await svc.http.post("/mentorships", headers=token(mentee.profile_id), json={"mentor_id": mentor.profile_id})
    ).json()["mentorship_id"]
    assert (await svc.http.post(f"/mentorships/{mid}/accept", headers=token(mentor.profile_id))).status_code == 200
    said = SessionFeedbackSubmitted(
        mentorship_id=mid,
        session_id="s1",
        author_id=mentee.profile_id,
        author_role="mentee",
        rating=1,
        not_a_good_fit=True,
    )
    await publish(infra, prefix, Topic.SCHEDULING, [Envelope.wrap(said, source="scheduling")])

    async def flagged():
        r = await svc.http.get(f"/mentorships/{mid}", headers=ADMIN)
        return r.json().get("review_flags")

    flags = await eventually(flagged)
    assert [f["author_role"] for f in flags] == ["mentee"]
    for participant in (mentor, mentee):  # the other participant never learns who said it
        r = await svc.http.get(f"/mentorships/{mid}", headers=token(participant.profile_id))
        assert r.status_code == 200 and "review_flags" not in r.json(), r.json()


async def test_an_accept_refused_by_validation_keeps_no_capacity(start_matching, register):
    svc = await start_matching()
    mentor, mentee = person(["mentor"], mentor_capacity=1), person(["mentee"])
    await register(svc, mentor, mentee)
    mid = (
        await svc.http.post("/mentorships", headers=token(mentee.profile_id), json={"mentor_id": mentor.profile_id})
    ).json()["mentorship_id"]
    past = (datetime.now(UTC) - timedelta(days=1)).date().isoformat()
    r = await svc.http.post(
        f"/mentorships/{mid}/accept", headers=token(mentor.profile_id), json={"agreement": {"planned_end": past}}
    )
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "agreement.planned_end"
    assert (await svc.matching.store.load(mentor.profile_id))["free"] == 1  # the slot was given back
    r = await svc.http.post(f"/mentorships/{mid}/accept", headers=token(mentor.profile_id))
    assert r.status_code == 200 and r.json()["state"] == "active"
    assert (await svc.matching.store.load(mentor.profile_id))["holders"] == [mid]


async def _program_with_two_dry_runs(svc, register):
    """One mentor with room for three, one mentee: both dry runs propose the same pair."""
    mentor, mentee = person(["mentor"], mentor_capacity=3), person(["mentee"])
    await register(svc, mentor, mentee)
    program_id = (await svc.http.post("/programs", headers=ADMIN, json=PROGRAM)).json()["program_id"]
    for who, role in ((mentor, "mentor"), (mentee, "mentee")):
        r = await svc.http.post(
            f"/programs/{program_id}/enrollments", headers=ADMIN, json={"profile_id": who.profile_id, "role": role}
        )
        assert r.status_code == 201
    runs = []
    for _ in range(2):
        run_id = (await svc.http.post(f"/programs/{program_id}/runs", headers=ADMIN, json={})).json()["run_id"]

        async def done(run_id=run_id):
            got = (await svc.http.get(f"/programs/{program_id}/runs/{run_id}", headers=ADMIN)).json()
            return got if got["status"] == "done" else None

        assert len((await eventually(done))["assignments"]) == 1
        runs.append(run_id)
    return program_id, runs, mentor, mentee


async def _one_mentorship_each(svc, mentor, mentee):
    mine = (await svc.http.get("/mentorships", params={"profile_id": mentee.profile_id}, headers=ADMIN)).json()
    assert [m["state"] for m in mine] == ["active"], mine
    assert len((await svc.matching.store.load(mentor.profile_id))["holders"]) == 1


async def test_a_program_version_is_published_once_one_after_the_other(start_matching, register):
    svc = await start_matching()
    program_id, (first, second), mentor, mentee = await _program_with_two_dry_runs(svc, register)
    r = await svc.http.post(f"/programs/{program_id}/runs/{first}/publish", headers=ADMIN)
    assert r.status_code == 200, r.text
    r = await svc.http.post(f"/programs/{program_id}/runs/{second}/publish", headers=ADMIN)
    assert r.status_code == 409, r.text
    await _one_mentorship_each(svc, mentor, mentee)


async def test_a_program_version_is_published_once_at_the_same_moment(start_matching, register):
    svc = await start_matching()
    program_id, runs, mentor, mentee = await _program_with_two_dry_runs(svc, register)
    answers = await asyncio.gather(
        *(svc.http.post(f"/programs/{program_id}/runs/{run}/publish", headers=ADMIN) for run in runs)
    )
    assert sorted(a.status_code for a in answers) == [200, 409], [a.text for a in answers]
    await _one_mentorship_each(svc, mentor, mentee)


async def test_every_route_declares_who_may_call_it(start_matching):
    svc = await start_matching()
    spec = (await svc.http.get("/openapi.json")).json()
    declared = {}
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            if "operations" in operation.get("tags", []):  # the kit's health, readiness, metrics
                continue
            declared[f"{method.upper()} {path}"] = operation.get("x-policy")
    assert len(declared) >= 25
    missing = [route for route, who in declared.items() if who not in {p.value for p in Policy}]
    assert not missing, missing
    assert declared["GET /programs/{program_id}"] == Policy.ADMIN
    assert declared["POST /programs/{program_id}/runs/{run_id}/publish"] == Policy.ADMIN
    assert declared["GET /mentorships/{mentorship_id}"] == Policy.PARTICIPANT


async def test_strings_and_lists_have_limits_and_single_lines_refuse_control_characters(start_matching, register):
    svc = await start_matching()
    mentor, mentee = person(["mentor"]), person(["mentee"])
    await register(svc, mentor, mentee)
    me, as_mentor = token(mentee.profile_id), token(mentor.profile_id)
    for body, field in [
        ({"mentor_id": mentor.profile_id + "\n"}, "mentor_id"),
        ({"mentor_id": mentor.profile_id, "program_id": "p\x00"}, "program_id"),
        ({"mentor_id": mentor.profile_id, "message": "hi\x1b[31m"}, "message"),
        ({"mentor_id": "x" * 65}, "mentor_id"),
    ]:
        r = await svc.http.post("/mentorships", headers=me, json=body)
        assert r.status_code == 422 and r.json()["errors"][0]["field"] == field, (body, r.text)
    r = await svc.http.post(
        "/mentorships", headers=me, json={"mentor_id": mentor.profile_id, "message": "Hi!\nLine two\ttabbed"}
    )
    assert r.status_code == 201, r.text
    mid = r.json()["mentorship_id"]
    # A 1.1 MB goal is a body over the 1 MiB cap: refused before anything reads it (413).
    r = await svc.http.post(
        f"/mentorships/{mid}/accept", headers=as_mentor, json={"agreement": {"goals": ["x" * 1_100_000]}}
    )
    assert r.status_code == 413, r.text[:300]
    for agreement, field in [
        ({"goals": ["x" * 10_000]}, "agreement.goals.0"),
        ({"goals": ["two\nlines"]}, "agreement.goals.0"),
        ({"goals": ["g"] * 21}, "agreement.goals"),
        ({"goal_ids": ["x" * 65]}, "agreement.goal_ids.0"),
        ({"expectations": "x" * 4001}, "agreement.expectations"),
    ]:
        r = await svc.http.post(f"/mentorships/{mid}/accept", headers=as_mentor, json={"agreement": agreement})
        assert r.status_code == 422 and r.json()["errors"][0]["field"] == field, (agreement, r.text[:300])
    assert (await svc.matching.store.load(mentor.profile_id))["free"] == 2
    r = await svc.http.post("/programs", headers=ADMIN, json={**PROGRAM, "name": "Spring\r\nBcc: all"})
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "name"
    r = await svc.http.post(f"/mentorships/{mid}/introductions", headers=as_mentor, json={"contact_id": "a\tb"})
    assert r.status_code == 422
    r = await svc.http.post(f"/mentorships/{mid}/decline", headers=as_mentor, json={"reason": "x" * 2001})
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "reason"
    r = await svc.http.get(f"/mentorships/{'x' * 65}", headers=as_mentor)
    assert r.status_code == 422
    r = await svc.http.post(f"/mentorships/{mid}/withdraw", headers={**me, "x-correlation-id": "c" * 129})
    assert r.status_code == 422 and (await svc.matching.store.get_mentorship(mid))["state"] == "requested"
