"""Who may call a route: declared once per route, published in OpenAPI as `x-policy`.

Every route says one of these (``@router.get(..., openapi_extra=policy(Policy.ADMIN))``); a test
reads every service's OpenAPI document and fails on a route without one, then calls each route as
each kind of caller and checks the answer against the declaration.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any


class Policy(StrEnum):
    ANONYMOUS = "anonymous"
    """No token: liveness, readiness, metrics, a calendar feed behind its own secret token."""
    AUTHENTICATED = "authenticated"
    """Any signed-in person; the use case narrows what they see to their own (e.g. their list)."""
    PERSON = "person"
    """The person the path names (their profile, inbox, preferences), or an admin."""
    PARTICIPANT = "participant"
    """A participant of the mentorship, request, session or introduction the path names, or an admin.

    A route may narrow it to one participant (`actor="mentor"`: only the mentor acts) or leave
    admins out (`admins=False`: e.g. feedback on a session only its participants attended)."""
    ADMIN = "admin"
    """Admins only (program managers, operators)."""


def policy(who: Policy, note: str = "", *, actor: str = "", admins: bool = True) -> dict[str, Any]:
    """`openapi_extra` of a route: who may call it, and a short note where it needs one.

    `actor` names the one participant who may act on a PARTICIPANT route (e.g. "mentor" accepts a
    request; the other participant gets 403); `admins=False` says admins may not call it either.
    Both are published (`x-policy-actor`, `x-policy-admins`) so that the policy test checks them.
    """
    extra: dict[str, Any] = {"x-policy": who.value}
    if note:
        extra["x-policy-note"] = note
    if actor:
        extra["x-policy-actor"] = actor
    if not admins:
        extra["x-policy-admins"] = False
    return extra
