"""Due timers per second: one TimerLoop vs two on separate Mongo clients (replicas), duplicates must be 0.

Each timer's handler builds one SessionReminderDue event, and firing writes it into the
timer's outbox (the same single-document write the service does). Baselines in this run: the
store's raw rate of single-document conditional updates on the same number of documents, and the
same-work baseline (`same_work`), with one and with two clients.

Sizes: BENCH_SCHEDULING_TIMERS (default 200). Needs MONGODB_URI.
"""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

from pymongo import AsyncMongoClient

from mentorship_contracts import Envelope, encode
from mentorship_contracts.scheduling import SessionReminderDue
from mentorship_kit.clock import Clock
from mentorship_kit.mongo import ensure_indexes
from mentorship_kit.timers import TIMERS, TimerLoop, Timers, timer_indexes
from mentorship_ops.support import print_table

from . import raw, summary

URI = raw.store_uri("scheduling")
N = int(os.environ.get("BENCH_SCHEDULING_TIMERS", "200"))


async def seed(db: Any, n: int) -> None:
    await ensure_indexes(db, [timer_indexes()])
    due = datetime.now(UTC) - timedelta(minutes=1)
    docs = [
        {
            "_id": f"t{i}",
            "kind": "bench",
            "due_at": due + timedelta(milliseconds=i),
            "state": "pending",
            "payload": {"i": i},
            "group": None,
            "lease_until": None,
            "outbox": [],
            "outbox_pending": False,
        }
        for i in range(n)
    ]
    for k in range(0, n, 500):
        await db[TIMERS].insert_many(docs[k : k + 500])


async def handler(timer: dict[str, Any], now: datetime) -> list[Envelope[Any]]:
    start = now + timedelta(hours=1)
    return [
        Envelope.wrap(
            SessionReminderDue(
                mentorship_id="m",
                session_id=timer["_id"],
                mentor_id="a",
                mentee_id="b",
                ical_uid=f"{timer['_id']}@x",
                start=start,
                duration_minutes=60,
                offset_minutes=60,
            ),
            source="bench",
        )
    ]


class CountingTimers(Timers):
    """Counts, per timer, how many times a replica's conditional fire write reported success."""

    def __init__(self, *args: Any, fires: Counter[str], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fires = fires

    async def fire(self, timer: dict[str, Any], events: Any) -> bool:
        ok = await super().fire(timer, events)
        if ok:
            self.fires[timer["_id"]] += 1
        return ok


async def run_replicas(replicas: int, n: int) -> tuple[float, int, int, int]:
    name = f"bench_sched_{uuid.uuid4().hex[:8]}"
    clients = [AsyncMongoClient(URI, tz_aware=True) for _ in range(replicas)]
    try:
        await seed(clients[0][name], n)
        fires: Counter[str] = Counter()
        loops = [
            TimerLoop(CountingTimers(c[name], Clock(), fires=fires), {"bench": handler}, service="bench")
            for c in clients
        ]
        started = time.perf_counter()
        await asyncio.gather(*[loop.run_due(limit=n + 1) for loop in loops])
        elapsed = time.perf_counter() - started
        docs = await clients[0][name][TIMERS].find({}, {"state": 1, "outbox": 1}).to_list(None)
        not_fired = sum(1 for d in docs if d["state"] != "fired")
        # Duplicate firings: a timer whose handler ran and whose fire write succeeded in two replicas.
        duplicates = sum(1 for c in fires.values() if c > 1)
        extra_events = sum(len(d.get("outbox") or []) for d in docs) - n  # events left to publish beyond one each
        return elapsed, duplicates, not_fired, extra_events
    finally:
        await clients[0].drop_database(name)
        for c in clients:
            await c.close()


async def baseline(n: int) -> float:
    name = f"bench_sched_{uuid.uuid4().hex[:8]}"
    client = AsyncMongoClient(URI, tz_aware=True)
    try:
        await seed(client[name], n)
        started = time.perf_counter()
        for i in range(n):
            await client[name][TIMERS].update_one({"_id": f"t{i}", "state": "pending"}, {"$set": {"state": "fired"}})
        return time.perf_counter() - started
    finally:
        await client.drop_database(name)
        await client.close()


async def same_work(replicas: int, n: int) -> tuple[float, int, int]:
    """What firing a timer must do, with the raw client: find due timers (the same query, oldest
    first, 200 at a time) and, per timer, one conditional write pending -> fired carrying its
    SessionReminderDue in the outbox (built and encoded as the handler does). The condition makes
    it exactly-once across replicas; each replica is its own client. Left out, as the platform's
    own overhead: the lease (claim) write before the handler runs. Returns (seconds, duplicate
    fires, unfired)."""
    name = f"bench_sched_{uuid.uuid4().hex[:8]}"
    clients = [raw.mongo(URI) for _ in range(replicas)]
    fires: Counter[str] = Counter()
    try:
        await seed(clients[0][name], n)

        async def replica(client: Any, owner: str) -> None:
            timers = client[name][TIMERS]
            while True:
                due = await (
                    timers.find({"state": "pending", "due_at": {"$lte": datetime.now(UTC)}}, {"_id": 1})
                    .sort("due_at", 1)
                    .limit(200)
                    .to_list(None)
                )
                if not due:
                    return
                for doc in due:
                    now = datetime.now(UTC)
                    [event] = await handler(doc, now)
                    entry = raw.outbox_entry(event.id, event.type, "scheduling.events", event.subject, encode(event))
                    result = await timers.update_one(
                        {"_id": doc["_id"], "state": "pending"},
                        raw.with_outbox({"$set": {"state": "fired", "fired_at": now, "fired_by": owner}}, [entry]),
                    )
                    if result.modified_count:
                        fires[doc["_id"]] += 1

        started = time.perf_counter()
        await asyncio.gather(*(replica(c, f"r{k}") for k, c in enumerate(clients)))
        elapsed = time.perf_counter() - started
        unfired = await clients[0][name][TIMERS].count_documents({"state": {"$ne": "fired"}})
        return elapsed, sum(1 for c in fires.values() if c > 1), unfired
    finally:
        await clients[0].drop_database(name)
        for c in clients:
            await c.close()


async def main() -> None:
    print(f"timers: {N}, store: {URI}")
    base = await baseline(N)
    same_one = await same_work(1, N)
    same_two = await same_work(2, N)
    one = await run_replicas(1, N)
    two = await run_replicas(2, N)
    rows = [("baseline: plain conditional update per doc", f"{base:.2f}", f"{N / base:.1f}", "-", "-", "-")]
    for label, (secs, dup, left) in (
        ("baseline: same work, raw client, 1 replica", same_one),
        ("baseline: same work, raw clients, 2 replicas", same_two),
    ):
        rows.append((label, f"{secs:.2f}", f"{N / secs:.1f}", dup, left, "-"))
    for label, (secs, dup, left, extra) in (
        ("1 replica (claim + handler + fire)", one),
        ("2 replicas, separate clients", two),
    ):
        rows.append((label, f"{secs:.2f}", f"{N / secs:.1f}", dup, left, extra))
    print_table(("run", "seconds", "timers/s", "dup fires", "unfired", "extra events"), rows)
    scaling, raw_scaling = one[0] / two[0], same_one[0] / same_two[0]
    print(f"second replica adds: x{scaling:.2f} throughput (raw same-work clients: x{raw_scaling:.2f})")
    clean = not (one[1] or two[1] or one[2] or two[2] or one[3] or two[3])
    if not clean:
        print(
            "WARNING: duplicate firings, unfired timers or extra events found (must be 0); on FerretDB 1.24 "
            "concurrent find-and-modify/update on one document is not atomic across connections"
        )
    ratio = (N / one[0]) / (N / same_one[0])
    summary.record(
        "scheduling: timers fired, 1 replica (/s)",
        f"{N / one[0]:,.0f}/s",
        baseline=f"same work {N / same_one[0]:,.0f}/s",
        ratio=ratio,
    )
    summary.record(
        "scheduling: 2 replicas vs 1 (throughput)",
        f"x{scaling:.2f}",
        baseline=f"raw 2 vs 1 clients x{raw_scaling:.2f}",
        target=f">= x{summary.TARGET_TIMER_SCALING} (own store per service)",
        met=scaling >= summary.TARGET_TIMER_SCALING,
    )
    summary.record(
        "scheduling: duplicate fires / unfired / extra events",
        f"{one[1] + two[1]} / {one[2] + two[2]} / {one[3] + two[3]}",
        target="0 duplicate fires",
        met=clean,
    )


if __name__ == "__main__":
    asyncio.run(main())
