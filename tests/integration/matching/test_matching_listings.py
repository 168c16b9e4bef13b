"""Listings over HTTP: programs (filters, paging), a program's cohort runs, a person's
introductions; who may list them; bad query parameters; the program and enrolment events."""

from __future__ import annotations

import pytest

from mentorship_contracts import Topic, decode
from tests.support.kafka import eventually, read_topic
from tests.support.processes import token

from .conftest import ADMIN, person

pytestmark = pytest.mark.integration

PROGRAM = {"starts_on": "2020-01-01", "ends_on": "2099-12-31", "cadence": "weekly"}


async def _program(svc, name, **fields):
    r = await svc.http.post("/programs", headers=ADMIN, json={**PROGRAM, "name": name, **fields})
    assert r.status_code == 201, r.text
    return r.json()["program_id"]


async def test_programs_are_listed_newest_first_with_filters_and_pages(start_matching):
    svc = await start_matching()
    running = await _program(svc, "Spring Cohort Berlin", mode="admin-approved")
    ended = await _program(svc, "Winter cohort 2021", starts_on="2021-01-01", ends_on="2021-06-30")
    upcoming = await _program(svc, "Autumn leaders", starts_on="2098-09-01", ends_on="2098-12-31", mode="automatic")
    ours = {running, ended, upcoming}

    r = await svc.http.get("/programs", headers=ADMIN, params={"limit": 100})
    assert r.status_code == 200, r.text
    body = r.json()
    listed = [p for p in body["items"] if p["program_id"] in ours]
    assert [p["program_id"] for p in listed] == [upcoming, ended, running]  # newest first
    assert {p["program_id"]: p["status"] for p in listed} == {running: "running", ended: "ended", upcoming: "upcoming"}
    assert body["total"] >= 3 and body["offset"] == 0 and body["limit"] == 100
    assert not any(k.startswith("outbox") for p in listed for k in p)

    async def ids(**params):
        r = await svc.http.get("/programs", headers=ADMIN, params={"limit": 100, **params})
        assert r.status_code == 200, r.text
        return [p["program_id"] for p in r.json()["items"] if p["program_id"] in ours]

    assert await ids(status="running") == [running]
    assert await ids(status="ended") == [ended]
    assert await ids(status="upcoming") == [upcoming]
    assert await ids(name_contains="COHORT") == [ended, running]
    assert await ids(name_contains="cohort", status="ended") == [ended]
    assert await ids(name_contains="(.*") == []  # a part of the name, never a pattern
    assert await ids(mode="automatic") == [upcoming]
    assert await ids(mode="admin-approved", status="running") == [running]

    # paging: one program a page, following next_offset
    seen, offset = [], 0
    while offset is not None:
        r = await svc.http.get("/programs", headers=ADMIN, params={"name_contains": "E", "limit": 1, "offset": offset})
        page = r.json()
        assert len(page["items"]) <= 1
        seen += [p["program_id"] for p in page["items"]]
        offset = page["next_offset"]
    assert [p for p in seen if p in ours] == [upcoming, ended, running]
    assert len(seen) == page["total"]


async def test_listings_are_for_admins_and_refuse_bad_parameters(start_matching, register):
    svc = await start_matching()
    mentor, mentee, stranger = person(["mentor"]), person(["mentee"]), person(["mentee"])
    await register(svc, mentor, mentee, stranger)
    program_id = await _program(svc, "Guarded")
    me = token(mentee.profile_id)

    assert (await svc.http.get("/programs")).status_code == 401
    assert (await svc.http.get("/programs", headers=me)).status_code == 403
    assert (await svc.http.get(f"/programs/{program_id}/runs", headers=me)).status_code == 403
    assert (await svc.http.get(f"/programs/{program_id}/runs", headers=token("m", "mentor"))).status_code == 403
    r = await svc.http.get(f"/people/{mentee.profile_id}/introductions", headers=token(stranger.profile_id))
    assert r.status_code == 403 and r.headers["content-type"].startswith("application/problem+json")
    assert (await svc.http.get(f"/people/{mentee.profile_id}/introductions", headers=me)).status_code == 200
    assert (await svc.http.get(f"/people/{mentee.profile_id}/introductions", headers=ADMIN)).status_code == 200
    assert (await svc.http.get("/programs/nope/runs", headers=ADMIN)).status_code == 404

    for path, params, field in [
        ("/programs", {"limit": 0}, "limit"),
        ("/programs", {"limit": 101}, "limit"),
        ("/programs", {"offset": -1}, "offset"),
        ("/programs", {"offset": 100_001}, "offset"),
        ("/programs", {"limit": "many"}, "limit"),
        ("/programs", {"status": "paused"}, "status"),
        ("/programs", {"mode": "lottery"}, "mode"),
        ("/programs", {"name_contains": ""}, "name_contains"),
        ("/programs", {"name_contains": "x" * 201}, "name_contains"),
        (f"/programs/{program_id}/runs", {"limit": 1000}, "limit"),
        (f"/programs/{program_id}/runs", {"offset": -5}, "offset"),
        (f"/people/{mentee.profile_id}/introductions", {"role": "boss"}, "role"),
        (f"/people/{mentee.profile_id}/introductions", {"state": "maybe"}, "state"),
        (f"/people/{mentee.profile_id}/introductions", {"limit": 0}, "limit"),
        (f"/people/{'x' * 65}/introductions", {}, "profile_id"),
    ]:
        r = await svc.http.get(path, headers=ADMIN, params=params)
        assert r.status_code == 422, (path, params, r.text)
        assert r.headers["content-type"].startswith("application/problem+json")
        assert r.json()["errors"][0]["field"] == field, (path, params, r.json())

    spec = (await svc.http.get("/openapi.json")).json()["paths"]
    assert spec["/programs"]["get"]["x-policy"] == "admin"
    assert spec["/programs/{program_id}/runs"]["get"]["x-policy"] == "admin"
    assert spec["/people/{profile_id}/introductions"]["get"]["x-policy"] == "person"


async def test_a_programs_runs_newest_first_without_pair_lists(start_matching, register):
    svc = await start_matching()
    program_id = await _program(svc, "Runs")
    mentor, mentees = person(["mentor"], mentor_capacity=3), [person(["mentee"]) for _ in range(2)]
    await register(svc, mentor, *mentees)
    for p, role in [(mentor, "mentor"), *((m, "mentee") for m in mentees)]:
        r = await svc.http.post(
            f"/programs/{program_id}/enrollments", headers=ADMIN, json={"profile_id": p.profile_id, "role": role}
        )
        assert r.status_code == 201
    run_ids = []
    for _ in range(3):
        r = await svc.http.post(f"/programs/{program_id}/runs", headers=ADMIN, json={})
        assert r.status_code == 202
        run_ids.append(r.json()["run_id"])

    async def all_done():
        page = (await svc.http.get(f"/programs/{program_id}/runs", headers=ADMIN)).json()
        return page if all(run["status"] == "done" for run in page["items"]) else None

    page = await eventually(all_done)
    assert [run["run_id"] for run in page["items"]] == run_ids[::-1]
    assert page["total"] == 3 and page["next_offset"] is None
    first = page["items"][0]
    assert first["program_id"] == program_id and first["quality"]["matched"] == 2
    assert not {"assignments", "unmatched", "pins", "forbids"} & set(first)
    full = (await svc.http.get(f"/programs/{program_id}/runs/{run_ids[0]}", headers=ADMIN)).json()
    assert len(full["assignments"]) == 2  # the pairs are one request away

    r = await svc.http.get(f"/programs/{program_id}/runs", headers=ADMIN, params={"limit": 2, "offset": 1})
    assert [run["run_id"] for run in r.json()["items"]] == run_ids[1::-1]
    assert r.json()["next_offset"] is None
    r = await svc.http.get(f"/programs/{program_id}/runs", headers=ADMIN, params={"limit": 2})
    assert r.json()["next_offset"] == 2
    other = await _program(svc, "No runs yet")
    r = await svc.http.get(f"/programs/{other}/runs", headers=ADMIN)
    assert r.status_code == 200 and r.json()["items"] == [] and r.json()["total"] == 0


async def test_a_persons_introductions_made_received_and_introduced_in(start_matching, register):
    svc = await start_matching()
    mentor, mentee, contact, other = person(["mentor"]), person(["mentee"]), person(["mentee"]), person(["mentee"])
    await register(svc, mentor, mentee, contact, other)
    r = await svc.http.post("/mentorships", headers=token(mentee.profile_id), json={"mentor_id": mentor.profile_id})
    mid = r.json()["mentorship_id"]
    assert (await svc.http.post(f"/mentorships/{mid}/accept", headers=token(mentor.profile_id))).status_code == 200
    made = []
    for who in (contact, other):
        r = await svc.http.post(
            f"/mentorships/{mid}/introductions",
            headers=token(mentor.profile_id),
            json={"contact_id": who.profile_id, "message": "say hello"},
        )
        assert r.status_code == 201
        made.append(r.json()["introduction_id"])
    r = await svc.http.post(f"/introductions/{made[0]}/accept", headers=token(contact.profile_id))
    assert r.status_code == 200

    async def listed(profile_id, headers, **params):
        r = await svc.http.get(f"/people/{profile_id}/introductions", headers=headers, params=params)
        assert r.status_code == 200, r.text
        return r.json()

    as_mentor = await listed(mentor.profile_id, token(mentor.profile_id))
    assert [i["introduction_id"] for i in as_mentor["items"]] == made[::-1]  # newest first
    assert [i["state"] for i in as_mentor["items"]] == ["pending", "accepted"]
    assert not any(k.startswith("outbox") for i in as_mentor["items"] for k in i)
    assert [i["introduction_id"] for i in (await listed(mentee.profile_id, token(mentee.profile_id)))["items"]] == made[
        ::-1
    ]
    received = await listed(contact.profile_id, token(contact.profile_id))
    assert [i["introduction_id"] for i in received["items"]] == [made[0]]
    assert received["items"][0]["answered_at"] is not None
    assert (await listed(mentor.profile_id, ADMIN, role="introducer", state="pending"))["total"] == 1
    assert (await listed(mentor.profile_id, ADMIN, role="contact"))["total"] == 0
    assert (await listed(mentee.profile_id, ADMIN, role="mentee", state="accepted"))["total"] == 1
    assert (await listed(other.profile_id, ADMIN, role="contact", state="pending"))["total"] == 1
    page = await listed(mentor.profile_id, ADMIN, limit=1)
    assert page["total"] == 2 and page["next_offset"] == 1 and len(page["items"]) == 1


async def test_program_creation_and_enrolments_are_published_keyed_by_program(start_matching, register, infra, prefix):
    svc = await start_matching()
    program_id = await _program(svc, "Evented", mode="self-select")
    mentor, mentee = person(["mentor"]), person(["mentee"])
    await register(svc, mentor, mentee)
    enrol = {"profile_id": mentee.profile_id, "role": "mentee"}
    assert (
        await svc.http.post(
            f"/programs/{program_id}/enrollments",
            headers=ADMIN,
            json={"profile_id": mentor.profile_id, "role": "mentor"},
        )
    ).status_code == 201
    assert (
        await svc.http.post(f"/programs/{program_id}/enrollments", headers=token(mentee.profile_id), json=enrol)
    ).status_code == 201
    # enrolling twice changes nothing (no second event)
    assert (await svc.http.post(f"/programs/{program_id}/enrollments", headers=ADMIN, json=enrol)).status_code == 201
    gone = f"/programs/{program_id}/enrollments/mentee/{mentee.profile_id}"
    assert (await svc.http.delete(gone, headers=token(mentee.profile_id))).status_code == 204
    assert (await svc.http.delete(gone, headers=token(mentee.profile_id))).status_code == 404
    assert (await svc.http.get(f"/programs/{program_id}", headers=ADMIN)).json()["enrolled"] == {
        "mentee": 0,
        "mentor": 1,
    }
    assert (await svc.http.post(f"/programs/{program_id}/enrollments", headers=ADMIN, json=enrol)).status_code == 201
    assert (await svc.http.get(f"/programs/{program_id}", headers=ADMIN)).json()["enrolled"] == {
        "mentee": 1,
        "mentor": 1,
    }

    records = await read_topic(infra.kafka_bootstrap, f"{prefix}{Topic.MATCHING}", want=5)
    found = [decode(r.value) for r in records if r.key == program_id.encode()]
    kinds = [e.type.rsplit(".", 1)[1] for e in found]
    assert kinds[0] == "program_created"
    assert sorted(kinds[1:]) == sorted(["program_participant_enrolled"] * 3 + ["program_participant_withdrawn"])
    created = found[0].data
    assert (created.program_id, created.name, created.mode) == (program_id, "Evented", "self-select")
    enrolled = [e.data for e in found if e.type.endswith("enrolled")]
    assert {(e.profile_id, e.role) for e in enrolled} == {(mentor.profile_id, "mentor"), (mentee.profile_id, "mentee")}
    mentee_spells = sorted((e for e in enrolled if e.role == "mentee"), key=lambda e: e.enrolled_at)
    assert len({e.enrolment_id for e in mentee_spells}) == 2  # enrolling again is a new enrolment
    withdrawn = next(e.data for e in found if e.type.endswith("withdrawn"))
    assert withdrawn.enrolment_id == mentee_spells[0].enrolment_id
    assert withdrawn.enrolled_at == mentee_spells[0].enrolled_at <= withdrawn.withdrawn_at
    assert all(e.subject == program_id for e in found)

    async def relayed():  # nothing left pending in the outboxes
        for name in ("programs", "enrollments", "enrollment_withdrawals"):
            if await svc.matching.store.db[name].count_documents({"outbox_pending": True}):
                return False
        return True

    await eventually(relayed)
