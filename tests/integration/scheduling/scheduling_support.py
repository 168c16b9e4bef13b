"""Feeding the scheduling service the events it reads, and reading what it publishes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from mentorship_contracts import Envelope, EventData, Topic, decode, encode
from mentorship_contracts.matching import Agreement, MentorshipEnded, MentorshipStarted
from mentorship_contracts.profile import AvailabilityWindow, ProfileSnapshot, ProfileState
from tests.support.kafka import eventually, produce, read_topic
from tests.support.processes import token

ADMIN = token("admin-1", "admin")


async def publish(infra: Any, prefix: str, data: EventData) -> Envelope[Any]:
    env = Envelope.wrap(data, source="test")
    await produce(infra.kafka_bootstrap, f"{prefix}{data.topic}", encode(env), key=data.subject.encode())
    return env


async def person(infra: Any, prefix: str, pid: str, tz: str, windows: list[tuple[int, str, str]]) -> None:
    snapshot = ProfileSnapshot(
        profile_id=pid,
        display_name=pid,
        email=f"{pid}@example.org",
        roles=["mentor", "mentee"],
        time_zone=tz,
        availability=[AvailabilityWindow(weekday=d, start=s, end=e) for d, s, e in windows],
    )
    await publish(infra, prefix, ProfileState(profile_id=pid, version=1, profile=snapshot))


async def mentorship(
    infra: Any,
    prefix: str,
    mid: str,
    mentor: str,
    mentee: str,
    *,
    cadence: str = "weekly",
    goals: tuple[str, ...] = (),
    started_at: datetime | None = None,
) -> None:
    await publish(
        infra,
        prefix,
        MentorshipStarted(
            mentorship_id=mid,
            mentor_id=mentor,
            mentee_id=mentee,
            agreement=Agreement(goals=list(goals), cadence=cadence),  # type: ignore[arg-type]
            started_at=started_at or datetime.now(UTC),
        ),
    )


async def end_mentorship(infra: Any, prefix: str, mid: str, mentor: str, mentee: str) -> None:
    await publish(
        infra,
        prefix,
        MentorshipEnded(mentorship_id=mid, mentor_id=mentor, mentee_id=mentee, ended_at=datetime.now(UTC)),
    )


async def known(http: httpx.AsyncClient, base: str, mid: str, status: str = "active") -> dict[str, Any]:
    async def check() -> dict[str, Any] | None:
        r = await http.get(f"{base}/mentorships/{mid}", headers=ADMIN)
        return r.json() if r.status_code == 200 and r.json()["status"] == status else None

    return await eventually(check)


def future_start(days: float = 2, hour: int | None = None) -> datetime:
    t = datetime.now(UTC) + timedelta(days=days)
    if hour is not None:
        t = t.replace(hour=hour)
    return t.replace(minute=0, second=0, microsecond=0)


async def scheduling_events(infra: Any, prefix: str, *, want: int, timeout: float = 20) -> list[Envelope[Any]]:
    records = await read_topic(infra.kafka_bootstrap, f"{prefix}{Topic.SCHEDULING}", want=want, timeout=timeout)
    return [decode(r.value) for r in records]


def db_name(prefix: str) -> str:
    return f"{prefix.replace('.', '_').strip('_')}_scheduling"


async def profiles_known(http: httpx.AsyncClient, base: str, mid: str) -> None:
    """Both participants' profiles reached the read model (slots answer only then)."""

    async def check() -> bool:
        r = await http.get(f"{base}/mentorships/{mid}/slots", headers=ADMIN, params={"count": 1})
        return r.status_code == 200

    await eventually(check)
