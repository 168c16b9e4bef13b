"""iCalendar (RFC 5545) rendering with the `icalendar` package.

Times carry the TZID of the reader's own zone (with its VTIMEZONE), so calendar apps show
the local time right across daylight-saving changes. A session keeps its UID for life; every
change raises SEQUENCE, and a cancelled session is sent as STATUS:CANCELLED, so subscribed
calendars update the event they already have instead of adding a new one.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import icalendar

PRODID = "-//mentorship-platform//scheduling//EN"
STATUS = {"scheduled": "CONFIRMED", "completed": "CONFIRMED", "no_show": "CONFIRMED", "cancelled": "CANCELLED"}


def session_event(session: dict[str, Any], tz_name: str, stamp: datetime) -> icalendar.Event:
    tz = ZoneInfo(tz_name)
    ev = icalendar.Event()
    ev.add("uid", session["ical_uid"])
    ev.add("dtstamp", stamp)
    ev.add("last-modified", session.get("updated_at") or stamp)
    ev.add("sequence", int(session.get("sequence", 0)))
    ev.add("dtstart", session["start"].astimezone(tz))
    ev.add("dtend", session["end"].astimezone(tz))
    ev.add("summary", "Mentoring session")
    if session.get("agenda"):
        ev.add("description", session["agenda"])
    if session.get("location"):
        ev.add("location", session["location"])
        if str(session["location"]).startswith(("https://", "http://")):
            ev.add("url", session["location"])
    ev.add("status", STATUS.get(session["status"], "CONFIRMED"))
    return ev


def calendar(
    sessions: Iterable[dict[str, Any]], tz_name: str, stamp: datetime, *, name: str, cancelled_method: bool = False
) -> bytes:
    cal = icalendar.Calendar()
    cal.add("prodid", PRODID)
    cal.add("version", "2.0")
    cal.add("calscale", "GREGORIAN")
    cal.add("method", "CANCEL" if cancelled_method else "PUBLISH")
    cal.add("x-wr-calname", name)
    cal.add("x-wr-timezone", tz_name)
    for s in sessions:
        cal.add_component(session_event(s, tz_name, stamp))
    cal.add_missing_timezones()
    ics: bytes = cal.to_ical()
    return ics
