"""A plain Kafka reader: reads whole topics from a fixed start and never commits anything."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Sequence
from types import TracebackType
from typing import Any, TypeAlias

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from mentorship_kit.messaging import kafka_client_options

Record: TypeAlias = ConsumerRecord[Any, Any]


async def topic_partitions(bootstrap: str, topics: Sequence[str]) -> list[TopicPartition]:
    """The partitions of those `topics` that exist."""
    if not topics:
        return []
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, **kafka_client_options())
    await admin.start()
    try:
        described = await admin.describe_topics(list(topics))
    finally:
        await admin.close()
    return sorted(
        TopicPartition(t["topic"], p["partition"]) for t in described if not t["error_code"] for p in t["partitions"]
    )


class TopicReader:
    """Reads `topics` from the beginning (or, with `from_end`, only what arrives after `start()`).

    Without `group_id` it assigns itself every partition of the topics (no consumer group: it
    disturbs nobody, and its start offsets are explicit). With `group_id` it joins that group from
    the earliest offset, which also waits for topics that do not exist yet.
    """

    def __init__(
        self, bootstrap: str, topics: Sequence[str], *, group_id: str | None = None, from_end: bool = False
    ) -> None:
        if group_id is not None and from_end:
            raise ValueError("from_end needs assigned partitions (no group_id)")
        self.bootstrap, self.topics, self.group_id, self.from_end = bootstrap, list(topics), group_id, from_end
        self.partitions: list[TopicPartition] = []
        self._consumer: AIOKafkaConsumer | None = None

    async def start(self, *, wait_for_topics: float = 0.0) -> TopicReader:
        """Without a group: up to `wait_for_topics` seconds for every topic to exist (services
        create theirs as they start); reads the partitions found by then."""
        if self.group_id is not None:
            consumer = AIOKafkaConsumer(
                *self.topics,
                bootstrap_servers=self.bootstrap,
                group_id=self.group_id,
                auto_offset_reset="earliest",
                enable_auto_commit=False,
                **kafka_client_options(),
            )
            await consumer.start()
            self._consumer = consumer
            return self
        deadline = time.monotonic() + wait_for_topics
        while True:
            self.partitions = await topic_partitions(self.bootstrap, self.topics)
            if len({tp.topic for tp in self.partitions}) == len(set(self.topics)) or time.monotonic() >= deadline:
                break
            await asyncio.sleep(0.5)
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self.bootstrap, enable_auto_commit=False, **kafka_client_options()
        )
        await consumer.start()
        self._consumer = consumer
        if self.partitions:
            consumer.assign(self.partitions)
            # Explicit offsets: a lazy seek_to_end could resolve only after the first new records.
            starts = await (
                consumer.end_offsets(self.partitions) if self.from_end else consumer.beginning_offsets(self.partitions)
            )
            for tp, offset in starts.items():
                consumer.seek(tp, offset)
        return self

    async def stop(self) -> None:
        if self._consumer is not None:
            await self._consumer.stop()
            self._consumer = None

    async def __aenter__(self) -> TopicReader:
        return await self.start()

    async def __aexit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        await self.stop()

    @property
    def consumer(self) -> AIOKafkaConsumer:
        assert self._consumer is not None, "start() first"
        return self._consumer

    async def batch(self, timeout_ms: int = 300) -> list[Record]:
        """The records that arrived within `timeout_ms` (possibly none), in partition order."""
        if self.group_id is None and not self.partitions:
            await asyncio.sleep(timeout_ms / 1000)
            return []
        got = await self.consumer.getmany(timeout_ms=timeout_ms)
        return [r for records in got.values() for r in records]

    async def read(self, want: int, *, timeout: float = 30.0) -> list[Record]:
        """Records once `want` arrived, or all that arrived when `timeout` seconds ran out."""
        records: list[Record] = []
        deadline = time.monotonic() + timeout
        while len(records) < want and time.monotonic() < deadline:
            records.extend(await self.batch())
        return records

    async def read_to_end(self, *, idle_ms: int = 1000) -> list[Record]:
        """Every record up to the partitions' end as of now (or until nothing came for `idle_ms`)."""
        ends = await self.consumer.end_offsets(self.partitions) if self.partitions else {}
        remaining = {tp for tp, end in ends.items() if end > 0}
        records: list[Record] = []
        while remaining:
            batch = await self.batch(idle_ms)
            if not batch:
                break
            for r in batch:
                records.append(r)
                tp = TopicPartition(r.topic, r.partition)
                if r.offset + 1 >= ends[tp]:
                    remaining.discard(tp)
        return records


async def read_topic(bootstrap: str, topic: str, *, want: int, timeout: float = 30.0) -> list[Record]:
    """Records of `topic` from offset zero, once `want` arrived or the timeout ran out (through a
    fresh consumer group, so a topic that does not exist yet is waited for)."""
    async with TopicReader(bootstrap, [topic], group_id=f"reader-{uuid.uuid4().hex}") as reader:
        return await reader.read(want, timeout=timeout)
