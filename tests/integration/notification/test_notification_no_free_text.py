"""Notification without people's words: the v2 events the producers publish (and v1 events with
text, read as v2) still become emails, in-app items and webhook deliveries; none quotes what
people wrote, emails link to the app where the owning service shows it to those allowed, and a
webhook subscribed to the v1 type of an event receives its v2 (docs/decisions/personal-data-in-events.md)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from mentorship_contracts.matching import IntroductionMade, MentorshipRequestDeclinedV2, MentorshipRequestedV2
from mentorship_contracts.scheduling import MilestoneReached, SessionCancelledV2, SessionScheduledV2
from tests.integration.notification.conftest import known, person
from tests.support.kafka import eventually
from tests.support.processes import token
from tests.support.scan import found_in

pytestmark = pytest.mark.integration

ADMIN = token("admin-1", "admin")
MENTEE, MENTOR, CONTACT = "ada", "grace", "linus"
M = dict(mentorship_id="m-1", mentee_id=MENTEE, mentor_id=MENTOR)
SESSION = dict(**M, session_id="s-1", ical_uid="s-1@mentorship")
WORDS = ("Quillon wants to talk about her debts", "Quillon's first conference talk")


async def _at_least(box: Any, n: int) -> bool:
    return len(box.messages) >= n


async def test_messages_and_webhooks_say_that_there_is_text_and_link_to_it(service, smtp, receiver):
    box, _ = smtp
    for path, types in (("all", ["*"]), ("v1", ["mentorship.matching.mentorship_requested"])):
        r = await service.http.post(
            "/webhooks",
            headers=ADMIN,
            json={"url": receiver.url(path), "secret": receiver.secret, "event_types": types},
        )
        assert r.status_code == 201, r.text
    await service.send(person(MENTEE, "Ada Lovelace"))
    await service.send(person(MENTOR, "Grace Hopper", roles=("mentor",)))
    await service.send(person(CONTACT, "Linus T"))
    await known(service, MENTEE, MENTOR, CONTACT)
    now = service.runtime.clock.now()

    requested = await service.send(MentorshipRequestedV2(**M, has_message=True, expires_at=now + timedelta(days=7)))
    declined = await service.send(MentorshipRequestDeclinedV2(**M, reason_code="other", has_reason=True))
    scheduled = await service.send(
        SessionScheduledV2(
            **SESSION, start=now + timedelta(days=2), duration_minutes=30, has_agenda=True, scheduled_by=MENTEE
        )
    )
    cancelled = await service.send(
        SessionCancelledV2(
            **SESSION, start=now + timedelta(days=2), reason_code="participant_left", cancelled_by="system"
        )
    )
    # v1 events with words, as still on the topic from before v2: read as v2, the words dropped
    intro = await service.send(
        IntroductionMade(
            introduction_id="i-1",
            mentorship_id="m-1",
            introduced_by=MENTOR,
            mentee_id=MENTEE,
            contact_id=CONTACT,
            message=WORDS[0],
        )
    )
    milestone = await service.send(MilestoneReached(**M, milestone_id="ms-1", title=WORDS[1], reached_at=now))
    # request 1, declined 1, scheduled 2, cancelled 2, intro 2, milestone 2
    await eventually(lambda: _at_least(box, 10), timeout=60)

    [request_mail] = box.for_event(requested.id)
    text = request_mail.get_body(("plain",)).get_content()
    assert "Ada Lovelace sent you a mentorship request. They wrote you a message." in text
    assert "http://localhost:8080/mentorships/m-1" in text
    [declined_mail] = box.for_event(declined.id)
    assert (
        "They gave a reason: http://localhost:8080/mentorships/m-1" in declined_mail.get_body(("plain",)).get_content()
    )
    scheduled_mail = box.for_event(scheduled.id)[0]
    assert "It has an agenda: http://localhost:8080/sessions/s-1" in scheduled_mail.get_body(("plain",)).get_content()
    cancelled_mail = box.for_event(cancelled.id)[0]
    assert "the other participant left the platform" in cancelled_mail.get_body(("plain",)).get_content()
    intro_mail = next(m for m in box.for_event(intro.id) if CONTACT in str(m["To"]))
    intro_text = intro_mail.get_body(("plain",)).get_content()
    assert "They wrote a note about it." in intro_text and "/introductions/i-1" in intro_text
    milestone_mail = box.for_event(milestone.id)[0]
    assert milestone_mail["Subject"] == "A milestone was reached"
    assert all(w not in m.as_string() for m in box.messages for w in WORDS)

    # in-app items too, and nothing the service stores holds the words
    await service.delivery(f"{milestone.id}:{MENTEE}:in_app", state="delivered")
    await service.delivery(f"{intro.id}:{CONTACT}:in_app", state="delivered")
    assert await found_in(service.runtime.db, WORDS) == []

    # webhooks: every event delivered as v2, with flags, without words; a v1 subscription gets the v2
    await eventually(lambda: _calls(receiver, "all", 6), timeout=60)
    bodies = [str(call["body"]) for call in receiver.on("all")]
    assert all(w not in b for b in bodies for w in WORDS)
    assert any('"type":"mentorship.matching.v2.introduction_made"' in b.replace(" ", "") for b in bodies)
    await eventually(lambda: _calls(receiver, "v1", 1), timeout=60)
    [v1_call] = receiver.on("v1")
    assert v1_call["headers"]["mentorship-event-type"] == MentorshipRequestedV2.event_type
    assert v1_call["verified"]


async def _calls(receiver: Any, path: str, n: int) -> bool:
    return len(receiver.on(path)) >= n
