"""A message for a person the contact book does not know yet is held, not lost: released when
their profile arrives (profile events come on their own consumer), failed only after the grace
period; an erased person is never waited for."""

from __future__ import annotations

from datetime import timedelta

import pytest

from mentorship_contracts import Topic, decode
from mentorship_contracts.matching import MentorshipRequestAccepted
from mentorship_contracts.profile import ProfileErased
from mentorship_contracts.scheduling import MilestoneReached
from tests.integration.notification.conftest import known, person
from tests.support.kafka import eventually, read_topic
from tests.support.processes import token

pytestmark = pytest.mark.integration

MENTEE, MENTOR = "ada", "grace"
M = dict(mentorship_id="m-1", mentee_id=MENTEE, mentor_id=MENTOR)
GRACE_PERIOD = timedelta(seconds=600)  # CONTACT_WAIT_SECONDS default


async def test_a_message_for_a_person_not_yet_known_waits_and_is_sent_once_when_they_arrive(
    service, smtp, infra, prefix
):
    box, _ = smtp
    await service.send(person(MENTOR, "Grace", roles=("mentor",)))
    await known(service, MENTOR)
    now = service.runtime.clock.now()

    milestone = await service.send(MilestoneReached(**M, milestone_id="ms", title="T", reached_at=now))
    waiting = await service.delivery(f"{milestone.id}:{MENTEE}:none", state="waiting_for_contact")
    await service.delivery(f"{milestone.id}:{MENTOR}:email", state="delivered")  # Grace is not held up
    assert waiting["wait_until"] >= now + GRACE_PERIOD
    assert [str(m["To"]) for m in box.for_event(milestone.id)] == ["Grace <grace@example.org>"]
    assert await service.notifications.deliveries.get(f"{milestone.id}:{MENTEE}:email") is None
    log = (await service.http.get("/deliveries", params={"recipient_id": MENTEE}, headers=token("a", "admin"))).json()
    assert [(d["channel"], d["state"]) for d in log] == [("none", "waiting_for_contact")]

    # Ada's profile arrives (on the contacts consumer): her message goes out at once, not at the
    # next re-check (the clock does not move here).
    await service.send(person(MENTEE, "Ada"))
    email = await service.delivery(f"{milestone.id}:{MENTEE}:email", state="delivered")
    await service.delivery(f"{milestone.id}:{MENTEE}:in_app", state="delivered")
    assert email["attempt_count"] == 1
    assert (await service.delivery(waiting["_id"]))["state"] == "released"
    assert len(box.to("ada@example.org")) == 1

    # Redelivered event, later re-checks and the grace period passing change nothing.
    await service.resend(milestone)
    fine = await service.send(MentorshipRequestAccepted(**M))
    await service.delivery(f"{fine.id}:{MENTEE}:email", state="delivered")
    service.runtime.clock.advance(GRACE_PERIOD + timedelta(seconds=1))
    await service.fire_timers()
    assert await service.notifications.recover_once() == 0
    assert len(box.to("ada@example.org")) == 2  # the milestone once, the acceptance once
    assert len(box.for_event(milestone.id)) == 2
    assert (await service.delivery(waiting["_id"]))["state"] == "released"

    records = await read_topic(infra.kafka_bootstrap, f"{prefix}{Topic.NOTIFICATION}", want=6, timeout=20)
    events = [decode(r.value) for r in records]
    assert not [e for e in events if e.type.endswith("notification_failed")]
    assert sorted((e.data.recipient_id, e.data.channel) for e in events if e.data.source_event_id == milestone.id) == [
        (MENTEE, "email"),
        (MENTEE, "in_app"),
        (MENTOR, "email"),
        (MENTOR, "in_app"),
    ]


async def test_a_person_never_known_fails_after_the_grace_period_and_an_erased_one_at_once(
    service, smtp, infra, prefix
):
    box, _ = smtp
    accepted = await service.send(MentorshipRequestAccepted(mentorship_id="m-2", mentee_id="nobody", mentor_id=MENTOR))
    waiting = await service.delivery(f"{accepted.id}:nobody:none", state="waiting_for_contact")

    # Re-checks inside the grace period find nobody and keep waiting (clock moved, never slept).
    service.runtime.clock.set(waiting["wait_until"] - timedelta(seconds=1))
    await service.fire_timers()
    doc = await service.notifications.deliveries.get(waiting["_id"])
    assert doc["state"] == "waiting_for_contact" and doc["contact_checks"] >= 1

    service.runtime.clock.advance(timedelta(seconds=2))
    await service.fire_timers()
    failed = await service.delivery(waiting["_id"], state="failed")
    assert failed["reason"] == "unknown recipient"

    # Erasure of someone whose message is waiting: it fails at once, no grace period.
    ghost = await service.send(MentorshipRequestAccepted(mentorship_id="m-3", mentee_id="ghost", mentor_id=MENTOR))
    await service.delivery(f"{ghost.id}:ghost:none", state="waiting_for_contact")
    await service.send(ProfileErased(profile_id="ghost"))
    erased = await service.delivery(f"{ghost.id}:ghost:none", state="failed")
    assert erased["reason"] == "recipient erased" and erased.get("source_event") is None
    # ...and a new message for an erased person is never held.
    later = await service.send(MentorshipRequestAccepted(mentorship_id="m-4", mentee_id="ghost", mentor_id=MENTOR))
    assert (await service.delivery(f"{later.id}:ghost:none", state="failed"))["reason"] == "recipient erased"

    records = await read_topic(infra.kafka_bootstrap, f"{prefix}{Topic.NOTIFICATION}", want=3, timeout=20)
    reasons = {
        e.data.source_event_id: (e.data.reason, e.data.permanent) for e in map(decode, (r.value for r in records))
    }
    assert reasons == {
        accepted.id: ("unknown recipient", True),
        ghost.id: ("recipient erased", True),
        later.id: ("recipient erased", True),
    }
    assert box.messages == []
    await eventually(lambda: _no_waits(service), timeout=10)


async def _no_waits(service) -> bool:
    return await service.notifications.waits.coll.count_documents({}) == 0
