"""One chaos run: own infrastructure, two replicas of every service, load and faults, drain, checks,
one table. `run_chaos(...)` returns the findings (the CLI and the test read them)."""

from __future__ import annotations

import asyncio
import logging
import shutil
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

from mentorship_kit.auth import issue_token

from ..support import SmtpSink, print_table
from .faults import Chaos
from .fleet import LEASE_HOURS, REPAIR_SECONDS, Fleet
from .infra import OwnInfra
from .invariants import Findings, check, database
from .load import Load
from .receiver import WebhookReceiver

JWT_SECRET = "chaos-run-secret-0123456789-abcdefghij"  # noqa: S105 (the run's own throwaway platform)


@dataclass
class Outcome:
    findings: Findings
    duration: float
    requests: int
    kills: dict[str, int]
    restarts: dict[str, int]
    recoveries: list[tuple[str, str, float | None]]
    drain_seconds: float | None
    problems: list[str] = field(default_factory=list)
    load_errors: dict[str, int] = field(default_factory=dict)
    state_dir: str = ""
    load: dict[str, int] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.findings.violations == 0 and not self.problems and self.drain_seconds is not None


async def drained(chaos: Chaos, mongo: str, prefix: str, services: list[str], timeout: float) -> float | None:
    """Seconds until every group is at lag 0 and no outbox has pending entries, twice in a row."""
    from pymongo import AsyncMongoClient

    started = time.monotonic()
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(mongo, tz_aware=True)
    steady = 0
    try:
        while time.monotonic() - started < timeout:
            lag = await chaos.total_lag()
            pending = 0
            for service in services:
                db = client[database(prefix, service)]
                for name in await db.list_collection_names():
                    pending += await db[name].count_documents({"outbox_pending": True})
                due = {"state": "pending", "due_at": {"$lte": chaos.fleet.now()}}
                pending += await db["timers"].count_documents(due)
            deliveries = client[database(prefix, "notification")]["deliveries"]
            pending += await deliveries.count_documents({"state": {"$in": ["pending", "sending"]}})
            steady = steady + 1 if lag == 0 and pending == 0 else 0
            if steady >= 3:
                return time.monotonic() - started
            await asyncio.sleep(2)
    finally:
        await client.close()
    return None


async def run_chaos(
    *,
    duration: float = 300.0,
    seed: int = 1,
    state_dir: Path | None = None,
    faults: tuple[str, ...] = ("replica", "broker", "store", "poison", "inflight"),
    workers: int = 3,
    clock_every: float = 15.0,
    clock_hours: tuple[int, ...] = (30, 40, 50),
    keep: bool = False,
    log: Any = print,
) -> Outcome:
    # the broker is killed on purpose: aiokafka's connection errors meanwhile are expected noise
    logging.getLogger("aiokafka").setLevel(logging.CRITICAL)
    own_dir = state_dir is None
    root = state_dir or Path(tempfile.mkdtemp(prefix="mentorship-chaos-"))
    root.mkdir(parents=True, exist_ok=True)
    prefix = f"chaos{uuid.uuid4().hex[:6]}."
    infra = OwnInfra(root / "infra")
    sink = SmtpSink().start()
    receiver = WebhookReceiver().start()
    fleet: Fleet | None = None
    try:
        t0 = time.monotonic()
        log(f"[chaos] starting Kafka and the store in {root / 'infra'}")
        await asyncio.to_thread(infra.start)
        fleet = Fleet(
            kafka=infra.kafka,
            mongo=infra.mongo,
            prefix=prefix,
            jwt_secret=JWT_SECRET,
            logs=root / "logs",
            smtp_port=sink.port,
            admin_token=issue_token(JWT_SECRET, f"c{seed}-admin", ["admin"]),
        )
        log("[chaos] starting two replicas of every service")
        await fleet.start()
        log(f"[chaos] platform up in {time.monotonic() - t0:.0f} s; load and faults for {duration:.0f} s (seed {seed})")
        load = Load(fleet, seed=seed, jwt_secret=JWT_SECRET, webhook_url=receiver.url, workers=workers)
        chaos = Chaos(infra, fleet, prefix, seed, allowed=faults, pick_pair=load.pick_pair)
        if "inflight" in faults:
            load.crash = chaos.kill_at
        monitor = asyncio.create_task(chaos.monitor())
        began = time.monotonic()
        injector = asyncio.create_task(chaos.run(duration))
        await load.run(duration, clock_every=clock_every, clock_hours=clock_hours)
        injector.cancel()
        await asyncio.gather(injector, return_exceptions=True)
        log("[chaos] load stopped; bringing back whatever is down")
        await chaos.stop()
        # Time passes after the run: leases taken by replicas that died lapse (they are longer than
        # a clock step, see Fleet.settings), and what fell due fires.
        await fleet.advance(timedelta(hours=LEASE_HOURS + 12))
        if "inflight" in faults:
            log(f"[chaos] {REPAIR_SECONDS} s for takeovers and the claims reconciler")
            await asyncio.sleep(REPAIR_SECONDS)
        ran = time.monotonic() - began
        log("[chaos] waiting for the lag to drain")
        drain = await drained(chaos, infra.mongo, prefix, list(fleet.services), timeout=240)
        drained_at = time.time() if drain is not None else None
        chaos._stop.set()
        await monitor
        chaos.settle_recoveries(drained_at)
        log("[chaos] checking the invariants")
        findings = await check(
            load=load,
            chaos=chaos,
            sink=sink,
            receiver=receiver,
            kafka=infra.kafka,
            mongo=infra.mongo,
            prefix=prefix,
            final_clock=fleet.now(),
        )
        await load.close()
        outcome = Outcome(
            findings=findings,
            duration=ran,
            requests=load.ledger.total_requests,
            kills=dict(chaos.kills),
            restarts=dict(chaos.restarts),
            recoveries=[(fl.kind, fl.target, fl.recovered_s) for fl in chaos.faults],
            drain_seconds=drain,
            problems=chaos.problems,
            load_errors=dict(load.ledger.errors),
            state_dir=str(root),
            load={
                "people": len(load.ledger.people),
                "erased": len(load.ledger.erased),
                "accepted": len(load.ledger.accepted),
                "declined": len(load.ledger.declined),
                "sessions": len(load.ledger.sessions),
                "cancelled": len(load.ledger.cancelled),
                "completed": len(load.ledger.completed),
                "crashed_starts": sum(r.crashed_starts for r in fleet.all()),
                **{f"inflight {k}": v for k, v in load.ledger.inflight.items()},
            },
        )
        if drain is None:
            outcome.problems.append("the lag did not drain within 240 s of the load's end")
        return outcome
    finally:
        if fleet is not None:
            await asyncio.to_thread(fleet.stop)
        await asyncio.to_thread(infra.stop)
        sink.stop()
        receiver.stop()
        if own_dir and not keep:
            shutil.rmtree(root, ignore_errors=True)


def print_outcome(o: Outcome) -> None:
    f = o.findings
    rows: list[list[object]] = [
        ["duration (load and faults)", f"{o.duration:.0f} s"],
        ["requests", o.requests],
        ["events", f.figures.get("events", 0)],
        ["republished, absorbed by consumers", f.figures.get("republished (absorbed)", 0)],
        ["cohort publishes", f.figures.get("publishes", 0)],
        ["reminders / check-ins fired", f"{f.figures.get('reminders', 0)} / {f.figures.get('check-ins', 0)}"],
        ["reminders moot (session held before its timer ran)", f.figures.get("reminders moot (session held first)", 0)],
        ["emails / webhook deliveries", f"{f.figures.get('emails', 0)} / {f.figures.get('webhooks', 0)}"],
        ["2xx promises checked", f.figures.get("promises checked", 0)],
        ["people / erased", f"{o.load.get('people', 0)} / {o.load.get('erased', 0)}"],
        ["requests accepted / declined", f"{o.load.get('accepted', 0)} / {o.load.get('declined', 0)}"],
        [
            "sessions booked / cancelled / held",
            f"{o.load.get('sessions', 0)} / {o.load.get('cancelled', 0)} / {o.load.get('completed', 0)}",
        ],
    ]
    for component in sorted(set(o.kills) | set(o.restarts)):
        rows.append([f"kills / restarts: {component}", f"{o.kills.get(component, 0)} / {o.restarts.get(component, 0)}"])
    rows.append(["starts that exited before ready (started again)", o.load.get("crashed_starts", 0)])
    inflight = {k.removeprefix("inflight "): v for k, v in o.load.items() if k.startswith("inflight ")}
    if inflight:
        rows.append(["replica killed in flight", ", ".join(f"{k} {v}" for k, v in sorted(inflight.items()))])
    rows += [
        ["duplicates (must be 0)", sum(f.duplicates.values())],
        ["lost (must be 0)", sum(f.lost.values())],
        ["other violations (must be 0)", sum(f.other.values())],
        ["at-least-once window (documented)", sum(f.window.values())],
        [
            "dead letters planted / found",
            f"{f.figures.get('dead letters planted', 0)} / {f.figures.get('dead letters found', 0)}",
        ],
        ["lag drained after the load", f"{o.drain_seconds:.0f} s" if o.drain_seconds is not None else "NO"],
    ]
    print_table(["chaos run", "figure"], rows, title="Chaos run")
    recoveries = [[kind, target, f"{s:.0f} s" if s is not None else "never"] for kind, target, s in o.recoveries]
    if recoveries:
        print_table(["fault", "target", "lag back"], recoveries, title="Time for the lag to return after each fault")
    if f.details or o.problems or o.load_errors:
        print("\nViolations and problems:")
        for line in [*f.details, *o.problems]:
            print(f"  - {line}")
        for what, n in sorted(o.load_errors.items()):
            print(f"  - load: {what} (x{n})")
    print(f"\n{'OK' if o.ok else 'FAILED'}: {f.violations} violation(s)")
