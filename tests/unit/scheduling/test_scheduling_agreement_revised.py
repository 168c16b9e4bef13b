"""A revised agreement reaches scheduling: the mentorship's cadence and planned end change and the
check-in and inactivity timers follow the new cadence (under TestKafkaBroker, in-memory stores)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from faststream.kafka import TestKafkaBroker

from mentorship_contracts import Envelope, Topic, encode
from mentorship_contracts.matching import Agreement, MentorshipAgreementRevised, MentorshipStarted
from scheduling_service.application import CHECK_IN, INACTIVE, SchedulingUseCases
from scheduling_service.entrypoints.consumers import register_consumers
from scheduling_service.settings import Settings
from tests.unit.kit_fakes import FakeContext, runtime_without_store
from tests.unit.scheduling.fakes import FakeMentorships, FakeProfiles, FakeSessions

NOW = datetime(2031, 3, 3, 8, 0, tzinfo=UTC)
IDS = {"mentorship_id": "m1", "mentor_id": "grace", "mentee_id": "ada"}


async def test_the_check_in_timer_follows_the_revised_cadence():
    settings = Settings(kafka_topic_prefix="unit.", check_in_grace_days=3, inactive_after_cadences=3)
    runtime = runtime_without_store(settings)
    fake = FakeContext("scheduling", now=NOW)
    mentorships = FakeMentorships()
    scheduling = SchedulingUseCases(
        fake.ctx, settings=settings, mentorships=mentorships, profiles=FakeProfiles(), sessions=FakeSessions()
    )
    register_consumers(runtime, scheduling)
    started = Envelope.wrap(
        MentorshipStarted(**IDS, started_at=NOW, agreement=Agreement(cadence="monthly")), source="matching", time=NOW
    )
    revised_at = NOW + timedelta(days=2)
    revised = Envelope.wrap(
        MentorshipAgreementRevised(
            **IDS,
            agreement=Agreement(cadence="weekly", planned_end=date(2031, 9, 1)),
            proposed_by="ada",
            accepted_by="grace",
            revised_at=revised_at,
        ),
        source="matching",
        time=revised_at,
    )
    topic = runtime.topics(Topic.MATCHING)
    try:
        async with TestKafkaBroker(runtime.broker) as broker:
            await broker.publish(encode(started), topic=topic, key=b"m1")
            [monthly] = fake.timers.pending(CHECK_IN)
            assert monthly["due_at"] == NOW + timedelta(days=30 + 3)
            await broker.publish(encode(revised), topic=topic, key=b"m1")
            await broker.publish(encode(started), topic=topic, key=b"m1")  # a late redelivery changes nothing
    finally:
        await runtime.client.close()
    m = await mentorships.get("m1")
    assert m is not None and (m["cadence"], m["planned_end"]) == ("weekly", "2031-09-01")
    [check_in] = fake.timers.pending(CHECK_IN)
    [inactive] = fake.timers.pending(INACTIVE)
    assert check_in["due_at"] == NOW + timedelta(days=7 + 3)  # anchored at the start, one week on
    assert inactive["due_at"] == NOW + timedelta(days=7 * 3)
