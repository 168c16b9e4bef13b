"""The kit's reliability rules on the real broker and store."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from mentorship_contracts import Envelope, Topic, decode, encode
from mentorship_contracts.profile import ProfileFacts, ProfileRegisteredV2
from mentorship_kit.outbox import OutboxRelay, new_document
from mentorship_kit.runtime import ServiceRuntime
from mentorship_kit.settings import ServiceSettings
from tests.support.kafka import eventually, produce, read_topic

pytestmark = pytest.mark.integration


def registered(pid: str) -> Envelope[Any]:
    return Envelope.wrap(ProfileRegisteredV2(profile_id=pid, facts=ProfileFacts(roles=["mentee"])), source="test")


class CountingService:
    """A consumer whose effect is deliberately NOT idempotent ($inc), to see duplicates."""

    def __init__(self, settings: ServiceSettings, fail_names: set[str] = frozenset()) -> None:  # type: ignore[assignment]
        self.runtime = ServiceRuntime(settings)
        self.fail_names = fail_names
        self.attempts: dict[str, int] = {}
        self.runtime.consume("counter", Topic.PROFILE, {ProfileRegisteredV2: self.on_registered})

    async def on_registered(self, event: Envelope[ProfileRegisteredV2]) -> None:
        name = event.data.profile_id
        self.attempts[name] = self.attempts.get(name, 0) + 1
        if name in self.fail_names:
            raise RuntimeError(f"cannot handle {name}")
        await self.runtime.db["effects"].update_one({"_id": event.subject}, {"$inc": {"n": 1}}, upsert=True)

    async def count(self, pid: str) -> int:
        doc = await self.runtime.db["effects"].find_one({"_id": pid})
        return doc["n"] if doc else 0


async def test_a_duplicate_delivery_has_one_effect(settings_for, infra, prefix):
    svc = CountingService(settings_for(ServiceSettings, service_name="kit-dup"))
    await svc.runtime.start()
    try:
        env = registered("p-dup")
        for _ in range(3):
            await produce(infra.kafka_bootstrap, f"{prefix}{Topic.PROFILE}", encode(env), key=b"p-dup")
        await produce(infra.kafka_bootstrap, f"{prefix}{Topic.PROFILE}", encode(registered("p-next")), key=b"p-dup")
        await eventually(lambda: svc.count("p-next"))
        assert await svc.count("p-dup") == 1
    finally:
        await svc.runtime.stop()


async def test_poison_goes_to_dead_letter_and_the_partition_moves_on(settings_for, infra, prefix):
    svc = CountingService(settings_for(ServiceSettings, service_name="kit-dlt"), fail_names={"p-bad"})
    await svc.runtime.start()
    topic = f"{prefix}{Topic.PROFILE}"
    try:
        bad = registered("p-bad")
        await produce(infra.kafka_bootstrap, topic, encode(bad), key=b"same-key", headers=[("trace", b"abc")])
        await produce(infra.kafka_bootstrap, topic, b"\x00not json at all", key=b"same-key")
        await produce(infra.kafka_bootstrap, topic, encode(registered("p-good")), key=b"same-key")
        await eventually(lambda: svc.count("p-good"))
        assert svc.attempts["p-bad"] == svc.runtime.retry.max_attempts  # bounded retries

        dead = await read_topic(infra.kafka_bootstrap, f"{topic}.dlt", want=2)
        assert len(dead) == 2
        first, second = dead
        headers = {k: v for k, v in first.headers}
        assert first.value == encode(bad) and first.key == b"same-key"
        assert headers["trace"] == b"abc"  # original headers kept
        assert b"cannot handle p-bad" in headers["dlt-error"]
        assert headers["dlt-attempts"] == str(svc.runtime.retry.max_attempts).encode()
        assert headers["dlt-original-topic"] == topic.encode()
        second_headers = {k: v for k, v in second.headers}
        assert second.value == b"\x00not json at all"
        assert b"not JSON" in second_headers["dlt-error"]
        assert second_headers["dlt-attempts"] == b"0"  # undecodable: no retry can fix it
    finally:
        await svc.runtime.stop()


class CrashAfterPublish(OutboxRelay):
    """A relay that dies after the broker has the events but before it marks them published."""

    async def _mark_published_many(self, collection: str, marks: Any) -> None:
        raise ConnectionError("process killed")


async def test_relay_restarted_between_publish_and_mark_loses_nothing_and_doubles_nothing(settings_for, infra, prefix):
    producer_rt = ServiceRuntime(settings_for(ServiceSettings, service_name="kit-relay-src"))
    producer_rt.outbox_collection("things")
    producer_rt.produces(Topic.PROFILE)
    consumer = CountingService(settings_for(ServiceSettings, service_name="kit-relay-dst"))
    await producer_rt.start()
    await producer_rt.relay.stop()  # we drive relays by hand below
    await consumer.runtime.start()
    try:
        events = [registered("p-r1"), registered("p-r2")]
        await producer_rt.db["things"].insert_one(new_document({"_id": "agg-1"}, events[:1]))
        await producer_rt.db["things"].insert_one(new_document({"_id": "agg-2"}, events[1:]))

        crashing = CrashAfterPublish(
            producer_rt.db,
            ["things"],
            producer_rt.producer,
            producer_rt.topics,
            producer_rt.clock,
            service="kit-relay-src",
            lease_seconds=0.2,
        )
        with pytest.raises(ConnectionError):
            await crashing.drain()
        await asyncio.sleep(0.3)  # the crashed relay's lease runs out
        restarted = OutboxRelay(
            producer_rt.db,
            ["things"],
            producer_rt.producer,
            producer_rt.topics,
            producer_rt.clock,
            service="kit-relay-src",
        )
        assert await restarted.drain() == 2
        assert await restarted.drain() == 0

        await eventually(lambda: svc_counts(consumer, ["p-r1", "p-r2"]))
        records = await read_topic(infra.kafka_bootstrap, f"{prefix}{Topic.PROFILE}", want=3)
        ids = [decode(r.value).id for r in records]
        assert ids.count(events[0].id) == 2  # re-published after the crash...
        assert await consumer.count("p-r1") == 1  # ...absorbed by the idempotent consumer
        assert await consumer.count("p-r2") == 1
        assert all(r.key == decode(r.value).subject.encode() for r in records)
        doc = await producer_rt.db["things"].find_one({"_id": "agg-1"})
        assert doc["outbox"] == [] and doc["outbox_pending"] is False
    finally:
        await consumer.runtime.stop()
        await producer_rt.stop()


async def svc_counts(svc: CountingService, pids: list[str]) -> bool:
    return all([await svc.count(p) for p in pids])


async def test_event_appended_while_relay_publishes_is_kept_and_published_next(settings_for, infra, prefix):
    rt = ServiceRuntime(settings_for(ServiceSettings, service_name="kit-relay-race"))
    rt.outbox_collection("things")
    rt.produces(Topic.PROFILE)
    await rt.start()
    await rt.relay.stop()
    try:
        first, late = registered("p-a"), registered("p-b")
        await rt.db["things"].insert_one(new_document({"_id": "agg"}, [first]))

        class AppendDuringPublish(OutboxRelay):
            async def _mark_published_many(self, collection, marks):
                from mentorship_kit.outbox import with_events

                await rt.db["things"].update_one({"_id": "agg"}, with_events({"$set": {"x": 1}}, [late]))
                await super()._mark_published_many(collection, marks)

        racing = AppendDuringPublish(rt.db, ["things"], rt.producer, rt.topics, rt.clock, service="t")
        assert await racing._publish("things", await rt.db["things"].find_one({"_id": "agg"})) == 1
        doc = await rt.db["things"].find_one({"_id": "agg"})
        assert [e["id"] for e in doc["outbox"]] == [late.id] and doc["outbox_pending"] is True

        plain = OutboxRelay(rt.db, ["things"], rt.producer, rt.topics, rt.clock, service="t")
        assert await plain.drain() == 1
        records = await read_topic(infra.kafka_bootstrap, f"{prefix}{Topic.PROFILE}", want=2)
        assert [decode(r.value).id for r in records] == [first.id, late.id]
    finally:
        await rt.stop()


async def test_events_swapped_in_while_relay_publishes_are_not_lost(settings_for, infra, prefix):
    """Erasure replaces unpublished events (same count as before); the relay must not wipe them."""
    rt = ServiceRuntime(settings_for(ServiceSettings, service_name="kit-relay-swap"))
    rt.outbox_collection("things")
    rt.produces(Topic.PROFILE)
    await rt.start()
    await rt.relay.stop()
    try:
        from mentorship_kit.outbox import with_replaced_events

        first, erased = registered("p-s1"), registered("p-s2")
        await rt.db["things"].insert_one(new_document({"_id": "agg"}, [first]))

        class SwapDuringPublish(OutboxRelay):
            async def _mark_published_many(self, collection, marks):
                await rt.db["things"].update_one({"_id": "agg"}, with_replaced_events({"$set": {"x": 1}}, [erased]))
                await super()._mark_published_many(collection, marks)

        racing = SwapDuringPublish(rt.db, ["things"], rt.producer, rt.topics, rt.clock, service="t")
        await racing._publish("things", await rt.db["things"].find_one({"_id": "agg"}))
        doc = await rt.db["things"].find_one({"_id": "agg"})
        assert [e["id"] for e in doc["outbox"]] == [erased.id] and doc["outbox_pending"] is True
    finally:
        await rt.stop()
