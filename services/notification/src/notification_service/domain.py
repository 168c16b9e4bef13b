"""Notification rules: pure, no I/O.

The rules table says, for every event type we turn into messages, who receives it, in which
category and with which template. Everything else here (preferences, quiet hours, urgency,
delivery keys, backoff, webhook signatures, forbidden addresses, iCalendar) is a pure function
of its inputs, so it is unit-tested without infrastructure.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import re
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from enum import StrEnum
from typing import Any, Literal
from zoneinfo import ZoneInfo

from mentorship_contracts import Envelope, EventData, decode, encode
from mentorship_contracts.matching import (
    Agreement,
    CohortMatchPublished,
    IntroductionMadeV2,
    MentorshipAgreementRevisedV2,
    MentorshipCompleted,
    MentorshipRequestAccepted,
    MentorshipRequestDeclinedV2,
    MentorshipRequestedV2,
    MentorshipRequestExpired,
    MentorshipStartedV2,
)
from mentorship_contracts.scheduling import (
    CheckInOverdue,
    MentorshipInactive,
    MilestoneReachedV2,
    SessionCancelledV2,
    SessionReminderDue,
    SessionRescheduled,
    SessionScheduledV2,
)


class Category(StrEnum):
    REQUESTS = "requests"
    SESSIONS = "sessions"
    REMINDERS = "reminders"
    NUDGES = "nudges"
    MILESTONES = "milestones"
    PROGRAM_NEWS = "program_news"


class Channel(StrEnum):
    EMAIL = "email"
    IN_APP = "in_app"
    WEBHOOK = "webhook"


PERSONAL_CHANNELS: tuple[Channel, ...] = (Channel.EMAIL, Channel.IN_APP)

# Who, relative to an event: each maps to the payload field(s) holding profile ids.
Audience = Literal["mentee", "mentor", "contact", "introducer", "admins", "proposer"]
_AUDIENCE_FIELDS: dict[str, str] = {
    "mentee": "mentee_id",
    "mentor": "mentor_id",
    "contact": "contact_id",
    "introducer": "introduced_by",
    "admins": "admin_ids",
    "proposer": "proposed_by",
}


@dataclass(frozen=True)
class Rule:
    template: str
    category: Category
    audience: tuple[Audience, ...]
    # iCalendar METHOD of the invite attached to emails, if any
    calendar: Literal["REQUEST", "CANCEL"] | None = None


# Keyed by the newest version of each event: older records are read as it (the contracts' upcasters).
RULES: dict[type[EventData], Rule] = {
    MentorshipRequestedV2: Rule("request_received", Category.REQUESTS, ("mentor",)),
    MentorshipRequestAccepted: Rule("request_accepted", Category.REQUESTS, ("mentee",)),
    MentorshipRequestDeclinedV2: Rule("request_declined", Category.REQUESTS, ("mentee",)),
    MentorshipRequestExpired: Rule("request_expired", Category.REQUESTS, ("mentee", "mentor")),
    MentorshipStartedV2: Rule("mentorship_started", Category.REQUESTS, ("mentee", "mentor")),
    MentorshipCompleted: Rule("mentorship_completed", Category.MILESTONES, ("mentee", "mentor")),
    # the one who accepted knows already; the proposer hears that the other said yes
    MentorshipAgreementRevisedV2: Rule("agreement_revised", Category.REQUESTS, ("proposer",)),
    SessionScheduledV2: Rule("session_scheduled", Category.SESSIONS, ("mentee", "mentor"), "REQUEST"),
    SessionRescheduled: Rule("session_rescheduled", Category.SESSIONS, ("mentee", "mentor"), "REQUEST"),
    SessionCancelledV2: Rule("session_cancelled", Category.SESSIONS, ("mentee", "mentor"), "CANCEL"),
    SessionReminderDue: Rule("session_reminder", Category.REMINDERS, ("mentee", "mentor")),
    CheckInOverdue: Rule("check_in_overdue", Category.NUDGES, ("mentor", "mentee")),
    MentorshipInactive: Rule("mentorship_inactive", Category.NUDGES, ("mentor", "mentee")),
    MilestoneReachedV2: Rule("milestone_reached", Category.MILESTONES, ("mentee", "mentor")),
    IntroductionMadeV2: Rule("introduction_made", Category.REQUESTS, ("mentee", "contact")),
    CohortMatchPublished: Rule("cohort_match_published", Category.PROGRAM_NEWS, ("admins",)),
}


def rule_for(data: EventData) -> Rule | None:
    return RULES.get(type(data))


def recipients(rule: Rule, data: EventData) -> list[tuple[str, Audience]]:
    """(profile id, audience) pairs, each person once, in the rule's order."""
    seen: set[str] = set()
    out: list[tuple[str, Audience]] = []
    for who in rule.audience:
        value = getattr(data, _AUDIENCE_FIELDS[who], None)
        for pid in value if isinstance(value, list) else [value]:
            if pid and pid not in seen:
                seen.add(pid)
                out.append((pid, who))
    return out


def is_urgent(data: EventData, now: datetime, urgent_window: timedelta) -> bool:
    """A reminder for a session that starts soon must not wait for quiet hours to end."""
    return isinstance(data, SessionReminderDue) and data.start - now <= urgent_window


# --- erasure: who an event mentions, and what of it an erased person leaves behind -----------

# Payload fields that hold profile ids (people), beyond the audience fields above.
PERSON_FIELDS: tuple[str, ...] = (
    "mentee_id",
    "mentor_id",
    "contact_id",
    "introduced_by",
    "admin_ids",
    "author_id",
    "scheduled_by",
    "rescheduled_by",
    "cancelled_by",
    "reported_by",
    "absent_ids",
    "proposed_by",
    "accepted_by",
)
# Free text people write into events: an erased person's words must not be rendered or kept.
# Version 2 events carry none of it (only `location` is left); the list still covers v1 payloads.
FREE_TEXT_FIELDS: tuple[str, ...] = ("message", "reason", "agenda", "notes", "comment", "location", "expectations")
FORMER_MEMBER = "a former member"
UNKNOWN_MEMBER = "a member"
ERASED_MENTION = "mentions an erased person"

# In-app texts keep people as references, rendered to their current name when read: an erased
# person then reads as FORMER_MEMBER everywhere at once, and no stored text holds their name.
# Private-use code points, so no name or free text is taken for a reference.
_REF_OPEN, _REF_CLOSE = "\ue000", "\ue001"
_REF = re.compile(f"{_REF_OPEN}([^{_REF_CLOSE}]{{1,200}}){_REF_CLOSE}")


def mentioned_people(data: EventData) -> list[str]:
    """Every profile id the event names, each once, in field order."""
    found: list[str] = []
    for field in PERSON_FIELDS:
        value = getattr(data, field, None)
        for pid in value if isinstance(value, list) else [value]:
            if isinstance(pid, str) and pid and pid not in found:
                found.append(pid)
    return found


def without_free_text(data: EventData) -> EventData:
    """The event with every free-text field emptied (and milestone or goal titles made generic):
    what may still be shown or forwarded about an event that names an erased person."""
    update: dict[str, Any] = {}
    for field in FREE_TEXT_FIELDS:
        value = getattr(data, field, None)
        if isinstance(value, str) and value:
            update[field] = None if field == "location" else ""
    if getattr(data, "title", None) and hasattr(data, "milestone_id"):
        update["title"] = "a milestone"
    agreement = getattr(data, "agreement", None)
    if isinstance(agreement, Agreement) and (agreement.goals or agreement.expectations):
        update["agreement"] = agreement.model_copy(update={"goals": [], "expectations": ""})
    return data.model_copy(update=update) if update else data


def bare_event_json(encoded: str) -> str:
    """A stored event (its JSON) without free text."""
    envelope: Envelope[Any] = decode(encoded.encode())
    return encode(envelope.model_copy(update={"data": without_free_text(envelope.data)})).decode()


def person_ref(profile_id: str) -> str:
    return f"{_REF_OPEN}{profile_id}{_REF_CLOSE}"


def referenced_people(*texts: str) -> set[str]:
    return {m.group(1) for text in texts for m in _REF.finditer(text)}


def refs_as_ids(text: str) -> str:
    """A stored text with each person reference shown as the profile id (the admin's delivery log)."""
    return _REF.sub(lambda m: m.group(1), text)


def resolve_refs(text: str, names: dict[str, str]) -> str:
    """A stored text with each person reference replaced by their name as known now."""
    return _REF.sub(lambda m: names.get(m.group(1), UNKNOWN_MEMBER), text)


# --- preferences -----------------------------------------------------------------------------


def skip_reason(contact: dict[str, Any], channel: Channel, category: Category) -> str | None:
    """Why this person gets nothing on this channel for this category (None: send)."""
    if not contact.get("active", True):
        return "recipient is deactivated"
    prefs = contact.get("preferences") or {}
    if not (prefs.get("channels") or {}).get(channel.value, True):
        return f"channel {channel.value} switched off by the recipient"
    if not (prefs.get("categories") or {}).get(category.value, True):
        return f"category {category.value} switched off by the recipient"
    if channel is Channel.EMAIL and not contact.get("email"):
        return "recipient has no email address"
    return None


def _minutes(hhmm: str) -> int:
    h, m = hhmm.split(":")
    return int(h) * 60 + int(m)


def quiet_hours_end(now: datetime, time_zone: str, quiet: dict[str, str] | None) -> datetime | None:
    """If `now` falls in the person's quiet hours, the UTC moment they end; else None.

    The window is in the person's local time and may wrap midnight (22:00-07:00).
    """
    if not quiet:
        return None
    start, end = _minutes(quiet["start"]), _minutes(quiet["end"])
    if start == end:
        return None
    zone = ZoneInfo(time_zone)
    local = now.astimezone(zone)
    minute = local.hour * 60 + local.minute
    if start < end:
        inside = start <= minute < end
        end_day = local.date()
    else:  # wraps midnight
        inside = minute >= start or minute < end
        end_day = local.date() + timedelta(days=1) if minute >= start else local.date()
    if not inside:
        return None
    end_day += timedelta(days=end // 1440)
    end_local = datetime.combine(end_day, time((end % 1440) // 60, end % 60), tzinfo=zone)
    # A wall time skipped by a DST jump still maps to a real instant; never before now.
    return max(end_local.astimezone(now.tzinfo), now)


# --- delivery identity and retries -----------------------------------------------------------


def delivery_id(source_event_id: str, recipient_id: str, channel: str) -> str:
    """The key that makes a redelivered or replayed event a no-op."""
    return f"{source_event_id}:{recipient_id}:{channel}"


def message_id(delivery: str, domain: str) -> str:
    """Stable per delivery: a re-sent email after a crash carries the same Message-ID."""
    return f"<{hashlib.sha256(delivery.encode()).hexdigest()[:40]}@{domain}>"


def retry_delay(attempt: int, base: float, cap: float) -> timedelta:
    """Exponential backoff after the `attempt`-th failure (1-based)."""
    return timedelta(seconds=min(base * (2 ** (attempt - 1)), cap))


# --- webhooks --------------------------------------------------------------------------------

SIGNATURE_HEADER = "Mentorship-Signature"


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """`t=<unix>,v1=<hex HMAC-SHA256 of "t.body">` (the Stripe style)."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={mac}"


def verify(secret: str, header: str, body: bytes, *, now: int, tolerance: int = 300) -> bool:
    """What a receiver does: recompute, compare in constant time, reject stale timestamps."""
    parts = dict(p.split("=", 1) for p in header.split(",") if "=" in p)
    try:
        timestamp = int(parts["t"])
    except (KeyError, ValueError):
        return False
    if abs(now - timestamp) > tolerance:
        return False
    expected = sign(secret, timestamp, body).split("v1=", 1)[1]
    return hmac.compare_digest(expected, parts.get("v1", ""))


_METADATA = {ipaddress.ip_address("169.254.169.254"), ipaddress.ip_address("fd00:ec2::254")}


def forbidden_address(
    ip: ipaddress.IPv4Address | ipaddress.IPv6Address, *, allow_loopback: bool, allow_private: bool
) -> str | None:
    """Why a webhook may not call this address (None: allowed)."""
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
        ip = ip.ipv4_mapped
    if ip in _METADATA or ip.is_link_local:
        return "link-local or cloud metadata address"
    if ip.is_loopback:
        return None if allow_loopback else "loopback address"
    if ip.is_unspecified or ip.is_multicast or ip.is_reserved:
        return "unspecified, multicast or reserved address"
    if ip in ipaddress.ip_network("100.64.0.0/10") or ip.is_private:
        return None if allow_private else "private network address"
    return None


# --- iCalendar -------------------------------------------------------------------------------


def _ics_time(moment: datetime) -> str:
    return moment.astimezone(ZoneInfo("UTC")).strftime("%Y%m%dT%H%M%SZ")


def _ics_text(value: str) -> str:
    return value.replace("\\", "\\\\").replace(";", "\\;").replace(",", "\\,").replace("\n", "\\n")


def _fold(line: str) -> str:
    """RFC 5545 folds lines longer than 75 octets."""
    raw = line.encode()
    if len(raw) <= 75:
        return line
    chunks: list[str] = []
    current = b""
    for ch in line:
        b = ch.encode()
        if len(current) + len(b) > (75 if not chunks else 74):
            chunks.append(current.decode())
            current = b""
        current += b
    chunks.append(current.decode())
    return "\r\n ".join(chunks)


def icalendar(
    *,
    method: Literal["REQUEST", "CANCEL"],
    uid: str,
    sequence: int,
    start: datetime,
    duration_minutes: int,
    summary: str,
    organizer: str,
    attendee: str,
    stamp: datetime,
    location: str | None = None,
    description: str = "",
) -> str:
    lines = [
        "BEGIN:VCALENDAR",
        "VERSION:2.0",
        "PRODID:-//Mentorship Platform//Notification//EN",
        f"METHOD:{method}",
        "CALSCALE:GREGORIAN",
        "BEGIN:VEVENT",
        f"UID:{_ics_text(uid)}",
        f"SEQUENCE:{sequence}",
        f"DTSTAMP:{_ics_time(stamp)}",
        f"DTSTART:{_ics_time(start)}",
        f"DTEND:{_ics_time(start + timedelta(minutes=duration_minutes))}",
        f"SUMMARY:{_ics_text(summary)}",
        f"STATUS:{'CANCELLED' if method == 'CANCEL' else 'CONFIRMED'}",
        f"ORGANIZER:mailto:{organizer}",
        f"ATTENDEE;ROLE=REQ-PARTICIPANT;RSVP=FALSE:mailto:{attendee}",
    ]
    if location:
        lines.append(f"LOCATION:{_ics_text(location)}")
    if description:
        lines.append(f"DESCRIPTION:{_ics_text(description)}")
    lines += ["END:VEVENT", "END:VCALENDAR"]
    return "\r\n".join(_fold(line) for line in lines) + "\r\n"
