"""State topics: the topic table's compaction settings, tombstones in the outbox, and the table
consumer (upsert on a value, delete on a tombstone, a poison value dead-lettered without it)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from mentorship_contracts import Envelope, Topic, encode
from mentorship_contracts.profile import ProfileSnapshot, ProfileState
from mentorship_kit.consumer import RetryPolicy
from mentorship_kit.messaging import TopicNames, parse_topic_configs, platform_topics, topic_spec
from mentorship_kit.outbox import TOMBSTONE, Tombstone, outbox_entries
from mentorship_kit.tables import TableConsumer


def test_state_topics_are_compacted_with_overridable_settings() -> None:
    spec = topic_spec("t.profile.state", 3)
    assert spec.kind == "state"
    assert spec.configs["cleanup.policy"] == "compact" and spec.configs["retention.ms"] == "-1"
    assert spec.configs["min.compaction.lag.ms"] == str(60 * 60 * 1000)
    assert spec.configs["delete.retention.ms"] == str(24 * 60 * 60 * 1000)
    small = topic_spec("t.profile.state", 3, 1, parse_topic_configs("segment.ms=100, min.compaction.lag.ms=0"))
    assert small.configs["segment.ms"] == "100" and small.configs["min.compaction.lag.ms"] == "0"
    assert topic_spec("t.profile.state.dlt", 3).kind == "dead letters"
    assert topic_spec("t.profile.events", 3, 1, {"segment.ms": "100"}).configs.get("segment.ms") is None
    names = {s.name: s.kind for s in platform_topics("p.", 3)}
    assert names["p.profile.state"] == "state" and names["p.profile.state.dlt"] == "dead letters"


def test_a_tombstone_is_an_outbox_entry_with_a_null_body() -> None:
    [entry] = outbox_entries([Tombstone(Topic.PROFILE_STATE, "p1")])
    assert entry["type"] == TOMBSTONE and entry["body"] is None
    assert entry["topic"] == "profile.state" and entry["key"] == "p1"


@dataclass
class Record:
    value: bytes | None
    key: bytes | None = b"p1"
    topic: str = "t.profile.state"
    partition: int = 1
    offset: int = 7
    timestamp: int = 1_700_000_000_000
    headers: list[tuple[str, bytes]] = field(default_factory=list)


class Producer:
    def __init__(self) -> None:
        self.sent: list[tuple[str, Any, Any, list[tuple[str, bytes]]]] = []

    async def send_and_wait(self, topic: str, value: Any, *, key: Any, headers: list[tuple[str, bytes]]) -> None:
        self.sent.append((topic, value, key, headers))


def consumer(rows: dict[str, Any], producer: Producer) -> TableConsumer:
    async def upsert(key: str, envelope: Envelope[Any]) -> None:
        if envelope.data.profile.display_name == "Broken":
            raise ValueError("cannot store Broken Person's row")  # a message quoting the value
        rows[key] = envelope.data.profile.display_name

    async def delete(key: str, at: datetime) -> None:
        rows.pop(key, None)

    return TableConsumer(
        model=ProfileState,
        upsert=upsert,
        delete=delete,
        service="svc",
        name="profile-state",
        topic=Topic.PROFILE_STATE,
        db=None,  # type: ignore[arg-type]  # a table consumer keeps no markers
        dlt_producer=lambda: producer,  # type: ignore[arg-type,return-value]
        topics=TopicNames("t."),
        retry=RetryPolicy(2, 0.0, 0.0),
    )


def state(name: str) -> bytes:
    profile = ProfileSnapshot(profile_id="p1", display_name=name, email="ada@example.org", roles=["mentee"])
    return encode(Envelope.wrap(ProfileState(profile_id="p1", version=1, profile=profile), source="profile"))


async def test_values_upsert_tombstones_delete_and_poison_is_dead_lettered_without_the_value() -> None:
    rows: dict[str, Any] = {}
    producer = Producer()
    table = consumer(rows, producer)
    assert await table.process(Record(state("Ada"))) == "handled"
    assert await table.process(Record(state("Ada"))) == "handled"  # again: the same row
    assert rows == {"p1": "Ada"}
    assert await table.process(Record(None)) == "handled"
    assert rows == {}
    assert await table.process(Record(None)) == "handled"  # a second tombstone changes nothing

    assert await table.process(Record(b"{not json")) == "dead_lettered"
    assert await table.process(Record(state("Broken"))) == "dead_lettered"
    assert await table.process(Record(state("Ada"), key=b"p2")) == "dead_lettered"  # subject is not the key
    assert rows == {}
    for topic, value, key, headers in producer.sent:
        found = dict(headers)
        assert topic == "t.profile.state.dlt" and value is None and key in (b"p1", b"p2")
        assert found["dlt-value-omitted"] == b"true" and "dlt-stack" not in found
        assert found["dlt-original-partition"] == b"1" and found["dlt-original-offset"] == b"7"
        assert b"Broken" not in b"".join(found.values()) and b"ada@" not in b"".join(found.values())
    assert len(producer.sent) == 3
