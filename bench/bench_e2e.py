"""End-to-end latency: from a mentor's acceptance (HTTP 200 of `POST /mentorships/{id}/accept`) to
the mentee's email arriving in an SMTP sink, through matching's outbox, Kafka and the notification
service. Baselines from the same run: a raw SMTP send to the same sink and a raw Kafka round trip
(produce, then read back by a waiting consumer).

By default it starts the four services as processes on KAFKA_BOOTSTRAP_SERVERS / MONGODB_URI with a
fresh topic prefix. BENCH_E2E_RUNNING=1 uses a running platform instead (`make run`; its
notification service must send to SMTP_PORT, default 2525, where this bench listens).
Sizes: BENCH_E2E_REQUESTS (default 20) pairs, measured one at a time and then as one burst.
"""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import time
import uuid
from email.message import EmailMessage
from pathlib import Path

import aiosmtplib
from aiokafka import AIOKafkaProducer

from mentorship_kit.messaging import ensure_topics
from mentorship_ops.journey import SERVICES, Journey
from mentorship_ops.support import ServiceProcess, SmtpSink, TopicReader, free_port, print_table, service_env

KAFKA = os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092")
MONGO = os.environ.get("MONGODB_URI", "mongodb://127.0.0.1:27017/")
REQUESTS = int(os.environ.get("BENCH_E2E_REQUESTS", "20"))
SECRET = "bench-e2e-secret-0123456789abcdef0123456789"


def start_services(prefix: str, smtp_port: int, logs: Path) -> list[ServiceProcess]:
    """The four services side by side, each ready."""
    procs = []
    for name in SERVICES:
        port = free_port()
        env = service_env(
            name,
            kafka=KAFKA,
            mongo=MONGO,
            prefix=prefix,
            port=port,
            jwt_secret=SECRET,
            dev_clock_enabled="true",
            smtp_host="127.0.0.1",
            smtp_port=str(smtp_port),
            log_level="WARNING",
        )
        procs.append(ServiceProcess(name, port, env, logs / f"{name}.log").launch())
    for proc in procs:
        proc.wait_ready(timeout=120)
    return procs


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(p / 100 * len(ordered) + 0.5) - 1))]


async def prepare(j: Journey, n: int) -> list[tuple[str, str, str]]:
    """n mentee/mentor pairs, imported, known everywhere, each with an open request."""
    rows = []
    for i in range(n):
        for kind, extra in (("mentee", {}), ("mentor", {"mentor_capacity": 1, "skills": [{"name": "python"}]})):
            rows.append(
                {
                    "profile_id": f"{j.run_id}-{kind}-{i:03d}",
                    "email": f"{kind}{i}.{j.run_id}@bench.local",
                    "display_name": f"{kind.title()} {i}",
                    "roles": [kind],
                    "time_zone": "Europe/Berlin",
                    **extra,
                }
            )
    r = await j.call(
        "profile",
        "POST",
        "/profiles/import",
        as_=j.admin(),
        headers={"content-type": "application/x-ndjson"},
        content="\n".join(json.dumps(x) for x in rows).encode(),
    )
    assert json.loads(r.text.splitlines()[-1])["created"] == len(rows), r.text[-500:]
    await j.known_everywhere([x["profile_id"] for x in rows], "bench people")
    pairs = []
    for i in range(n):
        mentee, mentor = f"{j.run_id}-mentee-{i:03d}", f"{j.run_id}-mentor-{i:03d}"
        req = (
            await j.call(
                "matching",
                "POST",
                "/mentorships",
                as_=j.token(mentee, "mentee"),
                json={"mentor_id": mentor, "message": "bench"},
            )
        ).json()
        pairs.append((req["mentorship_id"], mentee, mentor))
    return pairs


async def accept_and_time(j: Journey, pair: tuple[str, str, str]) -> float:
    mid, mentee, mentor = pair
    await j.call("matching", "POST", f"/mentorships/{mid}/accept", as_=j.token(mentor, "mentor"))
    accepted_at = time.time()
    seen = (await j.watcher.wait_for("MentorshipRequestAccepted", lambda d: d.mentorship_id == mid, timeout=180))[0]
    key = f"{seen.envelope.id}:{mentee}:email"
    deadline = time.monotonic() + 180
    while not (mails := j.sink.by_delivery(key)):
        if time.monotonic() > deadline:
            raise RuntimeError(f"no email for {key}")
        await asyncio.sleep(0.02)
    return float(str(mails[0]["X-Sink-Received-At"])) - accepted_at


async def smtp_baseline(port: int, n: int) -> list[float]:
    out = []
    for i in range(n):
        msg = EmailMessage()
        msg["From"], msg["To"], msg["Subject"] = "bench@bench.local", "someone@bench.local", f"baseline {i}"
        msg["X-Mentorship-Delivery"] = f"baseline-{i}"
        msg.set_content("hello")
        started = time.time()
        await aiosmtplib.send(msg, hostname="127.0.0.1", port=port)
        out.append(time.time() - started)
    return out


async def kafka_baseline(n: int) -> list[float]:
    topic = f"bench-e2e-rt-{uuid.uuid4().hex[:8]}"
    await ensure_topics(KAFKA, [topic], 1)
    producer = AIOKafkaProducer(bootstrap_servers=KAFKA, acks="all", enable_idempotence=True)
    reader = TopicReader(KAFKA, [topic])
    await producer.start()
    await reader.start()
    out = []
    try:
        for i in range(n):
            started = time.time()
            await producer.send_and_wait(topic, f"{i}".encode())
            while not (await reader.batch(timeout_ms=1000)):
                pass
            out.append(time.time() - started)
    finally:
        await producer.stop()
        await reader.stop()
    return out


def row(name: str, values: list[float]) -> tuple[str, int, str, str, str]:
    return (
        name,
        len(values),
        f"{statistics.median(values) * 1000:.1f}",
        f"{pct(values, 99) * 1000:.1f}",
        f"{max(values) * 1000:.1f}",
    )


async def main() -> None:
    running = os.environ.get("BENCH_E2E_RUNNING") == "1"
    procs: list[ServiceProcess] = []
    if running:
        from mentorship_ops.connection import locate

        platform = locate()
        urls, prefix, secret = platform.urls, platform.prefix, platform.jwt_secret
        smtp_port = int(os.environ.get("SMTP_PORT", "2525"))
    else:
        prefix, secret, smtp_port = f"b{uuid.uuid4().hex[:8]}.", SECRET, free_port()
    sink = SmtpSink(smtp_port).start()
    try:
        if not running:
            logs = Path(os.environ.get("TMPDIR", "/tmp")) / f"bench-e2e-{prefix.strip('.')}"
            logs.mkdir(parents=True, exist_ok=True)
            procs = await asyncio.to_thread(start_services, prefix, smtp_port, logs)
            urls = {p.name: p.url for p in procs}
        j = Journey(
            urls=urls, kafka=KAFKA, prefix=prefix, jwt_secret=secret, sink=sink, mentees=0, mentors=0, wait_timeout=180
        )
        await j.watcher.start()
        try:
            pairs = await prepare(j, 2 * REQUESTS)
            await asyncio.sleep(2)  # let the request notifications drain: measure acceptance alone
            one_by_one = [await accept_and_time(j, p) for p in pairs[:REQUESTS]]
            burst = await asyncio.gather(*(accept_and_time(j, p) for p in pairs[REQUESTS:]))
        finally:
            await j.close()
        smtp = await smtp_baseline(smtp_port, REQUESTS)
        kafka = await kafka_baseline(REQUESTS)
    finally:
        for p in procs:
            p.stop()
        sink.stop()
    print_table(
        ("acceptance -> email in the SMTP sink (ms)", "n", "p50", "p99", "max"),
        [
            row("end to end, one at a time", one_by_one),
            row(f"end to end, burst of {REQUESTS} accepts", list(burst)),
            row("baseline: raw SMTP send to the sink", smtp),
            row("baseline: raw Kafka produce -> consume", kafka),
        ],
    )


if __name__ == "__main__":
    asyncio.run(main())
