"""Idempotent, at-least-once consumers with bounded retries and a dead-letter topic.

FastStream's Kafka default acknowledges BEFORE the handler runs (at-most-once). Every
subscription here sets `AckPolicy.ACK` (commit after the handler), a `group_id`, and
`auto_offset_reset="earliest"`. The handler never lets an exception escape: it retries with
backoff a bounded number of times, then writes the record to `<topic>.dlt` with the original
bytes, key, headers and the error, and moves on, so a poison message never blocks its partition.

Records arrive in batches (one poll returns up to `batch_size` records). A batch is handled as
chains, one per (partition, key), each in offset order; different keys run concurrently, as they
would on two replicas. The processed-event markers of a batch are read with concurrent point reads
and written with one bulk insert after the handlers; the offsets are committed only after that, so
a crash anywhere re-delivers the batch and the markers (or the handlers' own conditions) absorb it.
"""

from __future__ import annotations

import asyncio
import time
import traceback
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import structlog
from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError
from faststream import AckPolicy
from faststream.kafka import KafkaBroker
from faststream.kafka.annotations import KafkaMessage
from opentelemetry.trace import SpanKind, Status, StatusCode
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import BulkWriteError, ConnectionFailure, DuplicateKeyError

from mentorship_contracts import (
    Envelope,
    EventData,
    InvalidEvent,
    UnknownEventType,
    dead_letter_topic,
    decode,
)

from .messaging import TopicNames
from .metrics import (
    DEAD_LETTERS_WRITTEN,
    EVENTS_DEAD_LETTERED,
    EVENTS_FAILED,
    EVENTS_HANDLED,
    EVENTS_SKIPPED,
    HANDLER_SECONDS,
)
from .tracing import context_from_headers, tracer

PROCESSED = "processed_events"
DUPLICATE_KEY = 11000

Handler = Callable[[Envelope[Any]], Awaitable[None]]
log = structlog.get_logger()


class PermanentError(Exception):
    """A handler failure that retrying cannot fix: dead-letter at once."""


# The store or the broker being away is not the message's fault: retry without limit (the
# partition waits, keeping per-aggregate order) instead of dead-lettering good messages.
TRANSIENT = (ConnectionFailure, KafkaError)


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 4
    backoff: float = 0.2
    backoff_max: float = 5.0

    def delay(self, attempt: int) -> float:
        return float(min(self.backoff * (2 ** (attempt - 1)), self.backoff_max))


class EventConsumer:
    """One subscription of one service to one topic, dispatching by event type.

    Types without a handler are skipped (tolerant reader). A processed-event marker
    (unique `_id` = consumer:event id) makes a redelivered event a no-op; handlers are still
    written as conditional single-document updates, so even a crash between the effect and
    the marker changes nothing on redelivery.
    """

    def __init__(
        self,
        *,
        service: str,
        name: str,
        topic: str,
        handlers: Mapping[type[EventData], Handler],
        db: AsyncDatabase[dict[str, Any]],
        dlt_producer: Callable[[], AIOKafkaProducer],
        topics: TopicNames,
        retry: RetryPolicy,
        on_handled: Callable[[], None] = lambda: None,
        batch_size: int = 100,
        concurrency: int = 16,
    ) -> None:
        self.service = service
        self.name = name
        self.topic = topic
        self.handlers = {model.event_type: fn for model, fn in handlers.items()}
        self.db = db
        self.dlt_producer = dlt_producer
        self.topics = topics
        self.retry = retry
        self.on_handled = on_handled  # a handler may have queued events: wake the outbox relay
        self.batch_size = batch_size
        self.concurrency = concurrency  # chains (partition, key) handled at once within a batch
        self._subscriber: object | None = None  # FastStream's subscriber: its consumer gives the assignment

    @property
    def group_id(self) -> str:
        return self.topics.group(self.service, self.name)

    def subscribe(self, broker: KafkaBroker) -> None:
        async def raw_bytes(msg: Any) -> bytes:  # never let FastStream parse: we own decoding
            body: bytes = msg.body
            return body

        subscriber = broker.subscriber(
            self.topics(self.topic),
            group_id=self.group_id,
            auto_offset_reset="earliest",
            ack_policy=AckPolicy.ACK,  # commit after the whole batch is handled
            batch=True,
            max_records=self.batch_size,
            batch_timeout_ms=200,  # a poll returns as soon as records are there; this bounds an idle poll
            decoder=raw_bytes,
            title=f"{self.service}.{self.name}",
            description=f"{self.service} consumes {self.topic} ({', '.join(sorted(self.handlers))})",
        )

        self._subscriber = subscriber

        @subscriber
        async def on_batch(body: list[bytes], message: KafkaMessage) -> None:
            records = message.raw_message
            await self.process_batch(records if isinstance(records, tuple | list) else [records])

    async def lag(self) -> dict[tuple[str, int], int]:
        """Per (topic, partition) assigned to this replica: end offset minus the group's committed
        offset (from the log start when nothing is committed yet). Empty before the first assignment."""
        consumer = getattr(self._subscriber, "consumer", None)
        if consumer is None:
            return {}
        assigned = sorted(consumer.assignment())
        if not assigned:
            return {}
        ends = await consumer.end_offsets(assigned)
        committed = {tp: await consumer.committed(tp) for tp in assigned}
        uncommitted = [tp for tp, offset in committed.items() if offset is None or offset < 0]
        # auto_offset_reset=earliest: a group with no commit yet starts at the log's first record
        firsts = await consumer.beginning_offsets(uncommitted) if uncommitted else {}
        return {
            (tp.topic, tp.partition): max(ends.get(tp, 0) - (firsts.get(tp, 0) if tp in firsts else committed[tp]), 0)
            for tp in assigned
        }

    async def process_batch(self, records: Sequence[Any]) -> list[str]:
        """Handle one poll's records; returns what happened to each (in the order given).

        Chains of one (partition, key) run in offset order; chains run concurrently (at most
        `concurrency`). Markers already there are read once for the batch; the markers of what was
        handled are written in one bulk insert at the end, before the batch is committed."""
        if not records:
            return []
        batch = _Batch()
        await self._processed(records, batch)
        chains: dict[tuple[Any, Any, Any], list[int]] = {}
        for i, record in enumerate(records):
            chains.setdefault(
                (getattr(record, "topic", None), getattr(record, "partition", None), record.key), []
            ).append(i)
        outcomes: list[str] = [""] * len(records)
        gate = asyncio.Semaphore(self.concurrency)

        async def run(chain: list[int]) -> None:
            async with gate:
                for i in chain:
                    outcomes[i] = await self.process(records[i], batch)

        await asyncio.gather(*(run(chain) for chain in chains.values()))
        if batch.done:
            await self._until_done(lambda: self._mark_many(batch.done))
        return outcomes

    async def _processed(self, records: Sequence[Any], batch: _Batch) -> None:
        """Decode the records once (kept in `batch`) and find which of their markers exist already:
        concurrent point reads by `_id` (one `_id: {$in: ...}` query is a collection scan on FerretDB)."""
        markers: set[str] = set()
        for record in records:
            try:
                envelope = decode(record.value)
            except (UnknownEventType, InvalidEvent):
                continue  # handled (skipped or dead-lettered) in its turn
            batch.decoded[id(record)] = envelope
            if envelope.type in self.handlers:
                markers.add(f"{self.name}:{envelope.id}")
        if not markers:
            return
        found = await self._until_done(
            lambda: asyncio.gather(*(self.db[PROCESSED].find_one({"_id": m}, {"_id": 1}) for m in markers))
        )
        batch.known = {doc["_id"] for doc in found if doc is not None}

    async def _mark_many(self, done: dict[str, str]) -> None:
        at = datetime.now(UTC)
        try:
            await self.db[PROCESSED].insert_many(
                [{"_id": marker, "type": type_, "at": at} for marker, type_ in done.items()], ordered=False
            )
        except BulkWriteError as exc:  # a marker written already (another replica, a re-delivery) is fine
            if any(err.get("code") != DUPLICATE_KEY for err in exc.details.get("writeErrors", [])):
                raise

    async def process(self, record: Any, batch: _Batch | None = None) -> str:
        """Handle one ConsumerRecord; returns what happened (for tests and logs).

        In a CONSUMER span that continues the trace the record's headers carry (`traceparent`), so
        the store calls made and the events written while handling it belong to the same trace."""
        headers = list(getattr(record, "headers", None) or [])
        with tracer().start_as_current_span(
            f"process {self.topic}",
            context=context_from_headers(headers),
            kind=SpanKind.CONSUMER,
            attributes={
                "messaging.system": "kafka",
                "messaging.operation.type": "process",
                "messaging.destination.name": str(getattr(record, "topic", self.topic)),
                "messaging.consumer.group.name": self.group_id,
                "messaging.destination.partition.id": str(getattr(record, "partition", "")),
                "messaging.kafka.offset": int(getattr(record, "offset", -1)),
                "cloudevents.event_type": _header(headers, "ce_type"),
                "cloudevents.event_id": _header(headers, "ce_id"),
            },
        ) as span:
            outcome = await self._process(record, batch)
            span.set_attribute("mentorship.outcome", outcome)
            if outcome == "dead_lettered":
                span.set_status(Status(StatusCode.ERROR, "dead-lettered"))
            return outcome

    async def _process(self, record: Any, batch: _Batch | None = None) -> str:
        structlog.contextvars.bind_contextvars(consumer=self.name)
        try:
            decoded = batch.decoded.get(id(record)) if batch is not None else None
            envelope = decoded if decoded is not None else decode(record.value)
        except UnknownEventType as exc:
            EVENTS_SKIPPED.labels(self.service, self.name, "unknown_type").inc()
            log.debug("skipping unknown event type", type=str(exc))
            return "skipped"
        except InvalidEvent as exc:
            await self.dead_letter(record, exc, attempts=0)
            return "dead_lettered"
        structlog.contextvars.bind_contextvars(
            event_id=envelope.id, correlation_id=envelope.correlationid, event_type=envelope.type
        )
        try:
            handler = self.handlers.get(envelope.type)
            if handler is None:
                EVENTS_SKIPPED.labels(self.service, self.name, "not_subscribed").inc()
                return "skipped"
            marker = f"{self.name}:{envelope.id}"
            if batch is not None:
                # the batch read the markers up front; a copy of an event met earlier in this batch
                # is a duplicate too (its marker is written with the batch's)
                duplicate = marker in batch.known or marker in batch.done
            else:
                duplicate = bool(
                    await self._until_done(lambda: self.db[PROCESSED].find_one({"_id": marker}, {"_id": 1}))
                )
            if duplicate:
                EVENTS_SKIPPED.labels(self.service, self.name, "duplicate").inc()
                log.info("duplicate event ignored")
                return "duplicate"
            outcome = await self._handle_with_retries(handler, envelope, record)
            if outcome == "handled":
                self.on_handled()
                if batch is not None:
                    batch.done[marker] = envelope.type
                else:
                    await self._until_done(lambda: self._mark(marker, envelope.type))
            return outcome
        finally:
            structlog.contextvars.unbind_contextvars("event_id", "correlation_id", "event_type", "consumer")

    async def _mark(self, marker: str, type_: str) -> None:
        try:
            await self.db[PROCESSED].insert_one({"_id": marker, "type": type_, "at": datetime.now(UTC)})
        except DuplicateKeyError:
            pass

    async def _until_done(self, step: Callable[[], Awaitable[Any]]) -> Any:
        """Run an infrastructure step until it succeeds: an error here must not ack the record."""
        attempt = 0
        while True:
            try:
                return await step()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                attempt += 1
                log.warning("infrastructure step failed; retrying", attempt=attempt, error=repr(exc)[:300])
                await asyncio.sleep(self.retry.delay(min(attempt, 6)))

    async def _handle_with_retries(self, handler: Handler, envelope: Envelope[Any], record: Any) -> str:
        attempt = 0
        outages = 0
        while True:
            attempt += 1
            started = time.perf_counter()
            try:
                await handler(envelope)
            except asyncio.CancelledError:
                raise
            except TRANSIENT as exc:
                EVENTS_FAILED.labels(self.service, self.name, envelope.type).inc()
                outages += 1
                log.warning("store or broker unavailable; retrying", outages=outages, error=repr(exc)[:300])
                await asyncio.sleep(self.retry.delay(min(outages, 6)))
                attempt -= 1  # an outage does not count toward the bounded attempts
                continue
            except Exception as exc:
                EVENTS_FAILED.labels(self.service, self.name, envelope.type).inc()
                permanent = isinstance(exc, PermanentError)
                log.warning("handler failed", attempt=attempt, error=repr(exc)[:500], permanent=permanent)
                if permanent or attempt >= self.retry.max_attempts:
                    await self.dead_letter(record, exc, attempts=attempt)
                    return "dead_lettered"
                await asyncio.sleep(self.retry.delay(attempt))
                continue
            HANDLER_SECONDS.labels(self.service, self.name, envelope.type).observe(time.perf_counter() - started)
            EVENTS_HANDLED.labels(self.service, self.name, envelope.type).inc()
            return "handled"

    async def dead_letter(self, record: Any, exc: BaseException, *, attempts: int) -> None:
        dlt = dead_letter_topic(record.topic)
        reason = f"{type(exc).__name__}: {exc}"[:2000]
        headers = list(getattr(record, "headers", None) or []) + [
            ("dlt-error", reason.encode()),
            ("dlt-error-type", type(exc).__name__.encode()),
            ("dlt-stack", "".join(traceback.format_exception(exc))[-4000:].encode()),
            ("dlt-original-topic", record.topic.encode()),
            ("dlt-original-partition", str(record.partition).encode()),
            ("dlt-original-offset", str(record.offset).encode()),
            ("dlt-consumer-group", self.group_id.encode()),
            ("dlt-service", self.service.encode()),
            ("dlt-attempts", str(attempts).encode()),
            ("dlt-failed-at", datetime.now(UTC).isoformat().encode()),
        ]
        await self._until_done(
            lambda: self.dlt_producer().send_and_wait(dlt, record.value, key=record.key, headers=headers)
        )
        EVENTS_DEAD_LETTERED.labels(self.service, self.name, record.topic).inc()
        DEAD_LETTERS_WRITTEN.labels(self.service, self.name, record.topic).inc()
        log.error(
            "record dead-lettered",
            dead_letter_topic=dlt,
            reason=reason[:300],
            partition=record.partition,
            offset=record.offset,
        )


@dataclass
class _Batch:
    """What one batch knows about markers: those already stored, and those of events it handled."""

    known: set[str] = field(default_factory=set)
    done: dict[str, str] = field(default_factory=dict)  # marker -> event type
    decoded: dict[int, Envelope[Any]] = field(default_factory=dict)  # id(record) -> its envelope


def _header(headers: list[tuple[str, bytes]], name: str) -> str:
    for key, value in headers:
        if key == name:
            return value.decode("utf-8", "replace")
    return ""
