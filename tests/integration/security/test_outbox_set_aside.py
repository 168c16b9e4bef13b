"""An outbox entry that can never be published is set aside, on the real broker and store.

Seen on main: an accepted event of 1.1 MB was refused by the broker; the relay retried the whole
document's outbox on every pass, re-publishing the entries before it (27 copies seen) and never
the ones after it.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer

from mentorship_contracts import Envelope, Topic, decode
from mentorship_contracts.profile import ProfileRegistered, ProfileSnapshot
from mentorship_kit.metrics import REGISTRY
from mentorship_kit.outbox import DEAD, OutboxRelay, new_document, outbox_entries
from mentorship_kit.runtime import ServiceRuntime
from mentorship_kit.settings import ServiceSettings
from tests.support.kafka import read_topic

pytestmark = pytest.mark.integration


def registered(pid: str) -> Envelope[Any]:
    profile = ProfileSnapshot(profile_id=pid, display_name="Ada", email=f"{pid}@example.org", roles=["mentee"])
    return Envelope.wrap(ProfileRegistered(profile_id=pid, profile=profile), source="test")


def oversized(entry: dict[str, Any], size: int) -> dict[str, Any]:
    """The entry with a body far past what travels (planted directly: the use cases refuse such events)."""
    body = json.loads(entry["body"])
    body["data"]["padding"] = "x" * size
    return {**entry, "body": json.dumps(body)}


def set_aside_count(service: str) -> float:
    total = 0.0
    for metric in REGISTRY.collect():
        if metric.name == "outbox_set_aside":
            total += sum(
                s.value for s in metric.samples if s.name.endswith("_total") and s.labels["service"] == service
            )
    return total


async def relay_with(rt: ServiceRuntime, producer: AIOKafkaProducer, service: str, renew=None) -> OutboxRelay:
    return OutboxRelay(rt.db, ["things"], producer, rt.topics, rt.clock, service=service, renew_producer=renew)


@pytest.mark.parametrize("refused_by", ["client", "broker"])
async def test_an_entry_that_can_never_be_published_is_set_aside_and_the_next_one_goes_out_once(
    settings_for, infra, prefix, refused_by
):
    service = f"kit-set-aside-{refused_by}"
    rt = ServiceRuntime(settings_for(ServiceSettings, service_name=service))
    rt.outbox_collection("things")
    rt.produces(Topic.PROFILE)
    await rt.start()
    await rt.relay.stop()  # this test drives its own relay passes
    # "client": the producer refuses a record above its max_request_size (1 MiB) before sending;
    # "broker": a producer allowing 4 MiB sends it and the broker refuses it (message.max.bytes).
    # After a broker refusal the relay renews its producer (an idempotent producer's sequence for
    # the partition is broken for good): the record after the refused one then goes out.
    own: list[AIOKafkaProducer] = []

    async def lenient_producer() -> AIOKafkaProducer:
        fresh = AIOKafkaProducer(
            bootstrap_servers=infra.kafka_bootstrap,
            acks="all",
            enable_idempotence=True,
            max_request_size=4 * 1024 * 1024,
        )
        await fresh.start()
        own.append(fresh)
        return fresh

    producer = rt.producer if refused_by == "client" else await lenient_producer()
    try:
        before, big, after = registered("p-before"), registered("p-big"), registered("p-after")
        entries = outbox_entries([before, big, after])
        entries[1] = oversized(entries[1], 1_500_000)
        doc = new_document({"_id": "agg"}, [])
        doc.update({"outbox": entries, "outbox_seq": 3, "outbox_pending": True})
        await rt.db["things"].insert_one(doc)
        counted = set_aside_count(service)

        relay = await relay_with(rt, producer, service, renew=lenient_producer)
        assert await relay.drain() == 3  # two published, one set aside
        assert await relay.drain() == 0  # nothing repeats

        stored = await rt.db["things"].find_one({"_id": "agg"})
        assert stored["outbox"] == [] and stored["outbox_pending"] is False
        [dead] = stored[DEAD]
        assert dead["id"] == big.id and dead["type"] == big.type and dead["topic"] == str(Topic.PROFILE)
        assert "TooLarge" in dead["reason"] and dead["size"] > 1_500_000 and dead["set_aside_at"]
        assert set_aside_count(service) == counted + 1
        assert len(own) == (0 if refused_by == "client" else 2)  # renewed after the broker's refusal

        records = await read_topic(infra.kafka_bootstrap, f"{prefix}{Topic.PROFILE}", want=3, timeout=5)
        assert [decode(r.value).id for r in records] == [before.id, after.id]  # each once, in order
    finally:
        for made in own:
            await made.stop()
        await rt.stop()


async def test_a_malformed_entry_is_set_aside_too(settings_for, infra, prefix):
    rt = ServiceRuntime(settings_for(ServiceSettings, service_name="kit-set-aside-malformed"))
    rt.outbox_collection("things")
    rt.produces(Topic.PROFILE)
    await rt.start()
    await rt.relay.stop()
    try:
        good = registered("p-good")
        entries = [{"id": "broken", "topic": str(Topic.PROFILE)}, *outbox_entries([good])]
        await rt.db["things"].insert_one({"_id": "agg", "outbox": entries, "outbox_seq": 2, "outbox_pending": True})
        relay = await relay_with(rt, rt.producer, "kit-set-aside-malformed")
        assert await relay.drain() == 2
        stored = await rt.db["things"].find_one({"_id": "agg"})
        assert stored["outbox"] == [] and [d["id"] for d in stored[DEAD]] == ["broken"]
        records = await read_topic(infra.kafka_bootstrap, f"{prefix}{Topic.PROFILE}", want=1, timeout=5)
        assert [decode(r.value).id for r in records] == [good.id]
    finally:
        await rt.stop()
