"""Small pieces several use-case groups share: ids, people as scoring features, a program's
configuration, the mapping of lifecycle rule errors to HTTP problems, and presenters."""

from __future__ import annotations

import uuid
from typing import Any

from mentorship_kit.clock import Clock
from mentorship_kit.problems import Conflict, Problem, Unprocessable

from ..domain import Constraints, LifecycleError, RuleViolation, TransitionRefused, Weights
from ..scoring import Person
from .ports import ProfileReader, ProgramReader

EXPIRY_TIMER = "request_expiry"
_HIDDEN = ("outbox", "outbox_pending", "outbox_lease_until", "outbox_lease_owner", "outbox_seq")


def new_id() -> str:
    return str(uuid.uuid4())


def expiry_timer_id(mentorship_id: str) -> str:
    return f"expiry:{mentorship_id}"


async def person_of(profiles: ProfileReader, clock: Clock, default_capacity: int, profile_id: str) -> Person | None:
    profile = await profiles.profile(profile_id)
    if profile is None:
        return None
    return Person.from_profile(profile, clock.now(), default_capacity)


async def program_config(
    programs: ProgramReader,
    program_id: str | None,
) -> tuple[Weights, Constraints, dict[str, Any] | None]:
    """A program's weights and constraints (the defaults without a program)."""
    if program_id is None:
        return Weights(), Constraints(), None
    program = await programs.get_program(program_id)
    if program is None:
        raise Unprocessable(f"no program with id {program_id!r}", field="program_id")
    return Weights(**program["weights"]), Constraints(**program["constraints"]), program


def problem_of(error: LifecycleError) -> Problem:
    """A refused transition is a conflict with the current state; a bad value is a 422 naming it."""
    if isinstance(error, RuleViolation):
        return Unprocessable(str(error), field=error.field)
    if isinstance(error, TransitionRefused):
        return Conflict(str(error), state=error.state.value)
    return Conflict(str(error))


def present_program(doc: dict[str, Any]) -> dict[str, Any]:
    return {"program_id": doc["_id"], **{k: v for k, v in doc.items() if k not in _HIDDEN and k != "_id"}}


def present_run(doc: dict[str, Any]) -> dict[str, Any]:
    return {"run_id": doc["_id"], **{k: v for k, v in doc.items() if k != "_id"}}


def present_introduction(doc: dict[str, Any]) -> dict[str, Any]:
    return {"introduction_id": doc["_id"], **{k: v for k, v in doc.items() if k not in _HIDDEN and k != "_id"}}


def page(items: list[dict[str, Any]], total: int, offset: int, limit: int) -> dict[str, Any]:
    """One page of a listing; `next_offset` is None on the last page."""
    following = offset + len(items)
    return {
        "items": items,
        "total": total,
        "offset": offset,
        "limit": limit,
        "next_offset": following if following < total and items else None,
    }
