"""Profile rules: pure, no I/O.

Every change goes through `register` or `update`: the whole profile is re-validated (model
limits plus the cross-field rules in `check_profile`), and the events it causes are derived
from the difference between the old and the new profile, so "nothing changed" means "no event".
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from mentorship_contracts import EventData
from mentorship_contracts.profile import (
    ProfileDeactivatedV2,
    ProfileErased,
    ProfileFacts,
    ProfileReactivated,
    ProfileRegisteredV2,
    ProfileRoleAdded,
    ProfileRoleRemoved,
    ProfileSnapshot,
    ProfileState,
    ProfileUpdatedV2,
    Role,
)
from mentorship_contracts.reasons import reason_fields

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_LANGUAGE = re.compile(r"^[a-z]{2,3}(-[a-z0-9]{2,8})*$")
MAX_CATEGORY_LENGTH = 60

# Fields a person (or HR) may change with a partial update. Roles and the active flag have
# their own operations (and events); the id never changes.
UPDATABLE_FIELDS = frozenset(ProfileSnapshot.model_fields) - {"profile_id", "roles", "active"}
# Fields the bulk import may set: the updatable ones plus roles.
IMPORTABLE_FIELDS = UPDATABLE_FIELDS | {"roles"}
MERGED_OBJECTS = frozenset({"mentoring_preferences", "notification_preferences"})


class NotAllowed(Exception):
    """The caller may not do this to this profile in its current state (403, not 422)."""


class ProfileRuleViolation(ValueError):
    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


def email_key(email: str) -> str:
    """Emails are unique case-insensitively."""
    return email.strip().lower()


def external_key(profile: ProfileSnapshot) -> str:
    """The unique key of the directory's id; a profile without one gets a placeholder of its own
    (the store has no partial unique index, so a missing key would clash with the next missing one)."""
    if profile.external_id is None:
        return f"none:{profile.profile_id}"
    return external_key_of(profile.external_id)


def external_key_of(external_id: str) -> str:
    """External ids are compared exactly (SCIM: caseExact)."""
    return f"id:{external_id}"


def violation_from(exc: ValidationError) -> ProfileRuleViolation:
    """The first model error as a rule violation naming its field (e.g. 'availability.1.start')."""
    err = exc.errors()[0]
    loc = ".".join(str(p) for p in err.get("loc", ()) if p not in ("body",)) or "profile"
    message = err.get("msg", "invalid value")
    if err.get("type") == "enum":
        message = f"{message} (got {err.get('input')!r})"
    return ProfileRuleViolation(loc, message)


def validate(data: dict[str, Any]) -> ProfileSnapshot:
    """Build a profile from plain data and check every rule, or raise ProfileRuleViolation."""
    try:
        profile = ProfileSnapshot.model_validate(data)
    except ValidationError as exc:
        raise violation_from(exc) from exc
    check_profile(profile)
    return profile


def check_profile(profile: ProfileSnapshot) -> None:
    """Rules that span fields or go beyond the shared model's limits."""
    if not _EMAIL.match(profile.email):
        raise ProfileRuleViolation("email", "is not an email address (expected name@domain.tld)")
    if len(set(profile.roles)) != len(profile.roles):
        raise ProfileRuleViolation("roles", "a role is listed twice")
    if profile.mentor_capacity is not None and Role.MENTOR not in profile.roles:
        raise ProfileRuleViolation("mentor_capacity", "only mentors have a mentor capacity")
    names = [s.name for s in profile.skills]
    if len(set(names)) != len(names):
        raise ProfileRuleViolation("skills", "a skill is listed twice")
    goal_ids = [g.goal_id for g in profile.goals]
    if len(set(goal_ids)) != len(goal_ids):
        raise ProfileRuleViolation("goals", "two goals share a goal_id")
    for lang in profile.languages:
        if not _LANGUAGE.match(lang) or len(lang) > 35:
            raise ProfileRuleViolation("languages", f"{lang[:40]!r} is not a language tag (e.g. 'en', 'pt-br')")
    for category in profile.notification_preferences.categories:
        if not category or len(category) > MAX_CATEGORY_LENGTH:
            raise ProfileRuleViolation(
                "notification_preferences.categories", f"a category name has 1 to {MAX_CATEGORY_LENGTH} characters"
            )
    windows = sorted(profile.availability, key=lambda w: (w.weekday, w.start_minute))
    for w in windows:
        if w.end_minute <= w.start_minute:
            raise ProfileRuleViolation("availability", f"window {w.start}-{w.end} ends before it starts")
    for a, b in itertools.pairwise(windows):
        if a.weekday == b.weekday and b.start_minute < a.end_minute:
            raise ProfileRuleViolation(
                "availability", f"windows {a.start}-{a.end} and {b.start}-{b.end} on day {a.weekday} overlap"
            )
    if profile.manager_id is not None and profile.manager_id == profile.profile_id:
        raise ProfileRuleViolation("manager_id", "a person cannot be their own manager")


def register(profile: ProfileSnapshot) -> ProfileRegisteredV2:
    """The event carries the non-personal facts only; the whole profile goes out as `state`."""
    check_profile(profile)
    return ProfileRegisteredV2(profile_id=profile.profile_id, facts=ProfileFacts.of(profile))


def state(profile: ProfileSnapshot, version: int) -> ProfileState:
    """The person's whole current profile for the compacted `profile.state` topic, published after
    every change of the profile (personal data travels only there; an erase publishes a tombstone)."""
    return ProfileState(profile_id=profile.profile_id, version=version, profile=profile)


def with_state(change: Change, version: int) -> list[EventData]:
    """A change's events, followed by the new state when the profile itself changed."""
    return [*change.events, state(change.profile, version)] if change.changed_fields else list(change.events)


@dataclass(frozen=True)
class Change:
    """The outcome of a change: the new profile, what changed, and the events it causes.

    `marks` are facts kept beside the profile, not in it (and not in any event): whether its email
    is verified, whether an admin deactivated it.
    """

    profile: ProfileSnapshot
    changed_fields: list[str] = field(default_factory=list)
    events: list[EventData] = field(default_factory=list)
    marks: dict[str, Any] = field(default_factory=dict)

    @property
    def changed(self) -> bool:
        return bool(self.changed_fields or self.marks)


def update(
    current: ProfileSnapshot,
    changes: dict[str, Any],
    *,
    allowed: frozenset[str] = UPDATABLE_FIELDS,
    by_admin: bool = False,
) -> Change:
    """Apply a partial update; only fields whose value really changes are reported.

    Role changes become ProfileRoleAdded/Removed (listed first, so readers see the role
    before, e.g., a new mentor capacity); every other change goes into one ProfileUpdatedV2,
    which names the changed fields and carries the non-personal facts (values: `profile.state`).
    A new email is verified only when an admin sets it: a person's own new address is not.
    """
    unknown = set(changes) - allowed
    if unknown:
        name = sorted(unknown)[0]
        raise ProfileRuleViolation(name, "cannot be changed here")
    before = current.model_dump(mode="json")
    merged = dict(before)
    for name, value in changes.items():
        # Preference objects merge one level deep, so a change to one of their keys keeps the others.
        if name in MERGED_OBJECTS and isinstance(value, dict) and isinstance(before.get(name), dict):
            merged[name] = {**before[name], **value}
        else:
            merged[name] = value
    new = validate(merged)
    after = new.model_dump(mode="json")
    changed = [name for name in ProfileSnapshot.model_fields if before[name] != after[name]]
    if not changed:
        return Change(current)
    events: list[EventData] = []
    if "roles" in changed:
        events += _role_events(current, new)
    other = [name for name in changed if name != "roles"]
    if other:
        events.append(ProfileUpdatedV2(profile_id=new.profile_id, changed_fields=other, facts=ProfileFacts.of(new)))
    marks = {"email_verified": by_admin} if email_key(new.email) != email_key(current.email) else {}
    return Change(new, changed, events, marks)


def _role_events(current: ProfileSnapshot, new: ProfileSnapshot) -> list[EventData]:
    events: list[EventData] = []
    for role in Role:
        if role in new.roles and role not in current.roles:
            events.append(
                ProfileRoleAdded(
                    profile_id=new.profile_id, role=role, roles=list(new.roles), mentor_capacity=new.mentor_capacity
                )
            )
        elif role in current.roles and role not in new.roles:
            events.append(ProfileRoleRemoved(profile_id=new.profile_id, role=role, roles=list(new.roles)))
    return events


def add_role(current: ProfileSnapshot, role: Role, mentor_capacity: int | None = None) -> Change:
    """Take on a role; a new mentor may state a capacity at the same time."""
    if role in current.roles:
        if mentor_capacity is not None and mentor_capacity != current.mentor_capacity:
            raise ProfileRuleViolation("role", f"already a {role}; change mentor_capacity with a profile update")
        return Change(current)
    changes: dict[str, Any] = {"roles": [*current.roles, role]}
    if mentor_capacity is not None:
        changes["mentor_capacity"] = mentor_capacity
    return _role_change(current, changes)


def remove_role(current: ProfileSnapshot, role: Role) -> Change:
    """Give up a role; the last role cannot go, and a former mentor has no capacity."""
    if role not in current.roles:
        return Change(current)
    remaining = [r for r in current.roles if r != role]
    if not remaining:
        raise ProfileRuleViolation("role", "a profile keeps at least one role (deactivate or erase it instead)")
    changes: dict[str, Any] = {"roles": remaining}
    if role == Role.MENTOR:
        changes["mentor_capacity"] = None
    return _role_change(current, changes)


def _role_change(current: ProfileSnapshot, changes: dict[str, Any]) -> Change:
    new = validate({**current.model_dump(mode="json"), **changes})
    changed = [name for name in changes if getattr(current, name) != getattr(new, name)]
    # The role event carries the capacity, so a capacity tied to the role change needs no extra event.
    return Change(new, changed, _role_events(current, new))


def deactivate(
    current: ProfileSnapshot, reason: str | None = None, *, by_admin: bool = False, held_by_admin: bool = False
) -> Change:
    """An admin's deactivation holds until an admin lifts it, even over the person's own earlier one."""
    if not current.active:
        if by_admin and not held_by_admin:
            return Change(current, marks={"deactivated_by_admin": True})
        return Change(current)
    new = current.model_copy(update={"active": False})
    # The reason's words stay here, beside the profile; the event says only whether there are any.
    return Change(
        new,
        ["active"],
        [ProfileDeactivatedV2(profile_id=current.profile_id, **reason_fields(reason))],
        {"deactivated_by_admin": by_admin, "deactivation_reason": reason or None},
    )


def reactivate(current: ProfileSnapshot, *, by_admin: bool = False, held_by_admin: bool = False) -> Change:
    if current.active:
        return Change(current)
    if held_by_admin and not by_admin:
        raise NotAllowed("an admin deactivated this profile: only an admin can reactivate it")
    new = current.model_copy(update={"active": True})
    return Change(
        new,
        ["active"],
        [ProfileReactivated(profile_id=current.profile_id)],
        {"deactivated_by_admin": False, "deactivation_reason": None},
    )


def verify_email(current: ProfileSnapshot, *, already: bool) -> Change:
    """An admin vouches for the profile's email (e.g. after checking a row the HR import held)."""
    return Change(current) if already else Change(current, marks={"email_verified": True})


def erase(profile_id: str) -> ProfileErased:
    return ProfileErased(profile_id=profile_id)
