from datetime import UTC, datetime, timedelta, timezone

import pytest

from mentorship_contracts import (
    Envelope,
    EventData,
    InvalidEvent,
    UnknownEventType,
    decode,
    encode,
    event,
    register_upcaster,
)
from mentorship_contracts import registry as registry_module
from mentorship_contracts.profile import (
    ProfileRegistered,
    ProfileRegisteredV2,
    ProfileSnapshot,
    ProfileState,
    ProfileUpdated,
    ProfileUpdatedV2,
)


def _profile(**kw):
    base = dict(profile_id="p1", display_name="Ada", email="ada@example.org", roles=["mentee"])
    return ProfileSnapshot(**{**base, **kw})


def test_envelope_round_trip_keeps_type_subject_and_data():
    env = Envelope.wrap(ProfileState(profile_id="p1", version=1, profile=_profile()), source="profile")
    back = decode(encode(env))
    assert isinstance(back.data, ProfileState)
    assert back.type == "mentorship.profile.profile_state"
    assert back.subject == "p1"
    assert back.specversion == "1.0"
    assert back.dataversion == 1
    assert back.correlationid == env.id  # a new event starts its own correlation
    assert back.data.profile.email == "ada@example.org"


def test_version_1_profile_events_are_read_as_version_2_without_personal_data():
    profile = _profile(job_title="Engineer", goals=[{"goal_id": "g1", "title": "Become a secret lead"}])
    old = Envelope.wrap(ProfileRegistered(profile_id="p1", profile=profile), source="profile")
    back = decode(encode(old))
    assert isinstance(back.data, ProfileRegisteredV2) and back.dataversion == 2 and back.id == old.id
    assert back.data.facts.roles == profile.roles
    changed = ProfileUpdated(
        profile_id="p1", changed_fields=["display_name"], changes={"display_name": "Ada"}, profile=profile
    )
    updated = decode(encode(Envelope.wrap(changed, source="profile")))
    assert isinstance(updated.data, ProfileUpdatedV2) and updated.data.changed_fields == ["display_name"]
    for text in (encode(back).decode(), encode(updated).decode()):
        assert "ada@example.org" not in text and "Ada" not in text and "secret" not in text and "Engineer" not in text


def test_follow_up_event_keeps_correlation_and_names_its_cause():
    first = Envelope.wrap(ProfileRegistered(profile_id="p1", profile=_profile()), source="profile")
    second = first.caused(ProfileRegistered(profile_id="p2", profile=_profile(profile_id="p2")), source="x")
    assert second.correlationid == first.correlationid
    assert second.causationid == first.id


def test_time_is_stored_in_utc():
    cest = timezone(timedelta(hours=2))
    env = Envelope.wrap(
        ProfileRegistered(profile_id="p1", profile=_profile()),
        source="profile",
        time=datetime(2026, 6, 1, 12, 0, tzinfo=cest),
    )
    assert decode(encode(env)).time == datetime(2026, 6, 1, 10, 0, tzinfo=UTC)


@pytest.mark.parametrize("raw", [b"\xff\xfe", b"not json", b"[1,2]", b'{"no":"type"}'])
def test_undecodable_bytes_are_invalid_events(raw):
    with pytest.raises(InvalidEvent):
        decode(raw)


def test_schema_invalid_data_names_the_field():
    env = Envelope.wrap(ProfileRegistered(profile_id="p1", profile=_profile()), source="profile")
    doc = env.model_dump(mode="json")
    doc["data"]["profile"]["time_zone"] = "Mars/Olympus"
    with pytest.raises(InvalidEvent, match="time_zone"):
        decode(doc)


def test_unknown_type_is_reported_as_such():
    with pytest.raises(UnknownEventType):
        decode(b'{"type":"someone.else.thing"}')


def test_readers_ignore_unknown_fields():
    env = Envelope.wrap(ProfileRegistered(profile_id="p1", profile=_profile()), source="profile")
    doc = env.model_dump(mode="json")
    doc["data"]["added_later"] = 1
    doc["future_attribute"] = "x"
    assert decode(doc).data.profile_id == "p1"


def test_old_version_is_upcast_to_the_new_model():
    @event("test.thing_v1", topic="test.events", subject="thing_id")
    class ThingV1(EventData):
        thing_id: str
        name: str

    @event("test.thing.v2", topic="test.events", subject="thing_id", version=2)
    class ThingV2(EventData):
        thing_id: str
        full_name: str

    try:
        register_upcaster(
            "test.thing_v1", "test.thing.v2", lambda d: {"thing_id": d["thing_id"], "full_name": d["name"]}
        )
        old = Envelope.wrap(ThingV1(thing_id="t1", name="Ada"), source="test")
        new = decode(encode(old))
        assert isinstance(new.data, ThingV2)
        assert new.data.full_name == "Ada"
        assert new.dataversion == 2
    finally:
        registry_module._MODELS.pop("test.thing_v1", None)
        registry_module._MODELS.pop("test.thing.v2", None)
        registry_module._UPCASTERS.pop("test.thing_v1", None)


def test_tags_are_normalised_and_time_zones_validated():
    p = _profile(skills=[{"name": "  Public Speaking ", "proficiency": 4}], development_areas=["System Design"])
    assert p.skills[0].name == "public-speaking"
    assert p.development_areas == ["system-design"]
    with pytest.raises(ValueError, match="IANA"):
        _profile(time_zone="Berlin")
