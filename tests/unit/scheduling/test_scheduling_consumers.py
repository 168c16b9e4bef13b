"""Scheduling's consumer registration under FastStream's TestKafkaBroker: an envelope published
in memory on matching's and profile's topics reaches the use cases (no broker, no store)."""

from __future__ import annotations

from datetime import UTC, datetime

from faststream.kafka import TestKafkaBroker

from mentorship_contracts import Envelope, Topic, encode
from mentorship_contracts.matching import Agreement, MentorshipStarted
from mentorship_contracts.profile import ProfileSnapshot, ProfileState
from scheduling_service.application import CHECK_IN, SchedulingUseCases
from scheduling_service.entrypoints.consumers import register_consumers
from scheduling_service.settings import Settings
from tests.unit.kit_fakes import FakeContext, runtime_without_store
from tests.unit.scheduling.fakes import FakeMentorships, FakeProfiles, FakeSessions

NOW = datetime(2031, 3, 3, 8, 0, tzinfo=UTC)


async def test_published_envelopes_reach_the_use_cases():
    settings = Settings(kafka_topic_prefix="unit.")
    runtime = runtime_without_store(settings)
    fake = FakeContext("scheduling", now=NOW)
    mentorships, profiles = FakeMentorships(), FakeProfiles()
    scheduling = SchedulingUseCases(
        fake.ctx, settings=settings, mentorships=mentorships, profiles=profiles, sessions=FakeSessions()
    )
    register_consumers(runtime, scheduling)
    started = Envelope.wrap(
        MentorshipStarted(
            mentorship_id="m1",
            mentor_id="grace",
            mentee_id="ada",
            started_at=NOW,
            agreement=Agreement(cadence="weekly"),
        ),
        source="matching",
        time=NOW,
    )
    ada = ProfileSnapshot(
        profile_id="ada", display_name="Ada", email="ada@example.org", roles=["mentee"], time_zone="Europe/Berlin"
    )
    registered = Envelope.wrap(ProfileState(profile_id="ada", version=1, profile=ada), source="profile", time=NOW)
    try:
        async with TestKafkaBroker(runtime.broker) as broker:
            await broker.publish(encode(started), topic=runtime.topics(Topic.MATCHING), key=b"m1")
            await broker.publish(encode(registered), topic=runtime.topics(Topic.PROFILE_STATE), key=b"ada")
            await broker.publish(encode(started), topic=runtime.topics(Topic.MATCHING), key=b"m1")  # again
    finally:
        await runtime.client.close()
    assert (await mentorships.get("m1"))["status"] == "active"
    assert len(fake.timers.pending(CHECK_IN)) == 1
    assert (await profiles.get("ada"))["time_zone"] == "Europe/Berlin"
    assert {c.name for c in runtime.consumers} == {"mentorships", "profile-state", "profiles"}
