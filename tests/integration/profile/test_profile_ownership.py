"""Who may lift a deactivation, and who owns an email: over HTTP, the service as its own process.

Each test reproduces a defect seen on main (issue 11): a person reactivated themselves after an
admin had deactivated them; the HR import merged a colleague's HR data into a profile registered
by someone else with that colleague's address; conflict answers named the address.
"""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from tests.support.processes import token

from .test_profile_api import settling_client

pytestmark = pytest.mark.integration

ADMIN = token("admin-1", "admin")


def me(pid: str, email: str, name: str = "Someone") -> dict[str, Any]:
    return {"display_name": name, "email": email, "roles": ["mentee"]}


async def import_rows(http: httpx.AsyncClient, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    body = "\n".join(json.dumps(r) for r in rows).encode()
    r = await http.post("/profiles/import", content=body, headers={**ADMIN, "content-type": "application/x-ndjson"})
    assert r.status_code == 200, r.text
    return [json.loads(line) for line in r.text.splitlines() if line.strip()]


async def test_an_admins_deactivation_is_lifted_only_by_an_admin(spawn, mongo, prefix):
    svc = spawn("profile")
    eve = token("p-eve", "mentee")
    async with settling_client(svc, mongo, prefix) as http:
        assert (await http.post("/profiles", headers=eve, json=me("p-eve", "eve@example.org"))).status_code == 201

        r = await http.post("/profiles/p-eve/deactivate", headers=ADMIN, json={"reason": "left the program"})
        assert r.status_code == 200 and r.json()["active"] is False
        r = await http.post("/profiles/p-eve/reactivate", headers=eve)  # on main: 200, active again
        assert r.status_code == 403, r.text
        assert r.headers["content-type"].startswith("application/problem+json")
        assert (await http.get("/profiles/p-eve", headers=eve)).json()["active"] is False
        r = await http.post("/profiles/p-eve/reactivate", headers=ADMIN)
        assert r.status_code == 200 and r.json()["active"] is True

        # The person's own deactivation is theirs to lift.
        assert (await http.post("/profiles/p-eve/deactivate", headers=eve)).status_code == 200
        r = await http.post("/profiles/p-eve/reactivate", headers=eve)
        assert r.status_code == 200 and r.json()["active"] is True

        # An admin's deactivation of an already (self-)deactivated profile still holds.
        assert (await http.post("/profiles/p-eve/deactivate", headers=eve)).status_code == 200
        assert (await http.post("/profiles/p-eve/deactivate", headers=ADMIN)).status_code == 200
        assert (await http.post("/profiles/p-eve/reactivate", headers=eve)).status_code == 403
        assert (await http.post("/profiles/p-eve/reactivate", headers=ADMIN)).json()["active"] is True


async def test_the_import_holds_a_self_registered_unverified_email_and_merges_nothing(spawn, mongo, prefix):
    svc = spawn("profile")
    mallory = token("p-mallory", "mentee")
    hr_row = {
        "email": "Carol@Example.org",
        "display_name": "Carol Shaw",
        "job_title": "Director",
        "department": "Finance",
        "manager_id": "p-ceo",
        "roles": ["mentee"],
    }
    async with settling_client(svc, mongo, prefix) as http:
        # Mallory registers with a colleague's address (nobody verifies it today).
        r = await http.post("/profiles", headers=mallory, json=me("p-mallory", "carol@example.org", "Mallory"))
        assert r.status_code == 201
        # An admin-registered profile and an imported one are verified: the import merges into them.
        r = await http.post(
            "/profiles", headers=ADMIN, json={**me("p-dan", "dan@example.org", "Dan"), "profile_id": "p-dan"}
        )
        assert r.status_code == 201

        lines = await import_rows(
            http,
            [hr_row, {"email": "dan@example.org", "display_name": "Dan", "department": "Ops", "roles": ["mentee"]}],
        )
        held = [m for m in lines if m["type"] == "held"]
        assert held == [{"type": "held", "row": 1, "line": 1, "profile_id": "p-mallory", "held": "email not verified"}]
        summary = lines[-1]
        assert summary["type"] == "summary"
        assert (summary["updated"], summary["held"], summary["rejected"], summary["created"]) == (1, 1, 0, 0)
        assert summary["holds"] == [{"row": 1, "line": 1, "profile_id": "p-mallory", "held": "email not verified"}]

        squatter = (await http.get("/profiles/p-mallory", headers=ADMIN)).json()  # on main: Carol's HR data
        assert (squatter["display_name"], squatter["job_title"], squatter["department"], squatter["manager_id"]) == (
            "Mallory",
            None,
            None,
            None,
        )
        assert squatter["version"] == 1
        assert (await http.get("/profiles/p-dan", headers=ADMIN)).json()["department"] == "Ops"

        # Nobody but an admin may vouch for an address.
        assert (await http.post("/profiles/p-mallory/verify-email", headers=mallory)).status_code == 403
        # The admin's decision: this one is a squatter. Erase it; the import then creates Carol.
        assert (await http.delete("/profiles/p-mallory", headers=ADMIN)).status_code == 204
        lines = await import_rows(http, [hr_row])
        assert (lines[-1]["created"], lines[-1]["held"]) == (1, 0)

        # A person's own change of email is unverified again; an admin's vouching lifts the hold.
        r = await http.post("/profiles", headers=token("p-fay", "mentee"), json=me("p-fay", "fay@example.org", "Fay"))
        assert r.status_code == 201
        lines = await import_rows(
            http, [{"email": "fay@example.org", "display_name": "Fay", "department": "HR", "roles": ["mentee"]}]
        )
        assert lines[-1]["held"] == 1
        assert (await http.post("/profiles/p-fay/verify-email", headers=ADMIN)).status_code == 200
        lines = await import_rows(
            http, [{"email": "fay@example.org", "display_name": "Fay", "department": "HR", "roles": ["mentee"]}]
        )
        assert (lines[-1]["updated"], lines[-1]["held"]) == (1, 0)
        r = await http.patch("/profiles/p-fay", headers=token("p-fay", "mentee"), json={"email": "fay2@example.org"})
        assert r.status_code == 200
        lines = await import_rows(
            http, [{"email": "fay2@example.org", "display_name": "Fay", "department": "IT", "roles": ["mentee"]}]
        )
        assert lines[-1]["held"] == 1


async def test_conflict_answers_do_not_reveal_whether_someone_elses_address_exists(spawn, mongo, prefix):
    svc = spawn("profile")
    async with settling_client(svc, mongo, prefix) as http:
        r = await http.post("/profiles", headers=token("p-gil", "mentee"), json=me("p-gil", "gil@example.org"))
        assert r.status_code == 201
        r = await http.post("/profiles", headers=token("p-hal", "mentee"), json=me("p-hal", "hal@example.org"))
        assert r.status_code == 201

        # Someone probes gil's address by registering with it, and by changing their own to it.
        probe = await http.post("/profiles", headers=token("p-ivy", "mentee"), json=me("p-ivy", "GIL@example.org"))
        change = await http.patch(
            "/profiles/p-hal", headers=token("p-hal", "mentee"), json={"email": "gil@example.org"}
        )
        # hal registering again (their own clash, nobody else's address involved)
        again = await http.post("/profiles", headers=token("p-hal", "mentee"), json=me("p-hal", "new@example.org"))
        answers = [probe, change, again]
        assert [a.status_code for a in answers] == [409, 409, 409]
        for a in answers:
            problem = a.json()
            assert "field" not in problem and "errors" not in problem, problem  # on main: field "email"
            assert "gil" not in a.text.lower() and "email" not in a.text.lower(), a.text
        assert len({(a.json()["title"], a.json()["detail"]) for a in answers}) == 1  # one answer for every clash

        # An admin (who may search profiles anyway) is told precisely.
        r = await http.post("/profiles", headers=ADMIN, json={**me("p-x", "gil@example.org"), "profile_id": "p-x"})
        assert r.status_code == 409 and r.json()["field"] == "email"
