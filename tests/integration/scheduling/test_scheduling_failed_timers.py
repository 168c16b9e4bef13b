"""Timers whose handler kept failing until they were given up: the reminder reconciler revives
them (with a backoff, a bounded number of times) and each still fires exactly once; past the
bound an operator sees them and re-drives them over the admin routes."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest

from scheduling_service.application import REMINDER
from scheduling_service.entrypoints.app import create
from scheduling_service.settings import Settings
from tests.support.inprocess import in_process
from tests.support.kafka import eventually
from tests.support.processes import JWT_SECRET

from .scheduling_support import ADMIN, future_start, scheduling_events

pytestmark = pytest.mark.integration

REMINDER_DUE = "mentorship.scheduling.session_reminder_due"
TIMER_LEASE = 30.0


@pytest.fixture
async def scheduling(settings_for) -> AsyncIterator[Any]:
    settings = settings_for(
        Settings,
        jwt_secret=JWT_SECRET,
        reminder_reconcile_seconds=3600,  # the test runs the passes itself
        timer_lease_seconds=TIMER_LEASE,
        timer_revive_backoff_seconds=60,
        timer_max_revivals=1,
    )
    async with in_process(create(settings), "scheduling") as (app, http):
        yield app, http


class Breakable:
    """The reminder handler behind a switch: while broken it raises, as a failing store would."""

    def __init__(self, loop: Any) -> None:
        self.real = loop.handlers[REMINDER]
        self.broken = True
        self.calls = 0
        loop.handlers[REMINDER] = self

    async def __call__(self, timer: dict[str, Any], now: Any) -> Any:
        self.calls += 1
        if self.broken:
            raise RuntimeError("store unavailable")
        return await self.real(timer, now)


async def a_session_with_reminders(runtime: Any, scheduling: Any, sid: str) -> dict[str, Any]:
    start = future_start(days=3)
    session = {
        "_id": sid,
        "mentorship_id": f"m-{sid}",
        "mentor_id": "mentor",
        "mentee_id": "mentee",
        "ical_uid": f"{sid}@test",
        "status": "scheduled",
        "start": start,
        "sequence": 0,
        "duration_minutes": 30,
    }
    await runtime.db["sessions"].insert_one(session)
    assert await scheduling.reconcile_reminders() == 1
    return session


async def fired(runtime: Any, timer_id: str) -> None:
    """The test's pass or the service's own polling loop (whichever claims it) fires it."""

    async def check() -> bool:
        await runtime.timer_loop.run_due()
        return (await runtime.db["timers"].find_one({"_id": timer_id}))["state"] == "fired"

    await eventually(check, timeout=10)


async def fail_until_given_up(runtime: Any, timer_id: str) -> dict[str, Any]:
    """Run the due timer; after each failure its lease must lapse before the next attempt."""
    timers = runtime.db["timers"]
    for _ in range(3 * runtime.timer_loop.max_attempts):
        await runtime.timer_loop.run_due()
        doc = await timers.find_one({"_id": timer_id})
        if doc["state"] == "failed":
            return doc
        runtime.clock.advance(timedelta(seconds=TIMER_LEASE + 1))
    raise AssertionError(f"never given up: {doc}")


async def test_a_reminder_given_up_after_its_attempts_is_revived_and_fires_once(scheduling, infra, prefix):
    app, _ = scheduling
    runtime, uc = app.state.runtime, app.state.scheduling
    session = await a_session_with_reminders(runtime, uc, "s-flaky")
    handler = Breakable(runtime.timer_loop)
    timer_id = f"reminder:{session['_id']}:0:1440"
    runtime.clock.set(session["start"] - timedelta(hours=23))
    given_up = await fail_until_given_up(runtime, timer_id)
    assert given_up["attempts"] == runtime.timer_loop.max_attempts and "store unavailable" in given_up["last_error"]

    handler.broken = False  # the store is back
    await uc.reconcile_reminders()  # the reconciler's pass (the background job runs it periodically)
    revived = await runtime.db["timers"].find_one({"_id": timer_id})
    assert (revived["state"], revived["attempts"], revived.get("revivals")) == ("pending", 0, 1)
    await runtime.timer_loop.run_due()
    assert (await runtime.db["timers"].find_one({"_id": timer_id}))["state"] == "pending"  # backing off
    runtime.clock.advance(timedelta(seconds=61))
    await fired(runtime, timer_id)
    await uc.reconcile_reminders()
    assert (await runtime.db["timers"].find_one({"_id": timer_id}))["state"] == "fired"  # fired stays fired

    events = await scheduling_events(infra, prefix, want=99, timeout=5)
    reminders = [e for e in events if e.type == REMINDER_DUE]
    assert [(e.data.session_id, e.data.offset_minutes) for e in reminders] == [("s-flaky", 1440)]


async def test_past_the_bound_an_operator_sees_the_failed_timer_and_redrives_it(scheduling, infra, prefix):
    app, http = scheduling
    runtime, uc = app.state.runtime, app.state.scheduling
    session = await a_session_with_reminders(runtime, uc, "s-stubborn")
    handler = Breakable(runtime.timer_loop)
    timer_id = f"reminder:{session['_id']}:0:1440"
    runtime.clock.set(session["start"] - timedelta(hours=23))
    await fail_until_given_up(runtime, timer_id)
    await uc.reconcile_reminders()  # the one revival allowed
    assert (await runtime.db["timers"].find_one({"_id": timer_id}))["revivals"] == 1
    runtime.clock.advance(timedelta(seconds=61))
    await fail_until_given_up(runtime, timer_id)
    await uc.reconcile_reminders()
    assert (await runtime.db["timers"].find_one({"_id": timer_id}))["state"] == "failed"  # waits for an operator

    r = await http.get("/admin/timers/failed", headers={"Authorization": "Bearer x"})
    assert r.status_code == 401
    r = await http.get("/admin/timers/failed", headers=ADMIN)
    assert r.status_code == 200, r.text
    [listed] = r.json()["items"]
    assert (listed["timer_id"], listed["kind"], listed["revivals"]) == (timer_id, REMINDER, 1)
    assert "store unavailable" in listed["last_error"]

    handler.broken = False
    r = await http.post(f"/admin/timers/{timer_id}/redrive", headers=ADMIN)
    assert r.status_code == 200, r.text
    assert r.json()["state"] == "pending"
    again = await http.post(f"/admin/timers/{timer_id}/redrive", headers=ADMIN)
    assert again.status_code == 409  # only a failed timer
    assert (await http.post("/admin/timers/nope/redrive", headers=ADMIN)).status_code == 404
    await fired(runtime, timer_id)
    events = await scheduling_events(infra, prefix, want=99, timeout=5)
    assert [e.data.offset_minutes for e in events if e.type == REMINDER_DUE] == [1440]
