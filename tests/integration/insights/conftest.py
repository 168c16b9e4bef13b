"""Insights under test: the real app (runtime, consumers) in this process, on the real broker and
store; everything it knows arrives as envelopes published to the (prefixed) topics."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer

from insights_service.entrypoints.app import create
from insights_service.settings import Settings
from mentorship_contracts import Envelope, encode
from tests.support.inprocess import InProcess, in_process
from tests.support.processes import JWT_SECRET


class Running(InProcess):
    @property
    def insights(self) -> Any:
        return self.app.state.insights


@pytest.fixture
async def start_insights(settings_for) -> AsyncIterator[Callable[..., Any]]:
    async with contextlib.AsyncExitStack() as stack:

        async def start(**overrides: Any) -> Running:
            app = create(settings_for(Settings, jwt_secret=JWT_SECRET, **overrides))
            return Running(*await stack.enter_async_context(in_process(app, "insights")))

        yield start


async def publish(infra: Any, prefix: str, envelopes: list[Envelope[Any]]) -> None:
    """Publish envelopes as the producing services do: their topic, keyed by subject, in order."""
    producer = AIOKafkaProducer(bootstrap_servers=infra.kafka_bootstrap, acks="all", enable_idempotence=True)
    await producer.start()
    try:
        for env in envelopes:
            await producer.send(f"{prefix}{env.data.topic}", encode(env), key=env.subject.encode())
        await producer.flush()
    finally:
        await producer.stop()
