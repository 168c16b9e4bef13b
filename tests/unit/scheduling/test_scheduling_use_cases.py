"""Scheduling use cases against in-memory stores and timers: booking, double-booking, moves,
completion with check-ins, feedback, milestones and what a mentorship's end sets off."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest

from mentorship_contracts import Envelope, decode, encode
from mentorship_contracts.matching import Agreement, MentorshipEnded, MentorshipStarted
from mentorship_kit.auth import Principal
from mentorship_kit.problems import Conflict, Forbidden
from scheduling_service.application import CHECK_IN, INACTIVE, REMINDER, SchedulingUseCases
from scheduling_service.settings import Settings
from tests.unit.kit_fakes import FakeContext
from tests.unit.scheduling.fakes import FakeMentorships, FakeProfiles, FakeSessions

NOW = datetime(2031, 3, 3, 8, 0, tzinfo=UTC)  # a Monday
MENTOR, MENTEE = Principal("grace", frozenset()), Principal("ada", frozenset())
STRANGER = Principal("eve", frozenset())


@dataclass
class World:
    fake: FakeContext
    mentorships: FakeMentorships
    profiles: FakeProfiles
    sessions: FakeSessions
    scheduling: SchedulingUseCases


@pytest.fixture
async def world() -> World:
    fake = FakeContext("scheduling", now=NOW)
    w = World(fake, FakeMentorships(), FakeProfiles(), FakeSessions(), None)  # type: ignore[arg-type]
    w.scheduling = SchedulingUseCases(
        fake.ctx, settings=Settings(), mentorships=w.mentorships, profiles=w.profiles, sessions=w.sessions
    )
    started = MentorshipStarted(
        mentorship_id="m1",
        mentor_id="grace",
        mentee_id="ada",
        started_at=NOW,
        agreement=Agreement(goals=["Ship a talk"], cadence="weekly"),
    )
    # as a consumer reads it: a v1 record is upcast to v2 (the goal titles dropped)
    await w.scheduling.mentorship_started(decode(encode(Envelope.wrap(started, source="matching", time=NOW))))
    return w


async def test_a_started_mentorship_gets_its_milestones_and_check_in_timers(world):
    m = await world.mentorships.get("m1")
    # one milestone per agreed goal; its title stays in matching (events carry no goal text)
    assert m["status"] == "active" and m["milestones"]["m1"]["title"] is None and len(m["milestones"]) == 1
    kinds = sorted(t["kind"] for t in world.fake.timers.pending())
    assert kinds == sorted([CHECK_IN, INACTIVE])


async def test_schedule_books_both_people_emits_and_plans_reminders(world):
    start = NOW + timedelta(days=2)
    s = await world.scheduling.schedule(MENTEE, "m1", start=start, duration=60, location=None, agenda="")
    assert world.sessions.types() == ["session_scheduled"]
    assert world.sessions.outbox[0].source == "scheduling" and world.sessions.outbox[0].data.session_id == s["_id"]
    reminders = world.fake.timers.pending(REMINDER)
    assert sorted(t["due_at"] for t in reminders) == [start - timedelta(days=1), start - timedelta(hours=1)]
    assert world.fake.written == 1

    with pytest.raises(Conflict) as refused:  # the mentor's time is taken: nothing is written
        await world.scheduling.schedule(
            MENTOR, "m1", start=start + timedelta(minutes=30), duration=60, location=None, agenda=""
        )
    assert refused.value.extra["reason"] == "double_booking"
    assert len(world.sessions.sessions) == 1 and len(world.sessions.claims) == 2 * 12
    with pytest.raises(Forbidden):
        await world.scheduling.schedule(STRANGER, "m1", start=start, duration=60, location=None, agenda="")


async def test_reschedule_moves_the_claims_and_bumps_the_sequence(world):
    start = NOW + timedelta(days=2)
    s = await world.scheduling.schedule(MENTEE, "m1", start=start, duration=30, location="Room 1", agenda="")
    [moved] = await world.scheduling.reschedule(
        MENTOR,
        s["_id"],
        start=start + timedelta(hours=3),
        duration=None,
        location=None,
        scope="this",
        expected_sequence=0,
    )
    assert moved["sequence"] == 1 and moved["location"] == "Room 1"
    event = world.sessions.outbox[-1]
    assert event.data.previous_start == start and event.data.sequence == 1
    # the old time is free again: a new session fits where the first one was
    await world.scheduling.schedule(MENTEE, "m1", start=start, duration=30, location=None, agenda="")
    with pytest.raises(Conflict):  # stale sequence
        await world.scheduling.reschedule(
            MENTOR,
            s["_id"],
            start=start + timedelta(hours=5),
            duration=None,
            location=None,
            scope="this",
            expected_sequence=0,
        )


async def test_complete_feedback_and_milestone(world):
    start = NOW + timedelta(hours=1)
    s = await world.scheduling.schedule(MENTEE, "m1", start=start, duration=30, location=None, agenda="")
    with pytest.raises(Conflict):  # not started yet
        await world.scheduling.complete(MENTOR, s["_id"], notes="")
    world.fake.clock.set(start + timedelta(minutes=40))
    await world.scheduling.complete(MENTOR, s["_id"], notes="good")
    assert (await world.mentorships.get("m1"))["last_session_at"] == start
    assert not world.fake.timers.pending(REMINDER)
    anchors = {t["payload"]["anchor"] for t in world.fake.timers.pending(CHECK_IN)}
    assert anchors == {start}  # check-ins re-anchored at the session held

    await world.scheduling.feedback(MENTEE, s["_id"], rating=5, comment="", not_a_good_fit=False)
    with pytest.raises(Conflict):
        await world.scheduling.feedback(MENTEE, s["_id"], rating=1, comment="", not_a_good_fit=False)
    await world.scheduling.reach_milestone(MENTEE, "m1", "m1")
    with pytest.raises(Conflict):
        await world.scheduling.reach_milestone(MENTOR, "m1", "m1")
    progress = await world.scheduling.progress(MENTEE, "m1")  # a participant sees the ratings they gave
    assert progress["sessions"]["held"] == 1 and progress["average_rating"] == 5
    assert progress["milestones"] == {"total": 1, "reached": 1}
    assert world.sessions.types() == ["session_scheduled", "session_completed", "session_feedback_submitted"]
    assert world.mentorships.types() == ["milestone_reached"]


async def test_a_mentorship_that_ends_cancels_its_future_sessions_as_a_follow_up(world):
    s = await world.scheduling.schedule(
        MENTEE, "m1", start=NOW + timedelta(days=1), duration=30, location=None, agenda=""
    )
    ended = Envelope.wrap(
        MentorshipEnded(mentorship_id="m1", mentor_id="grace", mentee_id="ada", ended_at=NOW),
        source="matching",
        time=NOW + timedelta(seconds=1),
    )
    await world.scheduling.mentorship_closed(ended)
    cancelled = world.sessions.outbox[-1]
    assert cancelled.type.endswith("session_cancelled") and cancelled.data.cancelled_by == "system"
    assert cancelled.causationid == ended.id and cancelled.correlationid == ended.correlationid
    assert (await world.sessions.get(s["_id"]))["status"] == "cancelled"
    assert not world.fake.timers.pending()  # reminders and check-ins gone
    assert not world.sessions.claims


async def test_reminder_timers_of_a_moved_session_fire_nothing(world):
    s = await world.scheduling.schedule(
        MENTEE, "m1", start=NOW + timedelta(days=2), duration=30, location=None, agenda=""
    )
    [old] = [t for t in world.fake.timers.pending(REMINDER) if t["payload"]["offset_minutes"] == 60]
    await world.scheduling.reschedule(
        MENTOR,
        s["_id"],
        start=NOW + timedelta(days=3),
        duration=None,
        location=None,
        scope="this",
        expected_sequence=None,
    )
    assert await world.scheduling.on_reminder(old, NOW) == []
    [new] = [t for t in world.fake.timers.pending(REMINDER) if t["payload"]["offset_minutes"] == 60]
    [due] = await world.scheduling.on_reminder(new, NOW)
    assert due.data.offset_minutes == 60 and due.data.sequence == 1
