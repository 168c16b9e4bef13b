"""Suggestions with rotation, programs and cohort runs (dry run, pins, stale, publish), introductions."""

from __future__ import annotations

from typing import Any

import pytest

from mentorship_contracts import Topic, decode
from tests.support.kafka import eventually, read_topic
from tests.support.processes import token

from .conftest import ADMIN, person

pytestmark = pytest.mark.integration


def needs(**fields):
    return person(["mentee"], development_areas=["python", "kubernetes"], seniority="junior", skills=[], **fields)


async def test_suggestions_rank_explain_drop_full_mentors_and_rotate(start_matching, register):
    svc = await start_matching()
    best = person(
        ["mentor"],
        mentor_capacity=1,
        skills=[{"name": "python", "proficiency": 5}, {"name": "kubernetes", "proficiency": 5}],
    )
    good = person(["mentor"], mentor_capacity=3, skills=[{"name": "python", "proficiency": 3}])
    weak = person(["mentor"], mentor_capacity=3, skills=[{"name": "cooking", "proficiency": 5}])
    full = person(["mentor"], mentor_capacity=0, skills=best.skills)
    inactive = person(["mentor"], active=False, skills=best.skills)
    first, second = needs(), needs()
    await register(svc, best, good, weak, full, inactive, first, second)

    r = await svc.http.get(f"/suggestions/{first.profile_id}?k=5", headers=token(first.profile_id))
    assert r.status_code == 200, r.text
    items = r.json()["suggestions"]
    assert [s["mentor_id"] for s in items] == [best.profile_id, good.profile_id, weak.profile_id]
    scores = [s["score"] for s in items]
    assert scores == sorted(scores, reverse=True) and all(0 <= s <= 1 for s in scores)
    top = items[0]
    assert set(top["breakdown"]) == {"skills", "availability", "seniority", "language", "meeting"}
    assert top["breakdown"]["skills"]["value"] == 1.0
    assert abs(sum(c["contribution"] for c in top["breakdown"].values()) - top["score"]) < 1e-3
    assert any("covers kubernetes, python" in reason for reason in top["reasons"])

    # Rotation: the best mentor has one free slot and is being shown to the first mentee already.
    r = await svc.http.get(f"/suggestions/{second.profile_id}?k=5", headers=token(second.profile_id))
    assert [s["mentor_id"] for s in r.json()["suggestions"]] == [good.profile_id, weak.profile_id]
    # The first mentee still sees them (their own exposure does not count against them).
    r = await svc.http.get(f"/suggestions/{first.profile_id}?k=1", headers=token(first.profile_id))
    assert [s["mentor_id"] for s in r.json()["suggestions"]] == [best.profile_id]

    r = await svc.http.get(f"/scores/{first.profile_id}/{full.profile_id}", headers=ADMIN)
    assert r.json()["eligible"] is False and "the mentor has no free capacity" in r.json()["violations"]
    r = await svc.http.get(f"/suggestions/{first.profile_id}", headers=token(second.profile_id))
    assert r.status_code == 403
    r = await svc.http.get(f"/suggestions/{first.profile_id}?k=0", headers=ADMIN)
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "k"


async def _run(svc, program_id, body=None):
    r = await svc.http.post(f"/programs/{program_id}/runs", headers=ADMIN, json=body or {})
    assert r.status_code == 202, r.text
    assert r.json()["status"] == "running" and r.json()["progress"] == 0.0
    run_id = r.json()["run_id"]

    async def finished():
        got = (await svc.http.get(f"/programs/{program_id}/runs/{run_id}", headers=ADMIN)).json()
        return got if got["status"] != "running" else None

    return await eventually(finished)


async def test_program_cohort_dry_run_pins_stale_and_publish(start_matching, register, infra, prefix):
    svc = await start_matching()
    base = {
        "name": "Spring cohort",
        "starts_on": "2026-03-01",
        "ends_on": "2026-08-31",
        "mode": "admin-approved",
        "self_enrollment": True,  # the mentees below enroll themselves
        "cadence": "weekly",
        "duration_weeks": 16,
        "constraints": {"max_tz_distance_hours": 4},
    }
    for bad, field in [
        ({**base, "weights": {"skills": -1}}, "weights.skills"),
        ({**base, "weights": {"skills": 0, "availability": 0, "seniority": 0, "language": 0, "meeting": 0}}, "weights"),
        ({**base, "ends_on": "2026-01-01"}, ""),
        ({**base, "mode": "lottery"}, "mode"),
    ]:
        r = await svc.http.post("/programs", headers=ADMIN, json=bad)
        assert r.status_code == 422, (bad, r.text)
        assert r.json()["errors"][0]["field"].startswith(field)
    assert (await svc.http.post("/programs", headers=token("x", "mentee"), json=base)).status_code == 403
    r = await svc.http.post("/programs", headers=ADMIN, json=base)
    assert r.status_code == 201
    program_id = r.json()["program_id"]

    mentors = [
        person(["mentor"], mentor_capacity=c, skills=[{"name": "python", "proficiency": 5 - i}])
        for i, c in enumerate((1, 1, 2))
    ]
    far = person(["mentor"], mentor_capacity=3, time_zone="Pacific/Auckland")
    mentees = [needs() for _ in range(6)]
    late = needs()
    await register(svc, *mentors, far, *mentees, late)
    for m in [*mentors, far]:
        r = await svc.http.post(
            f"/programs/{program_id}/enrollments", headers=ADMIN, json={"profile_id": m.profile_id, "role": "mentor"}
        )
        assert r.status_code == 201
    for m in mentees:
        r = await svc.http.post(
            f"/programs/{program_id}/enrollments",
            headers=token(m.profile_id),
            json={"profile_id": m.profile_id, "role": "mentee"},
        )
        assert r.status_code == 201
    r = await svc.http.post(
        f"/programs/{program_id}/enrollments",
        headers=ADMIN,
        json={"profile_id": mentees[0].profile_id, "role": "mentor"},
    )
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "role"

    first = await _run(svc, program_id)
    assert first["status"] == "done" and first["progress"] == 1.0
    q = first["quality"]
    assert (q["matched"], q["unmatched"]) == (4, 2)  # 4 slots in reach; Auckland is too far for Berlin
    assert 0 < q["bound_ratio"] <= 1 and 0 <= q["top5_share"] <= 1 and q["p10_score"] > 0
    assert far.profile_id not in {a["mentor_id"] for a in first["assignments"]}
    load = {}
    for a in first["assignments"]:
        load[a["mentor_id"]] = load.get(a["mentor_id"], 0) + 1
    assert load == {mentors[0].profile_id: 1, mentors[1].profile_id: 1, mentors[2].profile_id: 2}

    # the enrollment changes: the first dry run is stale now
    await svc.http.post(
        f"/programs/{program_id}/enrollments", headers=ADMIN, json={"profile_id": late.profile_id, "role": "mentee"}
    )
    r = await svc.http.post(f"/programs/{program_id}/runs/{first['run_id']}/publish", headers=ADMIN)
    assert r.status_code == 409 and "stale" in r.json()["detail"]

    pinned = (mentees[5].profile_id, mentors[0].profile_id)
    forbidden = (first["assignments"][0]["mentee_id"], first["assignments"][0]["mentor_id"])
    if forbidden[0] == pinned[0]:
        forbidden = (first["assignments"][1]["mentee_id"], first["assignments"][1]["mentor_id"])
    r = await svc.http.post(
        f"/programs/{program_id}/runs",
        headers=ADMIN,
        json={
            "pins": [{"mentee_id": pinned[0], "mentor_id": pinned[1]}],
            "forbids": [{"mentee_id": pinned[0], "mentor_id": pinned[1]}],
        },
    )
    assert r.status_code == 422
    second = await _run(
        svc,
        program_id,
        {
            "pins": [{"mentee_id": pinned[0], "mentor_id": pinned[1]}],
            "forbids": [{"mentee_id": forbidden[0], "mentor_id": forbidden[1]}],
        },
    )
    pairs = {(a["mentee_id"], a["mentor_id"]) for a in second["assignments"]}
    assert pinned in pairs and forbidden not in pairs
    assert second["quality"]["matched"] == 4

    r = await svc.http.post(f"/programs/{program_id}/runs/{second['run_id']}/publish", headers=ADMIN)
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "published"
    again = await svc.http.post(f"/programs/{program_id}/runs/{second['run_id']}/publish", headers=ADMIN)
    assert again.status_code == 409
    for mentor in mentors:
        assert (await svc.matching.store.load(mentor.profile_id))["free"] == 0

    # 1 ProgramCreated, 11 enrolments, 4 starts, 1 publication
    records = await read_topic(infra.kafka_bootstrap, f"{prefix}{Topic.MATCHING}", want=17)
    found = [decode(rec.value) for rec in records]
    started = [e for e in found if e.type.endswith("mentorship_started")]
    published = [e for e in found if e.type.endswith("cohort_match_published")]
    assert len(started) == 4 and all(e.data.origin == "cohort" and e.data.program_id == program_id for e in started)
    assert {(e.data.mentee_id, e.data.mentor_id) for e in started} == pairs
    assert started[0].data.agreement.cadence == "weekly"
    assert len(published) == 1 and published[0].subject == program_id
    assert sorted(published[0].data.mentorship_ids) == sorted(e.subject for e in started)
    assert published[0].data.quality.matched == 4

    # a mentee already in a mentorship of the program is not matched again by the next run
    third = await _run(svc, program_id)
    assert {a["mentee_id"] for a in third["assignments"]}.isdisjoint({p[0] for p in pairs})


async def test_introductions(start_matching, register, infra, prefix):
    svc = await start_matching()
    mentor, mentee, contact = person(["mentor"]), person(["mentee"]), person(["mentee"])
    await register(svc, mentor, mentee, contact)
    r = await svc.http.post("/mentorships", headers=token(mentee.profile_id), json={"mentor_id": mentor.profile_id})
    mid = r.json()["mentorship_id"]
    r = await svc.http.post(
        f"/mentorships/{mid}/introductions", headers=token(mentor.profile_id), json={"contact_id": contact.profile_id}
    )
    assert r.status_code == 409  # not active yet
    await svc.http.post(f"/mentorships/{mid}/accept", headers=token(mentor.profile_id))
    r = await svc.http.post(
        f"/mentorships/{mid}/introductions", headers=token(mentee.profile_id), json={"contact_id": contact.profile_id}
    )
    assert r.status_code == 403
    r = await svc.http.post(
        f"/mentorships/{mid}/introductions", headers=token(mentor.profile_id), json={"contact_id": mentee.profile_id}
    )
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "contact_id"
    r = await svc.http.post(
        f"/mentorships/{mid}/introductions",
        headers=token(mentor.profile_id),
        json={"contact_id": contact.profile_id, "message": "You both love Rust"},
    )
    assert r.status_code == 201
    intro = r.json()["introduction_id"]
    assert (await svc.http.post(f"/introductions/{intro}/accept", headers=token(mentee.profile_id))).status_code == 403
    r = await svc.http.post(f"/introductions/{intro}/accept", headers=token(contact.profile_id))
    assert r.status_code == 200 and r.json()["state"] == "accepted"
    r = await svc.http.post(f"/introductions/{intro}/decline", headers=token(contact.profile_id))
    assert r.status_code == 409

    declined = await svc.http.post(
        f"/mentorships/{mid}/introductions", headers=token(mentor.profile_id), json={"contact_id": contact.profile_id}
    )
    r = await svc.http.post(
        f"/introductions/{declined.json()['introduction_id']}/decline", headers=token(contact.profile_id)
    )
    assert r.status_code == 200 and r.json()["state"] == "declined"

    records = await read_topic(infra.kafka_bootstrap, f"{prefix}{Topic.MATCHING}", want=7)
    kinds = [decode(rec.value).type.rsplit(".", 1)[1] for rec in records if rec.key == intro.encode()]
    assert kinds == ["introduction_made", "introduction_accepted"]
    made = next(decode(rec.value) for rec in records if rec.key == intro.encode())
    # v2: the event says there is a message; the message itself is read through GET /introductions/{id}
    assert made.data.has_message is True and made.data.mentee_id == mentee.profile_id
    assert "You both love Rust" not in rec_values(records)
    shown = await svc.http.get(f"/introductions/{intro}", headers=token(contact.profile_id))
    assert shown.status_code == 200 and shown.json()["message"] == "You both love Rust"


def rec_values(records: list[Any]) -> str:
    return "".join(rec.value.decode() for rec in records)
