"""Issue 12's proof: after an erase, nothing of the person is readable anywhere.

The five services run as their own processes on the real broker and store. Ada (a mentee) builds a
full history: a profile with goals, a request with a message, an accepted mentorship, an
introduction, a session with an agenda, held with notes and rated with a comment, a milestone,
emails and in-app messages to her mentor, webhook deliveries about all of it. Bob has a mentorship
with the same mentor. Then Ada is erased, and:

- every string of every document of every collection of the five databases is read: none holds
  her name, email, job title, goals or any text she wrote;
- `profile.state` is compacted (the test's state topics roll a segment every second and may be
  compacted at once; a later record rolls the segment that holds the tombstone), then every topic
  of the platform and every dead-letter topic is read from the start: no record value, key or
  header holds any of it;
- Bob's, Grace's and Alan's data are intact, and the journey goes on (Grace books Bob's next session);
- every consumer of profile data is rebuilt (`mentorship replay SERVICE --rebuild`: read models
  emptied, every topic replayed from the start): everyone but Ada is back, with their names, and
  no database holds anything of Ada.
"""

from __future__ import annotations

import argparse
import asyncio
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient
from pymongo import AsyncMongoClient

from mentorship_contracts import Topic
from mentorship_ops.cli import cmd_replay
from mentorship_ops.support import ServiceProcess, SmtpSink, TopicReader, free_port
from tests.support.infra import Infra
from tests.support.kafka import eventually
from tests.support.processes import service_env, token
from tests.support.scan import found_in, outboxes_drained

pytestmark = pytest.mark.e2e

SERVICES = ("profile", "matching", "scheduling", "notification", "insights")
CONSUMERS = ("matching", "scheduling", "notification", "insights")
ADMIN = token("admin-1", "admin")
# State topics roll a segment every second and may be compacted at once; the broker's log cleaner
# looks for work every ~15 s (log.cleaner.backoff.ms).
STATE_TOPIC_CONFIGS = "segment.ms=1000,min.compaction.lag.ms=0,min.cleanable.dirty.ratio=0.01"

RUN = uuid.uuid4().hex[:6]
ADA, GRACE, BOB, ALAN = (f"{name}-{RUN}" for name in ("ada", "grace", "bob", "alan"))
NAME, EMAIL = "Ada Lovelace", f"ada.lovelace.{RUN}@example.org"
PROFILE_DATA = {
    "job_title": "Analytical Engine Designer",
    "department": "Difference Engines",
    "goal": "Speak calmly at the quarterly review",
    "goal_detail": "Without reading from the cue cards",
}
# What Ada wrote (free text): none of it mentions her name, so each kind of leak is told apart.
FREE_TEXT = {
    "request": "I keep freezing in front of the board",
    "introduction": "She wants to learn about compilers from you",
    "agenda": "Rehearse the punch card pitch",
    "notes": "We practised breathing before the slides",
    "feedback": "Grace made the punch card idea click",
    "milestone": "First talk without the cue cards",
}
PERSONAL = (NAME, "Lovelace", EMAIL, *PROFILE_DATA.values())
FORGOTTEN = (*PERSONAL, *FREE_TEXT.values())


def person(pid: str, name: str, email: str, roles: list[str], **fields: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "profile_id": pid,
        "display_name": name,
        "email": email,
        "roles": roles,
        "time_zone": "Europe/London",
        "skills": [{"name": "python", "proficiency": 4}],
        "development_areas": ["python"],
        "availability": [{"weekday": d, "start": "08:00", "end": "18:00"} for d in range(7)],
        **fields,
    }
    if "mentor" in roles:
        body["mentor_capacity"] = 5
    return body


@dataclass
class Platform:
    infra: Infra
    prefix: str
    logs: Path
    sink: SmtpSink
    processes: dict[str, ServiceProcess]
    http: httpx.AsyncClient
    mongo: AsyncMongoClient[dict[str, Any]]

    def start(self, name: str, generation: int = 0) -> None:
        port = free_port()
        env = service_env(
            name,
            kafka=self.infra.kafka_bootstrap,
            mongo=self.infra.mongodb_uri,
            prefix=self.prefix,
            port=port,
            DEV_CLOCK_ENABLED="true",
            WEBHOOK_ALLOW_LOOPBACK="true",
            SMTP_HOST="127.0.0.1",
            SMTP_PORT=str(self.sink.port),
            KAFKA_STATE_TOPIC_CONFIGS=STATE_TOPIC_CONFIGS,
        )
        self.processes[name] = ServiceProcess(name, port, env, self.logs / f"{name}-{generation}.log")
        self.processes[name].start(timeout=420)  # five at once on a loaded small machine

    def database(self, name: str) -> str:
        return self.processes[name].env["MONGODB_DATABASE"]

    async def call(
        self, service: str, method: str, path: str, who: dict[str, str] = ADMIN, **kw: Any
    ) -> httpx.Response:
        return await self.http.request(method, f"{self.processes[service].url}{path}", headers=who, **kw)

    async def ok(self, service: str, method: str, path: str, who: dict[str, str] = ADMIN, **kw: Any) -> Any:
        r = await self.call(service, method, path, who, **kw)
        assert r.status_code < 300, (service, method, path, r.status_code, r.text)
        return r.json() if r.content else None

    async def stored(self, needles: tuple[str, ...]) -> list[tuple[str, str, str]]:
        """(service, collection, text) of every stored string holding one of the needles."""
        found = []
        for name in SERVICES:
            for collection, text in await found_in(self.mongo[self.database(name)], needles):
                found.append((name, collection, text))
        return found

    async def drained(self) -> bool:
        return all([await outboxes_drained(self.mongo[self.database(name)]) for name in SERVICES])

    async def topics(self) -> list[str]:
        admin = AIOKafkaAdminClient(bootstrap_servers=self.infra.kafka_bootstrap)
        await admin.start()
        try:
            return sorted(t for t in await admin.list_topics() if t.startswith(self.prefix))
        finally:
            await admin.close()

    async def records(self, topics: list[str]) -> list[Any]:
        async with TopicReader(self.infra.kafka_bootstrap, topics) as reader:
            return list(await reader.read_to_end())


def readable(record: Any, needles: tuple[str, ...]) -> list[str]:
    """The needles found in a record's key, value or headers."""
    texts = [record.key or b"", record.value or b"", *(v or b"" for _, v in record.headers or [])]
    blob = b"\n".join(texts).decode("utf-8", "replace")
    return [n for n in needles if n in blob]


@pytest.fixture(scope="module")
async def platform(infra: Infra, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Platform]:
    sink = SmtpSink().start()
    mongo: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(infra.mongodb_uri, tz_aware=True)
    p = Platform(infra, f"e{uuid.uuid4().hex[:10]}.", tmp_path_factory.mktemp("erasure"), sink, {}, None, mongo)  # type: ignore[arg-type]
    try:
        await asyncio.gather(*(asyncio.to_thread(p.start, name) for name in SERVICES))
        async with httpx.AsyncClient(timeout=30) as http:
            p.http = http
            yield p
    finally:
        for proc in p.processes.values():
            proc.stop()
            print(f"--- {proc.name} log (tail) ---\n{proc.tail(40)}")
        sink.stop()
        await mongo.close()


async def build_history(p: Platform) -> dict[str, str]:
    """Ada's full history (and Bob's mentorship with the same mentor), through the public APIs."""
    ada, grace, bob = token(ADA, "mentee"), token(GRACE, "mentor"), token(BOB, "mentee")
    goals = [{"goal_id": "g1", "title": PROFILE_DATA["goal"], "description": PROFILE_DATA["goal_detail"]}]
    people = [
        person(
            ADA,
            NAME,
            EMAIL,
            ["mentee"],
            job_title=PROFILE_DATA["job_title"],
            department=PROFILE_DATA["department"],
            goals=goals,
        ),
        person(GRACE, "Grace Hopper", f"grace.{RUN}@example.org", ["mentor"]),
        person(BOB, "Bob Builder", f"bob.{RUN}@example.org", ["mentee"]),
        person(ALAN, "Alan Turing", f"alan.{RUN}@example.org", ["mentor"]),
    ]
    for body in people:
        await p.ok("profile", "POST", "/profiles", json=body)
    await p.ok(
        "notification", "POST", "/webhooks", json={"url": f"http://127.0.0.1:{free_port()}/hook", "event_types": ["*"]}
    )

    async def known_to_matching() -> bool:
        for pid in (ADA, GRACE, BOB, ALAN):
            if (await p.call("matching", "GET", f"/read-models/profiles/{pid}")).status_code != 200:
                return False
        return True

    await eventually(known_to_matching, timeout=90, interval=0.5)
    ids: dict[str, str] = {}
    r = await p.ok("matching", "POST", "/mentorships", ada, json={"mentor_id": GRACE, "message": FREE_TEXT["request"]})
    ids["ada_mentorship"] = r["mentorship_id"]
    await p.ok("matching", "POST", f"/mentorships/{ids['ada_mentorship']}/accept", grace)
    r = await p.ok("matching", "POST", "/mentorships", bob, json={"mentor_id": GRACE, "message": "Bob asks politely"})
    ids["bob_mentorship"] = r["mentorship_id"]
    await p.ok("matching", "POST", f"/mentorships/{ids['bob_mentorship']}/accept", grace)
    await p.ok(
        "matching",
        "POST",
        f"/mentorships/{ids['ada_mentorship']}/introductions",
        grace,
        json={"contact_id": ALAN, "message": FREE_TEXT["introduction"]},
    )

    mid = ids["ada_mentorship"]

    async def active_in_scheduling(mentorship_id: str) -> bool:
        r = await p.call("scheduling", "GET", f"/mentorships/{mentorship_id}")
        return r.status_code == 200 and r.json()["status"] == "active"

    await eventually(lambda: active_in_scheduling(mid), timeout=90, interval=0.5)
    await eventually(lambda: active_in_scheduling(ids["bob_mentorship"]), timeout=90, interval=0.5)
    now = datetime.fromisoformat((await p.ok("scheduling", "POST", "/_dev/clock", json={"advance_seconds": 0}))["now"])
    start = (now + timedelta(days=1)).replace(hour=10, minute=0, second=0, microsecond=0)
    held = await p.ok(
        "scheduling",
        "POST",
        f"/mentorships/{mid}/sessions",
        ada,
        json={"start": start.isoformat(), "duration_minutes": 30, "agenda": FREE_TEXT["agenda"]},
    )
    upcoming = await p.ok(
        "scheduling",
        "POST",
        f"/mentorships/{mid}/sessions",
        ada,
        json={"start": (start + timedelta(days=7)).isoformat(), "duration_minutes": 30, "agenda": FREE_TEXT["agenda"]},
    )
    ids["upcoming_session"] = upcoming["session_id"]
    await p.ok("scheduling", "POST", "/_dev/clock", json={"advance_seconds": 2 * 86400})
    await p.ok(
        "scheduling", "POST", f"/sessions/{held['session_id']}/complete", ada, json={"notes": FREE_TEXT["notes"]}
    )
    await p.ok(
        "scheduling",
        "POST",
        f"/sessions/{held['session_id']}/feedback",
        ada,
        json={"rating": 5, "comment": FREE_TEXT["feedback"]},
    )
    await p.ok("scheduling", "POST", f"/mentorships/{mid}/milestones", ada, json={"title": FREE_TEXT["milestone"]})

    async def grace_was_told() -> bool:
        r = await p.call("notification", "GET", f"/people/{GRACE}/inbox")
        return r.status_code == 200 and len(r.json()["items"]) >= 3

    await eventually(grace_was_told, timeout=90, interval=0.5)
    await eventually(p.drained, timeout=60, interval=0.5)
    # The history really is there: her name in Grace's inbox and deliveries, her words in the stores.
    assert {service for service, _, _ in await p.stored((NAME, EMAIL))} >= {"profile", "matching", "notification"}
    assert {service for service, _, _ in await p.stored(tuple(FREE_TEXT.values()))} >= {"matching", "scheduling"}
    return ids


async def compact_profile_state(p: Platform) -> None:
    """Roll the segment holding the tombstone (a later record on every partition: an empty value for a
    key nobody has), then wait for the log cleaner to have removed Ada's earlier states."""
    topic = f"{p.prefix}{Topic.PROFILE_STATE}"

    async def compacted() -> bool:
        await asyncio.sleep(1.5)  # past segment.ms: the next record starts a new segment
        async with TopicReader(p.infra.kafka_bootstrap, [topic]) as reader:
            partitions = list(reader.partitions)
            records = await reader.read_to_end()
        producer = AIOKafkaProducer(bootstrap_servers=p.infra.kafka_bootstrap, acks="all")
        await producer.start()
        try:
            for tp in partitions:
                key = f"roll-{uuid.uuid4().hex}".encode()
                await producer.send_and_wait(topic, None, key=key, partition=tp.partition)
        finally:
            await producer.stop()
        return not [r for r in records if r.key == ADA.encode() and r.value is not None]

    await eventually(compacted, timeout=180, interval=5)


async def test_an_erased_person_is_readable_nowhere_and_stays_erased_after_a_rebuild(platform: Platform) -> None:
    p = platform
    ids = await build_history(p)

    assert (await p.call("profile", "DELETE", f"/profiles/{ADA}")).status_code == 204

    # Every database: nothing of Ada (the erasure cascades through the events; wait for it to settle).
    async def nothing_stored() -> bool:
        return await p.drained() and not await p.stored(FORGOTTEN)

    try:
        await eventually(nothing_stored, timeout=120, interval=1)
    except AssertionError:
        pytest.fail(f"still stored after the erase: {await p.stored(FORGOTTEN)}")

    # Every topic and dead-letter topic, read from the start after compacting profile.state.
    await compact_profile_state(p)
    topics = await p.topics()
    assert f"{p.prefix}{Topic.PROFILE_STATE}" in topics and any(t.endswith(".dlt") for t in topics)
    leaks = [
        (r.topic, r.partition, r.offset, found) for r in await p.records(topics) if (found := readable(r, FORGOTTEN))
    ]
    assert leaks == [], leaks

    # The others' data and the journey: Grace and Bob are known everywhere, Bob's mentorship goes on.
    grace_in_matching = await p.ok("matching", "GET", f"/read-models/profiles/{GRACE}")
    assert grace_in_matching["profile"]["display_name"] == "Grace Hopper"
    assert (await p.call("matching", "GET", f"/read-models/profiles/{ADA}")).status_code == 404
    assert (await p.ok("matching", "GET", f"/mentorships/{ids['bob_mentorship']}"))["state"] == "active"
    now = datetime.fromisoformat((await p.ok("scheduling", "POST", "/_dev/clock", json={"advance_seconds": 0}))["now"])
    next_start = (now + timedelta(days=2)).replace(hour=11, minute=0, second=0, microsecond=0)
    booked = await p.ok(
        "scheduling",
        "POST",
        f"/mentorships/{ids['bob_mentorship']}/sessions",
        token(GRACE, "mentor"),
        json={"start": next_start.isoformat(), "duration_minutes": 30},
    )
    assert booked["status"] == "scheduled"
    contacts = p.mongo[p.database("notification")]["contacts"]
    assert (await contacts.find_one({"_id": BOB}))["email"] == f"bob.{RUN}@example.org"

    # A rebuild of every consumer of profile data from the start of every topic (profile.state has
    # everyone's current profile; Ada only as a tombstone): nobody lost, Ada not back.
    for name in CONSUMERS:
        p.processes[name].stop()
    for name in CONSUMERS:
        args = argparse.Namespace(
            service=name,
            database=p.database(name),
            rebuild=True,
            forget_processed=True,
            kafka=p.infra.kafka_bootstrap,
            mongo=p.infra.mongodb_uri,
            prefix=p.prefix,
        )
        assert await cmd_replay(args) == 0
    assert await contacts.count_documents({}) == 0  # really emptied
    await asyncio.gather(*(asyncio.to_thread(p.start, name, 1) for name in CONSUMERS))

    async def everyone_else_back() -> bool:
        for pid, name in ((GRACE, "Grace Hopper"), (BOB, "Bob Builder"), (ALAN, "Alan Turing")):
            r = await p.call("matching", "GET", f"/read-models/profiles/{pid}")
            if r.status_code != 200 or r.json()["profile"]["display_name"] != name:
                return False
            contact = await contacts.find_one({"_id": pid})
            if not contact or contact.get("display_name") != name:
                return False
        return True

    await eventually(everyone_else_back, timeout=120, interval=1)
    await eventually(p.drained, timeout=60, interval=0.5)
    assert (await p.call("matching", "GET", f"/read-models/profiles/{ADA}")).status_code == 404
    assert await p.stored(FORGOTTEN) == []
    leaks = [(r.topic, r.offset, found) for r in await p.records(await p.topics()) if (found := readable(r, FORGOTTEN))]
    assert leaks == [], leaks
