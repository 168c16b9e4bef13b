"""Profile -> Kafka -> matching, each service its own process on the real broker and store."""

from __future__ import annotations

import httpx
import pytest

from mentorship_contracts import Topic, decode
from tests.support.kafka import eventually, read_topic
from tests.support.processes import token

pytestmark = pytest.mark.integration


async def test_registered_profile_reaches_matching_read_model(spawn, infra, prefix):
    profile_svc = spawn("profile")
    matching_svc = spawn("matching")
    admin = token("admin-1", "admin")
    body = {
        "display_name": "Grace Hopper",
        "email": "Grace@Example.org",
        "roles": ["mentor"],
        "time_zone": "America/New_York",
        "skills": [{"name": "COBOL", "proficiency": 5}],
        "mentor_capacity": 2,
    }
    async with httpx.AsyncClient(timeout=10) as http:
        created = await http.post(f"{profile_svc.url}/profiles", json=body, headers=admin)
        assert created.status_code == 201, created.text
        pid = created.json()["profile_id"]

        async def in_read_model():
            r = await http.get(f"{matching_svc.url}/read-models/profiles/{pid}", headers=admin)
            return r.json() if r.status_code == 200 else None

        seen = await eventually(in_read_model)
        assert seen["profile"]["skills"] == [{"name": "cobol", "proficiency": 5}]
        assert seen["profile"]["mentor_capacity"] == 2

    records = await read_topic(infra.kafka_bootstrap, f"{prefix}{Topic.PROFILE}", want=1)
    assert [r.key for r in records] == [pid.encode()]
    assert decode(records[0].value).type == "mentorship.profile.v2.profile_registered"


async def test_bad_requests_get_problem_json_and_nothing_is_written(spawn, infra, prefix):
    profile_svc = spawn("profile")
    admin = token("admin-1", "admin")
    async with httpx.AsyncClient(base_url=profile_svc.url, timeout=10) as http:
        r = await http.post("/profiles", json={"display_name": "X", "email": "x@y.z", "roles": ["mentee"]})
        assert r.status_code == 401
        assert r.headers["content-type"].startswith("application/problem+json")

        r = await http.post(
            "/profiles",
            headers=admin,
            json={"display_name": "X", "email": "x@y.z", "roles": ["mentee"], "time_zone": "Mars/Base"},
        )
        assert r.status_code == 422
        problem = r.json()
        assert problem["status"] == 422 and problem["errors"][0]["field"] == "time_zone"

        r = await http.post(
            "/profiles",
            headers=admin,
            json={"display_name": "X", "email": "x@y.z", "roles": ["mentee"], "mentor_capacity": 3},
        )
        assert r.status_code == 422 and r.json()["errors"][0]["field"] == "mentor_capacity"

        ok = await http.post(
            "/profiles", headers=admin, json={"display_name": "X", "email": "x@y.z", "roles": ["mentee"]}
        )
        assert ok.status_code == 201
        dup = await http.post(
            "/profiles", headers=admin, json={"display_name": "Y", "email": "X@Y.Z", "roles": ["mentee"]}
        )
        assert dup.status_code == 409

    records = await read_topic(infra.kafka_bootstrap, f"{prefix}{Topic.PROFILE}", want=2, timeout=5)
    assert len(records) == 1  # only the valid registration produced an event
