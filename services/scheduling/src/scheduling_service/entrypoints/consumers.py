"""Thin handlers: translate matching and profile events into read-model changes."""

from __future__ import annotations

from typing import Any

from mentorship_contracts import Topic
from mentorship_contracts.matching import (
    MentorshipAgreementRevisedV2,
    MentorshipCompleted,
    MentorshipEndedV2,
    MentorshipStartedV2,
)
from mentorship_contracts.profile import ProfileErased, ProfileState
from mentorship_kit.runtime import ServiceRuntime

from ..adapters.read_models import PROFILES
from ..application import SchedulingUseCases


def register_consumers(runtime: ServiceRuntime, scheduling: SchedulingUseCases) -> None:
    mentorships: dict[Any, Any] = {
        # v1 records are read as v2 (the contracts' upcasters), so only v2 has a handler
        MentorshipStartedV2: scheduling.mentorship_started,
        MentorshipAgreementRevisedV2: scheduling.agreement_revised,
        MentorshipCompleted: scheduling.mentorship_closed,
        MentorshipEndedV2: scheduling.mentorship_closed,
    }
    # Not a pure read model: the mentorship documents also hold milestones and session
    # bookkeeping owned here, so a rebuild must not clear them.
    runtime.consume("mentorships", Topic.MATCHING, mentorships)
    # Time zones and availability come from the compacted `profile.state` (a rebuild reads everyone
    # there after the event streams' retention); `profile.events` drives the erasure.
    runtime.consume_table(
        "profile-state",
        Topic.PROFILE_STATE,
        ProfileState,
        upsert=lambda _key, event: scheduling.profile_changed(event),
        delete=scheduling.profile_removed,
        read_models=[PROFILES],
    )
    runtime.consume("profiles", Topic.PROFILE, {ProfileErased: scheduling.profile_erased})
