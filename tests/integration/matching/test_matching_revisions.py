"""Agreement revisions over HTTP on the real broker and store: a participant proposes, the other
accepts, `MentorshipAgreementRevised` reaches the topic; strangers and admins get 403, answers
the proposal's state does not allow get 409 (the proposer accepting their own included)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from mentorship_contracts import Topic, decode
from tests.support.kafka import read_topic
from tests.support.processes import token

from .conftest import ADMIN, person

pytestmark = pytest.mark.integration

MATCHING = "mentorship.matching."


async def active_mentorship(svc, register) -> tuple[str, str, str]:
    mentor, mentee = person(["mentor"]), person(["mentee"])
    await register(svc, mentor, mentee)
    r = await svc.http.post(
        "/mentorships", headers=token(mentee.profile_id, "mentee"), json={"mentor_id": mentor.profile_id}
    )
    assert r.status_code == 201, r.text
    mid = r.json()["mentorship_id"]
    r = await svc.http.post(
        f"/mentorships/{mid}/accept",
        headers=token(mentor.profile_id, "mentor"),
        json={"agreement": {"cadence": "monthly"}},
    )
    assert r.status_code == 200 and r.json()["state"] == "active", r.text
    return mid, mentee.profile_id, mentor.profile_id


async def test_propose_then_the_other_accepts_and_the_event_is_published(start_matching, register, infra, prefix):
    svc = await start_matching()
    mid, mentee, mentor = await active_mentorship(svc, register)
    planned_end = (datetime.now(UTC) + timedelta(days=120)).date().isoformat()
    revised = {
        "goals": ["Give a talk"],
        "expectations": "calls on Mondays",
        "cadence": "weekly",
        "planned_end": planned_end,
    }

    r = await svc.http.post(
        f"/mentorships/{mid}/revisions", headers=token(mentee, "mentee"), json={"agreement": revised}
    )
    assert r.status_code == 201, r.text
    assert r.json()["agreement"]["cadence"] == "monthly"  # unchanged until accepted
    assert r.json()["revision"]["proposed_by"] == mentee
    r = await svc.http.post(
        f"/mentorships/{mid}/revisions", headers=token(mentor, "mentor"), json={"agreement": revised}
    )
    assert r.status_code == 409, r.text  # one open proposal at a time
    r = await svc.http.post(f"/mentorships/{mid}/revisions/accept", headers=token(mentee, "mentee"))
    assert r.status_code == 409, r.text  # the proposer cannot accept their own
    r = await svc.http.post(f"/mentorships/{mid}/revisions/accept", headers=token(mentor, "mentor"))
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["agreement"]["cadence"] == "weekly" and body["agreement"]["planned_end"] == planned_end
    assert body["revision"] is None
    r = await svc.http.post(f"/mentorships/{mid}/revisions/accept", headers=token(mentor, "mentor"))
    assert r.status_code == 409, r.text  # nothing open any more

    records = await read_topic(infra.kafka_bootstrap, f"{prefix}{Topic.MATCHING}", want=4, timeout=20.0)
    found = [decode(rec.value) for rec in records if rec.key == mid.encode()]
    assert [e.type.rsplit(".", 1)[1] for e in found] == [
        "mentorship_requested",
        "mentorship_request_accepted",
        "mentorship_started",
        "mentorship_agreement_revised",
    ]
    revised_event = found[-1].data
    # v2: the expectations are not in the event (matching shows them), only that there are some
    assert revised_event.agreement.cadence == "weekly" and revised_event.agreement.has_expectations
    assert "calls on Mondays" not in revised_event.model_dump_json()
    assert (revised_event.proposed_by, revised_event.accepted_by) == (mentee, mentor)


async def test_decline_withdraw_and_who_may_act(start_matching, register):
    svc = await start_matching()
    mid, mentee, mentor = await active_mentorship(svc, register)
    proposal = {"agreement": {"cadence": "weekly"}}
    r = await svc.http.post(f"/mentorships/{mid}/revisions", headers=token("stranger-1", "mentee"), json=proposal)
    assert r.status_code == 403, r.text
    r = await svc.http.post(f"/mentorships/{mid}/revisions", headers=ADMIN, json=proposal)
    assert r.status_code == 403, r.text  # admins are no party to the agreement
    r = await svc.http.post(f"/mentorships/{mid}/revisions/decline", headers=token(mentor, "mentor"))
    assert r.status_code == 409, r.text  # no open proposal

    r = await svc.http.post(f"/mentorships/{mid}/revisions", headers=token(mentor, "mentor"), json=proposal)
    assert r.status_code == 201, r.text
    r = await svc.http.post(f"/mentorships/{mid}/revisions/withdraw", headers=token(mentee, "mentee"))
    assert r.status_code == 409, r.text  # only the proposer withdraws
    r = await svc.http.post(f"/mentorships/{mid}/revisions/decline", headers=token(mentee, "mentee"))
    assert r.status_code == 200 and r.json()["revision"] is None, r.text
    assert r.json()["agreement"]["cadence"] == "monthly"

    r = await svc.http.post(f"/mentorships/{mid}/revisions", headers=token(mentee, "mentee"), json=proposal)
    assert r.status_code == 201, r.text
    r = await svc.http.post(f"/mentorships/{mid}/revisions/withdraw", headers=token(mentee, "mentee"))
    assert r.status_code == 200 and r.json()["revision"] is None, r.text

    bad = {"agreement": {"cadence": "daily"}}
    r = await svc.http.post(f"/mentorships/{mid}/revisions", headers=token(mentee, "mentee"), json=bad)
    assert r.status_code == 422, r.text
    past = {"agreement": {"cadence": "weekly", "planned_end": "2020-01-01"}}
    r = await svc.http.post(f"/mentorships/{mid}/revisions", headers=token(mentee, "mentee"), json=past)
    assert r.status_code == 422, r.text

    r = await svc.http.post(f"/mentorships/{mid}/complete", headers=token(mentee, "mentee"))
    assert r.status_code == 200, r.text
    r = await svc.http.post(f"/mentorships/{mid}/revisions", headers=token(mentee, "mentee"), json=proposal)
    assert r.status_code == 409, r.text  # not active any more
    r = await svc.http.post("/mentorships/nope/revisions", headers=token(mentee, "mentee"), json=proposal)
    assert r.status_code == 404, r.text
