"""Faults at seeded random moments: replicas SIGKILLed and restarted, the broker and the store
SIGKILLed and restarted, poison records planted on the topics. A lag monitor samples every
consumer group's lag, to tell how long the platform took to catch up after each fault."""

from __future__ import annotations

import asyncio
import json
import random
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from aiokafka import AIOKafkaProducer

from mentorship_contracts import Topic
from mentorship_kit.messaging import kafka_client_options

from .. import kafka_ops
from .fleet import Fleet, Replica
from .infra import OwnInfra

LAG_NOISE = 5  # records of lag, over all groups, that steady load keeps in flight anyway


@dataclass
class Fault:
    kind: str  # "kill <service>", "kill broker", "kill store", "poison <kind>"
    target: str
    at: float  # time.time() of the fault
    back_at: float | None = None  # when the component answered again
    lag_before: int | None = None
    recovered_s: float | None = None  # seconds from the fault until lag was back to its level before


@dataclass
class Poison:
    kind: str  # bad-json, unknown-version, handler-failure
    topic: str
    key: bytes
    value: bytes
    planted_at: float
    expect_all_groups: bool  # every group reading the topic dead-letters it (it cannot be decoded)


@dataclass
class LagSample:
    at: float
    total: int | None  # None: the broker did not answer


def poison_records(prefix: str, rng: random.Random, kind: str, pair: tuple[str, str] | None = None) -> Poison:
    tag = uuid.uuid4().hex[:12]
    now = datetime.now(UTC).isoformat()
    if kind == "bad-json":
        topic = rng.choice([Topic.PROFILE, Topic.MATCHING, Topic.SCHEDULING])
        return Poison(
            kind, prefix + topic, f"poison-{tag}".encode(), b'{"type": "broken ' + tag.encode(), time.time(), True
        )
    if kind == "unknown-version":
        # a known type whose payload is of a version nobody knows: it cannot be read as v1
        doc = {
            "id": f"poison-{tag}",
            "type": "mentorship.profile.profile_updated",
            "source": "chaos",
            "subject": f"poison-{tag}",
            "time": now,
            "specversion": "1.0",
            "datacontenttype": "application/json",
            "dataschema": "urn:mentorship:profile.profile_updated:99",
            "dataversion": 99,
            "correlationid": f"poison-{tag}",
            "data": {"person": {"id": f"poison-{tag}"}, "changed": {"v99": True}},
        }
        return Poison(
            kind, prefix + Topic.PROFILE, f"poison-{tag}".encode(), json.dumps(doc).encode(), time.time(), True
        )
    # handler-failure: a valid event between two real people that no handler can take: a session at
    # the very end of year 9999 (its calendar invite's end overflows)
    mentee, mentor = pair or (f"poison-{tag}-mentee", f"poison-{tag}-mentor")
    doc = {
        "id": f"poison-{tag}",
        "type": "mentorship.scheduling.session_scheduled",
        "source": "scheduling",
        "subject": f"poison-{tag}",
        "time": now,
        "specversion": "1.0",
        "datacontenttype": "application/json",
        "dataschema": "urn:mentorship:events:mentorship.scheduling.session_scheduled:v1",
        "dataversion": 1,
        "correlationid": f"poison-{tag}",
        "data": {
            "mentorship_id": f"poison-{tag}",
            "session_id": f"poison-{tag}",
            "mentor_id": mentor,
            "mentee_id": mentee,
            "ical_uid": f"poison-{tag}",
            "sequence": 0,
            "start": "9999-12-31T23:00:00+00:00",
            "duration_minutes": 480,
            "scheduled_by": mentee,
        },
    }
    return Poison(
        kind, prefix + Topic.SCHEDULING, f"poison-{tag}".encode(), json.dumps(doc).encode(), time.time(), False
    )


@dataclass
class Chaos:
    infra: OwnInfra
    fleet: Fleet
    prefix: str
    seed: int
    faults: list[Fault] = field(default_factory=list)
    poisons: list[Poison] = field(default_factory=list)
    lag: list[LagSample] = field(default_factory=list)
    kills: Counter[str] = field(default_factory=Counter)
    restarts: Counter[str] = field(default_factory=Counter)
    problems: list[str] = field(default_factory=list)
    allowed: tuple[str, ...] = ("replica", "broker", "store", "poison", "inflight")
    pick_pair: Any = None  # () -> (mentee id, mentor id) of two real people, for the handler-failure poison

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed * 7919 + 1)
        self._stop = asyncio.Event()
        self._pending: set[asyncio.Task[None]] = set()

    # --- the lag monitor -------------------------------------------------------------------------
    async def total_lag(self) -> int | None:
        try:
            lags = await asyncio.wait_for(kafka_ops.group_lags(self.infra.kafka, self.prefix), 20)
        except Exception:
            return None
        return sum(g.lag for g in lags)

    async def monitor(self, every: float = 2.0) -> None:
        while not self._stop.is_set():
            self.lag.append(LagSample(time.time(), await self.total_lag()))
            try:
                await asyncio.wait_for(self._stop.wait(), every)
            except TimeoutError:
                pass

    def settle_recoveries(self, drained_at: float | None) -> None:
        """For each fault: seconds until the first sample whose lag is at or below the level sampled
        just before it (or LAG_NOISE, what a loaded platform carries anyway); the drain at the end
        counts if nothing earlier."""
        for fault in self.faults:
            before = [s for s in self.lag if s.at <= fault.at and s.total is not None]
            fault.lag_before = before[-1].total if before else 0
            start = fault.back_at or fault.at
            after = [s for s in self.lag if s.at > start and s.total is not None]
            level = max(fault.lag_before or 0, LAG_NOISE)
            hit = next((s for s in after if s.total is not None and s.total <= level), None)
            if hit is not None:
                fault.recovered_s = hit.at - fault.at
            elif drained_at is not None:
                fault.recovered_s = drained_at - fault.at

    # --- faults ----------------------------------------------------------------------------------
    async def kill_replica(self) -> None:
        # one replica at a time per service: the other keeps serving (why operators run two)
        up = [r for r in self.fleet.all() if r.up]
        candidates = [r for r in up if sum(o.service == r.service for o in up) >= 2]
        if not candidates:
            return
        replica: Replica = self.rng.choice(candidates)
        fault = Fault(f"kill {replica.service}", replica.label, time.time())
        self.faults.append(fault)
        self.fleet.kill(replica)
        self.kills[replica.service] += 1
        self._spawn(self._back(replica, fault, self.rng.uniform(2, 12)))

    async def kill_at(self, url: str) -> None:
        """SIGKILL the replica serving at `url` (an in-flight crash); it is restarted a moment later."""
        replica = next((r for r in self.fleet.all() if r.url == url), None)
        if replica is None or not replica.up:
            return
        fault = Fault(f"kill {replica.service} in flight", replica.label, time.time())
        self.faults.append(fault)
        self.fleet.kill(replica)
        self.kills[replica.service] += 1
        self._spawn(self._back(replica, fault, self.rng.uniform(2, 8)))

    async def _back(self, replica: Replica, fault: Fault, after: float) -> None:
        await asyncio.sleep(after)
        try:
            await self.fleet.restart(replica)
            self.restarts[replica.service] += 1
            fault.back_at = time.time()
        except Exception as exc:
            self.problems.append(f"{replica.label} did not come back: {exc}"[:400])

    async def kill_infra(self, name: str) -> None:
        label = "broker" if name == "kafka" else "store"
        fault = Fault(f"kill {label}", name, time.time())
        self.faults.append(fault)
        self.infra.kill(name)
        self.kills[label] += 1
        await asyncio.sleep(self.rng.uniform(3, 12))
        try:
            await asyncio.to_thread(self.infra.restart, name)
            self.restarts[label] += 1
            fault.back_at = time.time()
        except Exception as exc:
            self.problems.append(f"{label} did not come back: {exc}"[:400])

    async def plant(self, kind: str) -> None:
        pair = self.pick_pair() if self.pick_pair is not None else None
        poison = poison_records(self.prefix, self.rng, kind, pair)
        producer = AIOKafkaProducer(bootstrap_servers=self.infra.kafka, **kafka_client_options())
        try:
            await producer.start()
            await producer.send_and_wait(poison.topic, poison.value, key=poison.key)
        except Exception as exc:
            self.problems.append(f"poison {kind} not planted: {exc!r}"[:200])
            return
        finally:
            await producer.stop()
        poison.planted_at = time.time()
        self.poisons.append(poison)
        self.faults.append(Fault(f"poison {kind}", poison.topic, poison.planted_at, back_at=poison.planted_at))

    def _spawn(self, coro: Any) -> None:
        task = asyncio.create_task(coro)
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    def plan(self, duration: float) -> list[tuple[float, str]]:
        """Seeded moments (seconds into the load) and what happens then."""
        plan: list[tuple[float, str]] = []
        start, end = duration * 0.12, duration * 0.85
        n_replica = max(2, int(duration / 25))
        for _ in range(n_replica):
            plan.append((self.rng.uniform(start, end), "replica"))
        for kind in ("bad-json", "unknown-version", "handler-failure"):
            plan.append((self.rng.uniform(start, end), f"poison {kind}"))
        broker_kills = 1 if duration < 200 else 2
        for i in range(broker_kills):
            lo = start + (end - start) * i / broker_kills
            plan.append((self.rng.uniform(lo, lo + (end - start) / broker_kills * 0.6), "broker"))
        store_kills = 1 if duration < 200 else 2
        for i in range(store_kills):
            lo = start + (end - start) * i / store_kills
            plan.append((self.rng.uniform(lo, lo + (end - start) / store_kills * 0.6), "store"))
        return sorted(p for p in plan if p[1].split()[0] in self.allowed)

    async def run(self, duration: float) -> None:
        began = time.monotonic()
        for at, what in self.plan(duration):
            delay = at - (time.monotonic() - began)
            if delay > 0:
                try:
                    await asyncio.wait_for(self._stop.wait(), delay)
                    break
                except TimeoutError:
                    pass
            if what == "replica":
                await self.kill_replica()
            elif what == "broker":
                await self.kill_infra("kafka")
            elif what == "store":
                await self.kill_infra("ferretdb")
            else:
                await self.plant(what.split()[1])

    async def stop(self) -> None:
        """No new faults; every killed component back."""
        self._stop.set()
        if self._pending:
            await asyncio.gather(*self._pending, return_exceptions=True)
        for name in ("kafka", "ferretdb"):
            if not self.infra.alive(name):
                await asyncio.to_thread(self.infra.restart, name)
        for replica in self.fleet.all():
            if not replica.up:
                await self.fleet.restart(replica)
