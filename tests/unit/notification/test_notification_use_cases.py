"""Notification use cases against in-memory ports: from an event to delivered, held, waiting,
retried or failed messages, each outcome with its event, and nothing sent twice."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from mentorship_contracts import Envelope
from mentorship_contracts.notification import NotificationDelivered, NotificationFailed, WebhookEndpointDisabled
from mentorship_contracts.profile import NotificationPreferences, ProfileSnapshot
from mentorship_contracts.scheduling import MilestoneReached, MilestoneReachedV2
from notification_service.application import RELEASE_TIMER, RETRY_TIMER, NotificationUseCases
from notification_service.settings import Settings
from tests.unit.kit_fakes import FakeContext
from tests.unit.notification.fakes import (
    FakeContacts,
    FakeDeliveries,
    FakeEndpoints,
    FakeInbox,
    FakeMailer,
    FakeSessionDurations,
    FakeWaits,
    FakeWebhooks,
)

NOW = datetime(2031, 6, 10, 12, 0, tzinfo=UTC)


@dataclass
class World:
    fake: FakeContext
    contacts: FakeContacts
    deliveries: FakeDeliveries
    inbox: FakeInbox
    endpoints: FakeEndpoints
    mailer: FakeMailer
    webhooks: FakeWebhooks
    notifications: NotificationUseCases


def world(**settings: Any) -> World:
    fake = FakeContext("notification", now=NOW)
    contacts, deliveries, inbox, endpoints = FakeContacts(), FakeDeliveries(), FakeInbox(), FakeEndpoints()
    mailer, webhooks = FakeMailer(), FakeWebhooks()
    notifications = NotificationUseCases(
        fake.ctx,
        settings=Settings(**{"delivery_max_attempts": 3, **settings}),
        contacts=contacts,
        waits=FakeWaits(),
        deliveries=deliveries,
        inbox=inbox,
        endpoints=endpoints,
        sessions=FakeSessionDurations(),
        mailer=mailer,
        webhooks=webhooks,
    )  # type: ignore[arg-type]
    return World(fake, contacts, deliveries, inbox, endpoints, mailer, webhooks, notifications)


def snapshot(pid: str, name: str, **prefs: Any) -> ProfileSnapshot:
    return ProfileSnapshot(
        profile_id=pid,
        display_name=name,
        email=f"{pid}@example.org",
        roles=["mentee"],
        notification_preferences=NotificationPreferences(**prefs),
    )


def milestone(n: int = 1) -> Envelope[Any]:
    return Envelope.wrap(
        MilestoneReached(
            mentorship_id="m1",
            milestone_id=f"ms{n}",
            title="Talk given",
            mentor_id="grace",
            mentee_id="ada",
            reached_at=NOW,
        ),
        source="scheduling",
        time=NOW,
    )


async def known(w: World, *people: ProfileSnapshot) -> None:
    for p in people:
        await w.notifications.contact_changed(p, NOW)


async def test_an_event_becomes_an_email_and_an_inbox_item_per_person_once():
    w = world()
    await known(w, snapshot("ada", "Ada"), snapshot("grace", "Grace"))
    event = milestone()
    await w.notifications.handle(event)
    await w.notifications.handle(event)  # redelivered: the delivery keys absorb it
    assert sorted(r for _, r in w.mailer.sent) == ["ada@example.org", "grace@example.org"]
    assert {i["recipient_id"] for i in w.inbox.items.values()} == {"ada", "grace"}
    delivered = [e for e in w.deliveries.outbox if isinstance(e.data, NotificationDelivered)]
    assert len(delivered) == 4
    assert {(e.causationid, e.correlationid, e.source) for e in delivered} == {
        (event.id, event.correlationid, "notification")
    }
    assert {d["state"] for d in w.deliveries.docs.values()} == {"delivered"}


async def test_quiet_hours_hold_the_message_until_a_timer_releases_it():
    w = world()
    await known(w, snapshot("ada", "Ada", quiet_hours={"start": "11:00", "end": "14:00"}), snapshot("grace", "Grace"))
    await w.notifications.handle(milestone())
    held = w.deliveries.of("ada")["email"]
    assert held["state"] == "held" and held["due_at"] == NOW.replace(hour=14)
    [timer] = [t for t in w.fake.timers.pending(RELEASE_TIMER) if t["payload"]["delivery_id"] == held["_id"]]
    assert "ada@example.org" not in [r for _, r in w.mailer.sent]
    await w.notifications.on_timer(timer, NOW.replace(hour=14))
    assert w.deliveries.of("ada")["email"]["state"] == "delivered"
    assert "ada@example.org" in [r for _, r in w.mailer.sent]


async def test_a_recipient_not_yet_known_is_waited_for_then_served():
    w = world()
    await known(w, snapshot("grace", "Grace"))
    await w.notifications.handle(milestone())
    assert w.deliveries.of("ada")["none"]["state"] == "waiting_for_contact"
    await known(w, snapshot("ada", "Ada"))  # the profile event arrives: the held message is released
    assert w.deliveries.of("ada")["none"]["state"] == "released"
    assert w.deliveries.of("ada")["email"]["state"] == "delivered"


async def test_without_a_wait_an_unknown_recipient_fails_with_its_event():
    w = world(contact_wait_seconds=0)
    await known(w, snapshot("grace", "Grace"))
    event = milestone()
    await w.notifications.handle(event)
    [failed] = [e for e in w.deliveries.outbox if isinstance(e.data, NotificationFailed)]
    assert failed.data.recipient_id == "ada" and failed.data.reason == "unknown recipient" and failed.data.permanent
    assert failed.causationid == event.id


async def test_a_refused_address_fails_and_a_transient_error_is_retried():
    w = world()
    await known(w, snapshot("ada", "Ada"), snapshot("grace", "Grace"))
    w.mailer.refuse.add("ada@example.org")
    await w.notifications.handle(milestone())
    assert w.deliveries.of("ada")["email"]["state"] == "failed"
    # The server's answer quoted her address; the event (which outlives an erase) does not.
    [failed] = [e for e in w.deliveries.outbox if isinstance(e.data, NotificationFailed)]
    assert failed.data.reason == "550 mailbox unavailable: <address>" and failed.data.permanent

    async def flaky(message: Any, recipient: str) -> None:
        raise ConnectionError("smtp went away")

    w.mailer.send = flaky  # type: ignore[method-assign]
    await w.notifications.handle(milestone(2))
    retrying = [d for d in w.deliveries.docs.values() if d["state"] == "retrying"]
    assert {d["recipient_id"] for d in retrying} == {"ada", "grace"}
    assert {t["payload"]["delivery_id"] for t in w.fake.timers.pending(RETRY_TIMER)} == {d["_id"] for d in retrying}


async def test_a_failing_webhook_endpoint_is_disabled_once_with_its_event():
    w = world(webhook_disable_after_failures=2)
    await known(w, snapshot("ada", "Ada"), snapshot("grace", "Grace"))
    await w.endpoints.add(
        {
            "_id": "wh_1",
            "url": "https://hooks.example.org/x",
            "secret": "s",
            "enabled": True,
            "event_types": ["*"],
            "consecutive_failures": 0,
        }
    )
    w.webhooks.statuses = [404, 404]  # permanent answers
    await w.notifications.handle(milestone(1))
    await w.notifications.handle(milestone(2))
    [disabled] = [e for e in w.endpoints.outbox if isinstance(e.data, WebhookEndpointDisabled)]
    assert disabled.data.endpoint_id == "wh_1" and not w.endpoints.docs["wh_1"]["enabled"]
    # the v1 milestone is forwarded as v2 (read through the upcaster, its title dropped)
    assert w.webhooks.calls[0]["headers"]["Mentorship-Event-Type"] == MilestoneReachedV2.event_type
    await w.notifications.handle(milestone(3))
    assert len(w.webhooks.calls) == 2  # a disabled endpoint gets nothing more


async def test_erasure_forgets_the_person_everywhere():
    w = world()
    await known(w, snapshot("ada", "Ada", quiet_hours={"start": "11:00", "end": "14:00"}), snapshot("grace", "Grace"))
    await w.notifications.handle(milestone())
    await w.notifications.forget("ada", NOW + timedelta(seconds=1))
    assert w.contacts.docs["ada"] == {"_id": "ada", "erased": True, "as_of": NOW + timedelta(seconds=1)}
    assert w.deliveries.of("ada")["email"]["state"] == "cancelled"
    assert all(d["message"] is None for d in w.deliveries.of("ada").values())
    assert not [i for i in w.inbox.items.values() if i["recipient_id"] == "ada"]


@pytest.mark.parametrize("active", [False, True])
async def test_deactivation_switches_messages_off_and_back_on(active):
    w = world()
    await known(w, snapshot("ada", "Ada"), snapshot("grace", "Grace"))
    await w.notifications.contact_active("ada", active, NOW + timedelta(seconds=1))
    await w.notifications.handle(milestone())
    state = w.deliveries.of("ada")["email"]["state"]
    assert state == ("delivered" if active else "skipped")
