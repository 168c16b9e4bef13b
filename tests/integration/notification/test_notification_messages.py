"""Each mapped event becomes the right messages on the right channels (real Kafka, store, SMTP)."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest

from mentorship_contracts.matching import (
    Agreement,
    CohortMatchPublished,
    IntroductionMade,
    MatchQuality,
    MentorshipCompleted,
    MentorshipRequestAccepted,
    MentorshipRequestDeclined,
    MentorshipRequested,
    MentorshipRequestExpired,
    MentorshipRequestWithdrawn,
    MentorshipStarted,
)
from mentorship_contracts.scheduling import (
    CheckInOverdue,
    MentorshipInactive,
    MilestoneReached,
    SessionCancelled,
    SessionReminderDue,
    SessionRescheduled,
    SessionScheduled,
)
from tests.integration.notification.conftest import known, person
from tests.support.kafka import eventually
from tests.support.processes import token

pytestmark = pytest.mark.integration

MENTEE, MENTOR, CONTACT, ADMIN = "ada", "grace", "linus", "alan"
M = dict(mentorship_id="m-1", mentee_id=MENTEE, mentor_id=MENTOR)


def all_events(now: datetime) -> list[tuple[object, set[str]]]:
    """Every mapped event beside who must get an email for it."""
    start = datetime(2031, 3, 4, 15, 0, tzinfo=UTC)
    session = dict(**M, session_id="s-1", ical_uid="s-1@mentorship")
    quality = MatchQuality(
        total_score=9.5,
        bound_ratio=0.97,
        p10_score=0.6,
        matched=12,
        unmatched=1,
        top5_share=0.8,
        blocking_pair_mentees=0,
    )
    both = {MENTEE, MENTOR}
    return [
        (MentorshipRequested(**M, message="Teach me <compilers>", expires_at=start), {MENTOR}),
        (MentorshipRequestAccepted(**M), {MENTEE}),
        (MentorshipRequestDeclined(**M, reason="full", automatic=True), {MENTEE}),
        (MentorshipRequestExpired(**M), both),
        (MentorshipStarted(**M, agreement=Agreement(goals=["Ship a compiler"]), started_at=now), both),
        (SessionScheduled(**session, start=start, duration_minutes=45, scheduled_by=MENTOR, location="Room 1"), both),
        (
            SessionRescheduled(
                **session,
                sequence=1,
                previous_start=start,
                start=start + timedelta(days=1),
                duration_minutes=45,
                rescheduled_by=MENTOR,
            ),
            both,
        ),
        (SessionCancelled(**session, sequence=2, start=start + timedelta(days=1), cancelled_by=MENTEE), both),
        (
            SessionReminderDue(**session, start=now + timedelta(minutes=30), duration_minutes=45, offset_minutes=30),
            both,
        ),
        (CheckInOverdue(**M, cadence="biweekly", due_since=now), both),
        (MentorshipInactive(**M, inactive_since=now), both),
        (MilestoneReached(**M, milestone_id="ms-1", title="First talk given", reached_at=now), both),
        (MentorshipCompleted(**M, completed_at=now), both),
        (
            IntroductionMade(
                introduction_id="i-1",
                mentorship_id="m-1",
                introduced_by=MENTOR,
                mentee_id=MENTEE,
                contact_id=CONTACT,
                message="You both love Linux",
            ),
            {MENTEE, CONTACT},
        ),
        (
            CohortMatchPublished(
                program_id="p-1",
                program_name="Spring cohort",
                run_id="r-1",
                mentorship_ids=["m-1", "m-2"],
                quality=quality,
                admin_ids=[ADMIN],
            ),
            {ADMIN},
        ),
    ]


async def test_each_mapped_event_reaches_the_right_people_on_email_and_in_app(service, smtp):
    box, _ = smtp
    for data in (
        person(MENTEE, "Ada Lovelace", "Europe/Berlin"),
        person(MENTOR, "Grace Hopper", "America/New_York", roles=("mentor",)),
        person(CONTACT, "Linus T", "Europe/Helsinki", prefs={"channels": {"email": True, "in_app": False}}),
        person(ADMIN, "Alan Turing", "UTC"),
    ):
        await service.send(data)
    await known(service, MENTEE, MENTOR, CONTACT, ADMIN)

    now = service.runtime.clock.now()
    cases = all_events(now)
    sent = [(await service.send(data), who) for data, who in cases]
    withdrawn = await service.send(MentorshipRequestWithdrawn(**M))  # not in the rules table: nobody is told
    expected = sum(len(who) for _, who in cases)
    await eventually(lambda: _count(box, expected), timeout=60)

    for env, who in sent:
        got = {str(m["To"]).split("<")[1].split("@")[0] for m in box.for_event(env.id)}
        assert got == who, env.type
    assert box.for_event(withdrawn.id) == []

    by_type = {env.type.rsplit(".", 1)[1]: env for env, _ in sent}
    [request_mail] = box.for_event(by_type["mentorship_requested"].id)
    assert request_mail["Subject"] == "Ada Lovelace asked you to be their mentor"
    text = request_mail.get_body(("plain",)).get_content()
    assert "Hello Grace Hopper" in text and "Tue 04 Mar 2031 10:00 EST" in text  # New York time
    html = request_mail.get_body(("html",)).get_content()
    # the request's message is not quoted (v2 events do not carry it): the email links to the request
    assert "compilers" not in text and "compilers" not in html
    assert "They wrote you a message" in text and f"/mentorships/{M['mentorship_id']}" in text
    assert f'href="http://localhost:8080/mentorships/{M["mentorship_id"]}"' in html

    invites = {}
    for name in ("session_scheduled", "session_rescheduled", "session_cancelled"):
        mail = next(m for m in box.for_event(by_type[name].id) if MENTEE in str(m["To"]))
        [ics_part] = [p for p in mail.iter_attachments() if p.get_content_type() == "text/calendar"]
        invites[name] = (
            ics_part.get_content() if isinstance(ics_part.get_content(), str) else ics_part.get_content().decode()
        )
    assert "METHOD:REQUEST" in invites["session_scheduled"] and "SEQUENCE:0" in invites["session_scheduled"]
    assert "DTSTART:20310304T150000Z" in invites["session_scheduled"]
    assert "DTEND:20310304T154500Z" in invites["session_scheduled"]
    assert (
        "SEQUENCE:1" in invites["session_rescheduled"] and "DTSTART:20310305T150000Z" in invites["session_rescheduled"]
    )
    assert "METHOD:CANCEL" in invites["session_cancelled"] and "STATUS:CANCELLED" in invites["session_cancelled"]
    assert "DTEND:20310305T154500Z" in invites["session_cancelled"]  # duration remembered from the schedule
    assert all("UID:s-1@mentorship" in ics for ics in invites.values())
    scheduled_for_ada = next(m for m in box.for_event(by_type["session_scheduled"].id) if MENTEE in str(m["To"]))
    assert "Tue 04 Mar 2031 16:00 CET" in scheduled_for_ada["Subject"]  # Berlin time for Ada

    # Message-IDs are unique per delivery and stable (derived from the delivery key).
    ids = [m["Message-ID"] for m in box.messages]
    assert len(set(ids)) == len(ids) and all(re.match(r"^<[0-9a-f]{40}@mentorship\.local>$", i) for i in ids)

    # In-app: the contact switched in-app off; Ada has one inbox item per event that concerns her.
    ada = token(MENTEE, "mentee")
    inbox_count = sum(1 for _, who in cases if MENTEE in who)
    await eventually(lambda: _unread(service, ada, inbox_count))
    assert (await service.http.get(f"/people/{CONTACT}/inbox", headers=token(CONTACT))).json()["items"] == []
    assert (await service.http.get(f"/people/{MENTEE}/inbox", headers=token(MENTOR, "mentor"))).status_code == 403

    seen: list[str] = []
    cursor = None
    while True:
        params = {"limit": 5, **({"cursor": cursor} if cursor else {})}
        page = (await service.http.get(f"/people/{MENTEE}/inbox", params=params, headers=ada)).json()
        seen += [i["item_id"] for i in page["items"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert len(seen) == len(set(seen)) == inbox_count
    r = await service.http.post(f"/people/{MENTEE}/inbox/{seen[0]}/read", headers=ada)
    assert r.status_code == 200 and r.json()["unread_count"] == inbox_count - 1
    assert (await service.http.post(f"/people/{MENTEE}/inbox/nope/read", headers=ada)).status_code == 404
    r = await service.http.post(f"/people/{MENTEE}/inbox/read-all", headers=ada)
    assert r.json()["marked"] == inbox_count - 1
    r = await service.http.get(f"/people/{MENTEE}/inbox", params={"unread_only": True}, headers=ada)
    assert r.json() == {"items": [], "unread_count": 0, "next_cursor": None}


async def test_channel_and_category_switched_off_are_not_used(service, smtp):
    box, _ = smtp
    await service.send(person(MENTEE, "Ada", prefs={"categories": {"milestones": False}}))
    await service.send(person(MENTOR, "Grace", roles=("mentor",), prefs={"channels": {"email": False}}))
    await known(service, MENTEE, MENTOR)
    now = service.runtime.clock.now()
    milestone = await service.send(MilestoneReached(**M, milestone_id="x", title="T", reached_at=now))
    nudge = await service.send(CheckInOverdue(**M, cadence="weekly", due_since=now))
    await eventually(lambda: _count(box, 1))
    await service.delivery(f"{nudge.id}:{MENTOR}:in_app", state="delivered")
    assert [str(m["To"]) for m in box.for_event(nudge.id)] == ["Ada <ada@example.org>"]
    assert box.for_event(milestone.id) == []
    skipped = (
        await service.http.get(
            "/deliveries", params={"source_event_id": milestone.id, "state": "skipped"}, headers=token(ADMIN, "admin")
        )
    ).json()
    reasons = {(d["recipient_id"], d["channel"]): d["reason"] for d in skipped}
    assert reasons[(MENTEE, "email")] == "category milestones switched off by the recipient"
    assert reasons[(MENTOR, "email")] == "channel email switched off by the recipient"
    milestone_in_app = await service.delivery(f"{milestone.id}:{MENTOR}:in_app", state="delivered")
    assert milestone_in_app["category"] == "milestones"


async def _count(box, n: int) -> bool:
    return len(box.messages) >= n


async def _unread(service, headers, n: int) -> bool:
    r = await service.http.get(f"/people/{MENTEE}/inbox/unread-count", headers=headers)
    return r.json()["unread_count"] == n
