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
from mentorship_contracts.profile import ProfileErased, ProfileRegistered, ProfileUpdated
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
    profiles: dict[Any, Any] = {
        ProfileRegistered: scheduling.profile_changed,
        ProfileUpdated: scheduling.profile_changed,
        ProfileErased: scheduling.profile_erased,
    }
    runtime.consume("profiles", Topic.PROFILE, profiles, read_models=[PROFILES])
