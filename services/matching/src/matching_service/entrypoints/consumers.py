"""Thin handlers: translate a message into a read-model change or a use case call."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from mentorship_contracts import Envelope, Topic
from mentorship_contracts.profile import (
    ProfileDeactivatedV2,
    ProfileErased,
    ProfileReactivated,
    ProfileRoleAdded,
    ProfileRoleRemoved,
    ProfileState,
)
from mentorship_contracts.scheduling import SessionFeedbackSubmittedV2
from mentorship_kit.runtime import ServiceRuntime

from ..adapters.read_model import CANDIDATES, ProfileReadModel
from ..application import ErasureUseCases, LifecycleUseCases, ReviewUseCases


def register_consumers(
    runtime: ServiceRuntime,
    profiles: ProfileReadModel,
    lifecycle: LifecycleUseCases,
    reviews: ReviewUseCases,
    erasure: ErasureUseCases,
) -> None:
    # People's profiles come from the compacted `profile.state` (the whole profile, names included);
    # `profile.events` (ids and non-personal facts from v2 on) drives role and activity changes and
    # the erasure. Both write through the read model's event-time guard, so their order does not matter.
    async def on_state(profile_id: str, event: Envelope[ProfileState]) -> None:
        if await profiles.upsert(event.data.profile, event.time):
            await lifecycle.profile_changed(event.data.profile.model_dump(mode="json"))

    async def on_state_erased(profile_id: str, at: datetime) -> None:
        await profiles.erase(profile_id, at)

    async def on_role_added(event: Envelope[ProfileRoleAdded]) -> None:
        changes: dict[str, Any] = {"roles": [str(r) for r in event.data.roles]}
        if event.data.mentor_capacity is not None:
            changes["mentor_capacity"] = event.data.mentor_capacity
        await _patched(event, changes)

    async def on_role_removed(event: Envelope[ProfileRoleRemoved]) -> None:
        await _patched(event, {"roles": [str(r) for r in event.data.roles]})

    async def on_deactivated(event: Envelope[ProfileDeactivatedV2]) -> None:
        await _patched(event, {"active": False})

    async def on_reactivated(event: Envelope[ProfileReactivated]) -> None:
        await _patched(event, {"active": True})

    async def on_erased(event: Envelope[ProfileErased]) -> None:
        await erasure.profile_erased(event)

    async def _patched(event: Envelope[Any], changes: dict[str, Any]) -> None:
        doc = await profiles.patch(event.data.profile_id, changes, event.time)
        if doc is not None:
            await lifecycle.profile_changed(doc["profile"])

    async def on_feedback(event: Envelope[SessionFeedbackSubmittedV2]) -> None:
        await reviews.feedback_flag(event)

    handlers: dict[Any, Any] = {
        ProfileRoleAdded: on_role_added,
        ProfileRoleRemoved: on_role_removed,
        ProfileDeactivatedV2: on_deactivated,
        ProfileReactivated: on_reactivated,
        ProfileErased: on_erased,
    }
    runtime.consume_table(
        "profile-state",
        Topic.PROFILE_STATE,
        ProfileState,
        upsert=on_state,
        delete=on_state_erased,
        read_models=[CANDIDATES],
    )
    runtime.consume("profile-read-model", Topic.PROFILE, handlers)
    runtime.consume("session-feedback", Topic.SCHEDULING, {SessionFeedbackSubmittedV2: on_feedback})
