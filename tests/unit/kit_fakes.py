"""In-memory stand-ins for the kit's runtime pieces, for fast tests of use cases and consumers.

- `FakeContext`: a `UseCaseContext` whose timers live in a dict and whose clock can be set.
- `MemoryDb`: just enough of a database for the kit's processed-event markers, so a consumer
  registered on a `ServiceRuntime` can run under FastStream's `TestKafkaBroker` without a store.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from pymongo.errors import BulkWriteError, DuplicateKeyError

from mentorship_kit.clock import Clock
from mentorship_kit.runtime import ServiceRuntime
from mentorship_kit.usecase import EventFactory, UseCaseContext


class FakeTimers:
    """The kit's durable timers (`mentorship_kit.timers.Timers`) as a dict: id -> timer."""

    def __init__(self) -> None:
        self.timers: dict[str, dict[str, Any]] = {}

    async def schedule(
        self, timer_id: str, kind: str, due_at: datetime, payload: dict[str, Any], *, group: str | None = None
    ) -> None:
        current = self.timers.get(timer_id)
        if current is not None and current["state"] == "fired":
            return  # a fired timer stays fired
        self.timers[timer_id] = {
            "_id": timer_id,
            "kind": kind,
            "due_at": due_at,
            "payload": payload,
            "group": group,
            "state": "pending",
        }

    async def all_planned(self, timer_ids: Sequence[str], *, revivable: bool = False) -> bool:
        planned = ("pending", "fired", "failed") if revivable else ("pending", "fired")
        return all(self.timers.get(t, {}).get("state") in planned for t in timer_ids)

    async def failed(
        self, *, kinds: Sequence[str] = (), revivals_below: int | None = None, limit: int = 100
    ) -> list[dict[str, Any]]:
        found = [
            t
            for t in self.timers.values()
            if t["state"] == "failed"
            and (not kinds or t["kind"] in kinds)
            and (revivals_below is None or t.get("revivals", 0) < revivals_below)
        ]
        return found[:limit]

    async def cancel(self, timer_id: str) -> bool:
        timer = self.timers.get(timer_id)
        if timer is None or timer["state"] != "pending":
            return False
        timer["state"] = "cancelled"
        return True

    async def cancel_group(self, group: str) -> int:
        pending = [t for t in self.timers.values() if t["group"] == group and t["state"] == "pending"]
        for timer in pending:
            timer["state"] = "cancelled"
        return len(pending)

    def pending(self, kind: str | None = None) -> list[dict[str, Any]]:
        return [t for t in self.timers.values() if t["state"] == "pending" and kind in (None, t["kind"])]


class FakeContext:
    """What `ServiceRuntime.context()` gives a service, in memory; `written` counts relay wake-ups."""

    def __init__(self, source: str, now: datetime | None = None) -> None:
        self.clock = Clock()
        if now is not None:
            self.clock.set(now)
        self.timers = FakeTimers()
        self.events = EventFactory(source, self.clock)
        self.written = 0

    def _wake(self) -> None:
        self.written += 1

    @property
    def ctx(self) -> UseCaseContext:
        return UseCaseContext(
            clock=self.clock,
            timers=self.timers,
            events=self.events,  # type: ignore[arg-type]
            events_written=self._wake,
        )


class MemoryCollection:
    def __init__(self) -> None:
        self.docs: dict[Any, dict[str, Any]] = {}

    async def find_one(self, query: dict[str, Any], projection: Any = None) -> dict[str, Any] | None:
        return self.docs.get(query["_id"])

    async def insert_one(self, doc: dict[str, Any]) -> None:
        if doc["_id"] in self.docs:
            raise DuplicateKeyError("duplicate _id")
        self.docs[doc["_id"]] = dict(doc)

    async def insert_many(self, docs: list[dict[str, Any]], ordered: bool = True) -> None:
        duplicates = [{"index": i, "code": 11000} for i, doc in enumerate(docs) if doc["_id"] in self.docs]
        for doc in docs:
            self.docs.setdefault(doc["_id"], dict(doc))
        if duplicates:
            raise BulkWriteError({"writeErrors": duplicates})


class MemoryDb(dict[str, MemoryCollection]):
    """Collections by name, created on first use (the consumer's processed-event markers)."""

    def __missing__(self, name: str) -> MemoryCollection:
        self[name] = MemoryCollection()
        return self[name]


def runtime_without_store(settings: Any) -> ServiceRuntime:
    """A runtime whose consumers keep their processed-event markers in memory (for TestKafkaBroker).
    Call before registering consumers: each consumer takes the runtime's database when created."""
    runtime = ServiceRuntime(settings)
    runtime.db = MemoryDb()  # type: ignore[assignment]
    return runtime
