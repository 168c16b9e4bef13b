"""Due timers per second: one TimerLoop vs two on separate Mongo clients (replicas), duplicates must be 0.

Each timer's handler builds one SessionReminderDue event, and firing writes it into the
timer's outbox (the same single-document write the service does). Baseline: the store's raw
rate of single-document conditional updates on the same number of documents, in this run.
Sizes: BENCH_SCHEDULING_TIMERS (default 1000). Needs MONGODB_URI.
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

from mentorship_contracts import Envelope
from mentorship_contracts.scheduling import SessionReminderDue
from mentorship_kit.clock import Clock
from mentorship_kit.mongo import ensure_indexes
from mentorship_kit.timers import TIMERS, TimerLoop, Timers, timer_indexes
from mentorship_ops.support import print_table

URI = os.environ.get("MONGODB_URI", "mongodb://127.0.0.1:27017/")
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


async def main() -> None:
    print(f"timers: {N}, store: {URI}")
    base = await baseline(N)
    one = await run_replicas(1, N)
    two = await run_replicas(2, N)
    rows = [("baseline: plain conditional update per doc", f"{base:.2f}", f"{N / base:.1f}", "-", "-", "-")]
    for label, (secs, dup, left, extra) in (
        ("1 replica (claim + handler + fire)", one),
        ("2 replicas, separate clients", two),
    ):
        rows.append((label, f"{secs:.2f}", f"{N / secs:.1f}", dup, left, extra))
    print_table(("run", "seconds", "timers/s", "dup fires", "unfired", "extra events"), rows)
    print(f"second replica adds: x{one[0] / two[0]:.2f} throughput")
    if one[1] or two[1] or one[2] or two[2] or one[3] or two[3]:
        print(
            "WARNING: duplicate firings, unfired timers or extra events found (must be 0); on FerretDB 1.24 "
            "concurrent find-and-modify/update on one document is not atomic across connections"
        )


if __name__ == "__main__":
    asyncio.run(main())
