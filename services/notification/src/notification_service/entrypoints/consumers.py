"""Thin handlers: translate a message into a use case call."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from mentorship_contracts import Envelope, Topic, all_models
from mentorship_contracts.profile import (
    ProfileDeactivatedV2,
    ProfileErased,
    ProfileReactivated,
    ProfileState,
)
from mentorship_kit.runtime import ServiceRuntime

from ..adapters.contacts import CONTACTS
from ..application import NotificationUseCases


def source_event_types() -> dict[str, Any]:
    """Every matching and scheduling event: rules pick some, webhooks may subscribe to any."""
    return {t: m for t, m in all_models().items() if m.topic in (Topic.MATCHING, Topic.SCHEDULING)}


def register_consumers(runtime: ServiceRuntime, app: NotificationUseCases) -> None:
    # The contact book (names, addresses, preferences) comes from the compacted `profile.state`;
    # `profile.events` carries no personal data from v2 on and drives activity and the erasure.
    async def on_state(profile_id: str, event: Envelope[ProfileState]) -> None:
        await app.contact_changed(event.data.profile, event.time)

    async def on_state_erased(profile_id: str, at: datetime) -> None:
        await app.contact_removed(profile_id, at)

    async def on_deactivated(event: Envelope[ProfileDeactivatedV2]) -> None:
        await app.contact_active(event.data.profile_id, False, event.time)

    async def on_reactivated(event: Envelope[ProfileReactivated]) -> None:
        await app.contact_active(event.data.profile_id, True, event.time)

    async def on_erased(event: Envelope[ProfileErased]) -> None:
        await app.forget(event.data.profile_id, event.time)

    profile_handlers: dict[Any, Any] = {
        ProfileDeactivatedV2: on_deactivated,
        ProfileReactivated: on_reactivated,
        ProfileErased: on_erased,
    }
    runtime.consume_table(
        "contact-book",
        Topic.PROFILE_STATE,
        ProfileState,
        upsert=on_state,
        delete=on_state_erased,
        read_models=[CONTACTS],
    )
    runtime.consume("contacts", Topic.PROFILE, profile_handlers)

    models = source_event_types().values()
    for name, topic in (("matching-events", Topic.MATCHING), ("scheduling-events", Topic.SCHEDULING)):
        runtime.consume(name, topic, {m: app.handle for m in models if m.topic == topic})
