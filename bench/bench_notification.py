"""Notification benchmark: emails per second to a local SMTP server (aiosmtpd) and events per
second end to end (MilestoneReached produced to Kafka -> 2 inbox items, 2 emails in the sink and 4
NotificationDelivered on the topic), each beside baselines measured in the same run: a plain raw
produce + consume round trip, and a same-work baseline (`same_work_baseline`: the raw clients doing
the durable work the service must do per event).

Sizes: BENCH_NOTIFICATION_EMAILS (default 400), BENCH_NOTIFICATION_DELIVERIES (default 100, the
stored delivery path), BENCH_NOTIFICATION_EVENTS (default 100).
"""

from __future__ import annotations

import asyncio
import json
import os
import time
import uuid
from datetime import UTC, datetime
from typing import Any

import aiosmtplib
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from mentorship_contracts import Envelope, encode
from mentorship_contracts.notification import NotificationDelivered
from mentorship_contracts.profile import NotificationPreferences, ProfileSnapshot, ProfileState
from mentorship_contracts.scheduling import MilestoneReached
from mentorship_kit.messaging import ensure_topics
from mentorship_ops.support import SmtpSink, TopicReader, print_table
from notification_service.adapters.smtp import SmtpMailer, build_email
from notification_service.bootstrap import bootstrap
from notification_service.settings import Settings

from . import raw, summary

KAFKA = os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092")
MONGO = os.environ.get("MONGODB_URI", "mongodb://127.0.0.1:27017/")
EMAILS = int(os.environ.get("BENCH_NOTIFICATION_EMAILS", "400"))
DELIVERIES = int(os.environ.get("BENCH_NOTIFICATION_DELIVERIES", "100"))
EVENTS = int(os.environ.get("BENCH_NOTIFICATION_EVENTS", "100"))
SMTP_POOL = 4  # the service's SMTP_POOL_SIZE in this benchmark, and the baseline's connections
PAIR = ("ada", "grace")
DELIVERED = NotificationDelivered.event_type
TIMEOUT = 600.0


def message(i: int, delivery_id: str | None = None) -> Any:
    return build_email(
        sender="Bench <bench@x.local>",
        to_name="Ada",
        to_address="ada@example.org",
        subject=f"Milestone {i}",
        text="Hello Ada,\n\nCongratulations!\n",
        html="<p>Congratulations!</p>",
        message_id=f"<{i}.{uuid.uuid4().hex}@bench>",
        date=datetime.now(UTC),
        delivery_id=delivery_id or f"d-{i}",
    )


async def emails(port: int, settings: Settings) -> list[tuple[str, int, float]]:
    rows = []
    msgs = [message(i) for i in range(EMAILS)]
    client = aiosmtplib.SMTP(hostname="127.0.0.1", port=port)
    await client.connect()
    started = time.perf_counter()
    for m in msgs:
        await client.send_message(m, sender="bench@x.local", recipients=["ada@example.org"])
    rows.append(("baseline: aiosmtplib loop, one connection", EMAILS, time.perf_counter() - started))
    await client.quit()

    mailer = SmtpMailer(settings)
    started = time.perf_counter()
    await asyncio.gather(*(mailer.send(m, "ada@example.org") for m in msgs))
    rows.append((f"service SmtpMailer (pool of {settings.smtp_pool_size})", EMAILS, time.perf_counter() - started))
    await mailer.close()
    return rows


async def delivery_path(settings: Settings) -> tuple[str, int, float]:
    """Claim -> SMTP -> record outcome + NotificationDelivered in the outbox, per email, in the store."""
    runtime, app = bootstrap(settings)
    await runtime.start()
    try:
        now = runtime.clock.now()
        docs = []
        for i in range(DELIVERIES):
            docs.append(
                {
                    "_id": f"bench-{i}:ada:email",
                    "source_event_id": f"bench-{i}",
                    "source_event_type": "bench",
                    "correlation_id": f"bench-{i}",
                    "recipient_id": "ada",
                    "recipient_kind": "person",
                    "channel": "email",
                    "category": "milestones",
                    "state": "pending",
                    "reason": None,
                    "urgent": False,
                    "due_at": None,
                    "message": {
                        "to_name": "Ada",
                        "to_address": "ada@example.org",
                        "subject": f"Milestone {i}",
                        "text": "Hello Ada\n",
                        "html": "<p>Hello</p>",
                    },
                    "attempts": [],
                    "attempt_count": 0,
                    "lease_until": None,
                    "lease_owner": None,
                    "created_at": now,
                    "updated_at": now,
                    "outbox": [],
                    "outbox_pending": False,
                }
            )
        await runtime.db["deliveries"].insert_many(docs)
        gate = asyncio.Semaphore(8)

        async def one(delivery_id: str) -> None:
            async with gate:
                await app.attempt(delivery_id)

        started = time.perf_counter()
        await asyncio.gather(*(one(d["_id"]) for d in docs))
        elapsed = time.perf_counter() - started
        delivered = await runtime.db["deliveries"].count_documents({"state": "delivered"})
        assert delivered == DELIVERIES, delivered
        return ("service delivery path (claim, send, record + event)", DELIVERIES, elapsed)
    finally:
        await runtime.stop()


async def raw_round_trip(prefix: str, payloads: list[bytes]) -> tuple[str, int, float]:
    topic = f"{prefix}baseline"
    await ensure_topics(KAFKA, [topic], 1)
    reader = await TopicReader(KAFKA, [topic], group_id=f"{prefix}raw").start()
    producer = AIOKafkaProducer(bootstrap_servers=KAFKA, acks="all", enable_idempotence=True, linger_ms=5)
    await producer.start()
    try:
        started = time.perf_counter()
        for p in payloads:
            await producer.send(topic, p, key=b"k")
        await producer.flush()
        got = 0
        while got < len(payloads):
            got += len(await reader.batch(timeout_ms=500))
        return ("baseline: raw produce + consume round trip", len(payloads), time.perf_counter() - started)
    finally:
        await producer.stop()
        await reader.stop()


MILESTONES = NotificationPreferences()  # email and in-app on (the default)


def milestone_payloads(n: int) -> list[tuple[bytes, bytes]]:
    """n MilestoneReached events for the pair ada (mentee) and grace (mentor), over 6 mentorships."""
    now = datetime.now(UTC)
    out = []
    for i in range(n):
        data = MilestoneReached(
            mentorship_id=f"m-{i % 6}",
            milestone_id=f"ms-{i}",
            title=f"Goal {i}",
            mentor_id="grace",
            mentee_id="ada",
            reached_at=now,
        )
        env = Envelope.wrap(data, source="bench")
        out.append((encode(env), env.subject.encode()))
    return out


async def count_delivered(reader: TopicReader, want: int) -> None:
    got = 0
    while got < want:
        for record in await reader.batch(timeout_ms=200):
            if json.loads(record.value).get("type") == DELIVERED:
                got += 1


async def end_to_end(
    settings: Settings, prefix: str, sink: SmtpSink, payloads: list[tuple[bytes, bytes]]
) -> tuple[str, int, float]:
    """Events -> 2 inbox items, 2 emails in the sink and 4 NotificationDelivered on the topic each."""
    runtime, _ = bootstrap(settings)
    await runtime.start()
    producer = AIOKafkaProducer(bootstrap_servers=KAFKA, acks="all", enable_idempotence=True, linger_ms=5)
    await producer.start()
    reader = await TopicReader(KAFKA, [f"{prefix}notification.events"], from_end=True).start(wait_for_topics=30)
    try:
        for pid in PAIR:
            snap = ProfileSnapshot(
                profile_id=pid,
                display_name=pid.title(),
                email=f"{pid}@example.org",
                roles=["mentee"],
                notification_preferences=MILESTONES,
            )
            env = Envelope.wrap(ProfileState(profile_id=pid, version=1, profile=snap), source="bench")
            await producer.send_and_wait(f"{prefix}profile.state", encode(env), key=pid.encode())
        while await runtime.db["contacts"].count_documents({}) < 2:
            await asyncio.sleep(0.05)
        emails_before = sink.count
        n = len(payloads)
        started = time.perf_counter()
        for value, key in payloads:
            await producer.send(f"{prefix}scheduling.events", value, key=key)
        await producer.flush()
        await asyncio.wait_for(count_delivered(reader, 4 * n), TIMEOUT)
        elapsed = time.perf_counter() - started
        inbox = await runtime.db["inbox"].count_documents({})
        emailed = sink.count - emails_before
        if inbox != 2 * n or emailed != 2 * n:
            raise RuntimeError(f"expected {2 * n} inbox items and emails, got {inbox} and {emailed}")
        return ("service: event -> 2 inbox + 2 emails + 4 NotificationDelivered", n, elapsed)
    finally:
        await reader.stop()
        await producer.stop()
        await runtime.stop()


async def same_work_baseline(prefix: str, port: int, payloads: list[tuple[bytes, bytes]]) -> tuple[str, int, float]:
    """What the notification service must do per MilestoneReached event (two recipients, email and
    in-app each), written with the raw clients. Per event, in key order, one event at a time as the
    service's consumer takes them:

    - consume it (aiokafka consumer group, manual commit after the event: at-least-once);
    - read its processed-mark (a redelivery is a no-op), the subscribed webhook endpoints, and the
      two recipients' contacts (2 point reads);
    - insert the 4 delivery documents in one insert_many (already claimed, as the service does);
    - per in-app delivery: insert the inbox item; per email: send it over SMTP (a pool of
      SMTP_POOL connections, as the service's mailer);
    - per delivery: one conditional update recording the outcome with its NotificationDelivered
      event in the document's outbox (4 writes);
    - insert the processed-mark; commit the offset.
    Then (a relay task beside it, as in the service): produce the 4 events with acks=all and clear
    each outbox entry once on the topic (4 writes). Timed from the first event produced until the
    last NotificationDelivered is acknowledged. Same indexes as the service's collections.

    Left out, as the platform's own overhead: leases on relay passes and the relay's read-backs,
    envelope validation, template rendering, tracing and metrics.
    """
    n = len(payloads)
    client = raw.mongo(raw.store_uri("notification"))
    db = client[f"{prefix.replace('.', '_').strip('_')}_notification_base"]
    service_db = client[f"{prefix.replace('.', '_').strip('_')}_notification"]
    for name in ("deliveries", "inbox", "processed_events", "contacts"):
        await raw.copy_indexes(service_db, db, name)
    await db["contacts"].insert_many(
        [{"_id": pid, "display_name": pid.title(), "email": f"{pid}@example.org", "active": True} for pid in PAIR]
    )
    in_topic, out_topic = f"{prefix}base.scheduling.events", f"{prefix}base.notification.events"
    await ensure_topics(KAFKA, [in_topic, out_topic], 3)
    producer = await raw.started_producer(KAFKA)
    consumer = AIOKafkaConsumer(
        in_topic,
        bootstrap_servers=KAFKA,
        group_id=f"{prefix}base",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    smtp = await raw.SmtpPool(port, SMTP_POOL).start()
    outbox: asyncio.Queue[tuple[str, bytes, bytes]] = asyncio.Queue()
    published = 0
    all_published = asyncio.Event()

    async def relay() -> None:
        nonlocal published
        while True:
            batch = [await outbox.get()]
            while not outbox.empty():
                batch.append(outbox.get_nowait())
            sent = [await producer.send(out_topic, body, key=key) for _, body, key in batch]
            await asyncio.gather(*sent)
            await asyncio.gather(*(db["deliveries"].update_one({"_id": i}, raw.CLEARED) for i, _, _ in batch))
            published += len(batch)
            if published >= 4 * n:
                all_published.set()

    async def deliver(env: dict[str, Any], doc: dict[str, Any], contact: dict[str, Any]) -> None:
        at = datetime.now(UTC)
        if doc["channel"] == "in_app":
            await db["inbox"].insert_one(
                {
                    "_id": doc["_id"],
                    "recipient_id": doc["recipient_id"],
                    "category": "milestones",
                    "title": f"Milestone: {env['data']['title']}",
                    "text": "A milestone was reached",
                    "source_event_id": env["id"],
                    "source_event_type": env["type"],
                    "created_at": at,
                    "read_at": None,
                }
            )
        else:
            await smtp.send(message(0, delivery_id=doc["_id"]), "bench@x.local", contact["email"])
        event = Envelope.wrap(
            NotificationDelivered(
                delivery_id=doc["_id"],
                recipient_id=doc["recipient_id"],
                channel=doc["channel"],
                category="milestones",
                source_event_id=env["id"],
                source_event_type=env["type"],
                delivered_at=at,
            ),
            source="notification",
        )
        body = encode(event)
        entry = raw.outbox_entry(event.id, event.type, "notification.events", event.subject, body)
        await db["deliveries"].update_one(
            {"_id": doc["_id"], "state": "sending"},
            raw.with_outbox(
                {
                    "$set": {"state": "delivered", "delivered_at": at, "message": None, "lease_until": None},
                    "$push": {"attempts": {"n": 1, "at": at, "outcome": "delivered"}},
                },
                [entry],
            ),
        )
        outbox.put_nowait((doc["_id"], body, event.subject.encode()))

    async def handle(value: bytes) -> None:
        env = json.loads(value)
        marker = f"base:{env['id']}"
        if await db["processed_events"].find_one({"_id": marker}, {"_id": 1}):
            return
        await db["webhook_endpoints"].find({"enabled": True, "event_types": {"$in": [env["type"], "*"]}}).to_list(None)
        people = (env["data"]["mentee_id"], env["data"]["mentor_id"])
        contacts = await asyncio.gather(*(db["contacts"].find_one({"_id": pid}) for pid in people))
        at = datetime.now(UTC)
        docs = [
            {
                "_id": f"{env['id']}:{pid}:{channel}",
                "source_event_id": env["id"],
                "source_event_type": env["type"],
                "recipient_id": pid,
                "channel": channel,
                "category": "milestones",
                "state": "sending",
                "message": {"subject": env["data"]["title"], "to_address": contact["email"]},
                "attempts": [],
                "attempt_count": 1,
                "lease_until": at,
                "created_at": at,
                "updated_at": at,
                "outbox": [],
                "outbox_seq": 0,
                "outbox_pending": False,
            }
            for pid, contact in zip(people, contacts, strict=True)
            for channel in ("email", "in_app")
        ]
        await db["deliveries"].insert_many(docs, ordered=False)
        by_id = dict(zip(people, contacts, strict=True))
        await asyncio.gather(*(deliver(env, doc, by_id[doc["recipient_id"]]) for doc in docs))
        await db["processed_events"].insert_one({"_id": marker, "type": env["type"], "at": at})

    async def consume() -> None:
        while not all_published.is_set():
            got = await consumer.getmany(timeout_ms=100)
            for tp, records in got.items():
                for record in records:
                    await handle(record.value)
                    await consumer.commit({tp: record.offset + 1})

    relaying = asyncio.create_task(relay())
    consuming = asyncio.create_task(consume())
    try:
        while len(consumer.assignment()) < 3:  # the group join is outside the clock, as for the service
            await asyncio.sleep(0.05)
        started = time.perf_counter()
        for value, key in payloads:
            await producer.send(in_topic, value, key=key)
        await producer.flush()
        await asyncio.wait_for(all_published.wait(), TIMEOUT)
        elapsed = time.perf_counter() - started
        for task in (consuming, relaying):
            if task.done() and task.exception():
                raise RuntimeError("baseline task failed") from task.exception()
        return ("baseline: same work, raw clients (see docstring)", n, elapsed)
    finally:
        for task in (relaying, consuming):
            task.cancel()
        await asyncio.gather(relaying, consuming, return_exceptions=True)
        await smtp.close()
        await consumer.stop()
        await producer.stop()
        await client.drop_database(db.name)
        await client.close()


def bench_settings(prefix: str, port: int) -> Settings:
    return Settings(
        kafka_bootstrap_servers=KAFKA,
        mongodb_uri=raw.store_uri("notification"),
        kafka_topic_prefix=prefix,
        kafka_topic_partitions=3,
        mongodb_database=f"{prefix.strip('.')}_notification",
        smtp_host="127.0.0.1",
        smtp_port=port,
        smtp_pool_size=SMTP_POOL,
        outbox_poll_interval_ms=100,
        log_level="WARNING",
    )


def table(title: str, rows: list[tuple[str, int, float]]) -> None:
    print_table(
        ("path", "n", "seconds", "per second"),
        [(name, n, f"{secs:.2f}", f"{n / secs:.0f}") for name, n, secs in rows],
        title=title,
        indent="  ",
    )


async def main() -> None:
    sink = SmtpSink().start()
    port = sink.port
    prefix = f"bench{uuid.uuid4().hex[:8]}."
    settings = bench_settings(prefix, port)
    try:
        rows = await emails(port, settings)
        rows.append(await delivery_path(settings))
        table("Emails to a local aiosmtpd server", rows)

        e2e_prefix = f"bench{uuid.uuid4().hex[:8]}."
        payloads = milestone_payloads(EVENTS)
        round_trip = await raw_round_trip(e2e_prefix, [b"x" * 900] * (EVENTS * 2))
        service = await end_to_end(bench_settings(e2e_prefix, port), e2e_prefix, sink, payloads)
        same_work = await same_work_baseline(e2e_prefix, port, payloads)
        table(
            f"End to end through Kafka ({EVENTS} events, 2 recipients x email + in-app)",
            [round_trip, same_work, service],
        )
    finally:
        sink.stop()
        client = raw.mongo(raw.store_uri("notification"))
        for p in (prefix, e2e_prefix):
            await client.drop_database(f"{p.replace('.', '_').strip('_')}_notification")
        await client.close()
    service_rate, base_rate = service[1] / service[2], same_work[1] / same_work[2]
    ratio = service_rate / base_rate
    summary.record(
        "notification: event -> inbox + email (events/s)",
        summary.rate(service[1], service[2]),
        baseline=f"same work {summary.rate(same_work[1], same_work[2])}",
        ratio=ratio,
        target=f">= {summary.TARGET_NOTIFICATION_RATIO:.0%} of baseline",
        met=ratio >= summary.TARGET_NOTIFICATION_RATIO,
    )
    summary.record(
        "notification: same, vs raw produce+consume round trip",
        summary.rate(service[1], service[2]),
        baseline=f"raw round trip {summary.rate(round_trip[1], round_trip[2])} msgs",
        ratio=service_rate / (round_trip[1] / round_trip[2]),
    )
