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
import subprocess
import sys
import time
import uuid
from email.message import EmailMessage
from pathlib import Path

import aiosmtplib
import httpx
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from mentorship_ops.journey import SERVICES, Journey, SmtpSink

KAFKA = os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092")
MONGO = os.environ.get("MONGODB_URI", "mongodb://127.0.0.1:27017/")
REQUESTS = int(os.environ.get("BENCH_E2E_REQUESTS", "20"))
SECRET = "bench-e2e-secret-0123456789abcdef0123456789"


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_services(prefix: str, smtp_port: int, logs: Path) -> tuple[dict[str, str], list[subprocess.Popen[bytes]]]:
    urls, procs = {}, []
    for name in SERVICES:
        port = free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith(("KAFKA_", "MONGODB_", "HTTP_", "JWT_"))}
        env.update(SERVICE_NAME=name, KAFKA_BOOTSTRAP_SERVERS=KAFKA, KAFKA_TOPIC_PREFIX=prefix, MONGODB_URI=MONGO,
                   MONGODB_DATABASE=f"{prefix.strip('.')}_{name}", HTTP_HOST="127.0.0.1", HTTP_PORT=str(port),
                   JWT_SECRET=SECRET, DEV_CLOCK_ENABLED="true", SMTP_HOST="127.0.0.1", SMTP_PORT=str(smtp_port),
                   LOG_LEVEL="WARNING")
        log = (logs / f"{name}.log").open("ab")
        procs.append(subprocess.Popen([sys.executable, "-m", f"{name}_service"], env=env, stdout=log,
                                      stderr=subprocess.STDOUT))
        urls[name] = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    for name, url in urls.items():
        while True:
            try:
                if httpx.get(f"{url}/ready", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"{name} not ready; see {logs}")
            time.sleep(0.3)
    return urls, procs


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(p / 100 * len(ordered) + 0.5) - 1))]


async def prepare(j: Journey, n: int) -> list[tuple[str, str, str]]:
    """n mentee/mentor pairs, imported, known everywhere, each with an open request."""
    rows = []
    for i in range(n):
        for kind, extra in (("mentee", {}), ("mentor", {"mentor_capacity": 1, "skills": [{"name": "python"}]})):
            rows.append({"profile_id": f"{j.run_id}-{kind}-{i:03d}", "email": f"{kind}{i}.{j.run_id}@bench.local",
                         "display_name": f"{kind.title()} {i}", "roles": [kind], "time_zone": "Europe/Berlin",
                         **extra})
    r = await j.call("profile", "POST", "/profiles/import", as_=j.admin(), headers={
        "content-type": "application/x-ndjson"}, content="\n".join(json.dumps(x) for x in rows).encode())
    assert json.loads(r.text.splitlines()[-1])["created"] == len(rows), r.text[-500:]
    await j.known_everywhere([x["profile_id"] for x in rows], "bench people")
    pairs = []
    for i in range(n):
        mentee, mentor = f"{j.run_id}-mentee-{i:03d}", f"{j.run_id}-mentor-{i:03d}"
        req = (await j.call("matching", "POST", "/mentorships", as_=j.token(mentee, "mentee"),
                            json={"mentor_id": mentor, "message": "bench"})).json()
        pairs.append((req["mentorship_id"], mentee, mentor))
    return pairs


async def accept_and_time(j: Journey, pair: tuple[str, str, str]) -> float:
    mid, mentee, mentor = pair
    await j.call("matching", "POST", f"/mentorships/{mid}/accept", as_=j.token(mentor, "mentor"))
    accepted_at = time.time()
    seen = (await j.watcher.wait_for("MentorshipRequestAccepted", lambda d: d.mentorship_id == mid,
                                     timeout=180))[0]
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
    admin = AIOKafkaAdminClient(bootstrap_servers=KAFKA)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, 1, 1)])
    finally:
        await admin.close()
    producer = AIOKafkaProducer(bootstrap_servers=KAFKA, acks="all", enable_idempotence=True)
    consumer = AIOKafkaConsumer(bootstrap_servers=KAFKA, enable_auto_commit=False)
    await producer.start()
    await consumer.start()
    out = []
    try:
        tp = TopicPartition(topic, 0)
        consumer.assign([tp])
        consumer.seek(tp, 0)
        for i in range(n):
            started = time.time()
            await producer.send_and_wait(topic, f"{i}".encode())
            while not (await consumer.getmany(timeout_ms=1000)):
                pass
            out.append(time.time() - started)
    finally:
        await producer.stop()
        await consumer.stop()
    return out


def row(name: str, values: list[float]) -> str:
    return (f"{name:<46} {len(values):>4} {statistics.median(values) * 1000:>9.1f} {pct(values, 99) * 1000:>9.1f}"
            f" {max(values) * 1000:>9.1f}")


async def main() -> None:
    running = os.environ.get("BENCH_E2E_RUNNING") == "1"
    procs: list[subprocess.Popen[bytes]] = []
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
            urls, procs = await asyncio.to_thread(start_services, prefix, smtp_port, logs)
        j = Journey(urls=urls, kafka=KAFKA, prefix=prefix, jwt_secret=secret, sink=sink, mentees=0, mentors=0,
                    wait_timeout=180)
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
            p.terminate()
        for p in procs:
            p.wait(30)
        sink.stop()
    print(f"{'acceptance -> email in the SMTP sink (ms)':<46} {'n':>4} {'p50':>9} {'p99':>9} {'max':>9}")
    print(row("end to end, one at a time", one_by_one))
    print(row(f"end to end, burst of {REQUESTS} accepts", list(burst)))
    print(row("baseline: raw SMTP send to the sink", smtp))
    print(row("baseline: raw Kafka produce -> consume", kafka))


if __name__ == "__main__":
    asyncio.run(main())
