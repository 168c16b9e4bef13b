"""All four services as separate processes on the shared broker and store, with a small world of
real resources made through their public APIs: what the policy walk and the fuzzing run need."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from mentorship_ops.support import ServiceProcess, free_port
from tests.support.infra import Infra
from tests.support.kafka import eventually
from tests.support.processes import service_env, token

SERVICES = ("profile", "matching", "scheduling", "notification", "insights")
ADMIN = token("admin-1", "admin")


@dataclass
class Platform:
    processes: dict[str, ServiceProcess]
    http: httpx.AsyncClient

    def url(self, service: str) -> str:
        return self.processes[service].url

    async def call(
        self, service: str, method: str, path: str, *, headers: dict[str, str] | None = None, **kwargs: Any
    ) -> httpx.Response:
        return await self.http.request(method, f"{self.url(service)}{path}", headers=headers or {}, **kwargs)

    async def openapi(self, service: str) -> dict[str, Any]:
        r = await self.call(service, "GET", "/openapi.json")
        r.raise_for_status()
        return r.json()


_shared: dict[str, Any] = {"users": 0}


@asynccontextmanager
async def shared_platform(infra: Infra, logs: Path) -> AsyncIterator[Platform]:
    """One set of four processes for every module of this folder that asks (they take a while to
    start on a small machine); stopped when the last module is done. Each module builds its own
    world on it, so that what one module does to its resources never touches another's."""
    if _shared["users"] == 0:
        _shared["context"] = platform_world(infra, logs)
        _shared["platform"] = await _shared["context"].__aenter__()
    _shared["users"] += 1
    try:
        yield _shared["platform"]
    finally:
        _shared["users"] -= 1
        if _shared["users"] == 0:
            await _shared.pop("context").__aexit__(None, None, None)


@asynccontextmanager
async def platform_world(infra: Infra, logs: Path) -> AsyncIterator[Platform]:
    prefix = f"a{uuid.uuid4().hex[:10]}."
    processes: dict[str, ServiceProcess] = {}
    extra = {
        "DEV_CLOCK_ENABLED": "true",
        "WEBHOOK_ALLOW_LOOPBACK": "true",
        "SMTP_HOST": "127.0.0.1",
        "SMTP_PORT": str(free_port()),
    }

    def start(name: str) -> None:
        port = free_port()
        env = service_env(name, kafka=infra.kafka_bootstrap, mongo=infra.mongodb_uri, prefix=prefix, port=port, **extra)
        processes[name] = ServiceProcess(name, port, env, logs / f"{name}.log")
        processes[name].start(timeout=120)

    try:
        await asyncio.gather(*(asyncio.to_thread(start, name) for name in SERVICES))
        async with httpx.AsyncClient(timeout=30) as http:
            yield Platform(processes, http)
    finally:
        for proc in processes.values():
            proc.stop()
            print(f"--- {proc.name} log (tail) ---\n{proc.tail(30)}")


def person_body(pid: str, roles: list[str]) -> dict[str, Any]:
    body: dict[str, Any] = {
        "profile_id": pid,
        "display_name": f"Person {pid}",
        "email": f"{pid}@example.org",
        "roles": roles,
        "time_zone": "Europe/Berlin",
        "languages": ["en"],
        "skills": [{"name": "python", "proficiency": 4}],
        "development_areas": ["python"],
        "availability": [{"weekday": d, "start": "08:00", "end": "18:00"} for d in range(5)],
    }
    if "mentor" in roles:
        body["mentor_capacity"] = 5
    return body


@dataclass
class World:
    """Real resources, made through the APIs, whose ids fill the routes' path parameters."""

    mentor: str
    mentee: str
    stranger: str
    contact: str
    spare: dict[str, str] = field(default_factory=dict)  # fresh profiles for routes that change them for good
    ids: dict[str, str] = field(default_factory=dict)
    now: datetime = field(default_factory=lambda: datetime.now(UTC))  # scheduling's clock (another test may move it)

    def at(self, days: int) -> datetime:
        return (self.now + timedelta(days=days)).replace(hour=10, minute=0, second=0, microsecond=0)


async def build_world(p: Platform) -> World:
    tag = uuid.uuid4().hex[:6]
    w = World(mentor=f"m-{tag}", mentee=f"e-{tag}", stranger=f"s-{tag}", contact=f"c-{tag}")
    w.spare = {name: f"{name}-{tag}" for name in ("erase", "deactivate", "reactivate", "verify")}
    people = {
        w.mentor: ["mentor"],
        w.mentee: ["mentee"],
        w.stranger: ["mentee", "mentor"],
        w.contact: ["mentor"],
        **{pid: ["mentee"] for pid in w.spare.values()},
    }
    for pid, roles in people.items():
        r = await p.call("profile", "POST", "/profiles", headers=ADMIN, json=person_body(pid, roles))
        assert r.status_code == 201, r.text

    async def in_matching() -> bool:
        for pid in (w.mentor, w.mentee, w.contact):
            if (await p.call("matching", "GET", f"/read-models/profiles/{pid}", headers=ADMIN)).status_code != 200:
                return False
        return True

    await eventually(in_matching, timeout=60, interval=0.5)
    r = await p.call(
        "matching",
        "POST",
        "/mentorships",
        headers=token(w.mentee, "mentee"),
        json={"mentor_id": w.mentor, "message": "hello"},
    )
    assert r.status_code == 201, r.text
    w.ids["mentorship_id"] = r.json()["mentorship_id"]
    r = await p.call(
        "matching", "POST", f"/mentorships/{w.ids['mentorship_id']}/accept", headers=token(w.mentor, "mentor")
    )
    assert r.status_code == 200 and r.json()["state"] == "active", r.text
    r = await p.call(
        "matching",
        "POST",
        f"/mentorships/{w.ids['mentorship_id']}/introductions",
        headers=token(w.mentor, "mentor"),
        json={"contact_id": w.contact, "message": "meet"},
    )
    assert r.status_code == 201, r.text
    w.ids["introduction_id"] = r.json()["introduction_id"]

    r = await p.call("matching", "POST", "/programs", headers=ADMIN, json=program_body())
    assert r.status_code == 201, r.text
    w.ids["program_id"] = r.json()["program_id"]
    for pid, role in ((w.mentee, "mentee"), (w.mentor, "mentor")):
        r = await p.call(
            "matching",
            "POST",
            f"/programs/{w.ids['program_id']}/enrollments",
            headers=ADMIN,
            json={"profile_id": pid, "role": role},
        )
        assert r.status_code == 201, r.text
    r = await p.call("matching", "POST", f"/programs/{w.ids['program_id']}/runs", headers=ADMIN, json={})
    assert r.status_code == 202, r.text
    w.ids["run_id"] = r.json()["run_id"]

    mid = w.ids["mentorship_id"]
    r = await p.call("scheduling", "POST", "/_dev/clock", headers=ADMIN, json={"advance_seconds": 0})
    assert r.status_code == 200, r.text
    w.now = datetime.fromisoformat(r.json()["now"])

    async def in_scheduling() -> bool:
        r = await p.call("scheduling", "GET", f"/mentorships/{mid}", headers=ADMIN)
        return r.status_code == 200 and r.json()["status"] == "active"

    await eventually(in_scheduling, timeout=60, interval=0.5)
    mentee = token(w.mentee, "mentee")
    r = await p.call(
        "scheduling",
        "POST",
        f"/mentorships/{mid}/sessions",
        headers=mentee,
        json={"start": w.at(3).isoformat(), "duration_minutes": 30, "location": "room 1"},
    )
    assert r.status_code == 201, r.text
    w.ids["session_id"] = r.json()["session_id"]
    # the session's first reminder timer (its id as scheduling names it): the admin re-drive route's target
    sequence = r.json().get("sequence", 1)
    w.ids["timer_id"] = f"reminder:{w.ids['session_id']}:{sequence}:1440"
    r = await p.call(
        "scheduling", "POST", f"/mentorships/{mid}/milestones", headers=mentee, json={"title": "First talk"}
    )
    assert r.status_code == 201, r.text
    w.ids["milestone_id"] = r.json()["milestone_id"]
    r = await p.call("scheduling", "POST", "/calendar/feed", headers=mentee)
    assert r.status_code == 201, r.text
    w.ids["token"] = r.json()["token"]

    r = await p.call(
        "notification",
        "POST",
        "/webhooks",
        headers=ADMIN,
        json={"url": f"http://127.0.0.1:{free_port()}/hook", "event_types": ["*"]},
    )
    assert r.status_code == 201, r.text
    w.ids["endpoint_id"] = r.json()["endpoint_id"]

    async def inbox_item() -> str | None:
        r = await p.call("notification", "GET", f"/people/{w.mentor}/inbox", headers=ADMIN)
        items = r.json()["items"] if r.status_code == 200 else []
        return items[0]["item_id"] if items else None

    w.ids["item_id"] = await eventually(inbox_item, timeout=60, interval=0.5)

    async def delivery() -> str | None:
        r = await p.call("notification", "GET", "/deliveries", headers=ADMIN, params={"recipient_id": w.mentor})
        return r.json()[0]["delivery_id"] if r.status_code == 200 and r.json() else None

    w.ids["delivery_id"] = await eventually(delivery, timeout=30, interval=0.5)

    r = await p.call(
        "profile",
        "POST",
        f"/profiles/{w.spare['reactivate']}/deactivate",
        headers=token(w.spare["reactivate"], "mentee"),
    )
    assert r.status_code == 200, r.text
    return w


def program_body() -> dict[str, Any]:
    today = datetime.now(UTC).date()
    # Self-enrolment is the program's choice (issue 11): the walk's person enrolls themselves in this one.
    return {
        "name": "Policy walk",
        "starts_on": today.isoformat(),
        "ends_on": (today + timedelta(days=90)).isoformat(),
        "self_enrollment": True,
    }
