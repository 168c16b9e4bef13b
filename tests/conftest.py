"""Shared fixtures: real infrastructure started once per run; each test isolated by names."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from mentorship_ops.support import ServiceProcess, free_port
from tests.support.infra import Infra, provide_infra
from tests.support.processes import service_env


@pytest.fixture(scope="session")
def infra() -> Iterator[Infra]:
    with provide_infra() as found:
        print(f"\n[infra] Kafka {found.kafka_bootstrap}, Mongo {found.mongodb_uri} ({found.how})")
        yield found


@pytest.fixture
def prefix() -> str:
    """A unique topic prefix and database-name stem: tests never see each other's data."""
    return f"t{uuid.uuid4().hex[:10]}."


@pytest.fixture
def settings_for(infra: Infra, prefix: str) -> Callable[..., Any]:
    """Settings of a service running in this test process, isolated by prefix."""

    def build(settings_cls: type, **overrides: Any) -> Any:
        base = dict(
            kafka_bootstrap_servers=infra.kafka_bootstrap,
            mongodb_uri=infra.mongodb_uri,
            kafka_topic_prefix=prefix,
            kafka_topic_partitions=1,
            consumer_retry_backoff_ms=20,
            outbox_poll_interval_ms=100,
            timer_poll_interval_ms=100,
        )
        base.update(overrides)
        name = base.get("service_name") or settings_cls.model_fields["service_name"].default
        base.setdefault("mongodb_database", f"{prefix.strip('.')}_{name}")
        return settings_cls(**base)

    return build


@pytest.fixture
def spawn(infra: Infra, prefix: str, tmp_path: Path) -> Iterator[Callable[..., ServiceProcess]]:
    """Start services as separate processes on the real broker and store."""
    started: list[ServiceProcess] = []

    def start(name: str, *, replica: int = 0, **extra: str) -> ServiceProcess:
        port = free_port()
        env = service_env(name, kafka=infra.kafka_bootstrap, mongo=infra.mongodb_uri, prefix=prefix, port=port, **extra)
        proc = ServiceProcess(name, port, env, tmp_path / f"{name}-{replica}.log")
        started.append(proc)
        return proc.start(timeout=180)  # a loaded 2-core CI machine can take minutes to start several

    yield start
    for proc in started:
        proc.stop()
        # Shown by pytest only when the test failed.
        print(f"--- {proc.name} log (tail) ---\n{proc.tail(60)}")


@pytest.fixture
async def mongo(infra: Infra) -> AsyncIterator[Any]:
    from pymongo import AsyncMongoClient

    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(infra.mongodb_uri, tz_aware=True)
    yield client
    await client.close()
