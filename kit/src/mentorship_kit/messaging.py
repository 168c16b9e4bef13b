"""Kafka producer (idempotent, acks=all), topic naming and topic creation."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

from mentorship_contracts import CONTENT_TYPE, Envelope, encode

Headers = list[tuple[str, bytes]]


class TopicNames:
    """Maps a contract topic (`profile.events`) to its deployed name (with an optional prefix)."""

    def __init__(self, prefix: str = "") -> None:
        self.prefix = prefix

    def __call__(self, logical: str) -> str:
        return f"{self.prefix}{logical}"

    def group(self, service: str, consumer: str) -> str:
        return f"{self.prefix}{service}.{consumer}"


def envelope_headers(envelope: Envelope) -> Headers:  # type: ignore[type-arg]
    """CloudEvents Kafka binding (structured mode) plus the type for cheap filtering."""
    return [
        ("content-type", CONTENT_TYPE.encode()),
        ("ce_type", envelope.type.encode()),
        ("ce_id", envelope.id.encode()),
        ("ce_source", envelope.source.encode()),
        ("ce_correlationid", envelope.correlationid.encode()),
    ]


def new_producer(bootstrap: str, client_id: str) -> AIOKafkaProducer:
    return AIOKafkaProducer(
        bootstrap_servers=bootstrap,
        client_id=client_id,
        acks="all",
        enable_idempotence=True,
        linger_ms=5,
        request_timeout_ms=30000,
    )


async def publish_envelope(producer: AIOKafkaProducer, topic: str, envelope: Envelope) -> None:  # type: ignore[type-arg]
    await producer.send_and_wait(
        topic, encode(envelope), key=envelope.subject.encode(), headers=envelope_headers(envelope)
    )


TOPIC_ALREADY_EXISTS = 36


async def ensure_topics(bootstrap: str, topics: Iterable[str], partitions: int, replication_factor: int = 1) -> None:
    """Create topics that do not exist yet (production clusters often disable auto-creation)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing: Sequence[str] = sorted(set(topics) - existing)
        if missing:
            try:
                response = await admin.create_topics(
                    [NewTopic(name=t, num_partitions=partitions, replication_factor=replication_factor)
                     for t in missing]
                )
            except TopicAlreadyExistsError:
                return  # another replica won the race
            # Per-topic failures come back in the response, not as exceptions.
            failed = [(err[0], err[1]) for err in response.topic_errors if err[1] not in (0, TOPIC_ALREADY_EXISTS)]
            if failed:
                raise RuntimeError(f"cannot create topics (topic, Kafka error code): {failed}")
    finally:
        await admin.close()
