"""What the platform relies on from its store, checked on the real one (the patched FerretDB of
`make test`, or MongoDB): single-document atomicity under concurrency, one winner per
conditional update, writes to two databases at once, and concurrent index creation.

The patched FerretDB holds one write lock per database (deploy/local/patches/01-atomic-writes.patch);
these tests fail on a FerretDB without it (lost updates, two winners) or with one lock for the
whole process (the second database waits for the first). An update command of hundreds of
statements must complete (it hung the store before 09-update-statement-closes-its-query).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
from pymongo import AsyncMongoClient, ReturnDocument, UpdateOne

from mentorship_kit.mongo import ensure_indexes
from mentorship_kit.outbox import outbox_indexes
from mentorship_kit.timers import timer_indexes
from tests.support.infra import Infra

pytestmark = pytest.mark.integration

Client = AsyncMongoClient[dict[str, Any]]


@pytest.fixture
async def clients(infra: Infra, prefix: str) -> AsyncIterator[list[Client]]:
    """Four separate clients (connection pools), as four service replicas would have; the test's
    databases are dropped afterwards."""
    made: list[Client] = [AsyncMongoClient(infra.mongodb_uri, tz_aware=True) for _ in range(4)]
    yield made
    for name in await made[0].list_database_names():
        if name.startswith(prefix.strip(".")):
            await made[0].drop_database(name)
    for client in made:
        await client.close()


def db_name(prefix: str, suffix: str) -> str:
    return f"{prefix.strip('.')}_{suffix}"


async def test_concurrent_increments_of_one_document_are_all_kept(clients: list[Client], prefix: str) -> None:
    name = db_name(prefix, "inc")
    await clients[0][name].counters.insert_one({"_id": 1, "n": 0})

    async def increments(client: Client) -> None:
        await asyncio.gather(*(client[name].counters.update_one({"_id": 1}, {"$inc": {"n": 1}}) for _ in range(50)))

    await asyncio.gather(*(increments(c) for c in clients))
    assert await clients[0][name].counters.find_one({"_id": 1}) == {"_id": 1, "n": 200}


async def test_a_conditional_update_raced_by_every_replica_has_one_winner(clients: list[Client], prefix: str) -> None:
    name = db_name(prefix, "claim")
    await clients[0][name].leases.insert_many([{"_id": i, "version": 0, "owner": None} for i in range(20)])

    async def claim(client: Client, owner: int, lease: int) -> bool:
        won = await client[name].leases.find_one_and_update(
            {"_id": lease, "version": 0},
            {"$set": {"owner": owner}, "$inc": {"version": 1}},
            return_document=ReturnDocument.AFTER,
        )
        return won is not None

    tries = [(owner, lease) for lease in range(20) for owner in range(len(clients))]
    results = await asyncio.gather(*(claim(clients[owner], owner, lease) for owner, lease in tries))
    winners: dict[int, int] = {}
    for (_owner, lease), won in zip(tries, results, strict=True):
        winners[lease] = winners.get(lease, 0) + int(won)
    assert winners == dict.fromkeys(range(20), 1)
    docs = await clients[0][name].leases.find({}).to_list(None)
    assert {d["version"] for d in docs} == {1}


async def timed_update(collection: Any, finished: dict[str, float]) -> None:
    await collection.update_many({}, {"$inc": {"n": 1}})
    finished["big"] = time.monotonic()


async def test_a_write_to_one_database_does_not_wait_for_a_long_write_to_another(
    clients: list[Client], prefix: str
) -> None:
    """Ordering, not speed: a small insert into database B, sent while a large update of
    database A is in progress, completes before that update does."""
    big, small = db_name(prefix, "big"), db_name(prefix, "small")
    await clients[1][small].notes.insert_one({"_id": "warm-up"})  # B's database exists
    size = 2000
    for _attempt in range(4):
        await clients[0][big].docs.delete_many({})
        await clients[0][big].docs.insert_many([{"_id": i, "n": 0, "pad": "x" * 200} for i in range(size)])
        finished: dict[str, float] = {}
        task = asyncio.create_task(timed_update(clients[0][big].docs, finished))
        await asyncio.sleep(0.05)  # let the update reach the store first
        if task.done():  # too quick to overlap anything on this machine: try a larger one
            await task
            size *= 3
            continue
        await clients[1][small].notes.insert_one({"_id": "during"})
        finished["small"] = time.monotonic()
        await task
        assert finished["small"] < finished["big"], "the write to B waited for A's update to finish"
        assert await clients[0][big].docs.count_documents({"n": 1}) == size
        return
    pytest.fail(f"an update of {size // 3} documents finished within 50 ms every time: nothing overlapped")


async def test_index_creation_raced_by_every_replica_succeeds(clients: list[Client], prefix: str) -> None:
    """Replicas starting at the same moment each find the indexes missing and create them."""
    for round_ in range(5):
        name = db_name(prefix, f"idx{round_}")
        declarations = [timer_indexes(), outbox_indexes("timers")]
        await asyncio.gather(*(ensure_indexes(c[name], declarations) for c in clients))
        info = await clients[0][name]["timers"].index_information()
        assert {"due", "group", "outbox_pending"} <= set(info)


async def test_one_update_command_of_many_statements_completes(clients: list[Client], prefix: str) -> None:
    """A bulk write of hundreds of conditional updates is one `update` command; the store must not
    hold a connection per statement until the command ends (09-update-statement-closes-its-query:
    without it this command waits for good, and so does every later write)."""
    name = db_name(prefix, "bulk")
    coll = clients[0][name].docs
    await coll.insert_many([{"_id": n, "pending": True} for n in range(500)])
    claims = [
        UpdateOne({"_id": n, "pending": True, "owner": {"$exists": False}}, {"$set": {"owner": "a"}})
        for n in range(500)
    ]
    result = await asyncio.wait_for(coll.bulk_write(claims, ordered=False), timeout=120)
    assert result.modified_count == 500
    again = await asyncio.wait_for(coll.bulk_write(claims, ordered=False), timeout=120)
    assert again.modified_count == 0  # the conditions hold per statement: nothing taken twice
    await asyncio.wait_for(clients[1][name].other.insert_one({"x": 1}), timeout=30)  # the store still writes
