"""Nothing twice (duplicates, full replay), quiet hours held then released, bad input recorded."""

from __future__ import annotations

from datetime import timedelta

import pytest

from mentorship_contracts import Topic, decode
from mentorship_contracts.matching import Agreement, MentorshipRequestAccepted, MentorshipStarted
from mentorship_contracts.profile import ProfileErased
from mentorship_contracts.scheduling import CheckInOverdue, MilestoneReached, SessionReminderDue
from mentorship_kit.consumer import PROCESSED
from notification_service.entrypoints.app import create
from tests.integration.notification.conftest import known, notification_settings, person
from tests.support.kafka import eventually, read_topic
from tests.support.processes import token

pytestmark = pytest.mark.integration

MENTEE, MENTOR = "ada", "grace"
M = dict(mentorship_id="m-1", mentee_id=MENTEE, mentor_id=MENTOR)


async def test_duplicate_delivery_and_full_replay_send_nothing_twice(service, smtp, settings_for, prefix):
    box, port = smtp
    await service.send(person(MENTEE, "Ada"))
    await service.send(person(MENTOR, "Grace", roles=("mentor",)))
    await known(service, MENTEE, MENTOR)
    now = service.runtime.clock.now()
    accepted = await service.send(MentorshipRequestAccepted(**M))
    await service.resend(accepted)  # the broker delivers it again
    await service.resend(accepted)
    milestone = await service.send(MilestoneReached(**M, milestone_id="ms", title="T", reached_at=now))
    await eventually(lambda: _at_least(box, 3))
    await service.delivery(f"{milestone.id}:{MENTOR}:in_app", state="delivered")
    assert len(box.for_event(accepted.id)) == 1

    # Full replay: a new consumer group reads every input topic from offset zero, and the kit's
    # processed-event markers are gone, so only the delivery keys stand between us and duplicates.
    database = service.runtime.settings.database_name
    await service.runtime.stop()
    replay = create(
        notification_settings(settings_for, port, service_name="notification-replay", mongodb_database=database)
    )
    await replay.state.runtime.db[PROCESSED].delete_many({})
    await replay.state.runtime.start()
    try:
        sentinel = await service.send(MentorshipStarted(**M, agreement=Agreement(), started_at=now))
        nudge = await service.send(CheckInOverdue(**M, cadence="weekly", due_since=now))
        await eventually(lambda: _at_least(box, 3 + 4))
        deliveries = replay.state.notifications.deliveries
        for event in (sentinel, nudge):
            for pid in (MENTEE, MENTOR):
                await eventually(lambda e=event, p=pid: _state(deliveries, f"{e.id}:{p}:in_app", "delivered"))
        assert len(box.messages) == 7
        assert len(box.for_event(accepted.id)) == 1 and len(box.for_event(milestone.id)) == 2
        items = await replay.state.notifications.inbox.page(MENTEE, limit=100, after=None, unread_only=False)
        assert len(items) == 4  # accepted, milestone, started, nudge: each once
        # The replay really re-read every old event: a mark each for accepted, milestone, started and
        # nudge (the profiles come from profile.state, a table: no marks). Marks are written in bulk
        # after a batch's handlers, so a moment after the deliveries.
        processed = replay.state.runtime.db[PROCESSED]
        await eventually(lambda: _count_is(processed, 4))
    finally:
        await replay.state.runtime.stop()
        # the fixture's stop() runs on an already stopped runtime
        service.runtime.started = False


async def test_quiet_hours_hold_a_message_until_they_end_but_not_an_imminent_reminder(service, smtp):
    box, _ = smtp
    now = service.runtime.clock.now()
    quiet = {"start": (now - timedelta(hours=1)).strftime("%H:%M"), "end": (now + timedelta(hours=1)).strftime("%H:%M")}
    await service.send(person(MENTEE, "Ada", "UTC", prefs={"quiet_hours": quiet}))
    await service.send(person(MENTOR, "Grace", roles=("mentor",)))
    await known(service, MENTEE, MENTOR)

    milestone = await service.send(MilestoneReached(**M, milestone_id="ms", title="Talk", reached_at=now))
    reminder = await service.send(
        SessionReminderDue(
            **M, session_id="s", ical_uid="u", start=now + timedelta(minutes=20), duration_minutes=30, offset_minutes=20
        )
    )
    held = await service.delivery(f"{milestone.id}:{MENTEE}:email", state="held")
    await service.delivery(f"{milestone.id}:{MENTOR}:email", state="delivered")  # no quiet hours for Grace
    await service.delivery(f"{reminder.id}:{MENTEE}:email", state="delivered")  # urgent: not held
    assert held["reason"] == "quiet hours" and held["due_at"] > now
    assert [str(m["To"]) for m in box.for_event(milestone.id)] == ["Grace <grace@example.org>"]
    assert (await service.http.get(f"/people/{MENTEE}/inbox/unread-count", headers=token(MENTEE))).json() == {
        "unread_count": 1
    }  # only the reminder

    service.runtime.clock.set(held["due_at"] - timedelta(seconds=1))
    await service.fire_timers()
    assert (await service.notifications.deliveries.get(held["_id"]))["state"] == "held"

    service.runtime.clock.set(held["due_at"] + timedelta(seconds=1))
    await service.fire_timers()
    released = await service.delivery(held["_id"], state="delivered")
    assert [a["outcome"] for a in released["attempts"]] == ["delivered"]
    assert len(box.for_event(milestone.id)) == 2
    await service.delivery(f"{milestone.id}:{MENTEE}:in_app", state="delivered")


async def test_bad_input_is_recorded_as_failed_and_the_next_message_flows(service, smtp, infra, prefix):
    box, _ = smtp
    box.refuse.add("bounce@example.org")
    await service.send(person(MENTEE, "Ada"))
    await service.send(person(MENTOR, "Grace", roles=("mentor",)))
    await service.send(person("bounce", "Bo", roles=("mentor",)))
    await service.send(person("gone", "Gone", roles=("mentor",)))
    await known(service, MENTEE, MENTOR, "bounce", "gone")
    await service.send(ProfileErased(profile_id="gone"))
    await eventually(lambda: _erased(service, "gone"))
    now = service.runtime.clock.now()

    unknown = await service.send(MentorshipRequestAccepted(mentorship_id="m-2", mentee_id="nobody", mentor_id=MENTOR))
    erased = await service.send(MentorshipRequestAccepted(mentorship_id="m-3", mentee_id="gone", mentor_id=MENTOR))
    refused = await service.send(
        CheckInOverdue(mentorship_id="m-4", mentee_id="x", mentor_id="bounce", cadence="weekly", due_since=now)
    )
    service.notifications.renderer.templates = {
        **service.notifications.renderer.templates,
        "milestone_reached": {"subject": "{{ e.no_such_field }}", "text": "", "html": "", "in_app": ""},
    }
    broken = await service.send(MilestoneReached(**M, milestone_id="ms", title="T", reached_at=now))
    fine = await service.send(MentorshipRequestAccepted(**M))

    await eventually(lambda: _at_least(box, 1))
    await service.delivery(f"{fine.id}:{MENTEE}:email", state="delivered")
    # Never-known people ("nobody", "x") are held for the contact book first; past the grace
    # period they fail as unknown recipients.
    await service.delivery(f"{unknown.id}:nobody:none", state="waiting_for_contact")
    service.runtime.clock.advance(timedelta(seconds=service.runtime.settings.contact_wait_seconds + 1))
    await service.fire_timers()
    d = await service.delivery(f"{unknown.id}:nobody:none", state="failed")
    assert d["reason"] == "unknown recipient"
    d = await service.delivery(f"{erased.id}:gone:none", state="failed")
    assert d["reason"] == "recipient erased"
    d = await service.delivery(f"{refused.id}:bounce:email", state="failed")
    assert "refused the recipient (550)" in d["reason"] and d["attempt_count"] == 1  # no retry storm
    await service.delivery(f"{refused.id}:bounce:in_app", state="delivered")
    d = await service.delivery(f"{broken.id}:{MENTEE}:email", state="failed")
    assert "template milestone_reached.subject failed" in d["reason"]
    assert [str(m["To"]) for m in box.messages] == ["Ada <ada@example.org>"]

    failed = await read_topic(infra.kafka_bootstrap, f"{prefix}{Topic.NOTIFICATION}", want=11, timeout=20)
    events = [decode(r.value) for r in failed]
    reasons = {
        (e.data.recipient_id, e.data.channel): e.data.reason for e in events if e.type.endswith("notification_failed")
    }
    assert reasons[("nobody", "none")] == "unknown recipient"
    assert reasons[("gone", "none")] == "recipient erased"
    assert "550" in reasons[("bounce", "email")]
    assert (MENTEE, "email") in reasons and (MENTOR, "in_app") in reasons  # template failure, every channel
    assert all(r.key == decode(r.value).subject.encode() for r in failed)  # keyed by recipient
    admin_log = (await service.http.get("/deliveries", params={"state": "failed"}, headers=token("a", "admin"))).json()
    assert {d["reason"] for d in admin_log} >= {"unknown recipient", "recipient erased"}
    assert (await service.http.get("/deliveries", headers=token(MENTEE))).status_code == 403


async def _at_least(box, n: int) -> bool:
    return len(box.messages) >= n


async def _state(deliveries, delivery_id: str, state: str) -> bool:
    doc = await deliveries.get(delivery_id)
    return bool(doc and doc["state"] == state)


async def _erased(service, pid: str) -> bool:
    doc = await service.notifications.contacts.get(pid)
    return bool(doc and doc.get("erased"))


async def _count_is(collection, n: int) -> bool:
    return await collection.count_documents({}) == n
