"""Consumer-group lag, dead-letter listing and re-drive, offset resets for replay."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.protocol import admin as _protocol
from aiokafka.structs import OffsetAndMetadata

from mentorship_contracts import DEAD_LETTER_SUFFIX
from mentorship_kit.messaging import kafka_client_options

from .support import TopicReader

REDRIVE_GROUP = "ops.redrive"

# aiokafka 0.14 pairs DescribeGroups request v3 with the v2 response schema, which lacks the trailing
# `authorized_operations`; brokers that answer v3 (Kafka 4.x) then break the connection ("Buffer
# underrun decoding string"). Pair it with its own response until aiokafka fixes it.
if _protocol.DescribeGroupsRequest_v3.RESPONSE_TYPE is _protocol.DescribeGroupsResponse_v2:
    _protocol.DescribeGroupsRequest_v3.RESPONSE_TYPE = _protocol.DescribeGroupsResponse_v3


@dataclass(frozen=True)
class GroupLag:
    group: str
    topic: str
    partition: int
    committed: int
    end: int

    @property
    def lag(self) -> int:
        return max(self.end - max(self.committed, 0), 0)


@dataclass(frozen=True)
class DeadLetter:
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None  # None: a state topic's letter, whose value was left out (personal data)
    headers: dict[str, bytes]
    redriven: bool

    @property
    def value_omitted(self) -> bool:
        return self.headers.get("dlt-value-omitted") == b"true"

    @property
    def error(self) -> str:
        return self.headers.get("dlt-error", b"").decode(errors="replace")

    @property
    def original_topic(self) -> str:
        return self.headers.get("dlt-original-topic", b"").decode() or self.topic.removesuffix(DEAD_LETTER_SUFFIX)


async def _admin(bootstrap: str) -> AIOKafkaAdminClient:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, **kafka_client_options())
    await admin.start()
    return admin


async def _end_offsets(bootstrap: str, tps: list[TopicPartition]) -> dict[TopicPartition, int]:
    if not tps:
        return {}
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, **kafka_client_options())
    await consumer.start()
    try:
        ends: dict[TopicPartition, int] = await consumer.end_offsets(tps)
        return ends
    finally:
        await consumer.stop()


async def group_lags(bootstrap: str, prefix: str = "") -> list[GroupLag]:
    admin = await _admin(bootstrap)
    try:
        groups = [g[0] if isinstance(g, tuple) else g.group_id for g in await admin.list_consumer_groups()]
        groups = sorted(g for g in groups if g.startswith(prefix) and not g.endswith(REDRIVE_GROUP))
        committed: dict[str, dict[TopicPartition, OffsetAndMetadata]] = {}
        for g in groups:
            committed[g] = await admin.list_consumer_group_offsets(g)
    finally:
        await admin.close()
    tps = sorted({tp for offsets in committed.values() for tp in offsets})
    ends = await _end_offsets(bootstrap, tps)
    return [
        GroupLag(g, tp.topic, tp.partition, off.offset, ends.get(tp, 0))
        for g, offsets in committed.items()
        for tp, off in sorted(offsets.items())
    ]


async def dead_letter_topics(bootstrap: str, prefix: str = "") -> list[str]:
    admin = await _admin(bootstrap)
    try:
        return sorted(t for t in await admin.list_topics() if t.startswith(prefix) and t.endswith(DEAD_LETTER_SUFFIX))
    finally:
        await admin.close()


async def _redrive_marks(bootstrap: str, group: str, tps: list[TopicPartition]) -> dict[TopicPartition, int]:
    admin = await _admin(bootstrap)
    try:
        offsets = await admin.list_consumer_group_offsets(group, partitions=tps)
        return {tp: o.offset for tp, o in offsets.items() if o.offset >= 0}
    finally:
        await admin.close()


async def list_dead_letters(bootstrap: str, prefix: str = "", topic: str | None = None) -> list[DeadLetter]:
    topics = [topic] if topic else await dead_letter_topics(bootstrap, prefix)
    if not topics:
        return []
    async with TopicReader(bootstrap, topics) as reader:
        if not reader.partitions:
            return []
        marks = await _redrive_marks(bootstrap, prefix + REDRIVE_GROUP, reader.partitions)
        records = await reader.read_to_end()
    out = [
        DeadLetter(
            r.topic,
            r.partition,
            r.offset,
            r.key,
            r.value,
            {k: v for k, v in r.headers},
            r.offset < marks.get(TopicPartition(r.topic, r.partition), 0),
        )
        for r in records
    ]
    return sorted(out, key=lambda d: (d.topic, d.partition, d.offset))


async def redrive(
    bootstrap: str, prefix: str, topic: str, offsets: set[int] | None = None, progress: Any = None
) -> int:
    """Re-publish not-yet-redriven dead letters of `topic` to their original topic, then mark them.

    The mark is a per-partition offset, so it only moves over a contiguous run of re-driven letters:
    re-driving only offset 5 leaves 0-4 waiting (and 5 may be re-driven again later, which the
    idempotent consumers absorb) instead of hiding 0-4 as done.
    """
    waiting = [d for d in await list_dead_letters(bootstrap, prefix, topic) if not d.redriven]
    letters = waiting if offsets is None else [d for d in waiting if d.offset in offsets]
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, acks="all", enable_idempotence=True, **kafka_client_options()
    )
    await producer.start()
    sent = 0
    try:
        for d in letters:
            headers = [(k, v) for k, v in d.headers.items() if not k.startswith("dlt-")]
            headers.append(("redriven-from", f"{d.topic}:{d.partition}:{d.offset}".encode()))
            await producer.send_and_wait(d.original_topic, d.value, key=d.key, headers=headers)
            sent += 1
            if progress:
                progress(sent, len(letters))
    finally:
        await producer.stop()
    done = {(d.partition, d.offset) for d in letters}
    marks: dict[TopicPartition, int] = {}
    blocked: set[TopicPartition] = set()
    for d in waiting:  # in offset order: stop at the first letter still waiting on each partition
        tp = TopicPartition(d.topic, d.partition)
        if tp in blocked:
            continue
        if (d.partition, d.offset) in done:
            marks[tp] = d.offset + 1
        else:
            blocked.add(tp)
    if marks:
        await commit_offsets(bootstrap, prefix + REDRIVE_GROUP, marks, only_forward=True)
    return sent


async def commit_offsets(
    bootstrap: str, group: str, offsets: dict[TopicPartition, int], only_forward: bool = False
) -> None:
    """Set a group's committed offsets (the group must have no active member)."""
    if only_forward:
        current = await _redrive_marks(bootstrap, group, list(offsets))
        offsets = {tp: max(o, current.get(tp, 0)) for tp, o in offsets.items()}
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False, **kafka_client_options()
    )
    await consumer.start()
    try:
        consumer.assign(list(offsets))
        await consumer.commit({tp: o for tp, o in offsets.items()})
    finally:
        await consumer.stop()


async def describe_members(bootstrap: str, groups: list[str]) -> dict[str, int]:
    admin = await _admin(bootstrap)
    try:
        described = await admin.describe_consumer_groups(groups)
    finally:
        await admin.close()
    out: dict[str, int] = {}
    for resp in described:
        for g in getattr(resp, "groups", []):
            # (error_code, group_id, state, protocol_type, protocol, members)
            out[g[1]] = len(g[5])
    return out


async def rewind_groups(bootstrap: str, groups: list[str]) -> dict[str, int]:
    """Move each (inactive) group back to offset zero on every partition it had committed."""
    busy = {g: n for g, n in (await describe_members(bootstrap, groups)).items() if n}
    if busy:
        raise RuntimeError(f"stop the service first; active members in {busy}")
    admin = await _admin(bootstrap)
    try:
        committed = {g: await admin.list_consumer_group_offsets(g) for g in groups}
    finally:
        await admin.close()
    rewound = {}
    for g, offsets in committed.items():
        if offsets:
            await commit_offsets(bootstrap, g, {tp: 0 for tp in offsets})
        rewound[g] = len(offsets)
    return rewound
