"""Thin handlers: translate a message into a read-model change."""

from __future__ import annotations

from typing import Any

from mentorship_contracts import Envelope, Topic
from mentorship_contracts.profile import ProfileRegistered
from mentorship_kit.runtime import ServiceRuntime

from ..adapters.read_model import ProfileReadModel


def register_consumers(runtime: ServiceRuntime, profiles: ProfileReadModel) -> None:
    async def on_registered(event: Envelope[ProfileRegistered]) -> None:
        await profiles.upsert(event.data.profile, event.time)

    handlers: dict[Any, Any] = {ProfileRegistered: on_registered}
    runtime.consume("profile-read-model", Topic.PROFILE, handlers)
