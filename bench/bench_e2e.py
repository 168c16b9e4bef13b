"""End-to-end latency: from a mentor's acceptance (HTTP 200 of `POST /mentorships/{id}/accept`) to
the mentee's email arriving in an SMTP sink, through matching's outbox, Kafka and the notification
service; one at a time, then a burst of accepts all at once (every one must be emailed).
Baselines from the same run: a raw SMTP send to the same sink, a raw Kafka round trip (produce,
then read back by a waiting consumer), and the same-work chain (`SameWorkChain`: the raw clients
doing what matching and notification must do between the acceptance and the email).

By default it starts the four services as processes on KAFKA_BOOTSTRAP_SERVERS / MONGODB_URI with a
fresh topic prefix. BENCH_E2E_RUNNING=1 uses a running platform instead (`make run`; its
notification service must send to SMTP_PORT, default 2525, where this bench listens).
Sizes: BENCH_E2E_REQUESTS (default 50) accepts one at a time, BENCH_E2E_BURST (default 200) accepts
in one burst; BENCH_E2E_WAIT (default 1200) seconds for any one wait.
"""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import time
import uuid
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import getaddresses
from pathlib import Path
from typing import Any

import aiosmtplib
import httpx
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from mentorship_kit.messaging import ensure_topics
from mentorship_ops.journey import SERVICES, Journey
from mentorship_ops.support import ServiceProcess, SmtpSink, TopicReader, free_port, print_table, service_env

from . import raw, summary

Pair = tuple[str, str, str, str]  # mentorship id, mentee id, mentor id, mentee's email address

KAFKA = os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092")
MONGO = os.environ.get("MONGODB_URI", "mongodb://127.0.0.1:27017/")
REQUESTS = int(os.environ.get("BENCH_E2E_REQUESTS", "50"))
BURST = int(os.environ.get("BENCH_E2E_BURST", "200"))
WAIT = float(os.environ.get("BENCH_E2E_WAIT", "1200"))  # seconds for any one wait (a loaded machine is slow)
SECRET = "bench-e2e-secret-0123456789abcdef0123456789"


def start_services(prefix: str, smtp_port: int, logs: Path) -> list[ServiceProcess]:
    """The four services side by side, each ready."""
    procs = []
    for name in SERVICES:
        port = free_port()
        env = service_env(
            name,
            kafka=KAFKA,
            mongo=raw.store_uri(name),
            prefix=prefix,
            port=port,
            jwt_secret=SECRET,
            dev_clock_enabled="true",
            smtp_host="127.0.0.1",
            smtp_port=str(smtp_port),
            log_level="WARNING",
        )
        procs.append(ServiceProcess(name, port, env, logs / f"{name}.log").launch())
    try:
        for proc in procs:
            proc.wait_ready(timeout=300)  # a loaded 2-core machine starts slowly
    except BaseException:
        for proc in procs:
            proc.stop()
        raise
    return procs


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(p / 100 * len(ordered) + 0.5) - 1))]


class Arrivals:
    """When the sink first received an email for each address: one background task parses what
    arrives (so that hundreds of waiters do not each scan every message)."""

    def __init__(self, sink: SmtpSink) -> None:
        self.sink = sink
        self.first: dict[str, float] = {}
        self._seen = 0
        self._task: asyncio.Task[None] | None = None

    def start(self) -> Arrivals:
        self._task = asyncio.create_task(self._run())
        return self

    async def _run(self) -> None:
        while True:
            if self.sink.count > self._seen:
                messages = self.sink.messages
                for message in messages[self._seen :]:
                    at = float(str(message["X-Sink-Received-At"]))
                    for _, address in getaddresses([str(message["To"])]):
                        self.first.setdefault(address, at)
                self._seen = len(messages)
            await asyncio.sleep(0.005)

    async def wait(self, address: str, timeout: float = WAIT) -> float:
        deadline = time.monotonic() + timeout
        while address not in self.first:
            if time.monotonic() > deadline:
                raise RuntimeError(f"no email to {address} within {timeout:.0f} s")
            await asyncio.sleep(0.005)
        return self.first[address]

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)


async def prepare(j: Journey, n: int) -> list[Pair]:
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
    gate = asyncio.Semaphore(8)

    async def request(i: int) -> Pair:
        mentee, mentor = f"{j.run_id}-mentee-{i:03d}", f"{j.run_id}-mentor-{i:03d}"
        async with gate:
            req = (
                await j.call(
                    "matching",
                    "POST",
                    "/mentorships",
                    as_=j.token(mentee, "mentee"),
                    json={"mentor_id": mentor, "message": "bench"},
                )
            ).json()
        return (req["mentorship_id"], mentee, mentor, f"mentee{i}.{j.run_id}@bench.local")

    return list(await asyncio.gather(*(request(i) for i in range(n))))


async def accept_and_time(j: Journey, arrivals: Arrivals, pair: Pair) -> float:
    mid, _, mentor, address = pair
    await j.call("matching", "POST", f"/mentorships/{mid}/accept", as_=j.token(mentor, "mentor"))
    accepted_at = time.time()
    return await arrivals.wait(address) - accepted_at


class SameWorkChain:
    """What matching and notification must do between an acceptance and the mentee's email, with
    the raw clients, on the same store, broker and sink, in databases and topics of its own (the
    same indexes as the services' collections). Timed, like the service, from when the acceptance
    is stored (the mentorship's conditional write with its MentorshipRequestAccepted in the outbox)
    until the email is in the sink:

    - matching's relay: produce the event (acks=all), clear the outbox entry (1 write);
    - notification, consuming it (consumer group, commit after each event): read its processed-mark,
      the subscribed webhook endpoints and the mentee's contact (3 reads); insert the email and
      in-app deliveries (1 insert_many); send the email (a pool of SMTP connections) and insert the
      inbox item; record each outcome with its NotificationDelivered in the outbox (2 writes);
      insert the processed-mark; commit; then produce the 2 events and clear them (2 writes).
    Left out, as the platform's own overhead: HTTP, relay leases and read-backs, polling, template
    rendering, validation, tracing.
    """

    def __init__(self, prefix: str, smtp_port: int, arrivals: Arrivals) -> None:
        self.prefix, self.smtp_port, self.arrivals = prefix, smtp_port, arrivals
        self.clients = {s: raw.mongo(raw.store_uri(s)) for s in ("matching", "notification")}
        base = f"{prefix.replace('.', '_').strip('_')}_base"
        self.matching = self.clients["matching"][f"{base}_matching"]
        self.notification = self.clients["notification"][f"{base}_notification"]
        self.topic, self.out_topic = f"{prefix}base.matching.events", f"{prefix}base.notification.events"
        self.relay_queue: asyncio.Queue[tuple[str, bytes, bytes]] = asyncio.Queue()
        self.delivered_queue: asyncio.Queue[tuple[str, bytes, bytes]] = asyncio.Queue()
        self.tasks: list[asyncio.Task[None]] = []

    async def start(self, service_dbs: dict[str, str], pairs: list[Pair]) -> SameWorkChain:
        for service, target, names in (
            ("matching", self.matching, ("mentorships",)),
            ("notification", self.notification, ("deliveries", "inbox", "processed_events", "contacts")),
        ):
            for name in names:
                await raw.copy_indexes(self.clients[service][service_dbs[service]], target, name)
        await self.notification["contacts"].insert_many(
            [
                {"_id": mentee, "display_name": "Mentee", "email": address, "active": True}
                for _, mentee, _, address in pairs
            ]
        )
        now = datetime.now(UTC)
        await self.matching["mentorships"].insert_many(
            [
                {"_id": mid, "mentee_id": mentee, "mentor_id": mentor, "state": "requested", "created_at": now}
                | {"outbox": [], "outbox_seq": 0, "outbox_pending": False}
                for mid, mentee, mentor, _ in pairs
            ]
        )
        await ensure_topics(KAFKA, [self.topic, self.out_topic], 3)
        self.producer = await raw.started_producer(KAFKA)
        self.consumer = AIOKafkaConsumer(
            self.topic,
            bootstrap_servers=KAFKA,
            group_id=f"{self.prefix}base-notification",
            auto_offset_reset="earliest",
            enable_auto_commit=False,
        )
        await self.consumer.start()
        self.smtp = await raw.SmtpPool(self.smtp_port, 4).start()
        self.tasks = [
            asyncio.create_task(self._relay(self.relay_queue, self.matching["mentorships"], self.topic)),
            asyncio.create_task(self._relay(self.delivered_queue, self.notification["deliveries"], self.out_topic)),
            asyncio.create_task(self._consume()),
        ]
        while len(self.consumer.assignment()) < 3:
            await asyncio.sleep(0.05)
        return self

    async def accept(self, pair: Pair) -> float:
        """Store the acceptance (not timed, as the service's HTTP call), then time until the email."""
        mid, mentee, mentor, address = pair
        doc = await self.matching["mentorships"].find_one({"_id": mid})
        assert doc is not None and doc["state"] == "requested"
        event_id = raw.new_id()
        body = json.dumps(
            {
                "id": event_id,
                "type": "mentorship.matching.mentorship_request_accepted",
                "source": "matching",
                "subject": mid,
                "time": datetime.now(UTC).isoformat(),
                "data": {"mentorship_id": mid, "mentee_id": mentee, "mentor_id": mentor},
            }
        ).encode()
        entry = raw.outbox_entry(
            event_id, "mentorship.matching.mentorship_request_accepted", "matching.events", mid, body
        )
        await self.matching["mentorships"].update_one(
            {"_id": mid, "state": "requested"}, raw.with_outbox({"$set": {"state": "accepted"}}, [entry])
        )
        accepted_at = time.time()
        self.relay_queue.put_nowait((mid, body, mid.encode()))
        return await self.arrivals.wait(address) - accepted_at

    async def _relay(self, queue: asyncio.Queue[tuple[str, bytes, bytes]], coll: Any, topic: str) -> None:
        while True:
            batch = [await queue.get()]
            while not queue.empty():
                batch.append(queue.get_nowait())
            sent = [await self.producer.send(topic, body, key=key) for _, body, key in batch]
            await asyncio.gather(*sent)
            await asyncio.gather(*(coll.update_one({"_id": i}, raw.CLEARED) for i, _, _ in batch))

    async def _consume(self) -> None:
        while True:
            got = await self.consumer.getmany(timeout_ms=100)
            for tp, records in got.items():
                for record in records:
                    await self._handle(json.loads(record.value))
                    await self.consumer.commit({tp: record.offset + 1})

    async def _handle(self, env: dict[str, Any]) -> None:
        db = self.notification
        marker = f"base:{env['id']}"
        if await db["processed_events"].find_one({"_id": marker}, {"_id": 1}):
            return
        await db["webhook_endpoints"].find({"enabled": True, "event_types": {"$in": [env["type"], "*"]}}).to_list(None)
        mentee = env["data"]["mentee_id"]
        contact = await db["contacts"].find_one({"_id": mentee})
        assert contact is not None
        at = datetime.now(UTC)
        docs = [
            {
                "_id": f"{env['id']}:{mentee}:{channel}",
                "source_event_id": env["id"],
                "source_event_type": env["type"],
                "recipient_id": mentee,
                "channel": channel,
                "category": "requests",
                "state": "sending",
                "message": {"subject": "Your request was accepted", "to_address": contact["email"]},
                "attempts": [],
                "attempt_count": 1,
                "lease_until": at,
                "created_at": at,
                "updated_at": at,
                "outbox": [],
                "outbox_seq": 0,
                "outbox_pending": False,
            }
            for channel in ("email", "in_app")
        ]
        await db["deliveries"].insert_many(docs, ordered=False)
        await asyncio.gather(*(self._deliver(env, doc, contact) for doc in docs))
        await db["processed_events"].insert_one({"_id": marker, "type": env["type"], "at": at})

    async def _deliver(self, env: dict[str, Any], doc: dict[str, Any], contact: dict[str, Any]) -> None:
        db = self.notification
        if doc["channel"] == "email":
            msg = EmailMessage()
            msg["From"], msg["To"], msg["Subject"] = "bench@bench.local", contact["email"], "Your request was accepted"
            msg["X-Mentorship-Delivery"] = doc["_id"]
            msg.set_content("Hello,\n\nyour mentor accepted.\n")
            await self.smtp.send(msg, "bench@bench.local", contact["email"])
        else:
            await db["inbox"].insert_one(
                {
                    "_id": doc["_id"],
                    "recipient_id": doc["recipient_id"],
                    "title": "Accepted",
                    "text": "Your request was accepted",
                    "created_at": datetime.now(UTC),
                    "read_at": None,
                }
            )
        event_id = raw.new_id()
        body = json.dumps(
            {
                "id": event_id,
                "type": "mentorship.notification.notification_delivered",
                "subject": doc["recipient_id"],
                "data": {"delivery_id": doc["_id"], "channel": doc["channel"], "source_event_id": env["id"]},
            }
        ).encode()
        entry = raw.outbox_entry(
            event_id, "mentorship.notification.notification_delivered", "notification.events", doc["recipient_id"], body
        )
        await db["deliveries"].update_one(
            {"_id": doc["_id"], "state": "sending"},
            raw.with_outbox({"$set": {"state": "delivered", "message": None, "lease_until": None}}, [entry]),
        )
        self.delivered_queue.put_nowait((doc["_id"], body, doc["recipient_id"].encode()))

    async def stop(self) -> None:
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        await self.smtp.close()
        await self.consumer.stop()
        await self.producer.stop()
        for service, db in (("matching", self.matching), ("notification", self.notification)):
            await self.clients[service].drop_database(db.name)
            await self.clients[service].close()


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
    service_dbs: dict[str, str] = {}
    try:
        if not running:
            logs = Path(os.environ.get("TMPDIR", "/tmp")) / f"bench-e2e-{prefix.strip('.')}"
            logs.mkdir(parents=True, exist_ok=True)
            procs = await asyncio.to_thread(start_services, prefix, smtp_port, logs)
            urls = {p.name: p.url for p in procs}
            service_dbs = {p.name: p.env["MONGODB_DATABASE"] for p in procs}
        j = Journey(
            urls=urls, kafka=KAFKA, prefix=prefix, jwt_secret=secret, sink=sink, mentees=0, mentors=0, wait_timeout=WAIT
        )
        await j.http.aclose()
        j.http = httpx.AsyncClient(timeout=WAIT)  # a burst of accepts on a loaded machine answers slowly
        await j.watcher.start()
        arrivals = Arrivals(sink).start()
        try:
            emails_before = sink.count
            pairs = await prepare(j, REQUESTS + BURST)
            # let the request notifications (one email to each mentor) drain: measure acceptance alone
            deadline = time.monotonic() + WAIT
            while sink.count - emails_before < len(pairs) and time.monotonic() < deadline:
                await asyncio.sleep(0.1)
            await asyncio.sleep(1)
            one_by_one = [await accept_and_time(j, arrivals, p) for p in pairs[:REQUESTS]]
            burst = list(await asyncio.gather(*(accept_and_time(j, arrivals, p) for p in pairs[REQUESTS:])))
        finally:
            await j.close()
        same_one: list[float] = []
        same_burst: list[float] = []
        if not running:
            chain = SameWorkChain(prefix, smtp_port, arrivals)
            base_pairs = [(f"base-{m}", e, r, f"base.{a}") for m, e, r, a in pairs]
            await chain.start(service_dbs, base_pairs)
            try:
                same_one = [await chain.accept(p) for p in base_pairs[:REQUESTS]]
                same_burst = list(await asyncio.gather(*(chain.accept(p) for p in base_pairs[REQUESTS:])))
            finally:
                await chain.stop()
        await arrivals.stop()
        smtp = await smtp_baseline(smtp_port, REQUESTS)
        kafka = await kafka_baseline(REQUESTS)
    finally:
        for p in procs:
            p.stop()
        sink.stop()
        if service_dbs:
            for service, name in service_dbs.items():
                client = raw.mongo(raw.store_uri(service))
                await client.drop_database(name)
                await client.close()
    rows = [
        row("end to end, one at a time", one_by_one),
        row(f"end to end, burst of {BURST} accepts", burst),
    ]
    if same_one:
        rows += [
            row("baseline: same work, raw clients, one at a time", same_one),
            row(f"baseline: same work, raw clients, burst of {BURST}", same_burst),
        ]
    rows += [row("baseline: raw SMTP send to the sink", smtp), row("baseline: raw Kafka produce -> consume", kafka)]
    print_table(("acceptance -> email in the SMTP sink (ms)", "n", "p50", "p99", "max"), rows)

    def ms(values: list[float], p: float) -> float:
        return (statistics.median(values) if p == 50 else pct(values, p)) * 1000

    p99, burst_p99 = ms(one_by_one, 99), ms(burst, 99)
    summary.record(
        "accept -> email, one at a time, p50 (ms)",
        f"{ms(one_by_one, 50):.0f}",
        baseline=f"same work {ms(same_one, 50):.0f}" if same_one else "-",
        ratio=ms(same_one, 50) / ms(one_by_one, 50) if same_one else None,
    )
    summary.record(
        "accept -> email, one at a time, p99 (ms)",
        f"{p99:.0f}",
        baseline=f"same work {ms(same_one, 99):.0f}" if same_one else f"raw SMTP {ms(smtp, 99):.0f}",
        ratio=ms(same_one, 99) / p99 if same_one else None,
        target=f"<= {summary.TARGET_ACCEPT_P99_MS:.0f}",
        met=p99 <= summary.TARGET_ACCEPT_P99_MS,
    )
    summary.record(
        f"accept -> email, burst of {BURST} (all emailed), p99 (ms)",
        f"{burst_p99:.0f}",
        baseline=f"same work {ms(same_burst, 99):.0f}" if same_burst else "-",
        ratio=ms(same_burst, 99) / burst_p99 if same_burst else None,
        target=f"<= {summary.TARGET_BURST_P99_MS:.0f} (burst of 200)",
        met=burst_p99 <= summary.TARGET_BURST_P99_MS if BURST >= 200 else None,
    )


if __name__ == "__main__":
    asyncio.run(main())
