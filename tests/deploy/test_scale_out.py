"""Scale-out, locally: three replicas of each consuming service over six partitions.

Each replica is its own process on the shared broker and store (as a Deployment's pods are).
The assignment spreads (every replica owns two partitions of each of its groups, as its
consumer-lag gauge shows), every replica handles part of the work, the replicas of a group
handle each event exactly once between them, and each email goes out once.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from mentorship_contracts import Envelope, EventData, encode
from mentorship_contracts.matching import MentorshipRequestAccepted
from mentorship_ops.support import SmtpSink
from tests.integration.notification.conftest import person
from tests.support.kafka import eventually, produce
from tests.support.processes import ServiceProcess, free_port

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(600)]

REPLICAS = 3
PARTITIONS = 6
PEOPLE = 24  # p00..p23: even ones are mentees, odd ones their mentors
# the consumer groups that receive every person's ProfileState (profile.state)
PROFILE_GROUPS = {"matching": "profile-state", "scheduling": "profile-state", "notification": "contact-book"}


@pytest.fixture
def sink() -> Iterator[SmtpSink]:
    smtp = SmtpSink(free_port()).start()
    yield smtp
    smtp.stop()


def metrics(proc: ServiceProcess) -> list[tuple[str, dict[str, str], float]]:
    text = httpx.get(f"{proc.url}/metrics", timeout=10).text
    return [(s.name, dict(s.labels), s.value) for f in text_string_to_metric_families(text) for s in f.samples]


def handled(proc: ServiceProcess, consumer: str) -> float:
    return sum(
        v for name, labels, v in metrics(proc) if name == "events_handled_total" and labels["consumer"] == consumer
    )


def assigned(proc: ServiceProcess, group: str) -> set[str]:
    return {
        labels["partition"]
        for name, labels, _ in metrics(proc)
        if name == "mentorship_consumer_lag" and labels["group"] == group
    }


async def test_three_replicas_over_six_partitions_share_the_work_once(
    spawn: Callable[..., ServiceProcess],
    infra: Any,
    prefix: str,
    sink: SmtpSink,
) -> None:
    extra = {"kafka_topic_partitions": str(PARTITIONS)}
    notification_extra = {**extra, "smtp_host": "127.0.0.1", "smtp_port": str(sink.port)}
    replicas: dict[str, list[ServiceProcess]] = {}
    for service in PROFILE_GROUPS:
        env = notification_extra if service == "notification" else extra
        # The first replica creates the indexes alone: two replicas creating the same index at once
        # on FerretDB 1.24 can lose a connection at start (MongoDB takes it), which is not what this shows.
        first = await asyncio.to_thread(spawn, service, replica=0, **env)
        others = await asyncio.gather(
            *(asyncio.to_thread(spawn, service, replica=i, **env) for i in range(1, REPLICAS))
        )
        replicas[service] = [first, *others]

    # The groups settle: each replica owns PARTITIONS / REPLICAS partitions of each of its groups
    # (the lag gauge lists the partitions a replica is assigned; it is sampled every 15 s).
    async def spread() -> bool:
        for service, consumer in PROFILE_GROUPS.items():
            group = f"{prefix}{service}.{consumer}"
            owned = [await asyncio.to_thread(assigned, proc, group) for proc in replicas[service]]
            if [len(o) for o in owned] != [PARTITIONS // REPLICAS] * REPLICAS:
                return False
            assert set().union(*owned) == {str(p) for p in range(PARTITIONS)}
        return True

    await eventually(spread, timeout=120, interval=2.0)

    async def send(data: EventData) -> Envelope[Any]:
        envelope = Envelope.wrap(data, source="test")
        await produce(infra.kafka_bootstrap, f"{prefix}{data.topic}", encode(envelope), key=envelope.subject.encode())
        return envelope

    people = [f"p{i:02d}" for i in range(PEOPLE)]
    for i, pid in enumerate(people):
        await send(person(pid, f"Person {i}", roles=("mentee",) if i % 2 == 0 else ("mentor",)))

    # Every group handles each registration once, spread over all three replicas.
    for service, consumer in PROFILE_GROUPS.items():

        async def all_handled(service: str = service, consumer: str = consumer) -> list[float] | None:
            counts = [await asyncio.to_thread(handled, proc, consumer) for proc in replicas[service]]
            return counts if sum(counts) >= PEOPLE else None

        counts = await eventually(all_handled, timeout=90, interval=1.0)
        assert sum(counts) == PEOPLE, (service, counts)  # none twice
        assert all(c > 0 for c in counts), (service, counts)  # every replica took part

    # Side effects happen once: one acceptance email per mentee, whichever replica sends it.
    accepted = [
        await send(
            MentorshipRequestAccepted(mentorship_id=f"m-{i}", mentee_id=people[2 * i], mentor_id=people[2 * i + 1])
        )
        for i in range(PEOPLE // 2)
    ]

    async def all_sent() -> bool:
        return len(sink.messages) >= len(accepted)

    await eventually(all_sent, timeout=90, interval=0.5)
    await asyncio.sleep(3)  # anything sent twice would arrive by now
    recipients = Counter(str(m["To"]) for m in sink.messages)
    assert len(sink.messages) == len(accepted), recipients
    assert set(recipients.values()) == {1}
    assert set(recipients) == {f"Person {i} <p{i:02d}@example.org>" for i in range(0, PEOPLE, 2)}
    senders = [await asyncio.to_thread(handled, proc, "matching-events") for proc in replicas["notification"]]
    assert sum(senders) == len(accepted) and sum(1 for s in senders if s > 0) >= 2, senders
