"""Notification benchmark: emails per second to a local SMTP server (aiosmtpd) and notifications
per second end to end (event produced to Kafka -> in-app inbox), each beside a plain baseline
measured in the same run.

Sizes: BENCH_NOTIFICATION_EMAILS (default 400), BENCH_NOTIFICATION_DELIVERIES (default 100, the
stored delivery path), BENCH_NOTIFICATION_EVENTS (default 100).
"""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from datetime import UTC, datetime
from typing import Any

import aiosmtplib
from aiokafka import AIOKafkaProducer

from mentorship_contracts import Envelope, encode
from mentorship_contracts.profile import NotificationPreferences, ProfileRegistered, ProfileSnapshot
from mentorship_contracts.scheduling import MilestoneReached
from mentorship_kit.messaging import ensure_topics
from mentorship_ops.support import SmtpSink, TopicReader, print_table
from notification_service.adapters.smtp import SmtpMailer, build_email
from notification_service.bootstrap import bootstrap
from notification_service.settings import Settings

KAFKA = os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092")
MONGO = os.environ.get("MONGODB_URI", "mongodb://127.0.0.1:27017/")
EMAILS = int(os.environ.get("BENCH_NOTIFICATION_EMAILS", "400"))
DELIVERIES = int(os.environ.get("BENCH_NOTIFICATION_DELIVERIES", "100"))
EVENTS = int(os.environ.get("BENCH_NOTIFICATION_EVENTS", "100"))


def message(i: int) -> Any:
    return build_email(
        sender="Bench <bench@x.local>",
        to_name="Ada",
        to_address="ada@example.org",
        subject=f"Milestone {i}",
        text="Hello Ada,\n\nCongratulations!\n",
        html="<p>Congratulations!</p>",
        message_id=f"<{i}.{uuid.uuid4().hex}@bench>",
        date=datetime.now(UTC),
        delivery_id=f"d-{i}",
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


async def end_to_end(settings: Settings, prefix: str) -> tuple[str, int, float]:
    runtime, _ = bootstrap(settings)
    await runtime.start()
    producer = AIOKafkaProducer(bootstrap_servers=KAFKA, acks="all", enable_idempotence=True, linger_ms=5)
    await producer.start()
    try:
        in_app_only = NotificationPreferences(channels={"email": False, "in_app": True})
        for pid in ("ada", "grace"):
            snap = ProfileSnapshot(
                profile_id=pid,
                display_name=pid.title(),
                email=f"{pid}@example.org",
                roles=["mentee"],
                notification_preferences=in_app_only,
            )
            env = Envelope.wrap(ProfileRegistered(profile_id=pid, profile=snap), source="bench")
            await producer.send_and_wait(f"{prefix}profile.events", encode(env), key=pid.encode())
        while await runtime.db["contacts"].count_documents({}) < 2:
            await asyncio.sleep(0.05)
        now = datetime.now(UTC)
        payloads = []
        for i in range(EVENTS):
            data = MilestoneReached(
                mentorship_id=f"m-{i % 6}",
                milestone_id=f"ms-{i}",
                title=f"Goal {i}",
                mentor_id="grace",
                mentee_id="ada",
                reached_at=now,
            )
            env = Envelope.wrap(data, source="bench")
            payloads.append((encode(env), env.subject.encode()))
        started = time.perf_counter()
        for value, key in payloads:
            await producer.send(f"{prefix}scheduling.events", value, key=key)
        await producer.flush()
        want = EVENTS * 2  # mentee and mentor
        while await runtime.db["inbox"].count_documents({}) < want:
            await asyncio.sleep(0.05)
        return ("service: event -> inbox (2 messages per event)", want, time.perf_counter() - started)
    finally:
        await producer.stop()
        await runtime.stop()


def bench_settings(prefix: str, port: int) -> Settings:
    return Settings(
        kafka_bootstrap_servers=KAFKA,
        mongodb_uri=MONGO,
        kafka_topic_prefix=prefix,
        kafka_topic_partitions=3,
        mongodb_database=f"{prefix.strip('.')}_notification",
        smtp_host="127.0.0.1",
        smtp_port=port,
        smtp_pool_size=4,
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
        raw = await raw_round_trip(e2e_prefix, [b"x" * 900] * (EVENTS * 2))
        e2e = await end_to_end(bench_settings(e2e_prefix, port), e2e_prefix)
        table(f"End to end through Kafka ({EVENTS} events)", [raw, e2e])
    finally:
        sink.stop()
