"""Pure scheduling rules: availability in UTC, slot proposals, recurrences, booking buckets.

No I/O here. Every time in and out is timezone-aware UTC; people's weekly availability is in
their own IANA zone and is turned into UTC day by day, so daylight-saving changes are exact.
"""

from __future__ import annotations

import calendar
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

CADENCE_DAYS = {"weekly": 7, "biweekly": 14, "monthly": 30}
# Booking granularity: a person's time is claimed in 5-minute buckets (see adapters.bookings).
BUCKET_MINUTES = 5
OPEN_STATUSES = ("scheduled",)
BUSY_STATUSES = ("scheduled", "completed", "no_show")
# Said when a participant erased their profile: neutral, names nobody.
LEFT_REASON = "the person left the platform"
# Reasons the platform writes itself (no personal data): they survive a scrub.
PLATFORM_REASONS = (LEFT_REASON, "the mentorship ended")


class RuleViolation(ValueError):
    """Input breaks a scheduling rule; `field` names the offending input."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


@dataclass(frozen=True)
class Interval:
    start: datetime
    end: datetime

    def overlaps(self, other: Interval) -> bool:
        return self.start < other.end and other.start < self.end


@dataclass(frozen=True)
class Window:
    """Weekly availability window in local time; weekday 0 = Monday; minutes from midnight."""

    weekday: int
    start_minute: int
    end_minute: int


def zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise RuleViolation(f"{name!r} is not an IANA time zone name", "time_zone") from exc


def parse_windows(raw: Iterable[dict[str, object]]) -> list[Window]:
    out = []
    for w in raw:
        sh, sm = str(w["start"]).split(":")
        eh, em = str(w["end"]).split(":")
        out.append(Window(int(str(w["weekday"])), int(sh) * 60 + int(sm), int(eh) * 60 + int(em)))
    return out


def local_to_utc(day: date, minute: int, tz: ZoneInfo) -> datetime:
    """Local wall time (minute of `day`, 1440 = next midnight) to UTC.

    A wall time skipped by a spring-forward gap maps with the offset before the change
    (zoneinfo's fold=0), i.e. it lands just after the gap, which is what people mean.
    """
    naive = datetime.combine(day, time(0)) + timedelta(minutes=minute)
    moment = naive.replace(tzinfo=tz)
    return moment.astimezone(UTC)


def availability_in_utc(windows: Sequence[Window], tz_name: str, span: Interval) -> list[Interval]:
    """A person's weekly windows as UTC intervals clipped to `span`, sorted and merged."""
    tz = zone(tz_name)
    first = span.start.astimezone(tz).date() - timedelta(days=1)
    last = span.end.astimezone(tz).date() + timedelta(days=1)
    out: list[Interval] = []
    day = first
    while day <= last:
        for w in windows:
            if w.weekday == day.weekday() and w.end_minute > w.start_minute:
                iv = Interval(local_to_utc(day, w.start_minute, tz), local_to_utc(day, w.end_minute, tz))
                start, end = max(iv.start, span.start), min(iv.end, span.end)
                if start < end:
                    out.append(Interval(start, end))
        day += timedelta(days=1)
    return merge(out)


def merge(intervals: Iterable[Interval]) -> list[Interval]:
    out: list[Interval] = []
    for iv in sorted(intervals, key=lambda i: i.start):
        if out and iv.start <= out[-1].end:
            out[-1] = Interval(out[-1].start, max(out[-1].end, iv.end))
        else:
            out.append(iv)
    return out


def intersect(a: Sequence[Interval], b: Sequence[Interval]) -> list[Interval]:
    out, i, j = [], 0, 0
    while i < len(a) and j < len(b):
        start, end = max(a[i].start, b[j].start), min(a[i].end, b[j].end)
        if start < end:
            out.append(Interval(start, end))
        if a[i].end < b[j].end:
            i += 1
        else:
            j += 1
    return out


def subtract(free: Sequence[Interval], busy: Iterable[Interval]) -> list[Interval]:
    out = list(free)
    for b in merge(busy):
        next_out = []
        for f in out:
            if not f.overlaps(b):
                next_out.append(f)
                continue
            if f.start < b.start:
                next_out.append(Interval(f.start, b.start))
            if b.end < f.end:
                next_out.append(Interval(b.end, f.end))
        out = next_out
    return out


def propose_slots(
    *,
    people: Sequence[tuple[str, Sequence[Window]]],
    busy: Iterable[Interval],
    span: Interval,
    duration: timedelta,
    step: timedelta,
    count: int,
) -> list[Interval]:
    """The first `count` slots of `duration`, on a UTC grid of `step`, inside everyone's windows."""
    common: list[Interval] | None = None
    for tz_name, windows in people:
        mine = availability_in_utc(windows, tz_name, span)
        common = mine if common is None else intersect(common, mine)
    free = subtract(common or [], busy)
    step_s = int(step.total_seconds())
    slots: list[Interval] = []
    for f in free:
        ts = int(f.start.timestamp())
        start = datetime.fromtimestamp(-(-ts // step_s) * step_s, UTC)  # round up to the grid
        while start + duration <= f.end and len(slots) < count:
            slots.append(Interval(start, start + duration))
            start += step
        if len(slots) >= count:
            break
    return slots


def add_months(moment: datetime, months: int) -> datetime:
    """Same day of month (clamped to the month's end), same wall time."""
    month0 = moment.month - 1 + months
    year, month = moment.year + month0 // 12, month0 % 12 + 1
    day = min(moment.day, calendar.monthrange(year, month)[1])
    return moment.replace(year=year, month=month, day=day)


def occurrences(
    first_start: datetime, cadence: str, tz_name: str, *, count: int | None, until: datetime | None, limit: int
) -> list[datetime]:
    """Occurrence starts (UTC) of a series; the local wall time is kept across DST changes."""
    if count is None and until is None:
        raise RuleViolation("a series needs an end: give count or until", "count")
    if cadence not in CADENCE_DAYS:
        raise RuleViolation(f"unknown cadence {cadence!r}", "cadence")
    tz = zone(tz_name)
    local_first = first_start.astimezone(tz).replace(tzinfo=None)
    out: list[datetime] = []
    n = 0
    while True:
        if cadence == "monthly":
            local = add_months(local_first, n)
        else:
            local = local_first + timedelta(days=CADENCE_DAYS[cadence] * n)
        start = local.replace(tzinfo=tz).astimezone(UTC)
        if until is not None and start > until:
            break
        out.append(start)
        n += 1
        if count is not None and n >= count:
            break
        if len(out) > limit:
            raise RuleViolation(f"a series has at most {limit} occurrences", "until" if count is None else "count")
    if len(out) > limit:
        raise RuleViolation(f"a series has at most {limit} occurrences", "count")
    if not out:
        raise RuleViolation("until is before the first occurrence", "until")
    return out


def shift_wall_time(start: datetime, delta_local: timedelta, tz_name: str) -> datetime:
    """Move a UTC start by a wall-clock delta in the given zone (10:00 stays 10:00 over DST)."""
    tz = zone(tz_name)
    local = start.astimezone(tz).replace(tzinfo=None) + delta_local
    return local.replace(tzinfo=tz).astimezone(UTC)


def wall_delta(old_start: datetime, new_start: datetime, tz_name: str) -> timedelta:
    tz = zone(tz_name)
    return new_start.astimezone(tz).replace(tzinfo=None) - old_start.astimezone(tz).replace(tzinfo=None)


def buckets(start: datetime, duration_minutes: int) -> list[datetime]:
    """The 5-minute buckets a session occupies (start must be on the grid)."""
    return [start + timedelta(minutes=m) for m in range(0, duration_minutes, BUCKET_MINUTES)]


def validate_session_times(
    start: datetime, duration_minutes: int, now: datetime, *, min_minutes: int, max_minutes: int, field: str = "start"
) -> datetime:
    if start.tzinfo is None:
        raise RuleViolation("start needs a time zone offset (e.g. 2026-05-04T09:00:00Z)", field)
    start = start.astimezone(UTC)
    if start <= now:
        raise RuleViolation("the session would start in the past", field)
    if start.second or start.microsecond or start.minute % BUCKET_MINUTES:
        raise RuleViolation(f"start must be on a {BUCKET_MINUTES}-minute boundary", field)
    if not (min_minutes <= duration_minutes <= max_minutes):
        raise RuleViolation(f"duration must be between {min_minutes} and {max_minutes} minutes", "duration_minutes")
    if duration_minutes % BUCKET_MINUTES:
        raise RuleViolation(f"duration must be a multiple of {BUCKET_MINUTES} minutes", "duration_minutes")
    return start


def planned_sessions(started_at: datetime, until: datetime, cadence: str) -> int:
    """How many sessions the cadence plans between the start and `until` (first one included)."""
    if until <= started_at:
        return 0
    days = (until - started_at).total_seconds() / 86400
    return int(days // CADENCE_DAYS.get(cadence, 14)) + 1


def scrubbed_session(session: dict[str, Any]) -> dict[str, Any]:
    """The fields to overwrite so a session with an erased participant keeps no free text: the
    agenda, the notes, the location, a cancel reason a person wrote and every feedback comment (by
    or about the person). Ids, times, statuses and ratings stay. Empty when already clean."""
    changes: dict[str, Any] = {}
    for text in ("agenda", "notes"):
        if session.get(text):
            changes[text] = ""
    if session.get("location"):
        changes["location"] = None
    reason = session.get("cancel_reason")
    if reason and reason not in PLATFORM_REASONS:
        changes["cancel_reason"] = LEFT_REASON
    for role, entry in (session.get("feedback") or {}).items():
        if entry.get("comment"):
            changes[f"feedback.{role}.comment"] = ""
    return changes
