"""Thin handlers: translate a message into a use case call."""

from __future__ import annotations

from typing import Any

from mentorship_contracts import Envelope, Topic, all_models
from mentorship_contracts.profile import (
    ProfileDeactivated,
    ProfileErased,
    ProfileReactivated,
    ProfileRegistered,
    ProfileUpdated,
)
from mentorship_kit.runtime import ServiceRuntime

from ..adapters.contacts import CONTACTS
from ..application import NotificationUseCases


def source_event_types() -> dict[str, Any]:
    """Every matching and scheduling event: rules pick some, webhooks may subscribe to any."""
    return {t: m for t, m in all_models().items() if m.topic in (Topic.MATCHING, Topic.SCHEDULING)}


def register_consumers(runtime: ServiceRuntime, app: NotificationUseCases) -> None:
    async def on_snapshot(event: Envelope[ProfileRegistered | ProfileUpdated]) -> None:
        await app.contact_changed(event.data.profile, event.time)

    async def on_deactivated(event: Envelope[ProfileDeactivated]) -> None:
        await app.contact_active(event.data.profile_id, False, event.time)

    async def on_reactivated(event: Envelope[ProfileReactivated]) -> None:
        await app.contact_active(event.data.profile_id, True, event.time)

    async def on_erased(event: Envelope[ProfileErased]) -> None:
        await app.forget(event.data.profile_id, event.time)

    profile_handlers: dict[Any, Any] = {
        ProfileRegistered: on_snapshot,
        ProfileUpdated: on_snapshot,
        ProfileDeactivated: on_deactivated,
        ProfileReactivated: on_reactivated,
        ProfileErased: on_erased,
    }
    runtime.consume("contacts", Topic.PROFILE, profile_handlers, read_models=[CONTACTS])

    models = source_event_types().values()
    for name, topic in (("matching-events", Topic.MATCHING), ("scheduling-events", Topic.SCHEDULING)):
        runtime.consume(name, topic, {m: app.handle for m in models if m.topic == topic})
