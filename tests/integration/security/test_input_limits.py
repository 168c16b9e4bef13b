"""Input that did lasting damage, replayed over HTTP against the services as their own processes.

Each test is one defect of issue 11 as it was seen on main: the request that did the damage,
now refused with a 422/413 problem, and the service still serving everything else.
"""

from __future__ import annotations

import asyncio
import csv
import io
import json
from pathlib import Path

import httpx
import pytest

from tests.integration.scheduling.scheduling_support import future_start, known, mentorship, person, profiles_known
from tests.support.processes import token

pytestmark = pytest.mark.integration

ADMIN = token("admin-1", "admin")
MiB = 1024 * 1024
PROFILE = {"display_name": "Ada Lovelace", "email": "ada@example.org", "roles": ["mentee"], "time_zone": "UTC"}


def field_errors(response: httpx.Response) -> set[str]:
    assert response.headers["content-type"].startswith("application/problem+json"), response.text
    return {e["field"] for e in response.json().get("errors", [])}


# --- profile -------------------------------------------------------------------------------------


async def test_line_breaks_in_single_line_profile_fields_are_refused(spawn):
    svc = spawn("profile")
    me = token("p-crlf", "mentee")
    async with httpx.AsyncClient(base_url=svc.url, timeout=10) as http:
        for name in ("Eve\r\nBcc: everyone@example.org", "Eve\nSmith", "Eve\x00", "Eve\u2028Smith"):
            r = await http.post("/profiles", json={**PROFILE, "display_name": name}, headers=me)
            assert r.status_code == 422 and field_errors(r) == {"display_name"}, r.text
        r = await http.post("/profiles", json={**PROFILE, "email": "eve@example.org\r\nBcc: x@example.org"}, headers=me)
        assert r.status_code == 422 and field_errors(r) == {"email"}
        for field in ("job_title", "department"):
            r = await http.post("/profiles", json={**PROFILE, field: "a\nb"}, headers=me)
            assert r.status_code == 422 and field_errors(r) == {field}
        assert (await http.get("/profiles/p-crlf", headers=me)).status_code == 404  # nothing was written

        r = await http.post("/profiles", json=PROFILE, headers=me)
        assert r.status_code == 201, r.text
        await asyncio.sleep(0.5)  # let the relay release the document (FerretDB, see test_profile_api)
        r = await http.patch("/profiles/p-crlf", json={"display_name": "Ada\r\nLovelace"}, headers=me)
        assert r.status_code == 422 and field_errors(r) == {"display_name"}
        r = await http.get("/profiles/p-crlf", headers=me)
        assert r.json()["display_name"] == "Ada Lovelace"


async def test_category_keys_with_dollar_or_dot_answer_422_not_500(spawn):
    svc = spawn("profile")
    me = token("p-cat", "mentee")
    async with httpx.AsyncClient(base_url=svc.url, timeout=10) as http:
        for key in ("$where", "a.b", "UPPER", "", "x" * 65, "sp ace"):
            prefs = {"categories": {key: False}}
            r = await http.post("/profiles", json={**PROFILE, "notification_preferences": prefs}, headers=me)
            assert r.status_code == 422, (key, r.status_code, r.text)
        r = await http.post(
            "/profiles",
            json={**PROFILE, "notification_preferences": {"categories": {"reminders": False, "program_news": True}}},
            headers=me,
        )
        assert r.status_code == 201, r.text
        await asyncio.sleep(0.5)
        r = await http.patch(
            "/profiles/p-cat", json={"notification_preferences": {"categories": {"$set": True}}}, headers=me
        )
        assert r.status_code == 422
        assert (await http.get("/health")).status_code == 200


def csv_file(rows: list[dict[str, str]]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=["email", "display_name", "roles", "time_zone"])
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()


async def import_csv(http: httpx.AsyncClient, body: str | bytes) -> httpx.Response:
    return await http.post(
        "/profiles/import",
        content=body.encode() if isinstance(body, str) else body,
        headers={**ADMIN, "content-type": "text/csv"},
        timeout=60,
    )


async def test_the_hr_import_rejects_a_row_whose_name_has_a_line_break(spawn):
    svc = spawn("profile")
    body = csv_file(
        [
            {"email": "fine@example.org", "display_name": "Fine Person", "roles": "mentee", "time_zone": "UTC"},
            {
                "email": "crlf@example.org",
                "display_name": "Bad\r\nBcc: all@example.org",
                "roles": "mentee",
                "time_zone": "UTC",
            },
        ]
    )
    async with httpx.AsyncClient(base_url=svc.url, timeout=10) as http:
        r = await import_csv(http, body)
        assert r.status_code == 200, r.text
        summary = [json.loads(line) for line in r.text.splitlines() if line.strip()][-1]
        assert summary["type"] == "summary" and summary["created"] == 1, summary
        assert [(x["row"], x["field"]) for x in summary["rejections"]] == [(2, "display_name")], summary


async def test_an_event_larger_than_event_max_bytes_is_refused_with_422_and_nothing_written(spawn):
    svc = spawn("profile", event_max_bytes="4096")
    me = token("p-big", "mentee")
    goals = [{"goal_id": f"g{i}", "title": "Grow", "description": "y" * 400} for i in range(20)]
    async with httpx.AsyncClient(base_url=svc.url, timeout=10) as http:
        r = await http.post("/profiles", json={**PROFILE, "goals": goals}, headers=me)
        assert r.status_code == 422, r.text
        assert r.json()["title"] == "Event too large" and r.json()["limit"] == 4096
        assert (await http.get("/profiles/p-big", headers=me)).status_code == 404
        r = await http.post("/profiles", json={**PROFILE, "goals": goals[:1]}, headers=me)
        assert r.status_code == 201, r.text


# --- request bodies ----------------------------------------------------------------------------------


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


async def raw_post(
    port: int, path: str, headers: dict[str, str], body_chunks, *, chunked: bool
) -> tuple[int, bytes, int]:
    """POST over a plain socket, sending the body until the server answers; returns the status, the
    answer and how many body bytes went out."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    head = f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    writer.write((head + "\r\n").encode())

    async def read_answer() -> bytes:
        head = await reader.readuntil(b"\r\n\r\n")
        length = next(
            (
                int(line.split(b":", 1)[1])
                for line in head.split(b"\r\n")
                if line.lower().startswith(b"content-length:")
            ),
            0,
        )
        return head + await reader.readexactly(length)

    answer = asyncio.create_task(read_answer())
    sent = 0
    try:
        for chunk in body_chunks:
            if answer.done():
                break
            writer.write(b"%x\r\n%s\r\n" % (len(chunk), chunk) if chunked else chunk)
            sent += len(chunk)
            await writer.drain()
            # drain() does not yield while the server keeps up: let the answer's reader run, as a
            # client reading its socket while it sends would.
            await asyncio.sleep(0)
    except (ConnectionError, OSError):
        pass  # the server answered and closed: what we want
    data = await asyncio.wait_for(answer, 10)
    writer.close()
    status = int(data.split(b" ", 2)[1])
    return status, data.split(b"\r\n\r\n", 1)[-1], sent


def chunks(total: int, size: int = 256 * 1024):
    block = b"x" * size
    for _ in range(total // size):
        yield block


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
async def test_a_50_mb_body_without_a_token_is_refused_before_it_is_read(spawn, chunked):
    svc = spawn("profile")
    assert svc.proc is not None
    before = rss_kib(svc.proc.pid)
    headers = {
        "content-type": "application/json",
        **({"transfer-encoding": "chunked"} if chunked else {"content-length": str(50 * MiB)}),
    }
    for path in ("/profiles", "/profiles/p-x/deactivate"):
        status, body, sent = await raw_post(svc.port, path, headers, chunks(50 * MiB), chunked=chunked)
        assert status == 413 and json.loads(body)["title"] == "Content too large", body
        assert sent < 50 * MiB
    grown = rss_kib(svc.proc.pid) - before
    assert grown < 20 * 1024, f"RSS grew by {grown} KiB"
    async with httpx.AsyncClient(base_url=svc.url, timeout=10) as http:
        assert (await http.get("/ready")).status_code == 200


async def test_the_import_route_has_its_own_larger_cap(spawn):
    svc = spawn("profile", profile_import_max_bytes=str(3 * MiB))
    row = {"email": "", "display_name": "Someone", "roles": "mentee", "time_zone": "Not/AZone"}
    rows = [{**row, "email": f"p{i}@example.org"} for i in range(30_000)]
    body = csv_file(rows)
    assert 1 * MiB < len(body) < 3 * MiB
    async with httpx.AsyncClient(base_url=svc.url, timeout=60) as http:
        r = await import_csv(http, body)
        assert r.status_code == 200  # past HTTP_MAX_BODY_BYTES: the import has its own cap
        summary = [json.loads(line) for line in r.text.splitlines() if line.strip()][-1]
        assert summary["rejected"] == 30_000, {k: v for k, v in summary.items() if k != "rejections"}
        r = await import_csv(http, body * 3)  # past PROFILE_IMPORT_MAX_BYTES
        assert r.status_code == 413 and r.json()["limit"] == 3 * MiB


# --- scheduling ------------------------------------------------------------------------------------


async def test_scheduling_refuses_line_breaks_in_locations_and_bad_time_zones(spawn, infra, prefix):
    svc = spawn("scheduling")
    await person(infra, prefix, "lim-mentor", "Europe/Berlin", [(d, "08:00", "18:00") for d in range(7)])
    await person(infra, prefix, "lim-mentee", "Europe/Berlin", [(d, "08:00", "18:00") for d in range(7)])
    await mentorship(infra, prefix, "m-lim", "lim-mentor", "lim-mentee")
    mentee = token("lim-mentee", "mentee")
    mentor = token("lim-mentor", "mentor")
    async with httpx.AsyncClient(base_url=svc.url, timeout=10) as http:
        await known(http, svc.url, "m-lim")
        await profiles_known(http, svc.url, "m-lim")
        start = future_start(days=3, hour=10).isoformat()
        r = await http.post(
            "/mentorships/m-lim/sessions",
            headers=mentee,
            json={"start": start, "duration_minutes": 30, "location": "https://x\ny"},
        )
        assert r.status_code == 422 and field_errors(r) == {"location"}, r.text
        for tz in ("A" * 256, "Mars/Olympus_Mons", "Europe/Berlin\n", "../../etc/passwd"):
            r = await http.post(
                "/mentorships/m-lim/series",
                headers=mentee,
                json={"first_start": start, "duration_minutes": 30, "count": 2, "time_zone": tz},
            )
            assert r.status_code == 422 and field_errors(r) == {"time_zone"}, (tz, r.text)
        r = await http.post("/mentorships/m-lim/milestones", headers=mentee, json={"title": "Ship\r\nit"})
        assert r.status_code == 422 and field_errors(r) == {"title"}

        # what is accepted keeps the calendar views working
        r = await http.post(
            "/mentorships/m-lim/sessions",
            headers=mentee,
            json={
                "start": start,
                "duration_minutes": 30,
                "location": "https://meet.example/x",
                "agenda": "line one\nline two",
            },
        )
        assert r.status_code == 201, r.text
        session_id = r.json()["session_id"]
        r = await http.post(
            "/mentorships/m-lim/series",
            headers=mentee,
            json={
                "first_start": future_start(days=10, hour=9).isoformat(),
                "duration_minutes": 30,
                "count": 2,
                "time_zone": "America/New_York",
            },
        )
        assert r.status_code == 201, r.text
        assert (await http.get(f"/sessions/{session_id}/ical", headers=mentor)).status_code == 200
        for who in (mentee, mentor):
            feed = (await http.post("/calendar/feed", headers=who)).json()
            assert (await http.get(f"/calendar/feeds/{feed['token']}.ics")).status_code == 200


# --- notification ----------------------------------------------------------------------------------


async def test_webhook_fields_are_bounded_and_single_line(spawn):
    svc = spawn("notification", webhook_allow_loopback="true")
    async with httpx.AsyncClient(base_url=svc.url, timeout=10) as http:
        base = {"url": "http://127.0.0.1:9/hook", "event_types": ["*"]}
        for bad, field in (
            ({"description": "a\nb"}, "description"),
            ({"url": "http://127.0.0.1:9/\r\nX-Injected: 1"}, "url"),
            ({"event_types": ["x" * 201]}, "event_types.0"),
            ({"event_types": ["mentorship.\x00"]}, "event_types.0"),
        ):
            r = await http.post("/webhooks", json={**base, **bad}, headers=ADMIN)
            assert r.status_code == 422 and field_errors(r) == {field}, (bad, r.text)
        r = await http.post("/webhooks", json={**base, "description": "ops channel"}, headers=ADMIN)
        assert r.status_code == 201, r.text
