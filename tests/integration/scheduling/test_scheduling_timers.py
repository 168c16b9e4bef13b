"""Durable timers of the scheduling service, moved by each process's controllable clock."""

from __future__ import annotations

import asyncio
import contextlib
from collections import defaultdict
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from tests.support.kafka import eventually
from tests.support.processes import token

from .scheduling_support import ADMIN, db_name, future_start, known, mentorship, scheduling_events

pytestmark = pytest.mark.integration

REMINDER = "mentorship.scheduling.session_reminder_due"


async def set_clock(http: httpx.AsyncClient, url: str, to: datetime) -> httpx.Response:
    return await http.post(f"{url}/_dev/clock", headers=ADMIN, json={"set_to": to.isoformat()})


async def test_reminder_fires_exactly_once_with_two_replicas_and_one_killed(spawn, infra, prefix, mongo):
    a = spawn("scheduling", replica=0, dev_clock_enabled="true")
    b = spawn("scheduling", replica=1, dev_clock_enabled="true")
    await mentorship(infra, prefix, "mr", "mentor", "mentee")
    start = future_start(days=3, hour=12)
    async with httpx.AsyncClient(timeout=20) as http:
        await known(http, a.url, "mr")
        r = await http.post(
            f"{a.url}/mentorships/mr/sessions",
            headers=token("mentee"),
            json={"start": start.isoformat(), "duration_minutes": 60},
        )
        assert r.status_code == 201, r.text
        # Both replicas reach the 24 h reminder at once: they race for it.
        day_before = start - timedelta(hours=23)
        answers = await asyncio.gather(set_clock(http, a.url, day_before), set_clock(http, b.url, day_before))
        assert [x.status_code for x in answers] == [200, 200]
        # Replica A reaches the 1 h reminder and is killed while at it (it may have claimed,
        # fired or published it, or not): B must finish the job exactly once.
        hour_before = start - timedelta(minutes=59)
        racing = asyncio.create_task(set_clock(http, a.url, hour_before))
        await asyncio.sleep(0.05)
        a.kill()
        with contextlib.suppress(httpx.HTTPError):
            await racing
        # Beyond A's lease (30 s by A's clock): a timer A claimed but never fired is B's now.
        assert (await set_clock(http, b.url, start - timedelta(minutes=50))).status_code == 200

    async def reminder_states() -> list[tuple[int, str]] | None:
        docs = await mongo[db_name(prefix)]["timers"].find({"kind": "session-reminder"}).to_list(None)
        found = sorted((t["payload"]["offset_minutes"], t["state"]) for t in docs)
        # B's own polling loop may hold the claim while the clock call returns: wait for it.
        return found if found == [(60, "fired"), (1440, "fired")] else None

    await eventually(reminder_states, timeout=10)
    events = await scheduling_events(infra, prefix, want=3)
    await asyncio.sleep(1)  # let a wrongly duplicated firing surface before the final read
    events = await scheduling_events(infra, prefix, want=99, timeout=3)
    reminders: dict[int, set[str]] = defaultdict(set)
    for e in events:
        if e.type == REMINDER:
            reminders[e.data.offset_minutes].add(e.id)
    # One firing per offset: one event id each (a relay crash may re-send the same id, never a new one).
    assert {k: len(v) for k, v in reminders.items()} == {1440: 1, 60: 1}


async def test_check_in_overdue_then_inactive_after_the_cadence_lapses(spawn, infra, prefix, mongo):
    svc = spawn("scheduling", dev_clock_enabled="true")
    started = datetime.now(UTC).replace(microsecond=0)  # the store keeps milliseconds
    await mentorship(
        infra, prefix, "mw", "mentor", "mentee", cadence="weekly", goals=("Public speaking",), started_at=started
    )
    async with httpx.AsyncClient(base_url=svc.url, timeout=20) as http:
        await known(http, svc.url, "mw")
        timers = mongo[db_name(prefix)]["timers"]

        async def state(kind: str) -> str:
            doc = await timers.find_one({"kind": kind, "payload.mentorship_id": "mw"})
            return doc["state"] if doc else "missing"

        async def fired(kind: str) -> None:
            async def check() -> bool:
                return await state(kind) == "fired"

            await eventually(check, timeout=10)

        await eventually(lambda: timers.find_one({"kind": "mentorship-inactive", "payload.mentorship_id": "mw"}))
        # Weekly cadence + 3 days grace: not yet overdue one hour before.
        assert (await set_clock(http, svc.url, started + timedelta(days=10, hours=-1))).status_code == 200
        assert await state("check-in-overdue") == "pending"
        assert (await set_clock(http, svc.url, started + timedelta(days=10, minutes=1))).status_code == 200
        await fired("check-in-overdue")
        assert await state("mentorship-inactive") == "pending"
        assert (await set_clock(http, svc.url, started + timedelta(days=21, minutes=1))).status_code == 200
        await fired("mentorship-inactive")

        # A held session re-arms the check-in from its start.
        at = (started + timedelta(days=22)).replace(minute=0, second=0, microsecond=0)
        r = await http.post(
            "/mentorships/mw/sessions", headers=token("mentor"), json={"start": at.isoformat(), "duration_minutes": 30}
        )
        assert r.status_code == 201, r.text
        sid = r.json()["session_id"]
        early = await http.post(f"/sessions/{sid}/complete", headers=token("mentor"), json={"notes": "n"})
        assert early.status_code == 409 and early.json()["reason"] == "session_not_started"
        await set_clock(http, svc.url, at + timedelta(minutes=40))
        done = await http.post(f"/sessions/{sid}/complete", headers=token("mentor"), json={"notes": "Good talk"})
        assert done.status_code == 200, done.text
        fb = await http.post(f"/sessions/{sid}/feedback", headers=token("mentee"), json={"rating": 4})
        assert fb.status_code == 201, fb.text
        again = await http.post(f"/sessions/{sid}/feedback", headers=token("mentee"), json={"rating": 5})
        assert again.status_code == 409
        m = (await http.get("/mentorships/mw", headers=ADMIN)).json()
        reached = await http.post(
            f"/mentorships/mw/milestones/{m['milestones'][0]['milestone_id']}/reached", headers=token("mentee")
        )
        assert reached.status_code == 200, reached.text
        progress = (await http.get("/mentorships/mw/progress", headers=token("mentee"))).json()
        assert progress["sessions"]["held"] == 1 and progress["milestones"] == {"total": 1, "reached": 1}
        assert progress["average_rating"] == 4.0
        rearmed = await timers.find_one({"kind": "check-in-overdue", "payload.anchor": at})
        assert rearmed and rearmed["state"] == "pending"
        assert (await set_clock(http, svc.url, at + timedelta(days=10, minutes=1))).status_code == 200

    events = await scheduling_events(infra, prefix, want=8)
    kinds = [e.type.rsplit(".", 1)[1] for e in events]
    assert kinds.count("check_in_overdue") == 2 and kinds.count("mentorship_inactive") == 1
    first = next(e for e in events if e.type.endswith("check_in_overdue"))
    assert first.data.cadence == "weekly" and first.data.last_session_at is None
    assert first.data.due_since == started + timedelta(days=10)
    for kind in ("session_scheduled", "session_completed", "session_feedback_submitted", "milestone_reached"):
        assert kinds.count(kind) == 1, kind


async def test_reminders_lost_in_a_crash_are_planned_again(settings_for, infra, prefix):
    """A crash between writing a session and planning its reminders: the reconciler plans them."""
    from scheduling_service.entrypoints.app import create
    from scheduling_service.settings import Settings

    app = create(settings_for(Settings, reminder_reconcile_seconds=3600))
    runtime, scheduling = app.state.runtime, app.state.scheduling
    await runtime.start()
    try:
        start = future_start(days=3)
        session = {
            "_id": "s-lost",
            "mentorship_id": "m-lost",
            "status": "scheduled",
            "start": start,
            "sequence": 0,
            "duration_minutes": 30,
        }
        await runtime.db["sessions"].insert_one(session)  # as if the process died right after this write
        assert await scheduling.reconcile_reminders() == 1
        timers = await runtime.db["timers"].find({"group": "session:s-lost"}).to_list(None)
        assert sorted(t["payload"]["offset_minutes"] for t in timers if t["state"] == "pending") == [60, 1440]
        assert await scheduling.reconcile_reminders() == 0  # idempotent
    finally:
        await runtime.stop()
