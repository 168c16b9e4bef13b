"""Profile rules: pure, no I/O."""

from __future__ import annotations

from mentorship_contracts.profile import ProfileRegistered, ProfileSnapshot, Role


class ProfileRuleViolation(ValueError):
    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


def check_profile(profile: ProfileSnapshot) -> None:
    """Rules that span fields (single fields are validated by the model)."""
    if profile.mentor_capacity is not None and Role.MENTOR not in profile.roles:
        raise ProfileRuleViolation("mentor_capacity", "only mentors have a mentor capacity")
    windows = sorted(profile.availability, key=lambda w: (w.weekday, w.start_minute))
    for w in windows:
        if w.end_minute <= w.start_minute:
            raise ProfileRuleViolation("availability", f"window {w.start}-{w.end} ends before it starts")
    for a, b in zip(windows, windows[1:]):
        if a.weekday == b.weekday and b.start_minute < a.end_minute:
            raise ProfileRuleViolation("availability", f"windows {a.start}-{a.end} and {b.start}-{b.end} overlap")
    if profile.manager_id is not None and profile.manager_id == profile.profile_id:
        raise ProfileRuleViolation("manager_id", "a person cannot be their own manager")


def register(profile: ProfileSnapshot) -> ProfileRegistered:
    check_profile(profile)
    return ProfileRegistered(profile_id=profile.profile_id, profile=profile)
