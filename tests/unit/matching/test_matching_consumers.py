"""The consumer registration, with FastStream's in-memory broker: a profile state published on
`profile.state` and a profile event on the profile topic reach the read model and the mentor's
capacity (fakes behind it)."""

from __future__ import annotations

from typing import Any

from faststream.kafka import TestKafkaBroker

from matching_service.entrypoints.consumers import register_consumers
from matching_service.settings import Settings
from mentorship_contracts import Envelope, Topic, encode
from mentorship_contracts.profile import ProfileDeactivated, ProfileSnapshot, ProfileState
from mentorship_kit.runtime import ServiceRuntime

from .fakes import world


class MemoryCollection:
    def __init__(self) -> None:
        self.docs: dict[Any, dict[str, Any]] = {}

    async def find_one(self, query: dict[str, Any], projection: Any = None) -> dict[str, Any] | None:
        return self.docs.get(query["_id"])

    async def insert_one(self, doc: dict[str, Any]) -> None:
        self.docs[doc["_id"]] = doc

    async def insert_many(self, docs: list[dict[str, Any]], ordered: bool = True) -> None:
        for doc in docs:
            self.docs[doc["_id"]] = doc


class MemoryDatabase(dict[str, MemoryCollection]):
    """Just what the kit's consumer needs: its processed-event markers."""

    def __missing__(self, name: str) -> MemoryCollection:
        self[name] = MemoryCollection()
        return self[name]


def snapshot(pid: str, **fields: Any) -> ProfileSnapshot:
    return ProfileSnapshot.model_validate(
        {
            "profile_id": pid,
            "display_name": "Ada",
            "email": f"{pid}@example.org",
            "roles": ["mentor"],
            "time_zone": "UTC",
            "mentor_capacity": 3,
            **fields,
        }
    )


async def test_a_profile_event_reaches_the_read_model_and_the_capacity() -> None:
    w = world()
    runtime = ServiceRuntime(Settings(jwt_secret="unit-test-secret-0123456789abcdef", kafka_topic_prefix="unit."))
    runtime.db = MemoryDatabase()  # type: ignore[assignment]
    register_consumers(runtime, w.profiles, w.lifecycle, w.reviews, None)  # type: ignore[arg-type]
    topic = runtime.topics(Topic.PROFILE)
    registered = Envelope.wrap(ProfileState(profile_id="p1", version=1, profile=snapshot("p1")), source="profile")
    async with TestKafkaBroker(runtime.broker) as broker:
        state_topic = runtime.topics(Topic.PROFILE_STATE)
        await broker.publish(encode(registered), topic=state_topic, key=b"p1")
        await broker.publish(encode(registered), topic=state_topic, key=b"p1")  # a redelivery changes nothing
        deactivated = Envelope.wrap(ProfileDeactivated(profile_id="p1"), source="profile")
        await broker.publish(encode(deactivated), topic=topic, key=b"p1")
    assert w.profiles.by_id["p1"]["display_name"] == "Ada"
    assert w.profiles.by_id["p1"]["active"] is False
    assert w.profiles.bumps == 1
    assert w.store.capacity == {"p1": 3}
