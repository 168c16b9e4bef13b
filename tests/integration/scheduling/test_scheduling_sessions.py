"""Scheduling as its own process on the real broker and store: slots, booking, series, calendar."""

from __future__ import annotations

import asyncio
import itertools
from collections import Counter
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import httpx
import icalendar
import pytest

from mentorship_contracts.scheduling import SessionScheduledV2
from tests.support.processes import token

from .scheduling_support import (
    ADMIN,
    db_name,
    end_mentorship,
    future_start,
    known,
    mentorship,
    person,
    profiles_known,
    scheduling_events,
)

pytestmark = pytest.mark.integration

WEEKDAYS = range(5)


def next_dst_change(tz: str, after: datetime) -> datetime:
    zone = ZoneInfo(tz)
    day = after
    offset = day.astimezone(zone).utcoffset()
    while day.astimezone(zone).utcoffset() == offset:
        day += timedelta(days=1)
    return day


async def test_slots_for_a_pair_nine_hours_apart_across_a_dst_change(spawn, infra, prefix):
    svc = spawn("scheduling")
    # Tokyo (no DST) evenings and London mornings: 9 h apart in winter, 8 h in summer.
    await person(infra, prefix, "tokyo", "Asia/Tokyo", [(d, "17:00", "20:00") for d in WEEKDAYS])
    await person(infra, prefix, "london", "Europe/London", [(d, "08:00", "10:00") for d in WEEKDAYS])
    await mentorship(infra, prefix, "m-dst", "tokyo", "london")
    change = next_dst_change("Europe/London", datetime.now(UTC) + timedelta(days=1))
    start_from = (change - timedelta(days=6)).replace(hour=0, minute=0, second=0, microsecond=0)
    who = token("london", "mentee")
    async with httpx.AsyncClient(base_url=svc.url, timeout=10) as http:
        await known(http, svc.url, "m-dst")
        await profiles_known(http, svc.url, "m-dst")

        async def slots() -> list[dict]:
            r = await http.get(
                "/mentorships/m-dst/slots",
                headers=who,
                params={"from": start_from.isoformat(), "weeks": 2, "count": 50, "duration_minutes": 60},
            )
            assert r.status_code == 200, r.text
            return r.json()["slots"]

        found = await slots()
        per_day: dict[str, list[datetime]] = {}
        for s in found:
            start = datetime.fromisoformat(s["start"])
            end = datetime.fromisoformat(s["end"])
            for tz, lo, hi in (("Asia/Tokyo", 17, 20), ("Europe/London", 8, 10)):
                a, b = start.astimezone(ZoneInfo(tz)), end.astimezone(ZoneInfo(tz))
                assert a.date() == b.date() and lo <= a.hour and (b.hour, b.minute) <= (hi, 0), (tz, s)
            per_day.setdefault(start.date().isoformat(), []).append(start)
        before = [d for d in per_day if d < change.date().isoformat()]
        after = [d for d in per_day if d > change.date().isoformat()]
        assert before and after
        # The overlap changes size at the change: 3 hourly slots on a 30-min grid vs 1.
        assert {len(per_day[d]) for d in before} | {len(per_day[d]) for d in after} == {1, 3}
        assert {len(per_day[d]) for d in before} != {len(per_day[d]) for d in after}

        # A booked slot is no longer proposed, nor anything overlapping it.
        first = found[0]
        r = await http.post(
            "/mentorships/m-dst/sessions",
            headers=who,
            json={"start": first["start"], "duration_minutes": 60, "location": "https://meet.example/a"},
        )
        assert r.status_code == 201, r.text
        again = await slots()
        booked = datetime.fromisoformat(first["start"])
        overlapping = {
            s["start"] for s in found if abs(datetime.fromisoformat(s["start"]) - booked) < timedelta(minutes=60)
        }
        assert len(overlapping) >= 1
        assert {s["start"] for s in again} == {s["start"] for s in found} - overlapping


async def test_double_booking_is_refused_even_when_requests_race(spawn, infra, prefix, mongo):
    svc = spawn("scheduling")
    await mentorship(infra, prefix, "m1", "mentor", "alice")
    await mentorship(infra, prefix, "m2", "mentor", "bob")
    await mentorship(infra, prefix, "m3", "carol", "dave")
    start = future_start(days=3, hour=10)
    async with httpx.AsyncClient(base_url=svc.url, timeout=20) as http:
        for mid in ("m1", "m2", "m3"):
            await known(http, svc.url, mid)
        r = await http.post(
            "/mentorships/m1/sessions",
            headers=token("alice"),
            json={"start": start.isoformat(), "duration_minutes": 60, "agenda": "intro"},
        )
        assert r.status_code == 201, r.text
        clash = await http.post(
            "/mentorships/m2/sessions",
            headers=token("bob"),
            json={"start": (start + timedelta(minutes=55)).isoformat(), "duration_minutes": 30},
        )
        assert clash.status_code == 409
        assert clash.headers["content-type"].startswith("application/problem+json")
        assert clash.json()["reason"] == "double_booking" and clash.json()["person_role"] == "mentor"
        back_to_back = await http.post(
            "/mentorships/m2/sessions",
            headers=token("bob"),
            json={"start": (start + timedelta(hours=1)).isoformat(), "duration_minutes": 30},
        )
        assert back_to_back.status_code == 201, back_to_back.text

        # Six concurrent overlapping requests for the same mentor: exactly one wins.
        race_at = start + timedelta(days=1)
        bodies = [("m1", "alice", race_at + timedelta(minutes=10 * i)) for i in range(3)]
        bodies += [("m2", "bob", race_at + timedelta(minutes=5 + 10 * i)) for i in range(3)]
        answers = await asyncio.gather(
            *[
                http.post(
                    f"/mentorships/{mid}/sessions",
                    headers=token(who),
                    json={"start": at.isoformat(), "duration_minutes": 60},
                )
                for mid, who, at in bodies
            ]
        )
        assert Counter(a.status_code for a in answers) == Counter({201: 1, 409: 5})

        # Bad input: 4xx naming the reason, nothing written.
        past = await http.post(
            "/mentorships/m3/sessions",
            headers=token("dave"),
            json={"start": (datetime.now(UTC) - timedelta(hours=1)).isoformat(), "duration_minutes": 60},
        )
        assert past.status_code == 422 and past.json()["errors"][0]["field"] == "start"
        long = await http.post(
            "/mentorships/m3/sessions",
            headers=token("dave"),
            json={"start": start.isoformat(), "duration_minutes": 600},
        )
        assert long.status_code == 422 and long.json()["errors"][0]["field"] == "duration_minutes"
        outsider = await http.post(
            "/mentorships/m3/sessions",
            headers=token("alice"),
            json={"start": start.isoformat(), "duration_minutes": 60},
        )
        assert outsider.status_code == 403
        endless = await http.post(
            "/mentorships/m3/series",
            headers=token("dave"),
            json={"first_start": start.isoformat(), "duration_minutes": 60},
        )
        assert endless.status_code == 422 and endless.json()["errors"][0]["field"] == "count"
        bad_zone = await http.post(
            "/mentorships/m3/series",
            headers=token("dave"),
            json={"first_start": start.isoformat(), "duration_minutes": 60, "count": 3, "time_zone": "Mars/Base"},
        )
        assert bad_zone.status_code == 422 and bad_zone.json()["errors"][0]["field"] == "time_zone"
        # A series whose second occurrence hits a booked session of the mentor is refused whole.
        far = await http.post(
            "/mentorships/m1/sessions",
            headers=token("alice"),
            json={"start": (start + timedelta(days=14)).isoformat(), "duration_minutes": 60},
        )
        assert far.status_code == 201
        series_clash = await http.post(
            "/mentorships/m2/series",
            headers=token("bob"),
            json={
                "first_start": (start + timedelta(days=7, minutes=30)).isoformat(),
                "duration_minutes": 60,
                "cadence": "weekly",
                "count": 3,
            },
        )
        assert series_clash.status_code == 409 and series_clash.json()["reason"] == "double_booking"
        listed = (await http.get("/mentorships/m3/sessions", headers=ADMIN)).json()
        assert listed == []
        await end_mentorship(infra, prefix, "m3", "carol", "dave")
        await known(http, svc.url, "m3", status="ended")
        closed = await http.post(
            "/mentorships/m3/sessions", headers=token("dave"), json={"start": start.isoformat(), "duration_minutes": 60}
        )
        assert closed.status_code == 409 and closed.json()["reason"] == "mentorship_not_active"

        sessions = [
            s for mid in ("m1", "m2") for s in (await http.get(f"/mentorships/{mid}/sessions", headers=ADMIN)).json()
        ]
        assert not any(s.get("series_id") for s in sessions)  # nothing of the refused series was written
        live = sorted(
            (datetime.fromisoformat(s["start"]), datetime.fromisoformat(s["end"]))
            for s in sessions
            if s["status"] == "scheduled"
        )
        assert all(a_end <= b_start for (_, a_end), (b_start, _) in itertools.pairwise(live))
        # Refused requests left no claims behind: exactly the live sessions' buckets are held.
        held = await mongo[db_name(prefix)]["booking_claims"].count_documents({})
        assert held == sum(2 * s["duration_minutes"] // 5 for s in sessions if s["status"] == "scheduled")
    events = await scheduling_events(infra, prefix, want=len(live))
    assert Counter(e.type for e in events) == Counter({SessionScheduledV2.event_type: len(live)})


async def test_recurring_series_with_one_occurrence_moved_and_the_rest_shifted(spawn, infra, prefix):
    svc = spawn("scheduling")
    await person(infra, prefix, "berlin", "Europe/Berlin", [])
    await person(infra, prefix, "lima", "America/Lima", [])
    await mentorship(infra, prefix, "ms", "berlin", "lima", cadence="weekly")
    first = future_start(days=2, hour=9)
    who = token("berlin", "mentor")
    async with httpx.AsyncClient(base_url=svc.url, timeout=10) as http:
        await known(http, svc.url, "ms")
        await profiles_known(http, svc.url, "ms")  # the series keeps the caller's (Berlin) wall time
        r = await http.post(
            "/mentorships/ms/series",
            headers=who,
            json={"first_start": first.isoformat(), "duration_minutes": 45, "count": 4, "location": "Room 1"},
        )
        assert r.status_code == 201, r.text
        series = r.json()["sessions"]
        assert [s["series_index"] for s in series] == [0, 1, 2, 3]
        local = [datetime.fromisoformat(s["start"]).astimezone(ZoneInfo("Europe/Berlin")) for s in series]
        assert len({(t.hour, t.minute, t.weekday()) for t in local}) == 1  # same Berlin wall time weekly

        # Move only the second occurrence by a day.
        moved_to = datetime.fromisoformat(series[1]["start"]) + timedelta(days=1)
        r = await http.post(
            f"/sessions/{series[1]['session_id']}/reschedule",
            headers=token("lima"),
            json={"start": moved_to.isoformat(), "expected_sequence": 0},
        )
        assert r.status_code == 200, r.text
        [moved] = r.json()
        assert moved["sequence"] == 1 and datetime.fromisoformat(moved["start"]) == moved_to
        stale = await http.post(
            f"/sessions/{series[1]['session_id']}/reschedule",
            headers=token("lima"),
            json={"start": moved_to.isoformat(), "expected_sequence": 0},
        )
        assert stale.status_code == 409

        # From the third on: one hour later.
        later = datetime.fromisoformat(series[2]["start"]) + timedelta(hours=1)
        r = await http.post(
            f"/sessions/{series[2]['session_id']}/reschedule",
            headers=who,
            json={"start": later.isoformat(), "scope": "following"},
        )
        assert r.status_code == 200, r.text
        now_listed = (await http.get("/mentorships/ms/sessions", headers=who)).json()
        by_index = {s["series_index"]: s for s in now_listed}
        assert by_index[0]["start"] == series[0]["start"] and by_index[0]["sequence"] == 0
        assert datetime.fromisoformat(by_index[1]["start"]) == moved_to
        for i in (2, 3):
            assert (
                datetime.fromisoformat(by_index[i]["start"]) - datetime.fromisoformat(series[i]["start"])
                == timedelta(hours=1)
                or by_index[i]["start"] != series[i]["start"]
            )
            assert by_index[i]["sequence"] == 1
        # Cancel the last one only.
        r = await http.post(f"/sessions/{series[3]['session_id']}/cancel", headers=who, json={"reason": "holiday"})
        assert r.status_code == 200 and r.json()[0]["status"] == "cancelled"
    events = await scheduling_events(infra, prefix, want=4 + 1 + 2 + 1, timeout=40)
    assert Counter(e.type.rsplit(".", 1)[1] for e in events) == Counter(
        {"session_scheduled": 4, "session_rescheduled": 3, "session_cancelled": 1}
    )
    assert {e.subject for e in events} == {"ms"}


async def test_icalendar_output_parses_and_the_feed_follows_a_reschedule(spawn, infra, prefix):
    svc = spawn("scheduling")
    await person(infra, prefix, "ny", "America/New_York", [])
    await person(infra, prefix, "syd", "Australia/Sydney", [])
    await mentorship(infra, prefix, "mc", "ny", "syd")
    start = future_start(days=2, hour=22)
    async with httpx.AsyncClient(base_url=svc.url, timeout=10) as http:
        await known(http, svc.url, "mc")
        await profiles_known(http, svc.url, "mc")
        created = (
            await http.post(
                "/mentorships/mc/sessions",
                headers=token("ny"),
                json={
                    "start": start.isoformat(),
                    "duration_minutes": 60,
                    "location": "https://meet.example/mc",
                    "agenda": "Goals",
                },
            )
        ).json()
        sid = created["session_id"]
        one = await http.get(f"/sessions/{sid}/ical", headers=token("syd"))
        assert one.status_code == 200 and one.headers["content-type"].startswith("text/calendar")
        [ev] = icalendar.Calendar.from_ical(one.content).walk("VEVENT")
        assert ev["DTSTART"].params["TZID"] == "Australia/Sydney"
        assert ev.decoded("DTSTART").astimezone(UTC) == start
        assert str(ev["UID"]) == created["ical_uid"] and int(ev["SEQUENCE"]) == 0

        feed = (await http.post("/calendar/feed", headers=token("ny"))).json()
        path = httpx.URL(feed["url"]).path
        assert len(feed["token"]) >= 40
        assert (await http.get("/calendar/feeds/not-a-token.ics")).status_code == 404

        async def feed_event() -> icalendar.Event:
            r = await http.get(path)
            assert r.status_code == 200
            [e] = icalendar.Calendar.from_ical(r.content).walk("VEVENT")
            return e

        before = await feed_event()
        assert before["DTSTART"].params["TZID"] == "America/New_York"
        moved = start + timedelta(hours=2)
        r = await http.post(f"/sessions/{sid}/reschedule", headers=token("syd"), json={"start": moved.isoformat()})
        assert r.status_code == 200, r.text
        after = await feed_event()
        assert str(after["UID"]) == str(before["UID"])
        assert int(after["SEQUENCE"]) > int(before["SEQUENCE"])
        assert after.decoded("DTSTART").astimezone(UTC) == moved
        await http.post(f"/sessions/{sid}/cancel", headers=token("ny"), json={"reason": "ill"})
        cancelled = await feed_event()
        assert str(cancelled["STATUS"]) == "CANCELLED" and int(cancelled["SEQUENCE"]) > int(after["SEQUENCE"])
        assert str(cancelled["UID"]) == str(before["UID"])
        # A new feed URL replaces the old one.
        await http.post("/calendar/feed", headers=token("ny"))
        assert (await http.get(path)).status_code == 404
