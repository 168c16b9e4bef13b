"""Profile benchmark: bulk-import rows/s and profile-update events/s, each beside a baseline
measured in the same run.

The profile service runs as its own process (`python -m profile_service`, as in production) on a
fresh topic prefix and database; the benchmark drives its real HTTP API.

1. Bulk import: one `POST /profiles/import` of a synthetic CSV (all rows good, all new), timed until
   the streamed summary line arrives (every row validated and stored with its outbox event).
   Baseline: a plain loop of PyMongo `insert_one` of the equivalent documents (same profile
   document and outbox entries the service writes: the event and the profile's state, built before
   the clock starts) into a fresh
   database with only the default `_id` index.
2. Profile updates: `PATCH /profiles/{id}` requests (each changes `job_title`, so each emits one
   ProfileUpdated and the profile's new state on `profile.state`), from BENCH_PROFILE_CONCURRENCY
   workers each owning one profile, timed from the first request until the last ProfileUpdated has
   been read back from `profile.events`.
   Baselines: a plain aiokafka producer (acks=all, default settings otherwise) sending the same
   number of messages of the same size, timed until all are acknowledged, i.e. on the topic; once as a loop of
   `send_and_wait`, once as `send` everything then `flush`. And the same-work baseline
   (`same_work_updates`): the raw clients doing per update what the service must do (read the
   profile, one conditional write of the change with its event and state in the outbox, produce
   both, clear the outbox entries), on copies of the same profile documents with the same indexes.

Sizes: BENCH_PROFILE_ROWS (default 2000), BENCH_PROFILE_UPDATES (default 300),
BENCH_PROFILE_CONCURRENCY (default 8). Needs KAFKA_BOOTSTRAP_SERVERS and MONGODB_URI.
"""

from __future__ import annotations

import asyncio
import csv
import io
import json
import os
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
from aiokafka import AIOKafkaProducer
from pymongo import MongoClient
from pymongo.asynchronous.database import AsyncDatabase

from mentorship_contracts import encode
from mentorship_contracts.profile import ProfileState, ProfileUpdatedV2
from mentorship_kit.auth import issue_token
from mentorship_kit.clock import Clock
from mentorship_kit.messaging import ensure_topics
from mentorship_kit.usecase import EventFactory
from mentorship_ops.support import ServiceProcess, TopicReader, free_port, print_table, service_env
from profile_service import domain
from profile_service.adapters.repository import profile_document
from profile_service.import_format import read_csv

from . import raw, summary

KAFKA = os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092")
MONGO = raw.store_uri("profile")
ROWS = int(os.environ.get("BENCH_PROFILE_ROWS", "2000"))
UPDATES = int(os.environ.get("BENCH_PROFILE_UPDATES", "300"))
CONCURRENCY = int(os.environ.get("BENCH_PROFILE_CONCURRENCY", "8"))
JWT_SECRET = "bench-secret-for-the-profile-benchmark-0123"
UPDATED_TYPE = ProfileUpdatedV2.event_type
STATE_TYPE = ProfileState.event_type
TIMEOUT = 600.0
EVENTS = EventFactory("profile", Clock())  # envelopes as the service makes them

ZONES = ["Europe/Berlin", "America/New_York", "Asia/Tokyo", "Europe/London", "Australia/Sydney"]
DEPARTMENTS = ["Engineering", "Sales", "Finance", "People", "Design"]
SKILLS = ["python", "sql", "leadership", "kafka", "design", "negotiation", "writing"]


def admin() -> dict[str, str]:
    return {"Authorization": f"Bearer {issue_token(JWT_SECRET, 'bench-hr', ['admin'])}"}


def synthetic_csv(rows: int, tag: str) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(
        [
            "email",
            "display_name",
            "roles",
            "job_title",
            "department",
            "seniority",
            "years_experience",
            "skills",
            "development_areas",
            "languages",
            "time_zone",
            "availability",
            "mentor_capacity",
        ]
    )
    for i in range(rows):
        mentor = i % 3 == 0
        writer.writerow(
            [
                f"person{i}.{tag}@example.org",
                f"Person {i}",
                "mentee;mentor" if mentor else "mentee",
                f"Engineer {i % 17}",
                DEPARTMENTS[i % len(DEPARTMENTS)],
                "senior" if mentor else "mid",
                str(3 + i % 20),
                f"{SKILLS[i % 7]}:4;{SKILLS[(i + 2) % 7]}:3",
                f"{SKILLS[(i + 4) % 7]}",
                "en;de",
                ZONES[i % len(ZONES)],
                "0 09:00-12:00;2 14:00-17:00",
                "3" if mentor else "",
            ]
        )
    return out.getvalue()


def profile_service(prefix: str) -> ServiceProcess:
    """The profile service as its own process on a fresh prefix and database."""
    port = free_port()
    env = service_env(
        "profile",
        kafka=KAFKA,
        mongo=raw.store_uri("profile"),
        prefix=prefix,
        port=port,
        jwt_secret=JWT_SECRET,
        kafka_topic_partitions="3",
        log_level="WARNING",
        outbox_poll_interval_ms="100",
    )
    return ServiceProcess("profile", port, env, Path(tempfile.gettempdir()) / f"{prefix.strip('.')}_profile.log")


def stop_and_drop(service: ServiceProcess) -> None:
    service.stop()
    with MongoClient(MONGO) as client:
        client.drop_database(service.env["MONGODB_DATABASE"])


# --- 1. bulk import ---------------------------------------------------------------------------


def baseline_inserts(text: str) -> tuple[str, int, float]:
    """Plain PyMongo loop: insert_one of the documents the import would write."""
    docs = []
    for row in read_csv(text)[1]:
        assert row.data is not None, row.rejection
        profile = domain.validate({**row.data, "profile_id": str(uuid.uuid4())})
        docs.append(profile_document(profile, EVENTS.many([domain.register(profile), domain.state(profile, 1)])))
    name = f"bench_profile_base_{uuid.uuid4().hex[:8]}"
    with MongoClient(MONGO) as client:
        try:
            coll = client[name]["profiles"]
            started = time.perf_counter()
            for doc in docs:
                coll.insert_one(doc)
            elapsed = time.perf_counter() - started
            assert coll.count_documents({}) == len(docs)
        finally:
            client.drop_database(name)
    return ("baseline: PyMongo insert_one loop, fresh database", len(docs), elapsed)


async def service_import(service: ServiceProcess, text: str) -> tuple[str, int, float]:
    summary: dict[str, Any] = {}
    async with httpx.AsyncClient(timeout=TIMEOUT) as client:
        started = time.perf_counter()
        async with client.stream(
            "POST",
            f"{service.url}/profiles/import",
            content=text.encode(),
            headers={**admin(), "content-type": "text/csv"},
        ) as response:
            response.raise_for_status()
            async for line in response.aiter_lines():
                if line.strip():
                    summary = json.loads(line)
        elapsed = time.perf_counter() - started
    if summary.get("type") != "summary" or summary.get("created") != ROWS:
        raise RuntimeError(f"import did not create every row: {summary}")
    return ("service: POST /profiles/import (CSV, streamed)", ROWS, elapsed)


# --- 2. profile updates ----------------------------------------------------------------------


def update_payload_sizes(profile: dict[str, Any]) -> tuple[int, int]:
    """Sizes of the two records a PATCH publishes, as the service makes them, for the baseline:
    the ProfileUpdated event (profile.events) and the profile's new state (profile.state)."""
    snapshot = domain.validate(profile)
    change = domain.update(snapshot, {"job_title": "Staff engineer 9999"})
    event, state = EVENTS.many(domain.with_state(change, 2))
    return len(encode(event)), len(encode(state))


async def baseline_producer(topic: str, payload: bytes, n: int, pipelined: bool) -> tuple[str, int, float]:
    producer = AIOKafkaProducer(bootstrap_servers=KAFKA, acks="all")  # otherwise aiokafka's defaults
    await producer.start()
    try:
        await producer.send_and_wait(topic, b"warm-up", key=b"w")  # metadata and connection outside the clock
        started = time.perf_counter()
        if pipelined:
            for i in range(n):
                await producer.send(topic, payload, key=f"p{i % CONCURRENCY}".encode())
            await producer.flush()
        else:
            for i in range(n):
                await producer.send_and_wait(topic, payload, key=f"p{i % CONCURRENCY}".encode())
        elapsed = time.perf_counter() - started
    finally:
        await producer.stop()
    label = "send all, then flush" if pipelined else "send_and_wait loop"
    return (f"baseline: aiokafka acks=all, {label}", n, elapsed)


async def copy_profiles(service: ServiceProcess, ids: list[str]) -> tuple[AsyncDatabase[raw.Document], Any]:
    """The benchmark's profile documents, as the service left them, with the same indexes, in a
    database of their own (the same store): what the same-work baseline updates."""
    client = raw.mongo(raw.store_uri("profile"))
    source = client[service.env["MONGODB_DATABASE"]]
    target = client[f"{service.env['MONGODB_DATABASE']}_base"]
    await raw.copy_indexes(source, target, "profiles")
    docs = await source["profiles"].find({"_id": {"$in": ids}}).to_list(None)
    for doc in docs:
        doc.update(outbox=[], outbox_seq=0, outbox_pending=False)
    await target["profiles"].insert_many(docs)
    return target, client


async def same_work_updates(
    db: AsyncDatabase[raw.Document], topic: str, ids: list[str], sizes: tuple[int, int]
) -> tuple[str, int, float]:
    """What the service must do per PATCH, with the raw clients and CONCURRENCY workers each owning
    one profile (as the service's benchmark): read the profile (1 point read), write the change
    with its version check, its ProfileUpdated and its new state in the document's outbox (1
    conditional write, the same $set fields the service sets: the field, version, search, email and
    external keys), produce both records (acks=all, keyed by the profile: the event on the events
    topic, the state on the state topic) and clear the outbox entries (1 write).
    Timed until the last event is acknowledged (on the topic). Left out, as the platform's own
    overhead: HTTP, authentication, validation, the relay's lease and read-back."""
    producer = await raw.started_producer(KAFKA)
    body, state_body = (("x" * size).encode() for size in sizes)
    state_topic = topic.removesuffix("events") + "state"

    async def worker(w: int) -> None:
        pid = ids[w]
        count = UPDATES // CONCURRENCY + (1 if w < UPDATES % CONCURRENCY else 0)
        for k in range(count):
            doc = await db["profiles"].find_one({"_id": pid, "erased": {"$ne": True}})
            assert doc is not None
            event_id = raw.new_id()
            entry = raw.outbox_entry(event_id, UPDATED_TYPE, "profile.events", pid, body)
            state = raw.outbox_entry(raw.new_id(), STATE_TYPE, "profile.state", pid, state_body)
            update = raw.with_outbox(
                {
                    "$set": {
                        "profile.job_title": f"Engineer {k}",
                        "version": doc["version"] + 1,
                        "search": doc.get("search"),
                        "email_key": doc.get("email_key"),
                        "external_key": doc.get("external_key"),
                    }
                },
                [entry, state],
            )
            result = await db["profiles"].update_one(
                {"_id": pid, "erased": {"$ne": True}, "version": doc["version"]}, update
            )
            assert result.modified_count == 1
            sent = [await producer.send(topic, body, key=pid.encode())]
            sent.append(await producer.send(state_topic, state_body, key=pid.encode()))
            await asyncio.gather(*sent)
            await db["profiles"].update_one({"_id": pid, "outbox_seq": doc["outbox_seq"] + 1}, raw.CLEARED)

    try:
        started = time.perf_counter()
        await asyncio.gather(*(worker(w) for w in range(CONCURRENCY)))
        elapsed = time.perf_counter() - started
    finally:
        await producer.stop()
    return (f"baseline: same work, raw clients ({CONCURRENCY} workers)", UPDATES, elapsed)


def profile_ids() -> list[str]:
    return [f"bench-p{w}" for w in range(CONCURRENCY)]


async def service_updates(service: ServiceProcess, prefix: str) -> tuple[tuple[str, int, float], int]:
    topic = f"{prefix}profile.events"
    ids = profile_ids()
    async with httpx.AsyncClient(base_url=service.url, timeout=60, headers=admin()) as client:
        first: dict[str, Any] = {}
        for w, pid in enumerate(ids):
            body = {
                "profile_id": pid,
                "display_name": f"Bench {w}",
                "email": f"{pid}@example.org",
                "roles": ["mentee", "mentor"],
                "mentor_capacity": 2,
                "time_zone": ZONES[w % len(ZONES)],
                "job_title": "Engineer",
                "department": "Engineering",
                "skills": [{"name": "python", "proficiency": 4}, {"name": "sql", "proficiency": 3}],
                "development_areas": ["leadership"],
                "languages": ["en"],
            }
            response = await client.post("/profiles", json=body)
            response.raise_for_status()
            first = first or response.json()
        sizes = update_payload_sizes({k: v for k, v in first.items() if k != "version"})

        reader = await TopicReader(KAFKA, [topic], group_id=f"{prefix}bench-reader").start()
        # Version 2 of ProfileUpdated names the changed fields, not their values: count per profile.
        seen: dict[str, int] = {pid: 0 for pid in ids}
        want = {pid: UPDATES // CONCURRENCY + (1 if w < UPDATES % CONCURRENCY else 0) for w, pid in enumerate(ids)}

        async def worker(w: int) -> None:
            count = UPDATES // CONCURRENCY + (1 if w < UPDATES % CONCURRENCY else 0)
            for k in range(count):
                response = await client.patch(f"/profiles/{ids[w]}", json={"job_title": f"Engineer {k}"})
                response.raise_for_status()

        async def read_back() -> None:
            while seen != want:
                for record in await reader.batch(timeout_ms=500):
                    doc = json.loads(record.value)
                    if doc.get("type") == UPDATED_TYPE and doc.get("subject") in seen:
                        seen[doc["subject"]] += 1

        try:
            reading = asyncio.create_task(read_back())
            started = time.perf_counter()
            await asyncio.gather(*(worker(w) for w in range(CONCURRENCY)))
            requests_done = time.perf_counter() - started
            await asyncio.wait_for(reading, TIMEOUT)
            elapsed = time.perf_counter() - started
        finally:
            await reader.stop()
    print(
        f"  ({UPDATES} PATCH answered after {requests_done:.2f} s; last ProfileUpdated read back after "
        f"{elapsed:.2f} s; event {sizes[0]} bytes, state {sizes[1]} bytes)"
    )
    return (f"service: PATCH -> ProfileUpdated on topic ({CONCURRENCY} workers)", UPDATES, elapsed), sizes


def table(title: str, rows: list[tuple[str, int, float]]) -> None:
    base = rows[0][1] / rows[0][2]
    print_table(
        ("path", "n", "seconds", "per second", "vs baseline"),
        [(name, n, f"{secs:.2f}", f"{n / secs:.0f}", f"{n / secs / base:.2f}x") for name, n, secs in rows],
        title=title,
        indent="  ",
    )


async def main() -> None:
    print(f"rows: {ROWS}, updates: {UPDATES} ({CONCURRENCY} workers), kafka: {KAFKA}, store: {MONGO}")
    prefix = f"bench{uuid.uuid4().hex[:8]}."
    text = synthetic_csv(ROWS, prefix.strip("."))
    base = baseline_inserts(text)
    service = profile_service(prefix)
    try:
        await asyncio.to_thread(service.start)
        imported = await service_import(service, text)
    finally:
        await asyncio.to_thread(stop_and_drop, service)
    table(f"Bulk import ({ROWS} new rows; relay publishing runs alongside)", [base, imported])
    summary.record(
        "profile: bulk import (rows/s)",
        summary.rate(imported[1], imported[2]),
        baseline=f"insert_one loop {summary.rate(base[1], base[2])}",
        ratio=(imported[1] / imported[2]) / (base[1] / base[2]),
    )

    # A second, fresh service so the update figures do not pay for scanning the imported profiles
    # or share the relay with thousands of import events.
    prefix = f"bench{uuid.uuid4().hex[:8]}."
    service = profile_service(prefix)
    try:
        await asyncio.to_thread(service.start)
        updates, sizes = await service_updates(service, prefix)
        base_db, client = await copy_profiles(service, profile_ids())
    finally:
        await asyncio.to_thread(stop_and_drop, service)
    baseline_topic = f"{prefix}baseline.events"
    await ensure_topics(KAFKA, [baseline_topic, f"{prefix}baseline.state"], 3)
    payload = b"x" * sizes[0]
    try:
        same_work = await same_work_updates(base_db, baseline_topic, profile_ids(), sizes)
    finally:
        await client.drop_database(base_db.name)
        await client.close()
    sequential = await baseline_producer(baseline_topic, payload, UPDATES, pipelined=False)
    pipelined = await baseline_producer(baseline_topic, payload, UPDATES, pipelined=True)
    table(
        f"Profile updates ({UPDATES} events of ~{sizes[0]} bytes, each with a state of ~{sizes[1]})",
        [sequential, pipelined, same_work, updates],
    )
    ratio = (updates[1] / updates[2]) / (same_work[1] / same_work[2])
    summary.record(
        f"profile: PATCH -> ProfileUpdated on topic, {CONCURRENCY} workers (/s)",
        summary.rate(updates[1], updates[2]),
        baseline=f"same work {summary.rate(same_work[1], same_work[2])}",
        ratio=ratio,
        target=f">= {summary.TARGET_PROFILE_RATIO:.0%} of baseline",
        met=ratio >= summary.TARGET_PROFILE_RATIO,
    )
    summary.record(
        "profile: same, vs aiokafka send_and_wait loop",
        summary.rate(updates[1], updates[2]),
        baseline=f"send_and_wait {summary.rate(sequential[1], sequential[2])}",
        ratio=(updates[1] / updates[2]) / (sequential[1] / sequential[2]),
    )


if __name__ == "__main__":
    asyncio.run(main())
