"""Forgetting a person in scheduling: the scrub rule (pure) and the erasure use case over fakes."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from mentorship_contracts import Envelope, decode, encode
from mentorship_contracts.matching import Agreement, MentorshipStarted
from mentorship_contracts.profile import ProfileErased, ProfileSnapshot, ProfileUpdated
from mentorship_kit.auth import Principal
from scheduling_service.application import SchedulingUseCases
from scheduling_service.domain import LEFT_REASON, scrubbed_session
from scheduling_service.settings import Settings
from tests.unit.kit_fakes import FakeContext
from tests.unit.scheduling.fakes import FakeMentorships, FakeProfiles, FakeSessions

NOW = datetime(2031, 3, 3, 8, 0, tzinfo=UTC)
ERIN, MO = Principal("erin", frozenset()), Principal("mo", frozenset())
AGENDA, NOTES, COMMENT, GOAL = "Erin's promotion plan", "Erin cried", "Erin was late again", "Erin leads payroll"


def test_scrubbed_session_empties_free_text_and_keeps_numbers() -> None:
    s = {
        "agenda": AGENDA,
        "notes": NOTES,
        "location": "Erin's flat",
        "cancel_reason": "Erin is ill",
        "feedback": {"mentor": {"rating": 2, "comment": COMMENT}, "mentee": {"rating": 5, "comment": ""}},
    }
    assert scrubbed_session(s) == {
        "agenda": "",
        "notes": "",
        "location": None,
        "cancel_reason": LEFT_REASON,
        "feedback.mentor.comment": "",
    }
    assert scrubbed_session({"agenda": "", "cancel_reason": LEFT_REASON, "feedback": {}}) == {}


@dataclass
class World:
    fake: FakeContext
    mentorships: FakeMentorships
    profiles: FakeProfiles
    sessions: FakeSessions
    scheduling: SchedulingUseCases


def erased(pid: str, at: datetime) -> Envelope[ProfileErased]:
    return Envelope.wrap(ProfileErased(profile_id=pid), source="profile", time=at)


def started(mid: str, mentor: str, mentee: str, at: datetime) -> Envelope[Any]:
    envelope = Envelope.wrap(
        MentorshipStarted(
            mentorship_id=mid,
            mentor_id=mentor,
            mentee_id=mentee,
            started_at=at,
            agreement=Agreement(goals=[GOAL], cadence="weekly"),
        ),
        source="matching",
        time=at,
    )
    return decode(encode(envelope))  # as a consumer reads it (v2)


@pytest.fixture
async def world() -> World:
    """Erin (mentee) and Mo: a past completed session with notes and feedback, a future one with an
    agenda; Erin's calendar feed; Mo also mentors Dee (untouched)."""
    fake = FakeContext("scheduling", now=NOW)
    w = World(fake, FakeMentorships(), FakeProfiles(), FakeSessions(), None)  # type: ignore[arg-type]
    w.scheduling = SchedulingUseCases(
        fake.ctx, settings=Settings(), mentorships=w.mentorships, profiles=w.profiles, sessions=w.sessions
    )
    await w.scheduling.mentorship_started(started("m1", "mo", "erin", NOW))
    await w.scheduling.mentorship_started(started("m2", "mo", "dee", NOW))
    past = await w.scheduling.schedule(
        ERIN, "m1", start=NOW + timedelta(days=1), duration=60, location="Room 1", agenda=AGENDA
    )
    fake.clock.set(NOW + timedelta(days=1, hours=2))
    await w.scheduling.complete(MO, past["_id"], notes=NOTES)
    await w.scheduling.feedback(MO, past["_id"], rating=2, comment=COMMENT, not_a_good_fit=False)
    await w.scheduling.feedback(ERIN, past["_id"], rating=5, comment="Mo is great", not_a_good_fit=False)
    await w.scheduling.schedule(MO, "m1", start=NOW + timedelta(days=8), duration=60, location=None, agenda=AGENDA)
    await w.scheduling.schedule(MO, "m2", start=NOW + timedelta(days=9), duration=60, location=None, agenda="Dee's")
    await w.scheduling.new_feed(ERIN)
    return w


def erin_sessions(w: World) -> list[dict]:
    return [s for s in w.sessions.sessions.values() if "erin" in s["participants"]]


async def test_erasure_cancels_scrubs_releases_and_forgets(world: World) -> None:
    w = world
    before = len(w.sessions.outbox)
    await w.scheduling.profile_erased(erased("erin", w.fake.clock.now()))
    cancelled = w.sessions.outbox[before:]
    assert [e.type.rsplit(".", 1)[1] for e in cancelled] == ["session_cancelled"]
    assert cancelled[0].data.reason_code == "participant_left" and cancelled[0].data.cancelled_by == "system"
    everything = repr([erin_sessions(w), w.mentorships.docs["m1"], w.profiles.docs])
    for text in (AGENDA, NOTES, COMMENT, "Mo is great", GOAL, "Room 1"):
        assert text not in everything
    done = next(s for s in erin_sessions(w) if s["status"] == "completed")
    assert {r: f["rating"] for r, f in done["feedback"].items()} == {"mentor": 2, "mentee": 5}  # numbers stay
    assert not [c for c in w.sessions.claims if c.startswith("erin|")]
    cancelled_id = next(s["_id"] for s in erin_sessions(w) if s["status"] == "cancelled")
    assert cancelled_id not in w.sessions.claims.values()  # Mo's time is free again
    pending = w.fake.timers.pending()
    assert not [
        t
        for t in pending
        if t["group"] in ("checkin:m1",) or t["payload"].get("session_id") in {s["_id"] for s in erin_sessions(w)}
    ]
    assert w.mentorships.docs["m1"]["status"] == "ended" and w.mentorships.docs["m1"]["participants"] == []
    assert w.sessions.feeds == {} and await w.profiles.get("erin") is None
    dee = next(s for s in w.sessions.sessions.values() if "dee" in s["participants"])
    assert dee["status"] == "scheduled" and dee["agenda"] == "Dee's"


async def test_a_second_erasure_changes_nothing_more(world: World) -> None:
    w = world
    await w.scheduling.profile_erased(erased("erin", w.fake.clock.now()))
    state = repr([w.sessions.sessions, w.sessions.claims, w.mentorships.docs, w.profiles.docs, w.fake.timers.pending()])
    events = len(w.sessions.outbox)
    await w.scheduling.profile_erased(erased("erin", w.fake.clock.now() + timedelta(minutes=5)))
    assert (
        repr([w.sessions.sessions, w.sessions.claims, w.mentorships.docs, w.profiles.docs, w.fake.timers.pending()])
        == state
    )
    assert len(w.sessions.outbox) == events


async def test_late_events_do_not_bring_the_person_back(world: World) -> None:
    w = world
    now = w.fake.clock.now()
    await w.scheduling.profile_erased(erased("erin", now))
    snapshot = ProfileSnapshot(
        profile_id="erin", display_name="Erin", email="erin@example.org", roles=["mentee"], time_zone="Europe/Berlin"
    )
    update = ProfileUpdated(profile_id="erin", changed_fields=["time_zone"], changes={}, profile=snapshot)
    await w.scheduling.profile_changed(Envelope.wrap(update, source="profile", time=now + timedelta(hours=1)))
    assert await w.profiles.get("erin") is None
    await w.scheduling.mentorship_started(started("m1", "mo", "erin", now + timedelta(hours=1)))
    await w.scheduling.mentorship_started(started("m3", "mo", "erin", now + timedelta(hours=1)))
    assert w.mentorships.docs["m1"]["status"] == "ended" and "m3" not in w.mentorships.docs
    assert GOAL not in repr(w.mentorships.docs["m1"])
