"""Notification's consumer registration under FastStream's TestKafkaBroker: envelopes published in
memory on profile's and scheduling's topics reach the use cases (no broker, no store)."""

from __future__ import annotations

from faststream.kafka import TestKafkaBroker

from mentorship_contracts import Envelope, Topic, encode
from mentorship_contracts.profile import ProfileState
from notification_service.entrypoints.consumers import register_consumers
from notification_service.settings import Settings
from tests.unit.kit_fakes import runtime_without_store
from tests.unit.notification.test_notification_use_cases import milestone, snapshot, world


async def test_published_envelopes_reach_the_use_cases():
    runtime = runtime_without_store(Settings(kafka_topic_prefix="unit."))
    w = world()
    register_consumers(runtime, w.notifications)
    people = [
        Envelope.wrap(ProfileState(profile_id=p.profile_id, version=1, profile=p), source="profile")
        for p in (snapshot("ada", "Ada"), snapshot("grace", "Grace"))
    ]
    event = milestone()
    try:
        async with TestKafkaBroker(runtime.broker) as broker:
            for env in people:
                await broker.publish(encode(env), topic=runtime.topics(Topic.PROFILE_STATE), key=env.subject.encode())
            await broker.publish(encode(event), topic=runtime.topics(Topic.SCHEDULING), key=b"m1")
            await broker.publish(encode(event), topic=runtime.topics(Topic.SCHEDULING), key=b"m1")  # again
    finally:
        await runtime.client.close()
    assert set(w.contacts.docs) == {"ada", "grace"}
    assert sorted(r for _, r in w.mailer.sent) == ["ada@example.org", "grace@example.org"]
    assert {c.name for c in runtime.consumers} == {"contact-book", "contacts", "matching-events", "scheduling-events"}
