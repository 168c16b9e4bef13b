"""Who may lift a deactivation, and when an email counts as verified: the pure rules (issue 11)."""

from __future__ import annotations

import pytest

from mentorship_contracts.profile import ProfileSnapshot
from profile_service import domain


def person(**extra) -> ProfileSnapshot:
    base = {"profile_id": "p1", "display_name": "Ada", "email": "ada@example.org", "roles": ["mentee"]}
    return domain.validate({**base, **extra})


def test_an_admins_deactivation_is_marked_and_only_an_admin_lifts_it():
    off = domain.deactivate(person(), "left", by_admin=True)
    assert off.marks == {"deactivated_by_admin": True, "deactivation_reason": "left"} and off.profile.active is False
    with pytest.raises(domain.NotAllowed):
        domain.reactivate(off.profile, held_by_admin=True)
    on = domain.reactivate(off.profile, by_admin=True, held_by_admin=True)
    assert on.profile.active is True and on.marks == {"deactivated_by_admin": False, "deactivation_reason": None}


def test_the_persons_own_deactivation_is_theirs_to_lift_unless_an_admin_deactivated_it_too():
    off = domain.deactivate(person())
    assert off.marks == {"deactivated_by_admin": False, "deactivation_reason": None}
    assert domain.reactivate(off.profile).profile.active is True
    upgraded = domain.deactivate(off.profile, by_admin=True)  # already inactive: no event, but the mark
    assert upgraded.events == [] and upgraded.marks == {"deactivated_by_admin": True} and upgraded.changed
    assert not domain.deactivate(off.profile, by_admin=True, held_by_admin=True).changed


def test_a_new_email_is_verified_only_when_an_admin_sets_it():
    ada = person()
    assert domain.update(ada, {"email": "ada2@example.org"}).marks == {"email_verified": False}
    assert domain.update(ada, {"email": "ada2@example.org"}, by_admin=True).marks == {"email_verified": True}
    assert domain.update(ada, {"email": "ADA@example.org"}).marks == {}  # the same address
    assert domain.update(ada, {"job_title": "Analyst"}).marks == {}
    assert domain.verify_email(ada, already=False).marks == {"email_verified": True}
    assert not domain.verify_email(ada, already=True).changed
