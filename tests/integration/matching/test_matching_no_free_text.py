"""What people write stays in matching: after a request with a message, a decline with a reason,
an accepted agreement with goals and expectations, an early end with a reason and an introduction
with a message, the matching topic (read from the start, raw bytes) holds none of the words; the
events say that text exists (`has_message`, `has_reason`, goal counts) and the API shows the text
to the participants (docs/decisions/personal-data-in-events.md)."""

from __future__ import annotations

import pytest

from mentorship_contracts import Topic, decode
from tests.support.kafka import read_topic
from tests.support.processes import token

from .conftest import person

pytestmark = pytest.mark.integration

WORDS = {
    "message": "Zephyrine needs help with her divorce",
    "decline": "Zephyrine is too junior for me",
    "goal": "Zephyrine becomes team lead",
    "expectations": "Zephyrine calls on Sundays",
    "end": "Zephyrine was rude",
    "intro": "Zephyrine should meet you about her visa",
}


async def test_the_topic_carries_flags_and_codes_and_the_api_the_text(start_matching, register, infra, prefix):
    svc = await start_matching()
    mentor, a, b, contact = (
        person(["mentor"], mentor_capacity=3),
        person(["mentee"]),
        person(["mentee"]),
        person(["mentee"]),
    )
    await register(svc, mentor, a, b, contact)
    as_mentor, as_a, as_b = token(mentor.profile_id, "mentor"), token(a.profile_id), token(b.profile_id)

    r = await svc.http.post(
        "/mentorships", headers=as_a, json={"mentor_id": mentor.profile_id, "message": WORDS["message"]}
    )
    assert r.status_code == 201, r.text
    declined_id = r.json()["mentorship_id"]
    r = await svc.http.post(f"/mentorships/{declined_id}/decline", headers=as_mentor, json={"reason": WORDS["decline"]})
    assert r.status_code == 200, r.text

    r = await svc.http.post("/mentorships", headers=as_b, json={"mentor_id": mentor.profile_id})
    active_id = r.json()["mentorship_id"]
    agreement = {"goals": [WORDS["goal"]], "expectations": WORDS["expectations"], "cadence": "weekly"}
    r = await svc.http.post(f"/mentorships/{active_id}/accept", headers=as_mentor, json={"agreement": agreement})
    assert r.status_code == 200, r.text
    r = await svc.http.post(
        f"/mentorships/{active_id}/introductions",
        headers=as_mentor,
        json={"contact_id": contact.profile_id, "message": WORDS["intro"]},
    )
    assert r.status_code == 201, r.text
    intro_id = r.json()["introduction_id"]
    r = await svc.http.post(f"/mentorships/{active_id}/end", headers=as_b, json={"reason": WORDS["end"]})
    assert r.status_code == 200, r.text

    records = await read_topic(infra.kafka_bootstrap, f"{prefix}{Topic.MATCHING}", want=8, timeout=30)
    raw = b"".join(rec.value for rec in records)
    assert [w for w in WORDS.values() if w.encode() in raw] == []
    assert b"Zephyrine" not in raw
    events = {(e.subject, e.type.rsplit(".", 1)[1]): e for e in (decode(rec.value) for rec in records)}
    assert all(e.dataversion == 2 for (_, kind), e in events.items() if kind != "mentorship_request_accepted")
    assert events[(declined_id, "mentorship_requested")].data.has_message is True
    declined = events[(declined_id, "mentorship_request_declined")].data
    assert (declined.reason_code, declined.has_reason) == ("other", True)
    started = events[(active_id, "mentorship_started")].data.agreement
    assert (started.goal_count, started.has_expectations, started.cadence) == (1, True, "weekly")
    assert events[(intro_id, "introduction_made")].data.has_message is True
    ended = events[(active_id, "mentorship_ended")].data
    assert (ended.reason_code, ended.has_reason) == ("other", True)

    # the text stays readable where it was written, for those allowed
    shown = (await svc.http.get(f"/mentorships/{declined_id}", headers=as_a)).json()
    assert shown["message"] == WORDS["message"] and shown["reason"] == WORDS["decline"]
    shown = (await svc.http.get(f"/mentorships/{active_id}", headers=as_b)).json()
    assert shown["agreement"]["goals"] == [WORDS["goal"]] and shown["reason"] == WORDS["end"]
    shown = (await svc.http.get(f"/introductions/{intro_id}", headers=token(contact.profile_id))).json()
    assert shown["message"] == WORDS["intro"]
