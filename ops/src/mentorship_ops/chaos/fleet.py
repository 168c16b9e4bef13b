"""Two (or more) replicas of every service, each its own process, behind a round-robin balancer that
skips replicas that are down, as a Kubernetes Service skips pods that are not ready. The dev clock
is per process: the fleet keeps one offset and applies it to every replica, including restarted
ones (they start with it, through DEV_CLOCK_OFFSET_SECONDS, and are set to it again when ready)."""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx

from ..connection import SERVICES
from ..support import ServiceProcess, free_port, service_env

# Leases are measured on the (dev) clock of the process. A clock step longer than a lease would
# let another replica take over work that is still in progress (an email being sent), which no
# real clock does; so leases here outlast the largest clock step (Load's clock_hours).
LEASE_HOURS = 60
# After the load: matching's longest lease + claims grace + two reconciler passes (see settings()).
REPAIR_SECONDS = 40


@dataclass
class Replica:
    service: str
    index: int
    process: ServiceProcess
    up: bool = False
    kills: int = 0
    restarts: int = 0
    crashed_starts: int = 0  # starts that exited before ready (then started again, as a kubelet does)

    @property
    def label(self) -> str:
        return f"{self.service}-{self.index}"

    @property
    def url(self) -> str:
        return self.process.url


@dataclass
class Fleet:
    kafka: str
    mongo: str
    prefix: str
    jwt_secret: str
    logs: Path
    smtp_port: int
    replicas_per_service: int = 2
    services: Sequence[str] = SERVICES
    admin_token: str = ""
    clock_offset: timedelta = timedelta(0)
    replicas: dict[str, list[Replica]] = field(default_factory=dict)
    _turn: dict[str, itertools.count[int]] = field(default_factory=dict)
    starting: int = 0  # replicas between launch and a set clock: the clock waits for them

    def settings(self, service: str) -> dict[str, str]:
        extra = dict(
            kafka_topic_partitions="2",
            log_level="WARNING",
            outbox_poll_interval_ms="200",
            timer_poll_interval_ms="300",
            consumer_retry_backoff_ms="100",
            dev_clock_enabled="true",
            # a restarted replica must not run at real time until we set its clock: timer leases
            # compare clocks across replicas
            dev_clock_offset_seconds=str(self.clock_offset.total_seconds()),
            outbox_lease_seconds=str(LEASE_HOURS * 3600),
            timer_lease_seconds=str(LEASE_HOURS * 3600),
        )
        if service == "notification":
            extra.update(
                smtp_host="127.0.0.1",
                smtp_port=str(self.smtp_port),
                smtp_starttls="never",
                webhook_allow_loopback="true",
                delivery_retry_base_seconds="2",
                delivery_retry_max_seconds="10",
                contact_wait_seconds="120",
                delivery_lease_seconds=str(LEASE_HOURS * 3600),
            )
        if service == "scheduling":
            extra.update(reminder_reconcile_seconds="20")
        if service == "matching":
            # Real-time leases and grace (they ignore the dev clock), short enough that a run or a
            # publish whose replica was killed is taken over, and a leaked claim repaired, within
            # REPAIR_SECONDS after the load.
            extra.update(
                cohort_run_lease_seconds="8",
                cohort_run_watch_seconds="2",
                cohort_publish_lease_seconds="10",
                claims_reconcile_seconds="5",
                claims_reconcile_lease_seconds="10",
                claims_grace_seconds="15",
            )
        return extra

    def _process(self, service: str, index: int, port: int | None = None) -> ServiceProcess:
        port = port or free_port()
        env = service_env(
            service,
            kafka=self.kafka,
            mongo=self.mongo,
            prefix=self.prefix,
            port=port,
            jwt_secret=self.jwt_secret,
            **self.settings(service),
        )
        return ServiceProcess(service, port, env, self.logs / f"{service}-{index}.log")

    async def start(self, timeout: float = 240.0) -> None:
        for service in self.services:
            self._turn[service] = itertools.count()
            self.replicas[service] = [
                Replica(service, i, self._process(service, i)) for i in range(self.replicas_per_service)
            ]
        # The first replica of each service creates indexes and topics alone (two creating the same
        # index at once on FerretDB can drop a connection at start); then the others, side by side.
        await asyncio.gather(*(self._bring_up(rs[0], timeout) for rs in self.replicas.values()))
        await asyncio.gather(*(self._bring_up(r, timeout) for rs in self.replicas.values() for r in rs[1:]))

    async def _bring_up(self, replica: Replica, timeout: float) -> None:
        self.starting += 1
        try:
            replica.process.launch()
            await asyncio.to_thread(replica.process.wait_ready, timeout)
            await self._set_clock(replica)
            replica.up = True
        finally:
            self.starting -= 1

    def all(self) -> list[Replica]:
        return [r for rs in self.replicas.values() for r in rs]

    def url(self, service: str) -> str:
        """A replica that is up, in turn (the balancer)."""
        live = [r for r in self.replicas[service] if r.up]
        if not live:
            live = self.replicas[service]  # all down: the caller's retry waits for one
        return live[next(self._turn[service]) % len(live)].url

    def kill(self, replica: Replica) -> None:
        replica.up = False
        replica.process.kill()
        replica.kills += 1

    async def restart(self, replica: Replica, timeout: float = 240.0, patience: float = 420.0) -> None:
        """Same port (a pod keeps its service address), current clock offset. A start that exits
        before it is ready (its store or broker away) is started again with a growing back-off, as
        the kubelet restarts a crashed container."""
        deadline = time.monotonic() + patience
        backoff = 2.0
        while True:
            replica.process = self._process(replica.service, replica.index, replica.process.port)
            try:
                await self._bring_up(replica, timeout)
                break
            except RuntimeError:
                replica.process.kill()
                replica.crashed_starts += 1
                if time.monotonic() + backoff > deadline:
                    raise
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 30.0)
        replica.restarts += 1

    def stop(self) -> None:
        for replica in self.all():
            replica.up = False
            replica.process.stop(timeout=20)

    # --- the dev clock ----------------------------------------------------------------------------
    def now(self) -> datetime:
        return datetime.now(UTC) + self.clock_offset

    async def _set_clock(self, replica: Replica) -> None:
        target = datetime.now(UTC) + self.clock_offset
        async with httpx.AsyncClient(timeout=30) as http:
            for _ in range(20):
                try:
                    r = await http.post(
                        f"{replica.url}/_dev/clock",
                        json={"set_to": target.isoformat()},
                        headers={"authorization": f"Bearer {self.admin_token}"},
                    )
                    if r.status_code == 200:
                        return
                except httpx.HTTPError:
                    pass
                await asyncio.sleep(0.5)

    async def advance(self, delta: timedelta) -> float:
        """Move every live replica's clock by `delta` (as one offset); returns the seconds it took."""
        started = time.monotonic()
        # A replica starting runs on the offset it was launched with until it is ready: moving the
        # others meanwhile would put its clock days behind theirs (leases would lapse in their eyes).
        while self.starting and time.monotonic() - started < 120:  # noqa: ASYNC110 (a count, polled)
            await asyncio.sleep(0.5)
        self.clock_offset += delta
        await asyncio.gather(*(self._set_clock(r) for r in self.all() if r.up))
        return time.monotonic() - started
