"""Right to be forgotten in scheduling, on the real broker and store (the service as a process): a
person with a full history (a held session with an agenda, notes and feedback both ways, a
milestone, a future session, a calendar feed) is erased by a ProfileErased on the profile topic;
then no string of any document of any collection holds their free text, the future session is
cancelled (the other party is told, neutrally), the other party's time is free, no timer and no
feed is left for them, a second erase changes nothing and late events bring nothing back."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import httpx
import pytest

from mentorship_contracts import Envelope, encode
from mentorship_contracts.matching import Agreement, MentorshipStarted
from mentorship_contracts.profile import (
    AvailabilityWindow,
    ProfileErased,
    ProfileSnapshot,
    ProfileState,
)
from mentorship_ops import kafka_ops
from scheduling_service.domain import LEFT_REASON
from tests.support.kafka import eventually, produce
from tests.support.processes import token
from tests.support.scan import dump, found_in, outboxes_drained

from .scheduling_support import ADMIN, db_name, future_start, known, mentorship, publish, scheduling_events

pytestmark = pytest.mark.integration

NAME, EMAIL = "Erin Quarrington", "erin.quarrington@example.org"
GOAL = "Quarrington leads the payroll squad"
AGENDA = "Quarrington's promotion case"
NOTES = "Quarrington talked about her burnout"
MENTOR_COMMENT = "Quarrington came unprepared"
MENTEE_COMMENT = "Quarrington found it useful"
MILESTONE = "Quarrington gave her first talk"
NEXT_AGENDA = "Quarrington's next steps"
SECRETS = (NAME, EMAIL, GOAL, AGENDA, NOTES, MENTOR_COMMENT, MENTEE_COMMENT, MILESTONE, NEXT_AGENDA, "Quarrington")


async def send(infra: Any, prefix: str, env: Envelope[Any]) -> Envelope[Any]:
    """Publish an envelope as its producer would (key = its subject)."""
    await produce(infra.kafka_bootstrap, f"{prefix}{env.data.topic}", encode(env), key=env.subject.encode())
    return env


def caught_up(infra: Any, group: str) -> Any:
    """The consumer group has read its topics to the end (a table consumer keeps no markers)."""

    async def check() -> bool:
        lags = [g for g in await kafka_ops.group_lags(infra.kafka_bootstrap, group) if g.group == group]
        return bool(lags) and all(g.lag == 0 for g in lags)

    return check


def handled(db: Any, consumer: str, env: Envelope[Any]) -> Any:
    async def check() -> bool:
        return await db["processed_events"].find_one({"_id": f"{consumer}:{env.id}"}) is not None

    return check


async def test_an_erased_person_leaves_no_personal_data_in_scheduling(spawn, infra, prefix, mongo):
    svc = spawn("scheduling", dev_clock_enabled="true")
    db = mongo[db_name(prefix)]
    erin = ProfileSnapshot(
        profile_id="erin",
        display_name=NAME,
        email=EMAIL,
        roles=["mentee"],
        time_zone="Europe/Berlin",
        availability=[AvailabilityWindow(weekday=d, start="08:00", end="18:00") for d in range(5)],
    )
    await send(infra, prefix, Envelope.wrap(ProfileState(profile_id="erin", version=1, profile=erin), source="profile"))
    await mentorship(infra, prefix, "m-erin", "mo", "erin", goals=(GOAL,))
    await mentorship(infra, prefix, "m-dee", "mo", "dee")
    me, as_mo = token("erin"), token("mo")
    held_start = future_start(days=2, hour=10)
    next_start = held_start + timedelta(days=7)
    async with httpx.AsyncClient(base_url=svc.url, timeout=20) as http:
        await known(http, svc.url, "m-erin")
        await known(http, svc.url, "m-dee")
        r = await http.post(
            "/mentorships/m-erin/sessions",
            headers=me,
            json={
                "start": held_start.isoformat(),
                "duration_minutes": 60,
                "agenda": AGENDA,
                "location": "Quarrington's office",
            },
        )
        assert r.status_code == 201, r.text
        held_id = r.json()["session_id"]
        r = await http.post(
            "/_dev/clock", headers=ADMIN, json={"set_to": (held_start + timedelta(hours=2)).isoformat()}
        )
        assert r.status_code == 200, r.text
        r = await http.post(f"/sessions/{held_id}/complete", headers=as_mo, json={"notes": NOTES})
        assert r.status_code == 200, r.text
        for who, rating, comment in ((as_mo, 2, MENTOR_COMMENT), (me, 5, MENTEE_COMMENT)):
            r = await http.post(
                f"/sessions/{held_id}/feedback", headers=who, json={"rating": rating, "comment": comment}
            )
            assert r.status_code == 201, r.text
        r = await http.post("/mentorships/m-erin/milestones", headers=me, json={"title": MILESTONE})
        assert r.status_code == 201, r.text
        r = await http.post(
            "/mentorships/m-erin/sessions",
            headers=me,
            json={"start": next_start.isoformat(), "duration_minutes": 60, "agenda": NEXT_AGENDA},
        )
        assert r.status_code == 201, r.text
        next_id = r.json()["session_id"]
        feed = (await http.post("/calendar/feed", headers=me)).json()
        feed_path = httpx.URL(feed["url"]).path
        assert (await http.get(feed_path)).status_code == 200
        # Mo's time at the next session is taken (by the session with Erin)
        r = await http.post(
            "/mentorships/m-dee/sessions", headers=as_mo, json={"start": next_start.isoformat(), "duration_minutes": 60}
        )
        assert r.status_code == 409, r.text
        await eventually(lambda: outboxes_drained(db), timeout=60)
        assert await found_in(db, SECRETS)  # the history is there before the erase

        # --- the erase, as the profile service publishes it
        erased = await send(infra, prefix, Envelope.wrap(ProfileErased(profile_id="erin"), source="profile"))
        await eventually(handled(db, "profiles", erased), timeout=60)
        await eventually(lambda: outboxes_drained(db), timeout=60)
        assert await found_in(db, SECRETS) == []

        nxt = await db["sessions"].find_one({"_id": next_id})
        assert nxt["status"] == "cancelled" and nxt["cancel_reason"] == LEFT_REASON
        held = await db["sessions"].find_one({"_id": held_id})
        assert {role: f["rating"] for role, f in held["feedback"].items()} == {"mentor": 2, "mentee": 5}
        assert held["agenda"] == "" and held["notes"] == ""
        session_ids = {held_id, next_id}
        live = await db["timers"].find({"state": "pending"}).to_list(None)
        assert not [
            t
            for t in live
            if t["payload"].get("session_id") in session_ids or t["payload"].get("mentorship_id") == "m-erin"
        ]
        assert await db["booking_claims"].find_one({"_id": {"$regex": "^erin\\|"}}) is None
        assert await db["booking_claims"].find_one({"session_id": next_id}) is None
        assert await db["calendar_feeds"].find_one({"person_id": "erin"}) is None
        assert (await http.get(feed_path)).status_code == 404
        m = await db["mentorships"].find_one({"_id": "m-erin"})
        assert m["status"] == "ended" and m["participants"] == [] and m["milestones"] == {}
        assert (await db["profiles"].find_one({"_id": "erin"})).get("erased") is True

        # the other party is told through the normal path: SessionCancelled, neutral, ids only
        events = await scheduling_events(infra, prefix, want=99, timeout=5)
        cancelled = [e for e in events if e.type.endswith("session_cancelled") and e.data.session_id == next_id]
        assert [(e.data.reason_code, e.data.has_reason, e.data.cancelled_by, e.causationid) for e in cancelled] == [
            ("participant_left", False, "system", erased.id)
        ]

        # --- a second erase changes nothing
        before = await dump(db)
        again = await send(infra, prefix, Envelope.wrap(ProfileErased(profile_id="erin"), source="profile"))
        await eventually(handled(db, "profiles", again), timeout=60)
        after = await dump(db)
        after["processed_events"] = [d for d in after["processed_events"] if not d["_id"].endswith(again.id)]
        assert after == before

        # --- late events (a retry, a re-driven dead letter) bring nothing back
        await send(
            infra,
            prefix,
            Envelope.wrap(
                ProfileState(profile_id="erin", version=9, profile=erin),
                source="profile",
                time=erased.time + timedelta(minutes=5),
            ),
        )
        late_start = await publish(
            infra,
            prefix,
            MentorshipStarted(
                mentorship_id="m-erin",
                mentor_id="mo",
                mentee_id="erin",
                started_at=held_start,
                agreement=Agreement(goals=[GOAL], cadence="weekly"),
            ),
        )
        await eventually(caught_up(infra, f"{prefix}scheduling.profile-state"), timeout=60)
        await eventually(handled(db, "mentorships", late_start), timeout=60)
        assert await found_in(db, SECRETS) == []
        assert (await db["mentorships"].find_one({"_id": "m-erin"}))["status"] == "ended"
        assert (await db["profiles"].find_one({"_id": "erin"})).get("erased") is True

        # --- the journey goes on: Mo's time is free for Dee
        r = await http.post(
            "/mentorships/m-dee/sessions", headers=as_mo, json={"start": next_start.isoformat(), "duration_minutes": 60}
        )
        assert r.status_code == 201, r.text
