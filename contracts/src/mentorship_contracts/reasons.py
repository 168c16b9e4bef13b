"""Reason codes: what v2 events carry instead of a reason a person wrote.

A person's words stay in the owning service's store (readable through its API by those allowed);
the event says only why in a word (`reason_code`) and whether there are words (`has_reason`).
Reasons the platform writes itself are not personal and map to their own codes.
"""

from __future__ import annotations

from typing import Literal

ReasonCode = Literal["other", "mentor_at_capacity", "participant_left", "mentorship_ended"]
"""`other`: a person's decision (their reason, if they wrote one, is in the owning service);
the rest are the platform's own reasons."""

# The texts the platform writes as reasons (matching and scheduling), and their codes.
PLATFORM_REASONS: dict[str, ReasonCode] = {
    "the mentor reached their capacity": "mentor_at_capacity",
    "the person left the platform": "participant_left",
    "the mentorship ended": "mentorship_ended",
}


def reason_code(reason: str | None) -> ReasonCode:
    """The code of a stored reason text: a platform text maps to its code, anything else is `other`."""
    return PLATFORM_REASONS.get((reason or "").strip(), "other")


def has_personal_reason(reason: str | None) -> bool:
    """A person wrote a reason (a platform text is not one)."""
    text = (reason or "").strip()
    return bool(text) and text not in PLATFORM_REASONS


def reason_fields(reason: str | None) -> dict[str, ReasonCode | bool]:
    """`reason_code` and `has_reason` of a v2 event, from the reason text the service stores."""
    return {"reason_code": reason_code(reason), "has_reason": has_personal_reason(reason)}
