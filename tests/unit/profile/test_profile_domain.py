"""Profile rules without infrastructure."""

from __future__ import annotations

import pytest

from mentorship_contracts.profile import (
    ProfileDeactivatedV2,
    ProfileReactivated,
    ProfileRoleAdded,
    ProfileRoleRemoved,
    ProfileSnapshot,
    ProfileUpdatedV2,
    Role,
)
from profile_service import domain
from profile_service.domain import ProfileRuleViolation


def person(**extra) -> ProfileSnapshot:
    base = {"profile_id": "p1", "display_name": "Ada", "email": "ada@example.org", "roles": ["mentee"]}
    return domain.validate({**base, **extra})


@pytest.mark.parametrize(
    ("extra", "field"),
    [
        ({"time_zone": "Mars/Olympus"}, "time_zone"),
        ({"roles": ["guru"]}, "roles.0"),
        ({"roles": []}, "roles"),
        ({"roles": ["mentee", "mentee"]}, "roles"),
        ({"mentor_capacity": 2}, "mentor_capacity"),
        ({"availability": [{"weekday": 1, "start": "12:00", "end": "09:00"}]}, "availability"),
        (
            {
                "availability": [
                    {"weekday": 1, "start": "09:00", "end": "12:00"},
                    {"weekday": 1, "start": "11:00", "end": "13:00"},
                ]
            },
            "availability",
        ),
        ({"availability": [{"weekday": 7, "start": "09:00", "end": "12:00"}]}, "availability.0.weekday"),
        ({"display_name": "x" * 201}, "display_name"),
        ({"skills": [{"name": "python"}] * 51}, "skills"),
        ({"skills": [{"name": "Python"}, {"name": "python "}]}, "skills"),
        ({"email": "not-an-email"}, "email"),
        ({"languages": ["english language"]}, "languages"),
        ({"manager_id": "p1"}, "manager_id"),
        ({"years_experience": 71}, "years_experience"),
    ],
)
def test_bad_profiles_name_the_field(extra, field):
    with pytest.raises(ProfileRuleViolation) as caught:
        person(**extra)
    assert caught.value.field == field


def test_back_to_back_windows_and_windows_on_other_days_are_fine():
    p = person(
        availability=[
            {"weekday": 1, "start": "09:00", "end": "12:00"},
            {"weekday": 1, "start": "12:00", "end": "13:00"},
            {"weekday": 2, "start": "09:00", "end": "12:00"},
        ]
    )
    assert len(p.availability) == 3


def test_update_reports_only_changed_fields():
    p = person(job_title="Engineer", skills=[{"name": "python", "proficiency": 3}])
    change = domain.update(p, {"job_title": "Engineer", "skills": [{"name": "Python", "proficiency": 4}]})
    assert change.changed_fields == ["skills"]
    [event] = change.events
    assert isinstance(event, ProfileUpdatedV2)  # v2: names the fields, carries non-personal facts only
    assert event.changed_fields == ["skills"]
    assert event.facts.skills[0].proficiency == 4
    assert "job_title" not in event.model_dump() and "profile" not in event.model_dump()
    [state] = [e for e in domain.with_state(change, 2) if e.topic == "profile.state"]
    assert state.profile == change.profile and state.version == 2  # the whole profile: profile.state


def test_update_that_changes_nothing_emits_nothing():
    p = person(department="R&D")
    change = domain.update(p, {"department": "R&D", "display_name": "Ada"})
    assert not change.changed and change.events == [] and change.profile is p


def test_update_refuses_roles_and_active_and_id():
    for name in ("roles", "active", "profile_id"):
        with pytest.raises(ProfileRuleViolation) as caught:
            domain.update(person(), {name: None})
        assert caught.value.field == name


def test_preferences_merge_one_level_deep():
    p = person(mentoring_preferences={"topics": ["career"], "meeting_format": "video"})
    change = domain.update(p, {"mentoring_preferences": {"meeting_format": "chat"}})
    assert change.profile.mentoring_preferences.topics == ["career"]
    assert change.events[0].changed_fields == ["mentoring_preferences"]
    assert change.events[0].facts.mentoring_preferences.meeting_format == "chat"


def test_capacity_needs_mentor_role_on_update_too():
    with pytest.raises(ProfileRuleViolation) as caught:
        domain.update(person(), {"mentor_capacity": 3})
    assert caught.value.field == "mentor_capacity"


def test_becoming_a_mentor_and_back():
    p = person()
    added = domain.add_role(p, Role.MENTOR, mentor_capacity=2)
    [event] = added.events
    assert isinstance(event, ProfileRoleAdded)
    assert event.role == Role.MENTOR and event.roles == [Role.MENTEE, Role.MENTOR] and event.mentor_capacity == 2
    removed = domain.remove_role(added.profile, Role.MENTOR)
    [event] = removed.events
    assert isinstance(event, ProfileRoleRemoved) and event.roles == [Role.MENTEE]
    assert removed.profile.mentor_capacity is None
    assert not domain.add_role(added.profile, Role.MENTOR).changed  # already a mentor: nothing happens


def test_last_role_cannot_go():
    with pytest.raises(ProfileRuleViolation):
        domain.remove_role(person(), Role.MENTEE)


def test_deactivate_and_reactivate_are_idempotent():
    p = person()
    off = domain.deactivate(p, "on leave")
    assert isinstance(off.events[0], ProfileDeactivatedV2) and not off.profile.active
    # the words stay beside the profile; the event says only that there were some
    assert off.events[0].has_reason and off.events[0].reason_code == "other"
    assert off.marks["deactivation_reason"] == "on leave"
    assert not domain.deactivate(off.profile).changed
    on = domain.reactivate(off.profile)
    assert isinstance(on.events[0], ProfileReactivated) and on.profile.active
    assert on.marks["deactivation_reason"] is None  # removed when lifted
    assert not domain.reactivate(on.profile).changed


def test_import_update_with_role_change_emits_role_event_then_update():
    p = person()
    change = domain.update(
        p, {"roles": ["mentee", "mentor"], "mentor_capacity": 3, "department": "Ops"}, allowed=domain.IMPORTABLE_FIELDS
    )
    assert [type(e) for e in change.events] == [ProfileRoleAdded, ProfileUpdatedV2]
    assert change.events[1].changed_fields == ["department", "mentor_capacity"]
