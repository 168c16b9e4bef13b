"""Profile HTTP API and its events, the service as its own process on the real broker and store."""

from __future__ import annotations

import httpx
import pytest

from mentorship_contracts import Topic, decode, encode
from tests.support.kafka import eventually, read_topic
from tests.support.processes import token

pytestmark = pytest.mark.integration

ADMIN = token("admin-1", "admin")


def db_name(prefix: str) -> str:
    return f"{prefix.replace('.', '_').strip('_')}_profile"


async def settled(mongo, prefix, profile_id: str) -> None:
    """Wait until the relay has published and released the profile's pending events.

    Why: the local store (FerretDB 1.24, SQLite) does not make a single-document update atomic
    against a concurrent one (measured: a relay lease write can undo a use-case write), so the
    tests do not write a document while the relay is still working on it. Real MongoDB does not
    need this.
    """
    coll = mongo[db_name(prefix)]["profiles"]

    async def idle():
        doc = await coll.find_one({"_id": profile_id}, {"outbox_pending": 1, "outbox_lease_until": 1})
        return doc is None or (not doc.get("outbox_pending") and not doc.get("outbox_lease_until"))

    await eventually(idle, timeout=15, interval=0.05)


def settling_client(svc, mongo, prefix) -> httpx.AsyncClient:
    """A client that waits for the relay to settle after every successful write (see settled)."""

    async def after(response: httpx.Response) -> None:
        if response.request.method == "GET" or response.status_code >= 300:
            return
        parts = response.request.url.path.strip("/").split("/")
        if len(parts) >= 2 and parts[1] != "import":
            await settled(mongo, prefix, parts[1])
        elif response.status_code == 201:
            await response.aread()
            await settled(mongo, prefix, response.json()["profile_id"])

    return httpx.AsyncClient(base_url=svc.url, timeout=10, event_hooks={"response": [after]})


async def events_of(infra, prefix, want: int, timeout: float = 20.0):
    records = await read_topic(infra.kafka_bootstrap, f"{prefix}{Topic.PROFILE}", want=want, timeout=timeout)
    return [(r.key.decode(), decode(r.value)) for r in records]


async def test_every_endpoint_and_event_through_a_profile_life(spawn, infra, prefix, mongo):
    svc = spawn("profile")
    ada = token("p-ada", "mentee")
    bob = token("p-bob", "mentee")
    body = {
        "display_name": "Ada Lovelace",
        "email": "Ada@Example.org",
        "roles": ["mentee"],
        "time_zone": "Europe/London",
        "department": "Research",
        "job_title": "Analyst",
        "skills": [{"name": "Mathematics", "proficiency": 5}],
        "availability": [{"weekday": 0, "start": "09:00", "end": "12:00"}],
        "goals": [{"goal_id": "g1", "title": "Learn to lead", "skills": ["leadership"]}],
    }
    async with settling_client(svc, mongo, prefix) as http:
        r = await http.post("/profiles", json={**body, "profile_id": "ignored"}, headers=ada)
        assert r.status_code == 201, r.text
        assert r.json()["profile_id"] == "p-ada"  # people register as themselves
        assert r.headers["etag"] == '"1"' and r.headers["location"] == "/profiles/p-ada"
        r = await http.post("/profiles", json={**body, "email": "bob@example.org", "display_name": "Bob"}, headers=bob)
        assert r.status_code == 201

        # read: self or admin
        assert (await http.get("/profiles/p-ada", headers=ada)).json()["skills"] == [
            {"name": "mathematics", "proficiency": 5}
        ]
        assert (await http.get("/profiles/p-ada", headers=ADMIN)).status_code == 200
        assert (await http.get("/profiles/p-ada", headers=bob)).status_code == 403
        assert (await http.get("/profiles/nobody", headers=ADMIN)).status_code == 404

        # a mentee cannot edit, re-role, deactivate or erase another profile
        for method, path, payload in [
            ("PATCH", "/profiles/p-ada", {"job_title": "Hacker"}),
            ("POST", "/profiles/p-ada/roles", {"role": "mentor"}),
            ("DELETE", "/profiles/p-ada/roles/mentee", None),
            ("POST", "/profiles/p-ada/deactivate", None),
            ("POST", "/profiles/p-ada/reactivate", None),
            ("DELETE", "/profiles/p-ada", None),
        ]:
            r = await http.request(method, path, json=payload, headers=bob)
            assert r.status_code == 403, (method, path, r.text)
            assert r.headers["content-type"].startswith("application/problem+json")

        # partial update: only changed fields, version moves
        r = await http.patch(
            "/profiles/p-ada", headers=ada, json={"job_title": "Lead Analyst", "display_name": "Ada Lovelace"}
        )
        assert r.status_code == 200, r.text
        assert r.json()["job_title"] == "Lead Analyst" and r.headers["etag"] == '"2"'
        # nothing changed: no write, no event, same version
        r = await http.patch("/profiles/p-ada", headers=ada, json={"department": "Research"})
        assert r.status_code == 200 and r.headers["etag"] == '"2"'
        # optimistic concurrency: a stale version is refused
        r = await http.patch("/profiles/p-ada", headers={**ada, "if-match": '"1"'}, json={"department": "Ops"})
        assert r.status_code == 412 and r.json()["current_version"] == 2
        r = await http.patch(
            "/profiles/p-ada", headers={**ADMIN, "if-match": '"2"'}, json={"department": "Ops", "manager_id": "p-bob"}
        )
        assert r.status_code == 200 and r.headers["etag"] == '"3"'

        # paying it forward: a mentee becomes a mentor, then steps back
        r = await http.post("/profiles/p-ada/roles", headers=ada, json={"role": "mentor", "mentor_capacity": 2})
        assert r.status_code == 200 and r.json()["roles"] == ["mentee", "mentor"]
        assert r.json()["mentor_capacity"] == 2
        r = await http.post("/profiles/p-ada/roles", headers=ada, json={"role": "mentor"})
        assert r.status_code == 200  # already a mentor: nothing happens
        r = await http.delete("/profiles/p-ada/roles/mentor", headers=ada)
        assert r.status_code == 200 and r.json()["mentor_capacity"] is None
        r = await http.delete("/profiles/p-ada/roles/mentee", headers=ada)
        assert r.status_code == 422 and r.json()["errors"][0]["field"] == "role"

        r = await http.post("/profiles/p-ada/deactivate", headers=ADMIN, json={"reason": "parental leave"})
        assert r.status_code == 200 and r.json()["active"] is False
        assert (await http.post("/profiles/p-ada/deactivate", headers=ADMIN)).status_code == 200  # no-op
        r = await http.post("/profiles/p-ada/reactivate", headers=ada)
        assert r.status_code == 403  # an admin's deactivation is lifted only by an admin
        r = await http.post("/profiles/p-ada/reactivate", headers=ADMIN)
        assert r.status_code == 200 and r.json()["active"] is True

        assert (await http.delete("/profiles/p-ada", headers=ada)).status_code == 204
        assert (await http.delete("/profiles/p-ada", headers=ada)).status_code == 204  # idempotent
        assert (await http.get("/profiles/p-ada", headers=ADMIN)).status_code == 404
        assert (await http.patch("/profiles/p-ada", headers=ADMIN, json={"job_title": "x"})).status_code == 404
        assert (await http.delete("/profiles/never-was", headers=ADMIN)).status_code == 404

        events = await events_of(infra, prefix, want=9)
        # the email is free again after erasure
        r = await http.post(
            "/profiles",
            headers=ADMIN,
            json={"display_name": "Ada Again", "email": "ada@example.org", "roles": ["mentee"]},
        )
        assert r.status_code == 201, r.text

    ada_events = [(key, env) for key, env in events if key == "p-ada"]
    assert [env.type.rsplit(".", 1)[1] for _, env in ada_events] == [
        "profile_registered",
        "profile_updated",
        "profile_updated",
        "profile_role_added",
        "profile_role_removed",
        "profile_deactivated",
        "profile_reactivated",
        "profile_erased",
    ]
    assert all(env.subject == "p-ada" and env.source == "profile" for _, env in ada_events)
    registered, upd1, upd2, added, removed, deactivated, reactivated, erased = (e.data for _, e in ada_events)
    # v2 events: ids, changed field names and non-personal facts; the personal values are on profile.state
    assert registered.facts.skills[0].name == "mathematics" and registered.facts.time_zone == "Europe/London"
    assert upd1.changed_fields == ["job_title"]
    assert upd2.changed_fields == ["department", "manager_id"]
    for _, env in ada_events:
        text = encode(env).decode().lower()
        for personal in ("ada@example.org", "lovelace", "analyst", "learn to lead", "research", "p-bob"):
            assert personal not in text, (env.type, personal)
    states = [
        r
        for r in await read_topic(infra.kafka_bootstrap, f"{prefix}{Topic.PROFILE_STATE}", want=10**9, timeout=3)
        if r.key == b"p-ada"
    ]
    # the whole profile after every change (with its version), then a tombstone on erase
    assert [decode(r.value).data.version if r.value is not None else None for r in states] == [
        1,
        2,
        3,
        4,
        5,
        6,
        7,
        None,
    ]
    first, second, third = (decode(r.value).data.profile for r in states[:3])
    assert first.email == "Ada@Example.org" and first.goals[0].title == "Learn to lead"
    assert second.job_title == "Lead Analyst"
    assert (third.department, third.manager_id) == ("Ops", "p-bob")
    assert (added.role, added.roles, added.mentor_capacity) == ("mentor", ["mentee", "mentor"], 2)
    assert (removed.role, removed.roles) == ("mentor", ["mentee"])
    # the admin's words ("parental leave") stay in the profile service; the event says only that there were some
    assert deactivated.has_reason and deactivated.reason_code == "other"
    assert "parental leave" not in deactivated.model_dump_json()
    assert reactivated.profile_id == "p-ada"
    assert erased.model_dump() == {"profile_id": "p-ada"}

    # erase left no personal data in the store: only the tombstone, once the relay has sent ProfileErased
    coll = mongo[db_name(prefix)]["profiles"]
    doc = await coll.find_one({"_id": "p-ada"})
    assert doc["erased"] is True
    text = repr(doc).lower()
    for personal in (
        "ada",
        "lovelace",
        "example.org",
        "research",
        "analyst",
        "mathematics",
        "europe/london",
        "p-bob",
        "parental",
    ):
        assert personal not in text.replace("p-ada", ""), personal
    assert set(doc) <= {
        "_id",
        "email_key",
        "external_key",
        "erased",
        "version",
        "outbox",
        "outbox_seq",
        "outbox_pending",
        "outbox_lease_until",
    }


async def test_bad_input_gets_4xx_naming_the_field_and_writes_nothing(spawn, infra, prefix, mongo):
    svc = spawn("profile")
    ok = {"display_name": "Cy", "email": "cy@example.org", "roles": ["mentee"]}
    window = {"weekday": 2, "start": "09:00", "end": "11:00"}
    cases = [
        ({"time_zone": "Mars/Olympus"}, "time_zone"),
        ({"roles": ["guru"]}, "roles.0"),
        ({"mentor_capacity": 3}, "mentor_capacity"),
        ({"availability": [window, {**window, "start": "10:00", "end": "12:00"}]}, "availability"),
        ({"availability": [{**window, "start": "11:00", "end": "10:00"}]}, "availability"),
        ({"availability": [{**window, "start": "25:00"}]}, "availability.0.start"),
        ({"display_name": "x" * 201}, "display_name"),
        ({"job_title": "x" * 201}, "job_title"),
        ({"skills": [{"name": f"s{i}"} for i in range(51)]}, "skills"),
        ({"goals": [{"goal_id": "g", "title": "t", "description": "d" * 2001}]}, "goals.0.description"),
        ({"email": "no-at-sign"}, "email"),
    ]
    async with settling_client(svc, mongo, prefix) as http:
        for extra, field in cases:
            r = await http.post("/profiles", headers=ADMIN, json={**ok, **extra})
            assert r.status_code == 422, (extra, r.text)
            assert r.headers["content-type"].startswith("application/problem+json")
            assert field in [e["field"] for e in r.json()["errors"]], (field, r.json())

        r = await http.post("/profiles", headers=ADMIN, json={**ok, "profile_id": "p-cy"})
        assert r.status_code == 201
        r = await http.post("/profiles", headers=ADMIN, json={**ok, "email": "CY@example.ORG"})
        assert r.status_code == 409 and r.json()["field"] == "email"
        r = await http.post("/profiles", headers=ADMIN, json={**ok, "email": "other@example.org", "profile_id": "p-cy"})
        assert r.status_code == 409

        patches = [
            ({"mentor_capacity": 2}, "mentor_capacity"),
            ({"time_zone": "Nowhere/City"}, "time_zone"),
            ({"roles": ["mentor"]}, "roles"),  # roles change through their own endpoint
            ({"active": False}, "active"),
            ({"display_name": None}, "display_name"),
            ({"availability": [{**window, "end": "09:00"}]}, "availability"),
        ]
        for patch, field in patches:
            r = await http.patch("/profiles/p-cy", headers=ADMIN, json=patch)
            assert r.status_code == 422, (patch, r.text)
            assert field in [e["field"] for e in r.json()["errors"]], (field, r.json())
        r = await http.post("/profiles/p-cy/roles", headers=ADMIN, json={"role": "guru"})
        assert r.status_code == 422
        r = await http.post("/profiles", headers=ADMIN, json={**ok, "email": "dee@example.org", "profile_id": "p-dee"})
        assert r.status_code == 201
        r = await http.patch("/profiles/p-dee", headers=ADMIN, json={"email": "cy@example.org"})
        assert r.status_code == 409  # duplicate email on update too
        r = await http.get("/profiles/p-cy", headers=ADMIN)
        assert r.headers["etag"] == '"1"'  # nothing half-written

    events = await events_of(infra, prefix, want=3, timeout=5)
    assert [env.type for _, env in events] == ["mentorship.profile.v2.profile_registered"] * 2
    assert await mongo[db_name(prefix)]["profiles"].count_documents({}) == 2


async def test_admin_search_with_filters_and_pages(spawn, prefix, mongo):
    svc = spawn("profile")
    people = [
        ("s1", ["mentor"], "python", "Platform", "Europe/Berlin", 3),
        ("s2", ["mentee"], "python", "platform", "Europe/Berlin", None),
        ("s3", ["mentee", "mentor"], "go", "Data", "America/New_York", 1),
        ("s4", ["mentor"], "python", "Data", "Asia/Tokyo", 2),
        ("s5", ["mentee"], "sql", "Platform", "Europe/Berlin", None),
    ]
    async with settling_client(svc, mongo, prefix) as http:
        for pid, roles, skill, dept, tz, cap in people:
            r = await http.post(
                "/profiles",
                headers=ADMIN,
                json={
                    "profile_id": pid,
                    "display_name": pid,
                    "email": f"{pid}@example.org",
                    "roles": roles,
                    "skills": [{"name": skill}],
                    "department": dept,
                    "time_zone": tz,
                    "mentor_capacity": cap,
                },
            )
            assert r.status_code == 201, r.text
        assert (await http.post("/profiles/s4/deactivate", headers=ADMIN)).status_code == 200

        async def ids(**params):
            r = await http.get("/profiles", headers=ADMIN, params=params)
            assert r.status_code == 200, r.text
            return [p["profile_id"] for p in r.json()["items"]]

        assert await ids(role="mentor") == ["s1", "s3", "s4"]
        assert await ids(skill="Python") == ["s1", "s2", "s4"]
        assert await ids(department="PLATFORM") == ["s1", "s2", "s5"]
        assert await ids(time_zone="Europe/Berlin", role="mentee") == ["s2", "s5"]
        assert await ids(active="false") == ["s4"]
        assert await ids(active="true", role="mentor", skill="python") == ["s1"]
        assert await ids(skill="cobol") == []

        seen, cursor = [], None
        while True:
            params = {"limit": 2, **({"cursor": cursor} if cursor else {})}
            page = (await http.get("/profiles", headers=ADMIN, params=params)).json()
            seen += [p["profile_id"] for p in page["items"]]
            cursor = page["next_cursor"]
            if cursor is None:
                break
        assert seen == ["s1", "s2", "s3", "s4", "s5"]

        r = await http.get("/profiles", headers=token("s1", "mentor"))
        assert r.status_code == 403
        r = await http.get("/profiles", headers=ADMIN, params={"role": "guru"})
        assert r.status_code == 422
