"""Matching under test: the real app (runtime, consumers, relay, timers) in this process, on the
real broker and store; profiles arrive as profile events on the (prefixed) profile topic."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer

from matching_service.entrypoints.app import create
from matching_service.settings import Settings
from mentorship_contracts import Envelope, Topic, encode
from mentorship_contracts.profile import ProfileSnapshot, ProfileState
from tests.support.inprocess import InProcess, in_process
from tests.support.kafka import eventually
from tests.support.processes import JWT_SECRET, token

ADMIN = token("admin-1", "admin")


class Running(InProcess):
    @property
    def matching(self) -> Any:
        return self.app.state.matching


@pytest.fixture
async def start_matching(settings_for) -> AsyncIterator[Callable[..., Any]]:
    async with contextlib.AsyncExitStack() as stack:

        async def start(**overrides: Any) -> Running:
            app = create(settings_for(Settings, jwt_secret=JWT_SECRET, **overrides))
            return Running(*await stack.enter_async_context(in_process(app, "matching")))

        yield start


def person(roles: list[str], **fields: Any) -> ProfileSnapshot:
    pid = fields.pop("profile_id", None) or f"p-{uuid.uuid4().hex[:8]}"
    base: dict[str, Any] = {
        "profile_id": pid,
        "display_name": f"Person {pid}",
        "email": f"{pid}@example.org",
        "roles": roles,
        "time_zone": "Europe/Berlin",
        "languages": ["en"],
        "skills": [{"name": "python", "proficiency": 4}, {"name": "leadership", "proficiency": 3}],
        "development_areas": ["python"],
        "seniority": "mid",
    }
    if "mentor" in roles:
        base.update(seniority="staff", mentor_capacity=2)
    base.update(fields)
    return ProfileSnapshot.model_validate(base)


@pytest.fixture
def register(infra, prefix) -> Callable[..., Any]:
    """Publish profiles on profile.state (ProfileState) and wait until the read model has them."""

    async def go(svc: Running, *profiles: ProfileSnapshot) -> list[str]:
        await publish(
            infra,
            prefix,
            Topic.PROFILE_STATE,
            [
                Envelope.wrap(ProfileState(profile_id=p.profile_id, version=1, profile=p), source="profile")
                for p in profiles
            ],
        )

        async def all_there() -> bool:
            for p in profiles:
                if await svc.app.state.profiles.get(p.profile_id) is None:
                    return False
                if "mentor" in p.roles and await svc.matching.store.load(p.profile_id) is None:
                    return False
            return True

        await eventually(all_there, timeout=90)  # 60 profiles on a loaded shared store can take > 30 s
        return [p.profile_id for p in profiles]

    return go


async def publish(infra: Any, prefix: str, topic: str, envelopes: list[Envelope[Any]]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=infra.kafka_bootstrap, acks="all", enable_idempotence=True)
    await producer.start()
    try:
        for env in envelopes:
            await producer.send(f"{prefix}{topic}", encode(env), key=env.subject.encode())
        await producer.flush()
    finally:
        await producer.stop()
