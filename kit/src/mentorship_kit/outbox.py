"""Transactional outbox without multi-document transactions.

A use case writes the state change AND its pending events in one single-document write:
the events sit in the aggregate document's `outbox` array. The relay publishes them in
order with the aggregate id as key, then removes them. A crash between publish and removal
re-publishes them; consumers absorb that (idempotent consumers). A lease on the document
keeps two relay replicas from publishing the same aggregate at once, so per-key order holds.

Besides events, an outbox carries tombstones (`Tombstone`): a record with the aggregate id as key
and a null value, for a compacted state topic (e.g. `profile.state` on erase). They travel in the
same array as the events, so per-key order holds for them too.

Nothing blocks the outbox for good: `outbox_entries` refuses an event above `EVENT_MAX_BYTES`
when the use case runs (422, nothing written), and an entry the producer or broker refuses for
good (`UNPUBLISHABLE`: too large, corrupt, ...) is moved to the document's `outbox_dead` array
with its reason and time, counted in `outbox_set_aside_total` and logged; the entries after it
are published once, as usual.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from collections.abc import Awaitable, Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple

import structlog
from aiokafka import AIOKafkaProducer
from aiokafka.errors import (
    CorruptRecordException,
    InvalidTimestampError,
    InvalidTopicError,
    MessageSizeTooLargeError,
    OutOfOrderSequenceNumber,
    RecordListTooLargeError,
    RecordTooLargeError,
)
from opentelemetry import trace
from opentelemetry.trace import Span, SpanKind
from pymongo import ASCENDING, IndexModel, UpdateOne
from pymongo.asynchronous.database import AsyncDatabase

from mentorship_contracts import Envelope, encode

from .clock import Clock
from .messaging import TopicNames, envelope_headers
from .metrics import OUTBOX_PUBLISHED, OUTBOX_SET_ASIDE
from .mongo import Indexes
from .problems import Problem
from .tracing import context_from_headers, record_failure, trace_headers, tracer, without_trace_headers

OUTBOX = "outbox"
PENDING = "outbox_pending"
SEQ = "outbox_seq"  # rises with every append or replacement, never falls: guards removals
LEASE = "outbox_lease_until"
OWNER = "outbox_lease_owner"  # which relay pass holds the lease (releases and checks are by owner)
DEAD = "outbox_dead"  # entries that can never be published, with their reason (see OutboxRelay)

# Errors that concern one record and will not go away by retrying it: the entry is set aside.
# Broker-wide errors (connection, timeout, authorisation) are NOT here: the relay retries them.
UNPUBLISHABLE: tuple[type[BaseException], ...] = (
    MessageSizeTooLargeError,
    RecordTooLargeError,
    RecordListTooLargeError,
    CorruptRecordException,
    InvalidTimestampError,
    InvalidTopicError,
)

log = structlog.get_logger()


DEFAULT_EVENT_MAX_BYTES = 900 * 1024
_event_max_bytes = DEFAULT_EVENT_MAX_BYTES


def set_event_max_bytes(limit: int) -> None:
    """`EVENT_MAX_BYTES` of the running service (set by `ServiceRuntime`)."""
    global _event_max_bytes
    _event_max_bytes = limit


class EventTooLarge(Problem):
    """A use case would write an event the broker refuses: the whole write is refused (422)."""

    def __init__(self, event_type: str, size: int, limit: int) -> None:
        super().__init__(
            422,
            "Event too large",
            f"the change would publish a {event_type} event of {size} bytes; at most {limit} "
            "bytes travel: shorten the longest texts or lists",
            event_type=event_type,
            size=size,
            limit=limit,
        )


TOMBSTONE = "tombstone"  # the `type` of an outbox entry that publishes a null value


@dataclass(frozen=True)
class Tombstone:
    """A record with a null value for a compacted state topic: at the next compaction every earlier
    value of `key` goes, then (after the topic's `delete.retention.ms`) the tombstone itself."""

    topic: str  # the contract topic, e.g. Topic.PROFILE_STATE
    key: str
    time: datetime = field(default_factory=lambda: datetime.now(UTC))
    id: str = field(default_factory=lambda: str(uuid.uuid4()))


OutboxItem = Envelope | Tombstone  # type: ignore[type-arg]


def outbox_entries(events: Sequence[OutboxItem]) -> list[dict[str, Any]]:
    """The outbox form of events; refuses (EventTooLarge) any that would never be published.

    Called while the use case builds its write, so a refusal leaves nothing written. Each entry
    keeps the current trace context (`traceparent`), so its publication joins the use case's trace.
    """
    entries = []
    trace_context = trace_headers()
    for e in events:
        if isinstance(e, Tombstone):
            entries.append(
                {
                    "id": e.id,
                    "type": TOMBSTONE,
                    "topic": str(e.topic),
                    "key": e.key,
                    "time": e.time,
                    "body": None,
                    "headers": {k: v.decode() for k, v in trace_context},
                }
            )
            continue
        body = encode(e)
        headers = envelope_headers(e) + trace_context
        size = len(body) + len(e.subject.encode()) + sum(len(k) + len(v) for k, v in headers)
        if size > _event_max_bytes:
            log.warning(
                "event refused: too large", type=e.type, subject=e.subject[:128], size=size, limit=_event_max_bytes
            )
            raise EventTooLarge(e.type, size, _event_max_bytes)
        entries.append(
            {
                "id": e.id,
                "type": e.type,
                "topic": e.data.topic,
                "key": e.subject,
                "time": e.time,  # when the use case wrote it: the relay's oldest-unpublished-age gauge
                "body": body.decode(),
                # an object, not pairs: FerretDB stores no nested arrays
                "headers": {k: v.decode() for k, v in headers},
            }
        )
    return entries


def new_document(document: dict[str, Any], events: Sequence[OutboxItem]) -> dict[str, Any]:
    """A document to insert, carrying its first events."""
    entries = outbox_entries(events)
    return {**document, OUTBOX: entries, SEQ: len(entries), PENDING: bool(entries)}


def with_replaced_events(update: dict[str, Any], events: Sequence[OutboxItem]) -> dict[str, Any]:
    """Like `with_events`, but drops every unpublished event first (e.g. on erasure, when pending
    events carry personal data that must not be published any more)."""
    entries = outbox_entries(events)
    out = {k: dict(v) if isinstance(v, dict) else v for k, v in update.items()}
    out.setdefault("$set", {}).update({OUTBOX: entries, PENDING: bool(entries)})
    out.setdefault("$inc", {})[SEQ] = len(entries) + 1  # a relay mid-publish must notice the swap
    return out


def with_events(update: dict[str, Any], events: Sequence[OutboxItem]) -> dict[str, Any]:
    """Add pending events to an update document (same single-document write as the change)."""
    if not events:
        return update
    out = {k: dict(v) if isinstance(v, dict) else v for k, v in update.items()}
    entries = outbox_entries(events)
    out.setdefault("$push", {})[OUTBOX] = {"$each": entries}
    out.setdefault("$inc", {})[SEQ] = len(entries)
    out.setdefault("$set", {})[PENDING] = True
    return out


def outbox_indexes(collection: str) -> Indexes:
    return Indexes(collection, (IndexModel([(PENDING, ASCENDING)], name="outbox_pending"),))


class OutboxRelay:
    """Publishes pending events of the given collections; wake() after a write cuts latency.

    A pass works in batches: one query finds up to `batch` pending documents with their entries,
    one bulk write leases them, every entry is sent, all acknowledgements are awaited, and one
    bulk write removes what was published (a compare-and-set per document on the outbox sequence;
    a document changed meanwhile falls back to a re-read, see `_mark_published`).

    Per-aggregate order: entries of one document are sent in their order, and documents are sent
    in the order of `ordering[collection] = (key field, sequence field)` when one aggregate spans
    several documents (matching's mentorship versions). Such a document is published only when
    every pending document of its aggregate with a lower sequence is in the same batch, leased by
    this pass: a later version never goes out while an earlier one waits, here or at another
    replica. One idempotent producer keeps the order of records sent to a partition even when the
    broker retries, and a record after a failed one fails too (OutOfOrderSequenceNumber).
    """

    def __init__(
        self,
        db: AsyncDatabase[dict[str, Any]],
        collections: Sequence[str],
        producer: AIOKafkaProducer,
        topics: TopicNames,
        clock: Clock,
        *,
        service: str,
        poll_interval: float = 0.5,
        lease_seconds: float = 30.0,
        renew_producer: Callable[[], Awaitable[AIOKafkaProducer]] | None = None,
        ordering: Mapping[str, tuple[str, str]] | None = None,
        batch: int = 200,
        linger: float = 0.002,
    ) -> None:
        self.db = db
        self.collections = list(collections)
        self.producer = producer
        self.topics = topics
        self.clock = clock
        self.service = service
        self.poll_interval = poll_interval
        self.lease = timedelta(seconds=lease_seconds)
        self.ordering = dict(ordering or {})
        self.batch = batch
        # After a wake, wait this long before the pass: writes that land meanwhile (a burst of
        # requests, a batch of consumed events) go out in the same batch.
        self.linger = linger
        self._wake = asyncio.Event()
        self._stopping = False
        # After the broker refused a record, an idempotent producer's sequence for that partition is
        # off by one for good (every later record: OutOfOrderSequenceNumber): a new one starts afresh.
        self._renew_producer = renew_producer

    def wake(self) -> None:
        self._wake.set()

    async def run(self) -> None:
        # Looking for pending events is a scan on stores without secondary-index pushdown, so an
        # idle relay backs off (up to 10 polls); a write in this process wakes it at once, and
        # the slow poll still finds what a crashed or other replica left behind.
        idle_wait = self.poll_interval
        while not self._stopping:
            self._wake.clear()  # before draining, so a wake during the pass is not lost
            try:
                published = await self.drain()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # keep relaying after a broker or store hiccup
                log.warning("outbox relay pass failed", error=repr(exc)[:500])
                await asyncio.sleep(min(5.0, self.poll_interval * 4))
                continue
            if published:
                idle_wait = self.poll_interval
                continue
            try:
                await asyncio.wait_for(self._wake.wait(), idle_wait)
                idle_wait = self.poll_interval
                if self.linger > 0:
                    await asyncio.sleep(self.linger)
            except TimeoutError:
                idle_wait = min(idle_wait * 2, self.poll_interval * 10)

    async def stop(self) -> None:
        """Publish what is pending, then stop (graceful shutdown)."""
        self._stopping = True
        self._wake.set()
        with contextlib.suppress(Exception):
            await self.drain()

    async def oldest_unpublished_age(self, scan_limit: int = 1000) -> dict[str, float]:
        """Per collection, seconds since the oldest waiting event was written (0 when none waits).
        Looks at up to `scan_limit` pending documents per collection: enough to see a stuck relay."""
        now = self.clock.now()
        ages: dict[str, float] = {}
        for name in self.collections:
            oldest: datetime | None = None
            cursor = self.db[name].find({PENDING: True}, {OUTBOX: 1}).limit(scan_limit)
            async for doc in cursor:
                for entry in doc.get(OUTBOX) or []:
                    written = _entry_time(entry)
                    if written is not None and (oldest is None or written < oldest):
                        oldest = written
            ages[name] = max((now - oldest).total_seconds(), 0.0) if oldest is not None else 0.0
        return ages

    async def drain(self) -> int:
        total = 0
        for name in self.collections:
            while docs := await self._claim_batch(name):
                published = await self._publish_batch(name, docs)
                total += published
                if not published:
                    break  # held back behind another replica's lease: its events are on their way
        return total

    # --- claiming ----------------------------------------------------------------------------
    async def _claim_batch(self, collection: str) -> list[dict[str, Any]]:
        """Lease a batch of pending documents to this pass, with their entries, in publication order."""
        coll = self.db[collection]
        now = self.clock.now()
        # Only `outbox_pending` in the query: a plain equality the store answers from its index
        # (an `$or` beside it makes FerretDB decode every document); leases are checked here.
        found = await coll.find({PENDING: True}).limit(self.batch).to_list()
        docs = [d for d in found if not _leased(d, now)]
        if not docs:
            return []
        token = uuid.uuid4().hex
        lease = {"$set": {LEASE: now + self.lease, OWNER: token}}
        claims = [UpdateOne({"_id": d["_id"], PENDING: True, **_lease_free(now)}, lease) for d in docs]
        result = await coll.bulk_write(claims, ordered=False)
        if result.modified_count != len(docs):  # another replica took some: keep those that are ours
            mine = await asyncio.gather(*(coll.find_one({"_id": d["_id"], OWNER: token}, {"_id": 1}) for d in docs))
            docs = [d for d, ours in zip(docs, mine, strict=True) if ours is not None]
        for doc in docs:
            doc[OWNER] = token
        if collection in self.ordering and docs:
            docs = await self._in_aggregate_order(collection, docs, token)
        return docs

    async def _in_aggregate_order(
        self, collection: str, docs: list[dict[str, Any]], token: str
    ) -> list[dict[str, Any]]:
        """The claimed documents that may go out now, sorted by (aggregate, sequence); the others
        (an earlier document of their aggregate is pending and not ours) are released at once."""
        key_field, seq_field = self.ordering[collection]
        coll = self.db[collection]
        by_key: dict[Any, list[dict[str, Any]]] = {}
        for doc in docs:
            by_key.setdefault(doc.get(key_field), []).append(doc)

        async def allowed(key: Any, group: list[dict[str, Any]]) -> list[dict[str, Any]]:
            if key is None:
                return group  # not part of an ordered aggregate
            ours = {d["_id"]: d for d in group}
            pending = await coll.find({key_field: key, PENDING: True}, {seq_field: 1, OWNER: 1}).to_list()
            pending.sort(key=lambda d: (d.get(seq_field) is None, d.get(seq_field) or 0))
            out = []
            for doc in pending:  # the leading run of pending versions that this pass holds
                if doc["_id"] not in ours or doc.get(OWNER) != token:
                    break
                out.append(ours[doc["_id"]])
            return out

        groups = list(by_key.items())
        runs = await asyncio.gather(*(allowed(key, group) for key, group in groups))
        go = {d["_id"] for run in runs for d in run}
        held = [d for d in docs if d["_id"] not in go]
        if held:
            log.info("outbox documents wait for earlier ones of their aggregate", collection=collection, n=len(held))
            await asyncio.gather(
                *(coll.update_one({"_id": d["_id"], OWNER: token}, {"$unset": {LEASE: "", OWNER: ""}}) for d in held)
            )
        return [d for run in runs for d in run]

    # --- publishing --------------------------------------------------------------------------
    async def _publish(self, collection: str, doc: dict[str, Any]) -> int:
        """Publish one document's pending entries (a batch of one)."""
        return await self._publish_batch(collection, [doc])

    async def _publish_batch(self, collection: str, docs: list[dict[str, Any]]) -> int:
        """Send every entry of the documents (in order), await all acknowledgements, then record the
        outcome of all of them in one write. Returns published + set-aside entries."""
        sent: list[tuple[asyncio.Future[Any], dict[str, Any], Span, int]] = []
        set_aside: list[list[tuple[dict[str, Any], BaseException]]] = [[] for _ in docs]
        failure: BaseException | None = None
        for i, doc in enumerate(docs):
            for entry in doc.get(OUTBOX) or []:
                try:
                    topic = self.topics(entry["topic"])
                    stored_headers = [(k, v.encode()) for k, v in entry["headers"].items()]
                    body = entry["body"]  # None: a tombstone (null value on a state topic)
                    message = (None if body is None else body.encode(), entry["key"].encode())
                except (KeyError, TypeError, AttributeError) as exc:  # not an entry we wrote: never publishable
                    set_aside[i].append((entry, exc))
                    continue
                # A child of the use case's span (the context saved with the entry); the record carries
                # this span's context, so the consumer's handling is a child of the publication.
                span = self._publish_span(entry, topic, stored_headers)
                headers = without_trace_headers(stored_headers) + trace_headers(trace.set_span_in_context(span))
                try:
                    fut = await self.producer.send(topic, message[0], key=message[1], headers=headers)
                except UNPUBLISHABLE as exc:  # refused by the client itself (e.g. larger than max_request_size)
                    record_failure(span, exc)
                    span.end()
                    set_aside[i].append((entry, exc))
                    continue
                except BaseException as exc:
                    record_failure(span, exc)
                    span.end()
                    failure = exc
                    break
                sent.append((fut, entry, span, i))
            if failure is not None:
                break
        published: list[list[str]] = [[] for _ in docs]
        producer_broken = False
        for fut, entry, span, i in sent:
            try:
                await fut  # acks=all: the broker has it before we forget it
            except UNPUBLISHABLE as exc:  # refused by the broker for good
                record_failure(span, exc)
                set_aside[i].append((entry, exc))
                producer_broken = True
                continue
            except OutOfOrderSequenceNumber as exc:  # after a refusal: stays pending, sent again by a new producer
                record_failure(span, exc)
                producer_broken = True
                continue
            except BaseException as exc:
                record_failure(span, exc)
                failure = failure or exc
                continue
            finally:
                span.end()
            OUTBOX_PUBLISHED.labels(self.service, entry["topic"]).inc()
            published[i].append(entry["id"])
        if failure is not None:
            raise failure  # nothing recorded: the acknowledged entries go out again (at-least-once)
        marks = [
            Mark(doc, published[i], [self._set_aside(collection, doc["_id"], e, exc) for e, exc in set_aside[i]])
            for i, doc in enumerate(docs)
        ]
        await self._mark_published_many(collection, marks)
        if producer_broken:
            await self._renew()
        return sum(len(m.published) + len(m.dead) for m in marks)

    def _publish_span(self, entry: dict[str, Any], topic: str, headers: list[tuple[str, bytes]]) -> Span:
        return tracer().start_span(
            f"send {entry['topic']}",
            context=context_from_headers(headers),
            kind=SpanKind.PRODUCER,
            attributes={
                "messaging.system": "kafka",
                "messaging.operation.type": "send",
                "messaging.destination.name": topic,
                "messaging.message.id": str(entry.get("id", "")),
                "messaging.kafka.message.key": str(entry.get("key", ""))[:128],
                "cloudevents.event_id": str(entry.get("id", "")),
                "cloudevents.event_type": str(entry.get("type", "")),
            },
        )

    async def _renew(self) -> None:
        if self._renew_producer is None:
            log.error("outbox producer needs a restart after a broker refusal, and none is configured")
            return
        log.warning("outbox relay renews its producer after a broker refusal")
        self.producer = await self._renew_producer()

    def _set_aside(self, collection: str, doc_id: Any, entry: Any, exc: BaseException) -> dict[str, Any]:
        """The record kept in `outbox_dead` (without the body, which may be what is too large)."""
        fields = entry if isinstance(entry, dict) else {}
        topic = str(fields.get("topic", "?"))
        body = fields.get("body")
        reason = f"{type(exc).__name__}: {exc}"[:500]
        OUTBOX_SET_ASIDE.labels(self.service, topic, type(exc).__name__).inc()
        log.error(
            "outbox entry set aside: it can never be published",
            collection=collection,
            document=str(doc_id)[:128],
            event_id=fields.get("id"),
            type=fields.get("type"),
            topic=topic,
            size=len(body) if isinstance(body, str) else None,
            reason=reason,
        )
        return {
            "id": fields.get("id"),
            "type": fields.get("type"),
            "topic": topic,
            "key": fields.get("key"),
            "size": len(body.encode()) if isinstance(body, str) else None,
            "body_head": body[:1000] if isinstance(body, str) else None,
            "reason": reason,
            "set_aside_at": self.clock.now(),
        }

    # --- recording ---------------------------------------------------------------------------
    async def _mark_published_many(self, collection: str, marks: Sequence[Mark]) -> None:
        """Remove the published entries of every document and move the set-aside ones to
        `outbox_dead`, in one bulk write: per document a compare-and-set on the outbox sequence
        as it was read. Documents changed since (an event appended, events swapped by an erasure)
        are done again one by one from a fresh read (`_mark_published`)."""
        if not marks:
            return
        coll = self.db[collection]
        updates = [
            UpdateOne(
                {"_id": m.doc["_id"], SEQ: m.doc.get(SEQ, {"$exists": False})}, _removal(m.doc, m.published, m.dead)
            )
            for m in marks
        ]
        result = await coll.bulk_write(updates, ordered=False)
        if result.matched_count == len(marks):
            return
        await asyncio.gather(
            *(
                self._mark_published(collection, m.doc["_id"], m.published, dead=m.dead, owner=m.doc.get(OWNER))
                for m in marks
            )
        )

    async def _mark_published(
        self,
        collection: str,
        doc_id: Any,
        event_ids: list[str],
        dead: Sequence[dict[str, Any]] = (),
        owner: str | None = None,
    ) -> None:
        """Remove the published entries and move the set-aside ones to `outbox_dead`, keeping any
        appended or swapped in meanwhile.

        A compare-and-set on the outbox sequence (which only rises) instead of `$pull` with a
        condition, which stock FerretDB 1.24 lacks: any concurrent change makes us re-read.
        """
        coll = self.db[collection]
        published = set(event_ids)
        dead_ids = {d["id"] for d in dead}
        while True:
            doc = await coll.find_one({"_id": doc_id})
            if doc is None:
                return
            entries = doc.get(OUTBOX) or []
            if (
                owner is not None
                and doc.get(OWNER) != owner
                and not any(_entry_id(e) in published or _entry_id(e) in dead_ids for e in entries)
            ):
                return  # recorded already (by the bulk write), and the lease is no longer ours
            update = _removal(doc, published, dead)
            result = await coll.update_one({"_id": doc_id, SEQ: doc.get(SEQ, {"$exists": False})}, update)
            if result.matched_count == 1:
                return


class Mark(NamedTuple):
    """What a pass did with one document: the ids it published and the entries it set aside."""

    doc: dict[str, Any]
    published: list[str]
    dead: list[dict[str, Any]]


def _removal(doc: dict[str, Any], published: Collection[str], dead: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """The update that removes published and set-aside entries from `doc` as read, releasing its lease."""
    entries = doc.get(OUTBOX) or []
    dead_ids = {d["id"] for d in dead}
    remaining = [e for e in entries if _entry_id(e) not in published]
    # set aside only what is still there (an erasure may have swapped the outbox meanwhile)
    dead_now = [d for d in dead if any(_entry_id(e) == d["id"] for e in remaining)]
    remaining = [e for e in remaining if _entry_id(e) not in dead_ids]
    update: dict[str, Any] = {
        "$set": {OUTBOX: remaining, PENDING: bool(remaining)},
        "$unset": {LEASE: "", OWNER: ""},
    }
    if dead_now:
        update["$push"] = {DEAD: {"$each": dead_now}}
    return update


def _leased(doc: dict[str, Any], now: datetime) -> bool:
    until = doc.get(LEASE)
    if not isinstance(until, datetime):
        return False
    if until.tzinfo is None:
        until = until.replace(tzinfo=UTC)  # the store hands back naive UTC datetimes
    return until >= now


def _lease_free(now: datetime) -> dict[str, Any]:
    return {"$or": [{LEASE: {"$exists": False}}, {LEASE: None}, {LEASE: {"$lt": now}}]}


def _entry_id(entry: Any) -> Any:
    return entry.get("id") if isinstance(entry, dict) else None


def _entry_time(entry: dict[str, Any]) -> datetime | None:
    """The entry's write time; entries queued before the `time` field existed carry it in the body."""
    written = entry.get("time")
    if written is None:
        try:
            written = datetime.fromisoformat(json.loads(entry["body"])["time"].replace("Z", "+00:00"))
        except (KeyError, TypeError, ValueError):
            return None
    if isinstance(written, datetime) and written.tzinfo is None:
        written = written.replace(tzinfo=UTC)  # the store hands back naive UTC datetimes
    return written if isinstance(written, datetime) else None
