"""Pure notification rules: quiet hours, preferences, urgency, signatures, addresses, iCalendar, templates."""

from __future__ import annotations

import ipaddress
from datetime import UTC, datetime, timedelta

import pytest

from mentorship_contracts.matching import CohortMatchPublished, IntroductionMadeV2, MatchQuality, MentorshipRequestedV2
from mentorship_contracts.scheduling import MilestoneReached, SessionReminderDue
from notification_service import domain
from notification_service.adapters.webhooks import ForbiddenUrl, check_url_syntax
from notification_service.templates import TEMPLATES, Renderer, RenderError


def at(hour: int, minute: int = 0, day: int = 10) -> datetime:
    return datetime(2030, 6, day, hour, minute, tzinfo=UTC)


@pytest.mark.parametrize(
    "now, quiet, expected",
    [
        (at(23), {"start": "22:00", "end": "07:00"}, at(7, day=11)),  # wraps midnight, evening side
        (at(3), {"start": "22:00", "end": "07:00"}, at(7)),  # wraps midnight, morning side
        (at(12), {"start": "22:00", "end": "07:00"}, None),
        (at(13), {"start": "12:00", "end": "14:00"}, at(14)),
        (at(14), {"start": "12:00", "end": "14:00"}, None),  # end is exclusive
        (at(20), {"start": "18:00", "end": "24:00"}, at(0, day=11)),
        (at(20), {"start": "09:00", "end": "09:00"}, None),  # empty window
        (at(20), None, None),
    ],
)
def test_quiet_hours_end_in_utc(now, quiet, expected):
    assert domain.quiet_hours_end(now, "UTC", quiet) == expected


def test_quiet_hours_use_the_persons_zone():
    # 21:30 UTC is 23:30 in Berlin (summer): inside 22:00-07:00 local, ending 05:00 UTC.
    end = domain.quiet_hours_end(at(21, 30), "Europe/Berlin", {"start": "22:00", "end": "07:00"})
    assert end == at(5, day=11)
    assert domain.quiet_hours_end(at(21, 30), "America/New_York", {"start": "22:00", "end": "07:00"}) is None


def test_quiet_hours_ending_in_a_dst_gap_still_end():
    # Berlin springs forward 2030-03-31 02:00 -> 03:00; a window ending 02:30 ends at a real instant.
    now = datetime(2030, 3, 31, 0, 15, tzinfo=UTC)  # 01:15 local
    end = domain.quiet_hours_end(now, "Europe/Berlin", {"start": "23:00", "end": "02:30"})
    assert end is not None and end > now and end - now <= timedelta(hours=2)


def test_preferences_switch_channels_and_categories_off():
    contact = {
        "active": True,
        "email": "a@x.org",
        "preferences": {"channels": {"email": False}, "categories": {"nudges": False}},
    }
    assert (
        domain.skip_reason(contact, domain.Channel.EMAIL, domain.Category.SESSIONS)
        == "channel email switched off by the recipient"
    )
    assert (
        domain.skip_reason(contact, domain.Channel.IN_APP, domain.Category.NUDGES)
        == "category nudges switched off by the recipient"
    )
    assert domain.skip_reason(contact, domain.Channel.IN_APP, domain.Category.SESSIONS) is None
    assert (
        domain.skip_reason({**contact, "active": False}, domain.Channel.IN_APP, domain.Category.SESSIONS)
        == "recipient is deactivated"
    )


def test_rules_name_the_right_recipients_once():
    intro = IntroductionMadeV2(introduction_id="i", mentorship_id="m", introduced_by="g", mentee_id="a", contact_id="c")
    assert domain.recipients(domain.rule_for(intro), intro) == [("a", "mentee"), ("c", "contact")]
    quality = MatchQuality(
        total_score=1, bound_ratio=1, p10_score=1, matched=1, unmatched=0, top5_share=1, blocking_pair_mentees=0
    )
    cohort = CohortMatchPublished(
        program_id="p", program_name="P", run_id="r", mentorship_ids=[], quality=quality, admin_ids=["x", "y", "x"]
    )
    assert domain.recipients(domain.rule_for(cohort), cohort) == [("x", "admins"), ("y", "admins")]
    assert all(rule.template in TEMPLATES for rule in domain.RULES.values())


def test_only_an_imminent_reminder_is_urgent():
    now = at(9)
    soon = SessionReminderDue(
        mentorship_id="m",
        session_id="s",
        mentor_id="g",
        mentee_id="a",
        ical_uid="u",
        start=now + timedelta(minutes=30),
        duration_minutes=30,
        offset_minutes=30,
    )
    later = soon.model_copy(update={"start": now + timedelta(days=1)})
    window = timedelta(hours=2)
    assert domain.is_urgent(soon, now, window) and not domain.is_urgent(later, now, window)
    milestone = MilestoneReached(
        mentorship_id="m", milestone_id="x", title="t", mentor_id="g", mentee_id="a", reached_at=now
    )
    assert not domain.is_urgent(milestone, now, window)


def test_signature_round_trip_and_tampering():
    header = domain.sign("s3cret", 1_700_000_000, b'{"a":1}')
    assert header.startswith("t=1700000000,v1=")
    assert domain.verify("s3cret", header, b'{"a":1}', now=1_700_000_010)
    assert not domain.verify("s3cret", header, b'{"a":2}', now=1_700_000_010)
    assert not domain.verify("other", header, b'{"a":1}', now=1_700_000_010)
    assert not domain.verify("s3cret", header, b'{"a":1}', now=1_700_001_000)  # replayed too late


@pytest.mark.parametrize(
    "address, loopback, private, forbidden",
    [
        ("169.254.169.254", True, True, True),
        ("fe80::1", True, True, True),
        ("127.0.0.1", False, False, True),
        ("127.0.0.1", True, False, False),
        ("::ffff:127.0.0.1", False, False, True),
        ("10.1.2.3", True, False, True),
        ("192.168.1.1", True, True, False),
        ("100.64.0.1", False, False, True),
        ("0.0.0.0", True, True, True),
        ("93.184.216.34", False, False, False),
    ],
)
def test_forbidden_addresses(address, loopback, private, forbidden):
    reason = domain.forbidden_address(ipaddress.ip_address(address), allow_loopback=loopback, allow_private=private)
    assert (reason is not None) == forbidden


def test_url_syntax():
    assert check_url_syntax("https://hooks.example.org/x") == ("https", "hooks.example.org", 443)
    for bad in ("file:///etc/passwd", "gopher://x", "http:///nohost", "http://u:p@x.org/"):
        with pytest.raises(ForbiddenUrl):
            check_url_syntax(bad)


def test_delivery_key_and_message_id_are_stable():
    key = domain.delivery_id("ev-1", "ada", "email")
    assert key == "ev-1:ada:email"
    assert domain.message_id(key, "m.local") == domain.message_id(key, "m.local")
    assert domain.message_id(key, "m.local") != domain.message_id("ev-1:ada:in_app", "m.local")


def test_backoff_grows_and_is_capped():
    delays = [domain.retry_delay(n, 30, 300).total_seconds() for n in range(1, 7)]
    assert delays == [30, 60, 120, 240, 300, 300]


def test_icalendar_request_and_cancel():
    start = datetime(2031, 1, 2, 9, 30, tzinfo=UTC)
    common = dict(
        uid="s-1@x",
        start=start,
        duration_minutes=45,
        summary="Session, with; commas " + "x" * 80,
        organizer="o@x.org",
        attendee="a@x.org",
        stamp=start,
    )
    ics = domain.icalendar(method="REQUEST", sequence=0, **common)
    assert "METHOD:REQUEST" in ics and "DTEND:20310102T101500Z" in ics and "STATUS:CONFIRMED" in ics
    assert "Session\\, with\\; commas" in ics
    assert all(len(line.encode()) <= 75 for line in ics.split("\r\n"))  # folded
    cancel = domain.icalendar(method="CANCEL", sequence=3, **common)
    assert "METHOD:CANCEL" in cancel and "SEQUENCE:3" in cancel and "STATUS:CANCELLED" in cancel


def test_templates_show_times_in_the_recipients_zone_and_fail_cleanly():
    request = MentorshipRequestedV2(
        mentorship_id="m",
        mentee_id="a",
        mentor_id="g",
        has_message=True,
        expires_at=datetime(2030, 1, 1, 12, tzinfo=UTC),
    )
    out = Renderer().render(
        "request_received", me="Grace", time_zone="Asia/Tokyo", audience="mentor", event=request, names={"a": "Ada"}
    )
    assert out.subject == "Ada asked you to be their mentor"
    assert "Tue 01 Jan 2030 21:00 JST" in out.text
    # the message is not quoted (v2 does not carry it): the email links to the request in the app
    assert "They wrote you a message" in out.text and "http://localhost:8080/mentorships/m" in out.text
    odd = Renderer().render(
        "request_received", me="Grace", time_zone="UTC", audience="mentor", event=request, names={"a": "<script>"}
    )
    assert "<script>" in odd.text
    assert "&lt;script&gt;" in odd.html and "<script>" not in odd.html
    unknown = Renderer().render(
        "request_received", me="Grace", time_zone="UTC", audience="mentor", event=request, names={}
    )
    assert unknown.subject == "a member asked you to be their mentor"
    broken = Renderer({"x": {"subject": "{{ nope }}", "text": "", "html": "", "in_app": ""}})
    with pytest.raises(RenderError):
        broken.render("x", me="G", time_zone="UTC", audience="mentor", event=request, names={})
