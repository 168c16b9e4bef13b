"""Kafka for assertions: `read_topic` is the shared plain reader (mentorship_ops.support, also used
by the CLI and the benchmarks); `produce` sends one record as any producer would."""

from __future__ import annotations

import asyncio
import time

from aiokafka import AIOKafkaProducer

from mentorship_ops.support import read_topic

__all__ = ["eventually", "produce", "read_topic"]


async def produce(
    bootstrap: str,
    topic: str,
    value: bytes,
    *,
    key: bytes | None = None,
    headers: list[tuple[str, bytes]] | None = None,
) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=True)
    await producer.start()
    try:
        await producer.send_and_wait(topic, value, key=key, headers=headers or [])
    finally:
        await producer.stop()


async def eventually(check, *, timeout: float = 30.0, interval: float = 0.2):
    """Poll an async check until it returns something truthy."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = await check()
        if last:
            return last
        await asyncio.sleep(interval)
    raise AssertionError(f"condition not met within {timeout}s (last: {last!r})")
