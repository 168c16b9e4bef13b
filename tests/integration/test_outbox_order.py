"""Per-aggregate publication order when one aggregate's events span several outbox documents
(matching keeps one document per mentorship version): version n+1 never goes out before version n,
not when the store returns the documents in another order, not while another replica holds
version n, and not with two relays draining at once."""

from __future__ import annotations

import asyncio
import random
from typing import Any

import pytest

from mentorship_contracts import Envelope, Topic, decode
from mentorship_contracts.profile import ProfileFacts, ProfileRegisteredV2, Skill
from mentorship_kit.outbox import LEASE, OWNER, OutboxRelay, new_document
from mentorship_kit.runtime import ServiceRuntime
from mentorship_kit.settings import ServiceSettings
from tests.support.kafka import read_topic

pytestmark = pytest.mark.integration

VERSIONS = "versions"
ORDER = {VERSIONS: ("agg_id", "seq")}


def version_event(agg: str, seq: int) -> Envelope[Any]:
    # the version travels as the profile's only skill (v2 events carry no names)
    return Envelope.wrap(
        ProfileRegisteredV2(profile_id=agg, facts=ProfileFacts(roles=["mentee"], skills=[Skill(name=f"v{seq}")])),
        source="test",
    )


def version_doc(agg: str, seq: int) -> dict[str, Any]:
    return new_document({"_id": f"{agg}:{seq:06d}", "agg_id": agg, "seq": seq}, [version_event(agg, seq)])


def relay(rt: ServiceRuntime, ordering: dict[str, tuple[str, str]] | None = ORDER) -> OutboxRelay:
    return OutboxRelay(rt.db, [VERSIONS], rt.producer, rt.topics, rt.clock, service="t", ordering=ordering)


class UnevenRelay(OutboxRelay):
    """A replica that sometimes stalls between leasing a batch and sending it (a GC pause, a slow
    broker): meanwhile the other replica finds the versions written after the ones held here."""

    def __init__(self, *args: Any, seed: int, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.rng = random.Random(seed)

    async def _publish_batch(self, collection: str, docs: list[dict[str, Any]]) -> int:
        await asyncio.sleep(self.rng.choice([0, 0, 0.02, 0.05]))
        return await super()._publish_batch(collection, docs)


def versions_per_key(records: list[Any]) -> dict[str, list[int]]:
    """Per aggregate, the versions in the order they first appear on the topic (a re-publication
    after a crash may repeat one; at-least-once allows that, a later one first it does not)."""
    seen: dict[str, list[int]] = {}
    for record in records:
        event = decode(record.value)
        version = int(event.data.facts.skills[0].name.removeprefix("v"))
        if version not in seen.setdefault(event.subject, []):
            seen[event.subject].append(version)
    return seen


@pytest.fixture
async def runtime(settings_for):
    rt = ServiceRuntime(settings_for(ServiceSettings, service_name="kit-outbox-order"))
    rt.outbox_collection(VERSIONS, ordered_by=ORDER[VERSIONS])
    rt.produces(Topic.PROFILE)
    await rt.start()
    await rt.relay.stop()  # the tests drive their own relay passes
    try:
        yield rt
    finally:
        await rt.stop()


async def test_a_later_version_waits_while_another_replica_holds_an_earlier_one(runtime, infra, prefix):
    rt = runtime
    # stored newest first: a relay reading in store order would meet version 3 before version 1
    for seq in (3, 2, 1):
        await rt.db[VERSIONS].insert_one(version_doc("m-1", seq))
    # another replica has leased version 1 and is still publishing it
    held_until = rt.clock.now().replace(year=rt.clock.now().year + 1)
    await rt.db[VERSIONS].update_one({"_id": "m-1:000001"}, {"$set": {LEASE: held_until, OWNER: "other"}})

    assert await relay(rt).drain() == 0  # versions 2 and 3 wait for version 1...
    waiting = await rt.db[VERSIONS].find({"seq": {"$in": [2, 3]}}).to_list()
    assert all(d["outbox_pending"] and d.get(OWNER) is None for d in waiting)  # ...released, not kept leased

    # the other replica is done with version 1 (its lease lapses: it died after publishing nothing)
    await rt.db[VERSIONS].update_one({"_id": "m-1:000001"}, {"$unset": {LEASE: "", OWNER: ""}})
    assert await relay(rt).drain() == 3
    records = await read_topic(infra.kafka_bootstrap, f"{prefix}{Topic.PROFILE}", want=3, timeout=5)
    assert versions_per_key(records) == {"m-1": [1, 2, 3]}


async def test_without_the_ordering_the_store_order_would_win(runtime, infra, prefix):
    """The check above can fail: a relay not told about the versions publishes them as stored."""
    rt = runtime
    for seq in (2, 1):
        await rt.db[VERSIONS].insert_one(version_doc("m-2", seq))
    assert await relay(rt, ordering=None).drain() == 2
    records = await read_topic(infra.kafka_bootstrap, f"{prefix}{Topic.PROFILE}", want=2, timeout=5)
    assert versions_per_key(records) == {"m-2": [2, 1]}


async def test_two_relays_draining_at_once_keep_every_aggregates_order(runtime, infra, prefix):
    rt = runtime
    aggregates, versions = 12, 5
    docs = [version_doc(f"m-{a}", s) for a in range(aggregates) for s in range(1, versions + 1)]
    rng = random.Random(7)

    async def write_versions() -> None:
        # each aggregate's versions are written in order (n+1 only after n exists), aggregates
        # interleaved, while both relays run; store order differs from version order
        by_agg = {a: [d for d in docs if d["agg_id"] == f"m-{a}"] for a in range(aggregates)}
        while any(by_agg.values()):
            a = rng.choice([k for k, v in by_agg.items() if v])
            await rt.db[VERSIONS].insert_one(by_agg[a].pop(0))
            if rng.random() < 0.3:
                await asyncio.sleep(0.005)

    first, second = (
        UnevenRelay(rt.db, [VERSIONS], rt.producer, rt.topics, rt.clock, service="t", ordering=ORDER, seed=seed)
        for seed in (1, 2)
    )
    first.batch, second.batch = 7, 5  # small batches: aggregates split across passes and relays

    async def keep_draining(r: OutboxRelay, until: asyncio.Event) -> None:
        while not until.is_set() or await rt.db[VERSIONS].count_documents({"outbox_pending": True}):
            await r.drain()
            await asyncio.sleep(0.001)

    written = asyncio.Event()
    relays = [asyncio.create_task(keep_draining(r, written)) for r in (first, second)]
    await write_versions()
    written.set()
    await asyncio.wait_for(asyncio.gather(*relays), 60)

    want = aggregates * versions
    records = await read_topic(infra.kafka_bootstrap, f"{prefix}{Topic.PROFILE}", want=want, timeout=10)
    assert versions_per_key(records) == {f"m-{a}": list(range(1, versions + 1)) for a in range(aggregates)}
