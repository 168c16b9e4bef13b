"""Thin handlers: each event becomes one use case call. Types not listed here are skipped."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from mentorship_contracts import Envelope, Topic
from mentorship_contracts.matching import (
    CohortMatchPublished,
    MentorshipAgreementRevisedV2,
    MentorshipCompleted,
    MentorshipEndedV2,
    MentorshipRequestAccepted,
    MentorshipRequestDeclinedV2,
    MentorshipRequestedV2,
    MentorshipRequestExpired,
    MentorshipRequestWithdrawn,
    MentorshipStartedV2,
    ProgramCreated,
    ProgramParticipantEnrolled,
    ProgramParticipantWithdrawn,
)
from mentorship_contracts.notification import NotificationFailed
from mentorship_contracts.profile import (
    ProfileDeactivatedV2,
    ProfileErased,
    ProfileReactivated,
    ProfileRoleAdded,
    ProfileRoleRemoved,
    ProfileState,
)
from mentorship_contracts.scheduling import (
    CheckInOverdue,
    MentorshipInactive,
    MilestoneReachedV2,
    SessionCancelledV2,
    SessionCompletedV2,
    SessionFeedbackSubmittedV2,
    SessionNoShow,
    SessionReminderDue,
    SessionRescheduled,
    SessionScheduledV2,
)
from mentorship_kit.runtime import ServiceRuntime

from ..adapters.read_models import ENROLMENTS, EVENT_REFS, FAILURES, PAIRS, PEOPLE, PROGRAMS
from ..application import InsightsUseCases


def register_consumers(runtime: ServiceRuntime, insights: InsightsUseCases) -> None:
    # People's profiles come from the compacted `profile.state`; `profile.events` (no personal data
    # from v2 on) patches roles and activity and drives the erasure, behind the same time guard.
    async def on_state(profile_id: str, event: Envelope[ProfileState]) -> None:
        await insights.profile_snapshot(event.data.profile, event.time)

    async def on_state_erased(profile_id: str, at: datetime) -> None:
        await insights.profile_erased(profile_id, at)

    async def on_role_added(event: Envelope[ProfileRoleAdded]) -> None:
        changes: dict[str, Any] = {"roles": [str(r) for r in event.data.roles]}
        if event.data.mentor_capacity is not None:
            changes["mentor_capacity"] = event.data.mentor_capacity
        await insights.profile_changed(event.data.profile_id, event.time, changes)

    async def on_role_removed(event: Envelope[ProfileRoleRemoved]) -> None:
        changes: dict[str, Any] = {"roles": [str(r) for r in event.data.roles]}
        if "mentor" not in changes["roles"]:
            changes["mentor_capacity"] = None
        await insights.profile_changed(event.data.profile_id, event.time, changes)

    async def on_deactivated(event: Envelope[ProfileDeactivatedV2]) -> None:
        await insights.profile_changed(event.data.profile_id, event.time, {"active": False})

    async def on_reactivated(event: Envelope[ProfileReactivated]) -> None:
        await insights.profile_changed(event.data.profile_id, event.time, {"active": True})

    async def on_erased(event: Envelope[ProfileErased]) -> None:
        await insights.profile_erased(event.data.profile_id, event.time)

    profile: dict[Any, Any] = {
        ProfileRoleAdded: on_role_added,
        ProfileRoleRemoved: on_role_removed,
        ProfileDeactivatedV2: on_deactivated,
        ProfileReactivated: on_reactivated,
        ProfileErased: on_erased,
    }
    matching: dict[Any, Any] = {
        MentorshipRequestedV2: insights.requested,
        MentorshipRequestAccepted: insights.accepted,
        MentorshipRequestDeclinedV2: insights.declined,
        MentorshipRequestExpired: insights.expired,
        MentorshipRequestWithdrawn: insights.withdrawn,
        MentorshipStartedV2: insights.started,
        MentorshipAgreementRevisedV2: insights.agreement_revised,
        MentorshipCompleted: insights.completed,
        MentorshipEndedV2: insights.ended,
        CohortMatchPublished: insights.cohort_published,
        ProgramCreated: insights.program_created,
        ProgramParticipantEnrolled: insights.participant_enrolled,
        ProgramParticipantWithdrawn: insights.participant_withdrawn,
    }  # introductions: not reported (yet), skipped
    scheduling: dict[Any, Any] = {
        SessionScheduledV2: insights.session_scheduled,
        SessionRescheduled: insights.session_scheduled,
        SessionCancelledV2: insights.session_cancelled,
        SessionCompletedV2: insights.session_completed,
        SessionNoShow: insights.session_no_show,
        SessionFeedbackSubmittedV2: insights.feedback,
        MilestoneReachedV2: insights.milestone,
        CheckInOverdue: insights.check_in_overdue,
        MentorshipInactive: insights.inactive,
        SessionReminderDue: insights.scheduling_ref,
    }
    notification: dict[Any, Any] = {NotificationFailed: insights.notification_failed}

    # Each consumer names what it builds; `pairs` and `event_refs` are built by two of them, so
    # both name them (a rebuild clears them once and replays every topic).
    runtime.consume_table(
        "profile-state",
        Topic.PROFILE_STATE,
        ProfileState,
        upsert=on_state,
        delete=on_state_erased,
        read_models=[PEOPLE],
    )
    runtime.consume("profiles", Topic.PROFILE, profile)
    runtime.consume("mentorships", Topic.MATCHING, matching, read_models=[PAIRS, PROGRAMS, ENROLMENTS, EVENT_REFS])
    runtime.consume("sessions", Topic.SCHEDULING, scheduling, read_models=[PAIRS, EVENT_REFS])
    runtime.consume("deliveries", Topic.NOTIFICATION, notification, read_models=[FAILURES])
