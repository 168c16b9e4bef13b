"""Kafka clients (security, idempotent producer), topic naming, the topic table, topic creation."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError, TopicAlreadyExistsError
from faststream.security import BaseSecurity, SASLPlaintext, SASLScram256, SASLScram512

from mentorship_contracts import (
    CONTENT_TYPE,
    DEAD_LETTER_SUFFIX,
    Envelope,
    Topic,
    dead_letter_topic,
    encode,
    is_state_topic,
)

from .settings import KafkaClientSettings
from .tracing import trace_headers

Headers = list[tuple[str, bytes]]


class TopicNames:
    """Maps a contract topic (`profile.events`) to its deployed name (with an optional prefix)."""

    def __init__(self, prefix: str = "") -> None:
        self.prefix = prefix

    def __call__(self, logical: str) -> str:
        return f"{self.prefix}{logical}"

    def group(self, service: str, consumer: str) -> str:
        return f"{self.prefix}{service}.{consumer}"


# --- security: one place that turns KAFKA_* settings into client arguments ------------------------


def kafka_ssl_context(settings: KafkaClientSettings) -> ssl.SSLContext | None:
    """TLS context for SSL and SASL_SSL: the CA file (or the system CAs), plus a client certificate
    for mutual TLS. Hostnames are verified: the broker certificate must name the bootstrap host."""
    if not settings.kafka_uses_tls:
        return None
    try:
        context = ssl.create_default_context(cafile=settings.kafka_ssl_ca_file or None)
        if settings.kafka_ssl_cert_file:
            context.load_cert_chain(settings.kafka_ssl_cert_file, settings.kafka_ssl_key_file)
    except (OSError, ssl.SSLError) as exc:
        raise ValueError(
            f"Kafka TLS files (KAFKA_SSL_CA_FILE, KAFKA_SSL_CERT_FILE, KAFKA_SSL_KEY_FILE) cannot be used: {exc}"
        ) from exc
    return context


def kafka_client_options(settings: KafkaClientSettings | None = None) -> dict[str, Any]:
    """Keyword arguments for every aiokafka client (producer, consumer, admin client).

    Without settings they are read from the environment (the operator CLI, scripts)."""
    s = settings if settings is not None else KafkaClientSettings()
    options: dict[str, Any] = {"security_protocol": s.kafka_security_protocol}
    if s.kafka_uses_tls:
        options["ssl_context"] = kafka_ssl_context(s)
    if s.kafka_security_protocol.startswith("SASL_"):
        options.update(
            sasl_mechanism=s.kafka_sasl_mechanism,
            sasl_plain_username=s.kafka_sasl_username,
            sasl_plain_password=s.kafka_sasl_password.get_secret_value(),
        )
    return options


def faststream_security(settings: KafkaClientSettings) -> BaseSecurity | None:
    """The same settings as FastStream's `KafkaBroker(security=...)` object."""
    protocol = settings.kafka_security_protocol
    context = kafka_ssl_context(settings)
    if protocol == "PLAINTEXT":
        return None
    if protocol == "SSL":
        return BaseSecurity(ssl_context=context, use_ssl=True)
    sasl = {"SCRAM-SHA-256": SASLScram256, "SCRAM-SHA-512": SASLScram512, "PLAIN": SASLPlaintext}
    return sasl[settings.kafka_sasl_mechanism](
        settings.kafka_sasl_username,
        settings.kafka_sasl_password.get_secret_value(),
        ssl_context=context,
        use_ssl=protocol == "SASL_SSL",
    )


def _describe(exc: BaseException) -> str:
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


async def kafka_failure_reason(
    exc: BaseException, bootstrap: str, options: Mapping[str, Any], wait_seconds: float = 10.0
) -> str:
    """Why a Kafka client could not start, in words an operator can act on.

    aiokafka reports any bootstrap failure as "Unable to bootstrap": one direct connection per
    bootstrap server (TLS handshake and SASL included) recovers the real cause.
    """
    from aiokafka.conn import create_conn
    from aiokafka.errors import AuthenticationFailedError, SaslAuthenticationFailed

    reasons: list[str] = []
    for server in bootstrap.split(","):
        host, _, port = server.strip().rpartition(":")
        try:
            conn = await asyncio.wait_for(create_conn(host, int(port), client_id="diagnosis", **options), wait_seconds)
        except (SaslAuthenticationFailed, AuthenticationFailedError) as err:
            user = options.get("sasl_plain_username", "")
            return f"authentication failed ({options.get('sasl_mechanism')} as {user!r} at {server}): {_describe(err)}"
        except ssl.SSLError as err:
            return f"TLS handshake with {server} failed: {_describe(err)}"
        except (OSError, KafkaError, TimeoutError, ValueError) as err:
            reasons.append(f"{server}: {_describe(err)}")
            continue
        conn.close()
        return _describe(exc)  # the broker answers: the first error was about something else
    protocol = options.get("security_protocol", "PLAINTEXT")
    hint = (
        "; the broker closed the connection: does KAFKA_SECURITY_PROTOCOL match its listener "
        "(and, with TLS, does it require a client certificate, KAFKA_SSL_CERT_FILE)?"
        if any("closed" in r for r in reasons)
        else ""
    )
    return f"unreachable ({protocol}): " + "; ".join(reasons) + hint


def envelope_headers(envelope: Envelope) -> Headers:  # type: ignore[type-arg]
    """CloudEvents Kafka binding (structured mode) plus the type for cheap filtering. The trace
    context (`traceparent`, `ce_traceparent`) is added where the record is written (see `tracing`)."""
    return [
        ("content-type", CONTENT_TYPE.encode()),
        ("ce_type", envelope.type.encode()),
        ("ce_id", envelope.id.encode()),
        ("ce_source", envelope.source.encode()),
        ("ce_correlationid", envelope.correlationid.encode()),
    ]


def new_producer(bootstrap: str, client_id: str, options: Mapping[str, Any] | None = None) -> AIOKafkaProducer:
    return AIOKafkaProducer(
        bootstrap_servers=bootstrap,
        client_id=client_id,
        acks="all",
        enable_idempotence=True,
        linger_ms=5,
        request_timeout_ms=30000,
        **(options if options is not None else kafka_client_options()),
    )


async def publish_envelope(producer: AIOKafkaProducer, topic: str, envelope: Envelope) -> None:  # type: ignore[type-arg]
    await producer.send_and_wait(
        topic, encode(envelope), key=envelope.subject.encode(), headers=envelope_headers(envelope) + trace_headers()
    )


# --- the topic table: what services create at start and `mentorship topics plan|apply` provisions ----

HOUR_MS = 60 * 60 * 1000
DAY_MS = 24 * HOUR_MS
EVENTS_RETENTION_MS = 30 * DAY_MS  # consumers down for weeks can still catch up; replay covers 30 days
DEAD_LETTER_RETENTION_MS = 14 * DAY_MS  # two weeks to look at, fix and re-drive a dead letter

TOPIC_CONFIGS: dict[str, dict[str, str]] = {
    "events": {"cleanup.policy": "delete", "retention.ms": str(EVENTS_RETENTION_MS)},
    "dead letters": {"cleanup.policy": "delete", "retention.ms": str(DEAD_LETTER_RETENTION_MS)},
    # State topics (`*.state`) are tables: the latest value per key is kept forever, so a rebuild or
    # a new subscriber reads everyone after the event streams' retention. A tombstone (null value)
    # removes every earlier value of its key at the next compaction (values stay at least an hour,
    # so consumers see a change before it is compacted away) and itself stays a day, so a consumer
    # down for less than that still sees the erase.
    "state": {
        "cleanup.policy": "compact",
        "retention.ms": "-1",
        "min.compaction.lag.ms": str(HOUR_MS),
        "delete.retention.ms": str(DAY_MS),
    },
}


def parse_topic_configs(text: str) -> dict[str, str]:
    """'segment.ms=100,min.compaction.lag.ms=0' -> {'segment.ms': '100', ...} (settings overrides)."""
    out: dict[str, str] = {}
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        name, sep, value = part.partition("=")
        if not sep or not name.strip() or not value.strip():
            raise ValueError(f"topic config {part!r}: expected name=value")
        out[name.strip()] = value.strip()
    return out


def min_insync_replicas(replication_factor: int) -> int:
    """acks=all waits for this many replicas: 2 of 3 tolerates one broker down without losing writes."""
    return max(1, min(2, replication_factor - 1))


@dataclass(frozen=True)
class TopicSpec:
    name: str
    kind: str  # a key of TOPIC_CONFIGS
    partitions: int
    replication_factor: int
    configs: dict[str, str] = field(default_factory=dict)


def topic_kind(name: str) -> str:
    if name.endswith(DEAD_LETTER_SUFFIX):
        return "dead letters"
    return "state" if is_state_topic(name) else "events"


def topic_spec(
    name: str, partitions: int, replication_factor: int = 1, state_overrides: Mapping[str, str] | None = None
) -> TopicSpec:
    """`state_overrides` change the configs of state topics (tests: a small `segment.ms` and
    `min.compaction.lag.ms=0`, so compaction can be forced; see `KAFKA_STATE_TOPIC_CONFIGS`)."""
    kind = topic_kind(name)
    configs = {**TOPIC_CONFIGS[kind], "min.insync.replicas": str(min_insync_replicas(replication_factor))}
    if kind == "state" and state_overrides:
        configs.update(state_overrides)
    return TopicSpec(name, kind, partitions, replication_factor, configs)


def platform_topics(
    prefix: str, partitions: int, replication_factor: int = 1, state_overrides: Mapping[str, str] | None = None
) -> list[TopicSpec]:
    """Every topic of the platform: each event stream and state topic, and its dead-letter topic."""
    names = TopicNames(prefix)
    out: list[TopicSpec] = []
    for topic in Topic:
        out.append(topic_spec(names(topic.value), partitions, replication_factor, state_overrides))
        out.append(topic_spec(dead_letter_topic(names(topic.value)), partitions, replication_factor))
    return out


TOPIC_ALREADY_EXISTS = 36


async def existing_topics(bootstrap: str, options: Mapping[str, Any] | None = None) -> set[str]:
    admin = AIOKafkaAdminClient(
        bootstrap_servers=bootstrap, **(options if options is not None else kafka_client_options())
    )
    await admin.start()
    try:
        return set(await admin.list_topics())
    finally:
        await admin.close()


async def missing_topics(bootstrap: str, topics: Iterable[str], options: Mapping[str, Any] | None = None) -> list[str]:
    return sorted(set(topics) - await existing_topics(bootstrap, options))


async def ensure_topics(
    bootstrap: str,
    topics: Iterable[str | TopicSpec],
    partitions: int = 1,
    replication_factor: int = 1,
    *,
    options: Mapping[str, Any] | None = None,
) -> list[str]:
    """Create the topics that do not exist yet, with the table's configs; returns the created names.

    Topics given by name get `topic_spec(name, partitions, replication_factor)`."""
    specs = {
        t.name: t
        for t in (t if isinstance(t, TopicSpec) else topic_spec(t, partitions, replication_factor) for t in topics)
    }
    admin = AIOKafkaAdminClient(
        bootstrap_servers=bootstrap, **(options if options is not None else kafka_client_options())
    )
    await admin.start()
    try:
        missing: Sequence[str] = sorted(set(specs) - set(await admin.list_topics()))
        if not missing:
            return []
        try:
            response = await admin.create_topics(
                [
                    NewTopic(
                        name=n,
                        num_partitions=specs[n].partitions,
                        replication_factor=specs[n].replication_factor,
                        topic_configs=specs[n].configs,
                    )
                    for n in missing
                ]
            )
        except TopicAlreadyExistsError:
            return []  # another replica won the race
        # Per-topic failures come back in the response, not as exceptions.
        errors = {err[0]: err for err in response.topic_errors}
        failed = [
            (n, errors[n][1], errors[n][2] if len(errors[n]) > 2 else "")
            for n in missing
            if n in errors and errors[n][1] not in (0, TOPIC_ALREADY_EXISTS)
        ]
        if failed:
            raise RuntimeError(f"cannot create topics (topic, Kafka error code, message): {failed}")
        return [n for n in missing if n not in errors or errors[n][1] == 0]
    finally:
        await admin.close()
