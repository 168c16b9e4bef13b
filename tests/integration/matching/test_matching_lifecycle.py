"""Requests and the mentorship lifecycle on the real broker and store."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from mentorship_contracts import Envelope, Topic, decode
from mentorship_contracts.scheduling import SessionFeedbackSubmitted
from tests.support.kafka import eventually, read_topic
from tests.support.processes import token

from .conftest import ADMIN, person, publish

pytestmark = pytest.mark.integration

MATCHING = "mentorship.matching."


async def events_of(infra, prefix, want, key=None, timeout=20.0):
    records = await read_topic(infra.kafka_bootstrap, f"{prefix}{Topic.MATCHING}", want=want, timeout=timeout)
    found = [decode(r.value) for r in records if key is None or r.key == key.encode()]
    return found


def types(envelopes):
    return [e.type.rsplit(".", 1)[1] for e in envelopes]


async def test_request_accept_with_agreement_then_complete(start_matching, register, infra, prefix):
    svc = await start_matching()
    mentor, mentee = person(["mentor"]), person(["mentee"])
    await register(svc, mentor, mentee)
    me = token(mentee.profile_id, "mentee")
    r = await svc.http.post("/mentorships", headers=me, json={"mentor_id": mentor.profile_id, "message": "Hi!"})
    assert r.status_code == 201, r.text
    mid = r.json()["mentorship_id"]
    assert r.json()["state"] == "requested"
    agreement = {
        "goals": ["Ship a library"],
        "expectations": "async answers within 2 days",
        "cadence": "weekly",
        "planned_end": (datetime.now(UTC) + timedelta(days=90)).date().isoformat(),
    }
    r = await svc.http.post(
        f"/mentorships/{mid}/accept", headers=token(mentee.profile_id, "mentor"), json={"agreement": agreement}
    )
    assert r.status_code == 403  # only the mentor
    r = await svc.http.post(
        f"/mentorships/{mid}/accept", headers=token(mentor.profile_id, "mentor"), json={"agreement": agreement}
    )
    assert r.status_code == 200, r.text
    assert r.json()["state"] == "active" and r.json()["agreement"]["cadence"] == "weekly"
    load = await svc.matching.store.load(mentor.profile_id)
    assert load["free"] == 1 and load["holders"] == [mid]
    r = await svc.http.post(f"/mentorships/{mid}/complete", headers=me)
    assert r.status_code == 200 and r.json()["state"] == "completed"
    assert (await svc.matching.store.load(mentor.profile_id))["free"] == 2
    r = await svc.http.post(f"/mentorships/{mid}/complete", headers=me)
    assert r.status_code == 409, r.text

    found = await events_of(infra, prefix, 4, key=mid)
    assert types(found) == [
        "mentorship_requested",
        "mentorship_request_accepted",
        "mentorship_started",
        "mentorship_completed",
    ]
    started = found[2].data
    # v2: the agreement's facts and flags travel, the text stays in matching (GET /mentorships/{id})
    assert started.agreement.has_expectations and started.agreement.goal_count == 1 and started.origin == "request"
    assert started.agreement.cadence == "weekly" and found[0].data.has_message is True
    assert not [e for e in found if "Hi!" in e.model_dump_json() or "async answers" in e.model_dump_json()]
    shown = (await svc.http.get(f"/mentorships/{mid}", headers=me)).json()
    assert shown["message"] == "Hi!" and shown["agreement"]["expectations"] == "async answers within 2 days"
    # the timer of an answered request is cancelled
    timer = await svc.runtime.db["timers"].find_one({"_id": f"expiry:{mid}"})
    assert timer["state"] == "cancelled"


async def test_decline_withdraw_and_end_early(start_matching, register, infra, prefix):
    svc = await start_matching()
    mentor, a, b, c = person(["mentor"], mentor_capacity=3), person(["mentee"]), person(["mentee"]), person(["mentee"])
    await register(svc, mentor, a, b, c)
    as_mentor = token(mentor.profile_id, "mentor")
    ids = {}
    for who in (a, b, c):
        r = await svc.http.post("/mentorships", headers=token(who.profile_id), json={"mentor_id": mentor.profile_id})
        assert r.status_code == 201, r.text
        ids[who.profile_id] = r.json()["mentorship_id"]
    # decline needs a reason
    r = await svc.http.post(f"/mentorships/{ids[a.profile_id]}/decline", headers=as_mentor, json={"reason": " "})
    assert r.status_code == 422 and r.headers["content-type"].startswith("application/problem+json")
    r = await svc.http.post(
        f"/mentorships/{ids[a.profile_id]}/decline", headers=as_mentor, json={"reason": "no time this quarter"}
    )
    assert r.status_code == 200 and r.json()["state"] == "declined" and r.json()["reason"] == "no time this quarter"
    # the mentee withdraws; accepting a withdrawn request is a 409 and changes nothing
    r = await svc.http.post(f"/mentorships/{ids[b.profile_id]}/withdraw", headers=token(b.profile_id))
    assert r.status_code == 200 and r.json()["state"] == "withdrawn"
    r = await svc.http.post(f"/mentorships/{ids[b.profile_id]}/accept", headers=as_mentor)
    assert r.status_code == 409 and "withdrawn" in r.json()["detail"]
    assert (await svc.matching.store.load(mentor.profile_id))["free"] == 3
    # a new request to the same mentor after a withdrawal is fine (the open-request lock is gone)
    r = await svc.http.post("/mentorships", headers=token(b.profile_id), json={"mentor_id": mentor.profile_id})
    assert r.status_code == 201
    # end early with a reason
    r = await svc.http.post(f"/mentorships/{ids[c.profile_id]}/accept", headers=as_mentor)
    assert r.status_code == 200
    r = await svc.http.post(
        f"/mentorships/{ids[c.profile_id]}/end", headers=token(c.profile_id), json={"reason": "changed teams"}
    )
    assert r.status_code == 200 and r.json()["state"] == "ended" and r.json()["not_a_good_fit"] is False
    assert (await svc.matching.store.load(mentor.profile_id))["free"] == 3  # b's new request is open, not held

    found = await events_of(infra, prefix, 9)
    by_key = {}
    for e in found:
        by_key.setdefault(e.subject, []).append(e.type.rsplit(".", 1)[1])
    assert by_key[ids[a.profile_id]] == ["mentorship_requested", "mentorship_request_declined"]
    assert by_key[ids[b.profile_id]] == ["mentorship_requested", "mentorship_request_withdrawn"]
    assert by_key[ids[c.profile_id]] == [
        "mentorship_requested",
        "mentorship_request_accepted",
        "mentorship_started",
        "mentorship_ended",
    ]


async def test_not_a_good_fit_frees_the_slot_and_excludes_the_pair(start_matching, register, infra, prefix):
    svc = await start_matching()
    mentor, other, mentee = person(["mentor"], mentor_capacity=1), person(["mentor"]), person(["mentee"])
    await register(svc, mentor, other, mentee)
    r = await svc.http.post("/mentorships", headers=token(mentee.profile_id), json={"mentor_id": mentor.profile_id})
    mid = r.json()["mentorship_id"]
    assert (await svc.http.post(f"/mentorships/{mid}/accept", headers=token(mentor.profile_id))).status_code == 200
    assert (await svc.matching.store.load(mentor.profile_id))["free"] == 0
    r = await svc.http.post(
        f"/mentorships/{mid}/end",
        headers=token(mentee.profile_id),
        json={"reason": "different expectations", "not_a_good_fit": True},
    )
    assert r.status_code == 200 and r.json()["not_a_good_fit"] is True
    assert (await svc.matching.store.load(mentor.profile_id))["free"] == 1
    # the pair is excluded from now on: no new request, no suggestion
    r = await svc.http.post("/mentorships", headers=token(mentee.profile_id), json={"mentor_id": mentor.profile_id})
    assert r.status_code == 422 and "excluded" in r.json()["detail"]
    r = await svc.http.get(f"/suggestions/{mentee.profile_id}", headers=token(mentee.profile_id))
    assert [s["mentor_id"] for s in r.json()["suggestions"]] == [other.profile_id]
    ended = [e for e in await events_of(infra, prefix, 4, key=mid) if e.type.endswith("mentorship_ended")]
    assert ended[0].data.not_a_good_fit is True


async def test_bad_requests_are_refused_and_change_nothing(start_matching, register, infra, prefix):
    svc = await start_matching()
    mentor, full, inactive, mentee = (
        person(["mentor"]),
        person(["mentor"], mentor_capacity=0),
        person(["mentor"], active=False),
        person(["mentee"]),
    )
    boss = person(["mentor"])
    report = person(["mentee"], manager_id=boss.profile_id)
    await register(svc, mentor, full, inactive, mentee, boss, report)
    me = token(mentee.profile_id)

    async def ask(body, headers=me):
        return await svc.http.post("/mentorships", headers=headers, json=body)

    cases = [
        (await ask({"mentor_id": mentee.profile_id}), 422, "mentor_id"),  # oneself
        (await ask({"mentor_id": report.profile_id}), 422, "mentor_id"),  # not a mentor
        (await ask({"mentor_id": inactive.profile_id}), 422, "mentor_id"),
        (await ask({"mentor_id": full.profile_id}), 409, None),
        (await ask({"mentor_id": "nobody"}), 422, "mentor_id"),
        (await ask({"mentor_id": boss.profile_id}, token(report.profile_id)), 422, "mentor_id"),  # own manager
        (await ask({"mentor_id": mentor.profile_id, "message": "x" * 2001}), 422, "message"),
        (await ask({"mentor_id": mentor.profile_id, "program_id": "nope"}), 422, "program_id"),
    ]
    for response, status, field in cases:
        assert response.status_code == status, response.text
        assert response.headers["content-type"].startswith("application/problem+json")
        if field:
            assert response.json()["errors"][0]["field"] == field, response.json()
    assert await svc.matching.store.versions.count_documents({}) == 0
    ok = await ask({"mentor_id": mentor.profile_id})
    assert ok.status_code == 201
    dup = await ask({"mentor_id": mentor.profile_id})
    assert dup.status_code == 409 and dup.json()["mentorship_id"] == ok.json()["mentorship_id"]
    assert await svc.matching.store.versions.count_documents({}) == 1
    found = await events_of(infra, prefix, 2, timeout=4)
    assert types(found) == ["mentorship_requested"]


async def test_admin_approval_mode(start_matching, register, infra, prefix):
    svc = await start_matching()
    mentor, mentee = person(["mentor"], mentor_capacity=1), person(["mentee"])
    await register(svc, mentor, mentee)
    r = await svc.http.post(
        "/programs",
        headers=ADMIN,
        json={
            "name": "Two-sided",
            "starts_on": "2026-01-01",
            "ends_on": "2026-12-31",
            "mode": "admin-approved",
            "cadence": "monthly",
            "duration_weeks": 20,
        },
    )
    assert r.status_code == 201, r.text
    program_id = r.json()["program_id"]
    r = await svc.http.post(
        "/mentorships",
        headers=token(mentee.profile_id),
        json={"mentor_id": mentor.profile_id, "program_id": program_id},
    )
    mid = r.json()["mentorship_id"]
    r = await svc.http.post(f"/mentorships/{mid}/accept", headers=token(mentor.profile_id))
    assert r.status_code == 200 and r.json()["state"] == "awaiting_approval"
    assert r.json()["agreement"]["cadence"] == "monthly"
    assert (await svc.matching.store.load(mentor.profile_id))["free"] == 0  # the slot is held meanwhile
    r = await svc.http.post(f"/mentorships/{mid}/approve", headers=token(mentor.profile_id, "mentor"))
    assert r.status_code == 403
    r = await svc.http.post(f"/mentorships/{mid}/approve", headers=ADMIN)
    assert r.status_code == 200 and r.json()["state"] == "active"
    found = await events_of(infra, prefix, 4, key=mid)  # and the program's ProgramCreated
    assert types(found) == ["mentorship_requested", "mentorship_request_accepted", "mentorship_started"]
    assert found[1].data.awaiting_admin_approval is True and found[2].data.program_id == program_id


async def test_reaching_capacity_declines_the_other_open_requests(start_matching, register, infra, prefix):
    svc = await start_matching()
    mentor = person(["mentor"], mentor_capacity=1)
    mentees = [person(["mentee"]) for _ in range(3)]
    await register(svc, mentor, *mentees)
    ids = []
    for m in mentees:
        r = await svc.http.post("/mentorships", headers=token(m.profile_id), json={"mentor_id": mentor.profile_id})
        ids.append(r.json()["mentorship_id"])
    assert (await svc.http.post(f"/mentorships/{ids[0]}/accept", headers=token(mentor.profile_id))).status_code == 200
    for other in ids[1:]:
        doc = (await svc.http.get(f"/mentorships/{other}", headers=ADMIN)).json()
        assert doc["state"] == "declined" and doc["automatic"] is True and "capacity" in doc["reason"]
    found = await events_of(infra, prefix, 7)
    declined = [e for e in found if e.type.endswith("request_declined")]
    assert sorted(e.subject for e in declined) == sorted(ids[1:])
    assert all(e.data.automatic for e in declined)


async def test_last_slot_concurrent_accepts_exactly_one_wins(start_matching, register, infra, prefix):
    """Run many rounds: two mentees, one slot, both accepts at once."""
    svc = await start_matching()
    rounds = 20
    mentors = [person(["mentor"], mentor_capacity=1) for _ in range(rounds)]
    mentees = [person(["mentee"]) for _ in range(2 * rounds)]
    await register(svc, *mentors, *mentees)
    for n, mentor in enumerate(mentors):
        ids = []
        for mentee in mentees[2 * n : 2 * n + 2]:
            r = await svc.http.post(
                "/mentorships", headers=token(mentee.profile_id), json={"mentor_id": mentor.profile_id}
            )
            assert r.status_code == 201, r.text
            ids.append(r.json()["mentorship_id"])
        as_mentor = token(mentor.profile_id, "mentor")
        answers = await asyncio.gather(*(svc.http.post(f"/mentorships/{i}/accept", headers=as_mentor) for i in ids))
        assert sorted(a.status_code for a in answers) == [200, 409], [a.text for a in answers]
        load = await svc.matching.store.load(mentor.profile_id)
        assert load["free"] == 0 and len(load["holders"]) == 1
        states = sorted([(await svc.matching.store.get_mentorship(i))["state"] for i in ids])
        assert states == ["active", "declined"]


async def test_expiry_fires_exactly_once_with_two_replicas(start_matching, register, infra, prefix):
    one = await start_matching(dev_clock_enabled=True, request_expiry_hours=1)
    two = await start_matching(dev_clock_enabled=True, request_expiry_hours=1)
    mentor, mentee = person(["mentor"]), person(["mentee"])
    await register(one, mentor, mentee)
    requests = []
    for _ in range(1):
        r = await one.http.post("/mentorships", headers=token(mentee.profile_id), json={"mentor_id": mentor.profile_id})
        requests.append(r.json()["mentorship_id"])
    other = person(["mentee"])
    await register(one, other)
    r = await two.http.post("/mentorships", headers=token(other.profile_id), json={"mentor_id": mentor.profile_id})
    requests.append(r.json()["mentorship_id"])
    # both replicas move their clocks past the expiry at the same time and run their timers
    moved = await asyncio.gather(
        *(svc.http.post("/_dev/clock", headers=ADMIN, json={"advance_seconds": 3601}) for svc in (one, two))
    )
    assert all(m.status_code == 200 for m in moved)
    for mid in requests:
        doc = await one.matching.store.get_mentorship(mid)
        assert doc["state"] == "expired"

    async def expiry_events():
        records = await read_topic(infra.kafka_bootstrap, f"{prefix}{Topic.MATCHING}", want=1000, timeout=1.5)
        found = {e.id: e for e in (decode(r.value) for r in records) if e.type.endswith("request_expired")}
        return found if len(found) >= len(requests) else None

    expired = await eventually(expiry_events, timeout=20)
    # once each: one expiry event per request (a relay may deliver an event twice; its id stays the same)
    assert sorted(e.subject for e in expired.values()) == sorted(requests)
    # accepting an expired request is a 409
    r = await one.http.post(f"/mentorships/{requests[0]}/accept", headers=token(mentor.profile_id))
    assert r.status_code == 409 and "expired" in r.json()["detail"]
    timers = await one.runtime.db["timers"].find({}).to_list(10)
    assert [t["state"] for t in timers] == ["fired", "fired"]


async def test_feedback_not_a_good_fit_flags_for_review(start_matching, register, infra, prefix):
    svc = await start_matching()
    mentor, mentee = person(["mentor"]), person(["mentee"])
    await register(svc, mentor, mentee)
    r = await svc.http.post("/mentorships", headers=token(mentee.profile_id), json={"mentor_id": mentor.profile_id})
    mid = r.json()["mentorship_id"]
    await svc.http.post(f"/mentorships/{mid}/accept", headers=token(mentor.profile_id))
    feedback = [
        SessionFeedbackSubmitted(
            mentorship_id=mid,
            session_id=f"s{i}",
            author_id=mentee.profile_id,
            author_role="mentee",
            rating=2,
            not_a_good_fit=flag,
        )
        for i, flag in enumerate([False, True])
    ]
    envelopes = [Envelope.wrap(f, source="scheduling") for f in feedback]
    await publish(infra, prefix, Topic.SCHEDULING, envelopes + [envelopes[1]])  # a duplicate too

    async def flagged():
        r = await svc.http.get("/mentorships/review", headers=ADMIN)
        return r.json() if r.json() else None

    queue = await eventually(flagged)
    assert [m["mentorship_id"] for m in queue] == [mid]
    await asyncio.sleep(0.5)
    flags = (await svc.http.get(f"/mentorships/{mid}", headers=ADMIN)).json()["review_flags"]
    assert len(flags) == 1 and flags[0]["session_id"] == "s1"
    assert (await svc.http.get("/mentorships/review", headers=token(mentee.profile_id))).status_code == 403
