"""Durable timers: documents with a due time, claimed with a find-one-and-update lease.

Firing is one conditional single-document write on the timer (state pending -> fired, only
by the replica holding the lease) that also carries the events the timer causes, through
the outbox. So a timer fires exactly once even when several replicas poll, and one that a
crashed replica had claimed fires after its lease runs out.

A timer whose handler keeps failing is given up after its attempts (state `failed`, with its
last error). `Timers.revive` puts it back to pending after a growing backoff, a bounded number
of times (a reconciler decides when); an operator can re-drive one past that bound. A revived
timer is the same document: it still fires at most once.

`JobLease` is the same lease idea for a periodic background job that one replica at a time
should run (a reconciler): whoever holds the lease document runs the pass.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import structlog
from opentelemetry.trace import SpanKind
from prometheus_client import Counter
from pymongo import ASCENDING, IndexModel, ReturnDocument
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from mentorship_contracts import Envelope

from .clock import Clock
from .metrics import REGISTRY, TIMERS_FAILED, TIMERS_FIRED
from .mongo import Indexes
from .outbox import with_events
from .tracing import record_failure, tracer

TIMERS = "timers"
JOB_LEASES = "job_leases"
log = structlog.get_logger()

TIMERS_REVIVED = Counter(
    "mentorship_timers_revived_total",
    "Failed timers put back to pending (by=reconciler within its bound, by=operator on request)",
    ["service", "kind", "by"],
    registry=REGISTRY,
)

# A timer handler gets the timer document and the current time and returns the events
# to emit (possibly none). It may also make its own conditional updates.
TimerHandler = Callable[[dict[str, Any], datetime], Awaitable[Sequence[Envelope[Any]]]]


def timer_indexes() -> Indexes:
    return Indexes(
        TIMERS,
        (
            IndexModel([("state", ASCENDING), ("due_at", ASCENDING)], name="due"),
            IndexModel([("group", ASCENDING)], name="group"),
        ),
    )


class Timers:
    def __init__(self, db: AsyncDatabase[dict[str, Any]], clock: Clock, *, lease_seconds: float = 30.0) -> None:
        self.db = db
        self.clock = clock
        self.lease = timedelta(seconds=lease_seconds)
        self.owner = uuid.uuid4().hex

    async def schedule(
        self, timer_id: str, kind: str, due_at: datetime, payload: dict[str, Any], *, group: str | None = None
    ) -> None:
        """Create or move a pending timer (a fired one stays fired)."""
        await self.db[TIMERS].update_one(
            {"_id": timer_id, "state": {"$in": ["pending", "cancelled"]}},
            {
                "$set": {
                    "kind": kind,
                    "due_at": due_at,
                    "payload": payload,
                    "group": group,
                    "state": "pending",
                    "lease_until": None,
                }
            },
            upsert=False,
        )
        if not await self.db[TIMERS].find_one({"_id": timer_id}, {"_id": 1}):
            with contextlib.suppress(DuplicateKeyError):  # a concurrent schedule of the same id won
                await self.db[TIMERS].insert_one(
                    {
                        "_id": timer_id,
                        "kind": kind,
                        "due_at": due_at,
                        "payload": payload,
                        "group": group,
                        "state": "pending",
                        "lease_until": None,
                        "outbox": [],
                        "outbox_seq": 0,
                        "outbox_pending": False,
                    }
                )

    async def all_planned(self, timer_ids: Sequence[str], *, revivable: bool = False) -> bool:
        """Whether each of these timers is pending or has fired (none missing or cancelled);
        with `revivable`, a failed one counts too (planning cannot help it: `revive` does)."""
        planned = ("pending", "fired", "failed") if revivable else ("pending", "fired")
        for timer_id in timer_ids:
            doc = await self.db[TIMERS].find_one({"_id": timer_id}, {"state": 1})
            if doc is None or doc["state"] not in planned:
                return False
        return True

    async def cancel(self, timer_id: str) -> bool:
        res = await self.db[TIMERS].update_one({"_id": timer_id, "state": "pending"}, {"$set": {"state": "cancelled"}})
        return res.modified_count == 1

    async def cancel_group(self, group: str) -> int:
        res = await self.db[TIMERS].update_many({"group": group, "state": "pending"}, {"$set": {"state": "cancelled"}})
        return res.modified_count

    async def due_ids(self, batch: int = 200) -> list[str]:
        """Ids of due timers, oldest first (one query; each claim is then a lookup by _id)."""
        cursor = (
            self.db[TIMERS]
            .find({"state": "pending", "due_at": {"$lte": self.clock.now()}}, {"_id": 1})
            .sort("due_at", ASCENDING)
            .limit(batch)
        )
        return [doc["_id"] async for doc in cursor]

    async def overdue(self) -> tuple[int, float]:
        """How many pending timers are past their due time, and how late the oldest of them is (s)."""
        now = self.clock.now()
        due = {"state": "pending", "due_at": {"$lte": now}}
        count = await self.db[TIMERS].count_documents(due)
        if not count:
            return 0, 0.0
        oldest = await self.db[TIMERS].find_one(due, {"due_at": 1}, sort=[("due_at", ASCENDING)])
        if oldest is None:
            return count, 0.0
        due_at = oldest["due_at"]
        if due_at.tzinfo is None:
            due_at = due_at.replace(tzinfo=UTC)  # the store hands back naive UTC datetimes
        return count, max((now - due_at).total_seconds(), 0.0)

    async def claim(self, timer_id: str) -> dict[str, Any] | None:
        """Take a lease on one due timer, unless another replica holds a live lease on it."""
        now = self.clock.now()
        return await self.db[TIMERS].find_one_and_update(
            {
                "_id": timer_id,
                "state": "pending",
                "due_at": {"$lte": now},
                "$or": [{"lease_until": None}, {"lease_until": {"$lt": now}}],
            },
            {"$set": {"lease_until": now + self.lease, "owner": self.owner}},
            return_document=ReturnDocument.AFTER,
        )

    async def failed_attempt(self, timer: dict[str, Any], error: str, *, max_attempts: int) -> bool:
        """Record a handler failure; retried after the lease runs out, given up after max_attempts.
        Returns True when the timer was given up (state `failed`, kept with its last error)."""
        attempts = int(timer.get("attempts", 0)) + 1
        give_up = attempts >= max_attempts
        update: dict[str, Any] = {"$set": {"attempts": attempts, "last_error": error[:1000]}}
        if give_up:
            update["$set"].update(state="failed", failed_at=self.clock.now())
        await self.db[TIMERS].update_one(
            {"_id": timer["_id"], "state": "pending", "owner": self.owner, "lease_until": timer["lease_until"]},
            update,
        )
        return give_up

    async def failed(
        self, *, kinds: Sequence[str] = (), revivals_below: int | None = None, limit: int = 100
    ) -> list[dict[str, Any]]:
        """Timers given up after their attempts (oldest first), without their outbox; with
        `revivals_below`, only those revived fewer times than that (still revivable)."""
        query: dict[str, Any] = {"state": "failed"}
        if kinds:
            query["kind"] = {"$in": list(kinds)}
        if revivals_below is not None:
            query["$or"] = [{"revivals": {"$exists": False}}, {"revivals": {"$lt": revivals_below}}]
        cursor = self.db[TIMERS].find(query, {"outbox": 0}).sort("due_at", ASCENDING).limit(limit)
        return [doc async for doc in cursor]

    async def revive(
        self, timer_id: str, *, max_revivals: int, backoff: timedelta, force: bool = False
    ) -> dict[str, Any] | None:
        """Put a failed timer back to pending with fresh attempts, due after `backoff` doubled per
        earlier revival; at most `max_revivals` times unless `force` (an operator's re-drive).
        Returns the revived timer, None when it is not failed or its revivals are used up.

        Only a `failed` timer is touched, and the write is conditional on the revival count read,
        so two replicas reviving at once revive it once; it fires at most once all the same (firing
        needs the pending state and the firing replica's lease)."""
        doc = await self.db[TIMERS].find_one({"_id": timer_id, "state": "failed"}, {"outbox": 0})
        if doc is None:
            return None
        revivals = int(doc.get("revivals") or 0)
        if revivals >= max_revivals and not force:
            return None
        now = self.clock.now()
        due_at = now + backoff * (2 ** min(revivals, 16))
        same_count: dict[str, Any] = (
            {"revivals": revivals} if revivals else {"$or": [{"revivals": {"$exists": False}}, {"revivals": 0}]}
        )
        res = await self.db[TIMERS].update_one(
            {"_id": timer_id, "state": "failed", **same_count},
            {
                "$set": {
                    "state": "pending",
                    "attempts": 0,
                    "lease_until": None,
                    "due_at": due_at,
                    "revivals": revivals + 1,
                    "revived_at": now,
                }
            },
        )
        if res.modified_count != 1:
            return None
        return {**doc, "state": "pending", "due_at": due_at, "revivals": revivals + 1}

    async def fire(self, timer: dict[str, Any], events: Sequence[Envelope[Any]]) -> bool:
        """Mark fired with its events, only if this replica still holds the lease."""
        res = await self.db[TIMERS].update_one(
            {"_id": timer["_id"], "state": "pending", "owner": self.owner, "lease_until": timer["lease_until"]},
            with_events({"$set": {"state": "fired", "fired_at": self.clock.now(), "fired_by": self.owner}}, events),
        )
        return res.modified_count == 1


class JobLease:
    """One replica at a time runs a periodic job: the holder of a lease document (`job_leases`,
    `_id` = the job's name) with an expiry. Taking it is an insert (first time) or a conditional
    find-one-and-update on an expired or own lease: atomic on the store, so two replicas never
    both hold it. A holder that dies stops renewing; another takes over once the lease lapses."""

    def __init__(
        self, db: AsyncDatabase[dict[str, Any]], clock: Clock, name: str, *, lease_seconds: float, owner: str = ""
    ) -> None:
        self.collection = db[JOB_LEASES]
        self.clock = clock
        self.name = name
        self.lease = timedelta(seconds=lease_seconds)
        self.owner = owner or uuid.uuid4().hex

    async def hold(self) -> bool:
        """Take or renew the lease; False while another replica holds a live one."""
        now = self.clock.now()
        try:
            await self.collection.insert_one({"_id": self.name, "owner": self.owner, "until": now + self.lease})
            return True
        except DuplicateKeyError:
            pass
        taken = await self.collection.find_one_and_update(
            {"_id": self.name, "$or": [{"owner": self.owner}, {"until": {"$lt": now}}]},
            {"$set": {"owner": self.owner, "until": now + self.lease}},
            return_document=ReturnDocument.AFTER,
        )
        return taken is not None

    async def release(self) -> None:
        """Let another replica take over at once (graceful shutdown)."""
        await self.collection.delete_one({"_id": self.name, "owner": self.owner})


class TimerLoop:
    """Polls for due timers and fires them through their kind's handler."""

    def __init__(
        self,
        timers: Timers,
        handlers: Mapping[str, TimerHandler],
        *,
        service: str,
        poll_interval: float = 0.5,
        on_fired: Callable[[], None] = lambda: None,
        max_attempts: int = 5,
    ) -> None:
        self.timers = timers
        self.handlers = dict(handlers)
        self.service = service
        self.poll_interval = poll_interval
        self.on_fired = on_fired
        self.max_attempts = max_attempts  # a failing handler is retried after each lease, then given up
        self._stopping = False

    async def run(self) -> None:
        while not self._stopping:
            try:
                fired = await self.run_due()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("timer pass failed", error=repr(exc)[:500])
                fired = 0
            if not fired:
                await asyncio.sleep(self.poll_interval)

    def stop(self) -> None:
        self._stopping = True

    async def run_due(self, limit: int = 1000) -> int:
        fired = 0
        while fired < limit and not self._stopping:
            candidates = await self.timers.due_ids()
            claimed_any = False
            for timer_id in candidates:
                if self._stopping or fired >= limit:
                    break
                timer = await self.timers.claim(timer_id)
                if timer is None:
                    continue  # fired or leased by another replica meanwhile
                claimed_any = True
                handler = self.handlers.get(timer["kind"])
                if handler is None:
                    log.error("no handler for timer kind", kind=timer["kind"], timer_id=timer["_id"])
                    await self.timers.cancel(timer["_id"])
                    continue
                if await self._fire(timer, handler):
                    fired += 1
            if not claimed_any:
                break
        return fired

    async def _fire(self, timer: dict[str, Any], handler: TimerHandler) -> bool:
        """Run one claimed timer's handler and record it fired with its events, in a span of its own
        (the events it causes start their trace there)."""
        with tracer().start_as_current_span(
            f"timer {timer['kind']}",
            kind=SpanKind.INTERNAL,
            attributes={"mentorship.timer.kind": str(timer["kind"]), "mentorship.timer.id": str(timer["_id"])[:128]},
        ) as span:
            try:
                events = await handler(timer, self.timers.clock.now())
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # one bad timer must not stall the others
                record_failure(span, exc)
                gave_up = await self.timers.failed_attempt(timer, repr(exc), max_attempts=self.max_attempts)
                log.error(
                    "timer handler failed",
                    kind=timer["kind"],
                    timer_id=timer["_id"],
                    error=repr(exc)[:300],
                    gave_up=gave_up,
                )
                TIMERS_FAILED.labels(self.service, timer["kind"]).inc()
                return False
            if not await self.timers.fire(timer, events):
                span.set_attribute("mentorship.timer.lost_lease", True)
                return False
            TIMERS_FIRED.labels(self.service, timer["kind"]).inc()
            self.on_fired()
            return True
