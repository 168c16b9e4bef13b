"""Reading a compacted state topic (`*.state`) like a table.

Each record's key is the row's id; a value is the row's current state (an event envelope of the
topic's one state type), a tombstone (null value) deletes the row. The consumer calls `upsert(key,
envelope)` or `delete(key, at)`; both must be idempotent (re-applying an older value after a newer
one is not possible within a key: a key's records are in one partition, in order, and a redelivery
replays them in that order). Nothing is remembered per record: replaying the topic from the start
(a rebuild) rebuilds the table, and after compaction an erased key is simply not there any more.

A value that cannot be read or applied goes to `<topic>.dlt` WITHOUT its value (it is personal
data, and a dead-letter topic is not compacted: a copy there would outlive the erase). The letter
carries the key, partition, offset, consumer group and the error; recovering it means re-reading
the topic (`mentorship replay SERVICE`), which holds the current value.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from typing import Any

import structlog

from mentorship_contracts import Envelope, EventData, InvalidEvent, UnknownEventType, dead_letter_topic, decode

from .consumer import TRANSIENT, EventConsumer, PermanentError, _Batch
from .metrics import DEAD_LETTERS_WRITTEN, EVENTS_DEAD_LETTERED, EVENTS_FAILED, EVENTS_HANDLED, EVENTS_SKIPPED

Upsert = Callable[[str, Envelope[Any]], Awaitable[None]]
Delete = Callable[[str, datetime], Awaitable[None]]

TOMBSTONE_LABEL = "tombstone"
log = structlog.get_logger()


def record_time(record: Any) -> datetime:
    """The record's timestamp (the producer's create time), for a tombstone that has no envelope."""
    stamp = getattr(record, "timestamp", None)
    if isinstance(stamp, int) and stamp > 0:
        return datetime.fromtimestamp(stamp / 1000, UTC)
    return datetime.now(UTC)


class TableConsumer(EventConsumer):
    """One subscription to a state topic: upsert on a value, delete on a tombstone."""

    def __init__(self, *, model: type[EventData], upsert: Upsert, delete: Delete, **kwargs: Any) -> None:
        super().__init__(handlers={}, **kwargs)
        self.model = model
        self.upsert = upsert
        self.delete = delete

    async def _processed(self, records: Sequence[Any], batch: _Batch) -> None:
        """Nothing to look up: a table keeps no processed-event markers (re-applying a row is idempotent)."""

    async def _process(self, record: Any, batch: _Batch | None = None) -> str:
        structlog.contextvars.bind_contextvars(consumer=self.name)
        try:
            key = record.key.decode() if isinstance(record.key, bytes) and record.key else None
            if key is None:
                await self.dead_letter_without_value(record, PermanentError("a state record without a key"))
                return "dead_lettered"
            if record.value is None:
                return await self._apply(record, TOMBSTONE_LABEL, lambda: self.delete(key, record_time(record)))
            try:
                envelope = decode(record.value)
            except UnknownEventType:  # a newer state version than this reader knows: tolerant reader
                EVENTS_SKIPPED.labels(self.service, self.name, "unknown_type").inc()
                return "skipped"
            except InvalidEvent as exc:
                await self.dead_letter_without_value(record, exc)
                return "dead_lettered"
            if not isinstance(envelope.data, self.model):
                EVENTS_SKIPPED.labels(self.service, self.name, "not_subscribed").inc()
                return "skipped"
            if envelope.subject != key:
                await self.dead_letter_without_value(
                    record, PermanentError("the value's subject is not the record's key")
                )
                return "dead_lettered"
            return await self._apply(record, envelope.type, lambda: self.upsert(key, envelope))
        finally:
            structlog.contextvars.unbind_contextvars("consumer")

    async def _apply(self, record: Any, label: str, step: Callable[[], Awaitable[None]]) -> str:
        """Bounded retries for the row's failures, unbounded waiting for store or broker outages."""
        attempt = 0
        outages = 0
        while True:
            try:
                await step()
            except asyncio.CancelledError:
                raise
            except TRANSIENT as exc:
                outages += 1
                log.warning("store or broker unavailable; retrying", outages=outages, error=type(exc).__name__)
                await asyncio.sleep(self.retry.delay(min(outages, 6)))
                continue
            except Exception as exc:
                attempt += 1
                EVENTS_FAILED.labels(self.service, self.name, label).inc()
                log.warning("state row not applied", attempt=attempt, error=type(exc).__name__)
                if isinstance(exc, PermanentError) or attempt >= self.retry.max_attempts:
                    await self.dead_letter_without_value(record, exc, attempts=attempt)
                    return "dead_lettered"
                await asyncio.sleep(self.retry.delay(attempt))
                continue
            EVENTS_HANDLED.labels(self.service, self.name, label).inc()
            self.on_handled()
            return "handled"

    async def dead_letter_without_value(self, record: Any, exc: BaseException, *, attempts: int = 0) -> None:
        """Key, partition, offset and the error; no value, no stack (either may quote the value)."""
        dlt = dead_letter_topic(record.topic)
        # Our own readers' messages name fields, not values; anything else is named by its type only.
        reason = (
            f"{type(exc).__name__}: {exc}"[:2000]
            if isinstance(exc, InvalidEvent | PermanentError)
            else type(exc).__name__
        )
        headers = [
            ("dlt-error", reason.encode()),
            ("dlt-error-type", type(exc).__name__.encode()),
            ("dlt-original-topic", record.topic.encode()),
            ("dlt-original-partition", str(record.partition).encode()),
            ("dlt-original-offset", str(record.offset).encode()),
            ("dlt-consumer-group", self.group_id.encode()),
            ("dlt-service", self.service.encode()),
            ("dlt-attempts", str(attempts).encode()),
            ("dlt-failed-at", datetime.now(UTC).isoformat().encode()),
            ("dlt-value-omitted", b"true"),
        ]
        await self._until_done(lambda: self.dlt_producer().send_and_wait(dlt, None, key=record.key, headers=headers))
        EVENTS_DEAD_LETTERED.labels(self.service, self.name, record.topic).inc()
        DEAD_LETTERS_WRITTEN.labels(self.service, self.name, record.topic).inc()
        log.error(
            "state record dead-lettered (value omitted)",
            dead_letter_topic=dlt,
            reason=reason[:300],
            partition=record.partition,
            offset=record.offset,
        )
