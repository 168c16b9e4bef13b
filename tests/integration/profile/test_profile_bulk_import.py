"""Bulk import (HR onboarding) on the real broker and store: 5,000 rows, some bad, run twice."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys

import httpx
import pytest

from mentorship_contracts import Topic, decode
from tests.support.kafka import eventually, read_topic
from tests.support.processes import token

pytestmark = pytest.mark.integration

ADMIN = token("hr-admin", "admin")
COLUMNS = [
    "email",
    "display_name",
    "roles",
    "department",
    "time_zone",
    "skills",
    "availability",
    "mentor_capacity",
    "years_experience",
    "languages",
]
# The issue asks for 5,000 rows; smaller runs (e.g. on a loaded local store) via the variable.
ROWS = int(os.environ.get("PROFILE_IMPORT_TEST_ROWS", "5000"))
# data row number -> (what to put in the row, the field the rejection must name)
BAD = {
    10: ({"time_zone": "Mars/Olympus"}, "time_zone"),
    20: ({"roles": "mentee;guru"}, "roles.1"),
    30: ({"roles": "mentee", "mentor_capacity": "2"}, "mentor_capacity"),
    40: ({"availability": "1 09:00-11:00;1 10:00-12:00"}, "availability"),
    50: ({"availability": "2 17:00-09:00"}, "availability"),
    60: ({"display_name": "x" * 300}, "display_name"),
    70: ({"years_experience": "lots"}, "years_experience"),
    80: ({"email": "person1@example.org"}, "email"),  # same email as row 1
    90: ({"email": "not-an-email"}, "email"),
    100: ({"skills": "python:9"}, "skills.0.proficiency"),
}
MALFORMED_ROW = 110  # too few cells


def db_name(prefix: str) -> str:
    return f"{prefix.replace('.', '_').strip('_')}_profile"


def hr_file() -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(COLUMNS)
    for n in range(1, ROWS + 1):
        mentor = n % 3 == 0
        row = {
            "email": f"Person{n}@Example.org",
            "display_name": f"Person {n}",
            "roles": "mentee;mentor" if mentor else "mentee",
            "department": f"Dept {n % 7}",
            "time_zone": ["Europe/Berlin", "America/New_York", "Asia/Kolkata"][n % 3],
            "skills": f"python:{1 + n % 5};sql",
            "availability": f"{n % 5} 09:00-12:00;{n % 5} 13:00-15:00",
            "mentor_capacity": str(1 + n % 4) if mentor else "",
            "years_experience": str(n % 30),
            "languages": "en;de",
        }
        if n in BAD:
            row.update(BAD[n][0])
        if n == MALFORMED_ROW:
            writer.writerow([row["email"], row["display_name"]])
            continue
        writer.writerow([row[c] for c in COLUMNS])
    return out.getvalue()


async def post_import(http: httpx.AsyncClient, body: str, content_type: str) -> list[dict]:
    messages = []
    async with http.stream(
        "POST", "/profiles/import", content=body.encode(), headers={**ADMIN, "content-type": content_type}
    ) as resp:
        assert resp.status_code == 200, await resp.aread()
        assert resp.headers["content-type"].startswith("application/x-ndjson")
        async for line in resp.aiter_lines():
            if line.strip():
                messages.append(json.loads(line))
    return messages


async def all_events(infra, mongo, prefix) -> dict[str, dict]:
    """Every event the service has created so far: still in an outbox, or already on the topic.

    The relay publishes one document at a time, and the local store scans the collection for
    each claim, so thousands of events take longer to publish than this test may run; the union
    of both places is exact whatever the relay has done (read the outbox first: an event
    published meanwhile is then in both).
    """
    events: dict[str, dict] = {}
    async for doc in mongo[db_name(prefix)]["profiles"].find({"outbox_pending": True}, {"outbox": 1}):
        for entry in doc.get("outbox") or []:
            if entry["topic"] != Topic.PROFILE:
                continue  # the profile's state (profile.state) after each change: not an event
            events[entry["id"]] = {"type": entry["type"], "key": entry["key"], "body": entry["body"]}
    records = await read_topic(infra.kafka_bootstrap, f"{prefix}{Topic.PROFILE}", want=10**9, timeout=3)
    for r in records:
        envelope = decode(r.value)
        events[envelope.id] = {"type": envelope.type, "key": r.key.decode(), "body": r.value}
    return events


async def settled(mongo, prefix, email: str) -> None:
    """Wait until the relay is done with one profile (the local store loses concurrent updates)."""
    coll = mongo[db_name(prefix)]["profiles"]

    async def idle():
        doc = await coll.find_one({"email_key": email}, {"outbox_pending": 1, "outbox_lease_until": 1})
        return doc and not doc.get("outbox_pending") and not doc.get("outbox_lease_until")

    await eventually(idle, timeout=60, interval=0.2)


async def test_five_thousand_rows_good_stored_bad_reported_rerun_changes_nothing(spawn, infra, prefix, mongo):
    svc = spawn("profile")
    body = hr_file()
    bad_rows = {**{n: f for n, (_, f) in BAD.items()}, MALFORMED_ROW: "row"}
    good = ROWS - len(bad_rows)
    async with httpx.AsyncClient(base_url=svc.url, timeout=300) as http:
        first = await post_import(http, body, "text/csv")
        progress = [m for m in first if m["type"] == "progress"]
        assert len(progress) == -(-ROWS // 1000) and progress[-1]["rows"] == ROWS  # streamed per batch
        assert [p["rows"] for p in progress] == sorted(p["rows"] for p in progress)
        summary = first[-1]
        assert summary["type"] == "summary"
        assert (summary["created"], summary["updated"], summary["unchanged"], summary["rejected"]) == (
            good,
            0,
            0,
            len(bad_rows),
        )
        assert {r["row"]: r["field"] for r in summary["rejections"]} == bad_rows
        assert all(r["reason"] for r in summary["rejections"])
        assert {m["row"] for m in first if m["type"] == "rejected"} == set(bad_rows)
        assert "row 1" in next(r["reason"] for r in summary["rejections"] if r["row"] == 80)

        coll = mongo[db_name(prefix)]["profiles"]
        assert await coll.count_documents({}) == good
        sample = await coll.find_one({"email_key": "person3@example.org"})
        assert sample["profile"]["roles"] == ["mentee", "mentor"] and sample["profile"]["mentor_capacity"] == 4
        assert sample["profile"]["availability"] == [
            {"weekday": 3, "start": "09:00", "end": "12:00"},
            {"weekday": 3, "start": "13:00", "end": "15:00"},
        ]

        first_events = await all_events(infra, mongo, prefix)
        assert len(first_events) == good
        assert {e["type"] for e in first_events.values()} == {"mentorship.profile.v2.profile_registered"}
        assert {e["key"] for e in first_events.values()} == {d["_id"] async for d in coll.find({}, {"_id": 1})}

        again = await post_import(http, body, "text/csv")
        summary = again[-1]
        assert (summary["created"], summary["updated"], summary["unchanged"], summary["rejected"]) == (
            0,
            0,
            good,
            len(bad_rows),
        )
        assert await coll.count_documents({}) == good
        assert await coll.count_documents({"version": {"$ne": 1}}) == 0
        assert set(await all_events(infra, mongo, prefix)) == set(first_events)  # the re-run emitted nothing

        # an HR correction as JSON Lines: two changed people, one unchanged, one new, one bad
        for n in (1, 2, 4):
            await settled(mongo, prefix, f"person{n}@example.org")
        fix = "\n".join(
            json.dumps(r)
            for r in [
                {"email": "Person1@Example.org", "department": "Finance"},
                {"email": "Person2@Example.org", "roles": ["mentee", "mentor"], "mentor_capacity": 1},
                {"email": "Person4@Example.org", "department": "Dept 4"},  # same as the CSV: unchanged
                {
                    "email": "newbie@example.org",
                    "display_name": "Newbie",
                    "roles": ["mentee"],
                    "goals": [{"goal_id": "g1", "title": "Ship a feature"}],
                },
                {"email": "person5@example.org", "time_zone": "Atlantis/Capital"},
            ]
        )
        third = await post_import(http, fix, "application/x-ndjson")
        summary = third[-1]
        assert (summary["created"], summary["updated"], summary["unchanged"], summary["rejected"]) == (1, 2, 1, 1)
        assert [(r["row"], r["field"]) for r in summary["rejections"]] == [(5, "time_zone")]
        assert (await coll.find_one({"email_key": "person1@example.org"}))["profile"]["department"] == "Finance"

    new_events = [e for eid, e in (await all_events(infra, mongo, prefix)).items() if eid not in first_events]
    by_type = sorted(e["type"].rsplit(".", 1)[1] for e in new_events)
    assert by_type == ["profile_registered", "profile_role_added", "profile_updated", "profile_updated"]
    updates = [decode(e["body"]).data for e in new_events if e["type"].endswith("profile_updated")]
    assert sorted(tuple(u.changed_fields) for u in updates) == [("department",), ("mentor_capacity",)]
    assert all(e["key"] == decode(e["body"]).data.profile_id for e in new_events)


async def test_cli_streams_a_file_and_reports_rejected_rows(spawn, tmp_path, mongo, prefix):
    svc = spawn("profile")
    path = tmp_path / "hr.csv"
    path.write_text(
        "email,display_name,roles,time_zone\n"
        "a@example.org,Ann,mentee,Europe/Paris\n"
        "b@example.org,Bo,mentor;boss,UTC\n"
        "c@example.org,Cy,mentee\n"
    )
    report = tmp_path / "rejected.jsonl"
    admin = token("hr-admin", "admin")["Authorization"].split()[1]
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "profile_service.bulk_import",
            str(path),
            "--url",
            svc.url,
            "--token",
            admin,
            "--report",
            str(report),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2, done.stderr  # some rows rejected
    rejected = [json.loads(line) for line in report.read_text().splitlines()]
    assert [(r["row"], r["field"]) for r in rejected] == [(2, "roles.1"), (3, "row")]
    assert "created 1" in done.stderr
    assert await mongo[db_name(prefix)]["profiles"].count_documents({}) == 1

    bad_token = subprocess.run(
        [
            sys.executable,
            "-m",
            "profile_service.bulk_import",
            str(path),
            "--url",
            svc.url,
            "--token",
            token("x", "mentee")["Authorization"].split()[1],
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert bad_token.returncode == 1 and "403" in bad_token.stderr


async def test_import_refuses_bad_files_up_front(spawn):
    svc = spawn("profile")
    async with httpx.AsyncClient(base_url=svc.url, timeout=30) as http:
        r = await http.post(
            "/profiles/import", content=b"email,salary\na@x.io,3\n", headers={**ADMIN, "content-type": "text/csv"}
        )
        assert r.status_code == 422 and r.json()["errors"][0]["field"] == "file"
        r = await http.post("/profiles/import", content=b"{}", headers={**ADMIN, "content-type": "image/png"})
        assert r.status_code == 415
        r = await http.post(
            "/profiles/import", content=b"\xff\xfe\x00bad", headers={**ADMIN, "content-type": "text/csv"}
        )
        assert r.status_code == 422
        r = await http.post(
            "/profiles/import", content=b"email\n", headers={**token("p1", "mentor"), "content-type": "text/csv"}
        )
        assert r.status_code == 403
