"""Pure scheduling rules: slots across DST, recurrences, booking grid, iCalendar rendering."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import icalendar
import pytest

from scheduling_service import domain
from scheduling_service.adapters import ical
from scheduling_service.domain import Interval, RuleViolation, Window

WEEKDAYS = range(5)
TOKYO_EVENINGS = [Window(d, 17 * 60, 20 * 60) for d in WEEKDAYS]  # 08:00-11:00 UTC all year
LONDON_MORNINGS = [Window(d, 8 * 60, 10 * 60) for d in WEEKDAYS]  # 08-10 UTC in GMT, 07-09 UTC in BST


def slots(span: Interval, busy=(), count=50):
    return domain.propose_slots(
        people=[("Asia/Tokyo", TOKYO_EVENINGS), ("Europe/London", LONDON_MORNINGS)],
        busy=busy,
        span=span,
        duration=timedelta(minutes=60),
        step=timedelta(minutes=30),
        count=count,
    )


def test_slots_follow_the_london_spring_forward_while_tokyo_stays():
    # London moves to BST on Sunday 2026-03-29; Tokyo has no DST (9 h apart before, 8 h after).
    found = slots(Interval(datetime(2026, 3, 26, tzinfo=UTC), datetime(2026, 4, 1, tzinfo=UTC)))
    by_day: dict[str, list[str]] = {}
    for s in found:
        by_day.setdefault(s.start.date().isoformat(), []).append(s.start.strftime("%H:%M"))
    assert by_day == {
        "2026-03-26": ["08:00", "08:30", "09:00"],
        "2026-03-27": ["08:00", "08:30", "09:00"],
        "2026-03-30": ["08:00"],  # overlap shrank to 08:00-09:00 UTC
        "2026-03-31": ["08:00"],
    }


def test_slots_skip_busy_time_and_respect_count():
    span = Interval(datetime(2026, 3, 26, tzinfo=UTC), datetime(2026, 3, 28, tzinfo=UTC))
    busy = [Interval(datetime(2026, 3, 26, 8, 30, tzinfo=UTC), datetime(2026, 3, 26, 9, 30, tzinfo=UTC))]
    found = slots(span, busy, count=2)
    assert [s.start for s in found] == [datetime(2026, 3, 27, 8, tzinfo=UTC), datetime(2026, 3, 27, 8, 30, tzinfo=UTC)]


def test_weekly_series_keeps_local_wall_time_across_dst():
    first = datetime(2026, 3, 23, 9, tzinfo=UTC)  # 10:00 in Berlin (CET)
    starts = domain.occurrences(first, "weekly", "Europe/Berlin", count=3, until=None, limit=52)
    assert [s.hour for s in starts] == [9, 8, 8]  # still 10:00 Berlin after the switch to CEST


def test_monthly_series_clamps_to_month_end_and_until_bounds_it():
    starts = domain.occurrences(
        datetime(2026, 1, 31, 12, tzinfo=UTC),
        "monthly",
        "UTC",
        count=None,
        until=datetime(2026, 4, 30, 12, tzinfo=UTC),
        limit=52,
    )
    assert [s.date().isoformat() for s in starts] == ["2026-01-31", "2026-02-28", "2026-03-31", "2026-04-30"]


def test_series_needs_an_end_and_a_bounded_size():
    with pytest.raises(RuleViolation) as no_end:
        domain.occurrences(datetime(2026, 1, 1, tzinfo=UTC), "weekly", "UTC", count=None, until=None, limit=52)
    assert no_end.value.field == "count"
    with pytest.raises(RuleViolation):
        domain.occurrences(
            datetime(2026, 1, 1, tzinfo=UTC),
            "weekly",
            "UTC",
            count=None,
            until=datetime(2030, 1, 1, tzinfo=UTC),
            limit=52,
        )


def test_session_times_are_validated():
    now = datetime(2026, 5, 1, tzinfo=UTC)
    ok = dict(min_minutes=15, max_minutes=240)
    assert domain.validate_session_times(datetime(2026, 5, 2, 9, 5, tzinfo=UTC), 60, now, **ok)
    for start, minutes, field in [
        (datetime(2026, 4, 30, tzinfo=UTC), 60, "start"),
        (datetime(2026, 5, 2, 9, 7, tzinfo=UTC), 60, "start"),
        (datetime(2026, 5, 2, 9, tzinfo=UTC), 600, "duration_minutes"),
        (datetime(2026, 5, 2, 9, tzinfo=UTC), 62, "duration_minutes"),
    ]:
        with pytest.raises(RuleViolation) as err:
            domain.validate_session_times(start, minutes, now, **ok)
        assert err.value.field == field


def test_unknown_zone_is_a_rule_violation():
    with pytest.raises(RuleViolation) as err:
        domain.zone("Mars/Olympus")
    assert err.value.field == "time_zone"


def test_buckets_cover_the_session_exactly():
    start = datetime(2026, 5, 2, 9, tzinfo=UTC)
    assert domain.buckets(start, 15) == [start, start + timedelta(minutes=5), start + timedelta(minutes=10)]


def test_ical_round_trip_with_tzid_and_cancelled_status():
    session = {
        "ical_uid": "abc@mentorship-platform",
        "sequence": 2,
        "status": "cancelled",
        "start": datetime(2026, 3, 30, 8, tzinfo=UTC),
        "end": datetime(2026, 3, 30, 9, tzinfo=UTC),
        "agenda": "Career goals",
        "location": "https://meet.example/x",
    }
    raw = ical.calendar([session], "Asia/Tokyo", datetime(2026, 3, 1, tzinfo=UTC), name="t")
    cal = icalendar.Calendar.from_ical(raw)
    [ev] = cal.walk("VEVENT")
    assert str(ev["UID"]) == "abc@mentorship-platform" and int(ev["SEQUENCE"]) == 2
    assert str(ev["STATUS"]) == "CANCELLED"
    assert ev["DTSTART"].params["TZID"] == "Asia/Tokyo"
    assert ev.decoded("DTSTART").hour == 17 and ev.decoded("DTSTART").astimezone(UTC).hour == 8
    assert [str(tz["TZID"]) for tz in cal.walk("VTIMEZONE")] == ["Asia/Tokyo"]
