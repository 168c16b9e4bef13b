"""Events of the scheduling service (topic `scheduling.events`, key = mentorship id).

Personal data: no names or addresses, only profile ids. Free text (agenda, notes, comments,
reasons, milestone titles) is marked as personal data in version 1 and is not in version 2 (`...V2`,
type `mentorship.<service>.v2.<name>`), which says that text exists (`has_agenda`, `has_notes`, ...) and gives a
reason code; the text stays in the scheduling service, readable through its API by the participants.
Upcasters read v1 records as v2, dropping the text. Times are UTC; readers show them in each
person's zone.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import AwareDatetime, Field

from .envelope import EventData
from .reasons import ReasonCode, reason_fields
from .registry import event, register_upcaster
from .text import Id, Line, Name, Text
from .topics import Topic


class _SessionEvent(EventData):
    mentorship_id: Id
    session_id: Id
    mentor_id: Id
    mentee_id: Id
    ical_uid: Id = Field(description="stable iCalendar UID of the session")
    sequence: int = Field(default=0, ge=0, description="iCalendar SEQUENCE after this change")


@event(
    "mentorship.scheduling.session_scheduled",
    topic=Topic.SCHEDULING,
    subject="mentorship_id",
    personal_data=("agenda",),
)
class SessionScheduled(_SessionEvent):
    """A mentoring session was booked."""

    start: AwareDatetime
    duration_minutes: int = Field(ge=5, le=480)
    location: Line | None = None
    agenda: Text = ""
    series_id: Id | None = None
    scheduled_by: Id


@event("mentorship.scheduling.session_rescheduled", topic=Topic.SCHEDULING, subject="mentorship_id")
class SessionRescheduled(_SessionEvent):
    """A session moved to another time (same UID, higher SEQUENCE)."""

    previous_start: AwareDatetime
    start: AwareDatetime
    duration_minutes: int = Field(ge=5, le=480)
    location: Line | None = None
    rescheduled_by: Id


@event(
    "mentorship.scheduling.session_cancelled",
    topic=Topic.SCHEDULING,
    subject="mentorship_id",
    personal_data=("reason",),
    protection={"reason": "kept as a code in v2 (`reason_code`, `has_reason`); the text stays in scheduling"},
)
class SessionCancelled(_SessionEvent):
    """A session was called off."""

    start: AwareDatetime
    reason: Text = ""
    cancelled_by: Id


@event(
    "mentorship.scheduling.session_completed", topic=Topic.SCHEDULING, subject="mentorship_id", personal_data=("notes",)
)
class SessionCompleted(_SessionEvent):
    """A session took place."""

    start: AwareDatetime
    completed_at: AwareDatetime
    notes: Text = ""


@event("mentorship.scheduling.session_no_show", topic=Topic.SCHEDULING, subject="mentorship_id")
class SessionNoShow(_SessionEvent):
    """Someone did not turn up."""

    start: AwareDatetime
    absent_ids: list[Id] = Field(max_length=10)
    reported_by: Id


@event("mentorship.scheduling.session_reminder_due", topic=Topic.SCHEDULING, subject="mentorship_id")
class SessionReminderDue(_SessionEvent):
    """A session starts soon; `offset_minutes` before its start."""

    start: AwareDatetime
    duration_minutes: int
    offset_minutes: int
    location: Line | None = None


@event("mentorship.scheduling.check_in_overdue", topic=Topic.SCHEDULING, subject="mentorship_id")
class CheckInOverdue(EventData):
    """No completed session within the cadence plus grace: time to check in."""

    mentorship_id: Id
    mentor_id: Id
    mentee_id: Id
    cadence: Name
    last_session_at: AwareDatetime | None = None
    due_since: AwareDatetime


@event("mentorship.scheduling.mentorship_inactive", topic=Topic.SCHEDULING, subject="mentorship_id")
class MentorshipInactive(EventData):
    """A long silence: no completed session for much longer than the cadence."""

    mentorship_id: Id
    mentor_id: Id
    mentee_id: Id
    last_session_at: AwareDatetime | None = None
    inactive_since: AwareDatetime


@event(
    "mentorship.scheduling.session_feedback_submitted",
    topic=Topic.SCHEDULING,
    subject="mentorship_id",
    personal_data=("comment",),
)
class SessionFeedbackSubmitted(EventData):
    """A participant rated a completed session; may flag the pairing as not a good fit."""

    mentorship_id: Id
    session_id: Id
    author_id: Id
    author_role: Literal["mentor", "mentee"]
    rating: int = Field(ge=1, le=5)
    comment: Text = ""
    not_a_good_fit: bool = False


@event(
    "mentorship.scheduling.milestone_reached",
    topic=Topic.SCHEDULING,
    subject="mentorship_id",
    personal_data=("title",),
)
class MilestoneReached(EventData):
    """A milestone of the mentorship's goals was reached: something to celebrate."""

    mentorship_id: Id
    milestone_id: Id
    title: Name
    mentor_id: Id
    mentee_id: Id
    reached_at: AwareDatetime
    goal_id: Id | None = None


# --- version 2: no free text ----------------------------------------------------------------


@event("mentorship.scheduling.v2.session_scheduled", topic=Topic.SCHEDULING, subject="mentorship_id", version=2)
class SessionScheduledV2(_SessionEvent):
    """A mentoring session was booked; the agenda, if any (`has_agenda`), is read through
    scheduling's API (GET /sessions/{id})."""

    start: AwareDatetime
    duration_minutes: int = Field(ge=5, le=480)
    location: Line | None = None
    has_agenda: bool = False
    series_id: Id | None = None
    scheduled_by: Id


@event("mentorship.scheduling.v2.session_cancelled", topic=Topic.SCHEDULING, subject="mentorship_id", version=2)
class SessionCancelledV2(_SessionEvent):
    """A session was called off; a reason the person wrote (`has_reason`) is read through
    scheduling's API."""

    start: AwareDatetime
    reason_code: ReasonCode = "other"
    has_reason: bool = False
    cancelled_by: Id


@event("mentorship.scheduling.v2.session_completed", topic=Topic.SCHEDULING, subject="mentorship_id", version=2)
class SessionCompletedV2(_SessionEvent):
    """A session took place; its notes, if any (`has_notes`), are read through scheduling's API."""

    start: AwareDatetime
    completed_at: AwareDatetime
    has_notes: bool = False


@event(
    "mentorship.scheduling.v2.session_feedback_submitted",
    topic=Topic.SCHEDULING,
    subject="mentorship_id",
    version=2,
)
class SessionFeedbackSubmittedV2(EventData):
    """A participant rated a completed session; may flag the pairing as not a good fit. The comment,
    if any (`has_comment`), stays in scheduling."""

    mentorship_id: Id
    session_id: Id
    author_id: Id
    author_role: Literal["mentor", "mentee"]
    rating: int = Field(ge=1, le=5)
    has_comment: bool = False
    not_a_good_fit: bool = False


@event("mentorship.scheduling.v2.milestone_reached", topic=Topic.SCHEDULING, subject="mentorship_id", version=2)
class MilestoneReachedV2(EventData):
    """A milestone of the mentorship's goals was reached: something to celebrate. Its title (a
    person's goal) is read through scheduling's API (GET /mentorships/{id})."""

    mentorship_id: Id
    milestone_id: Id
    mentor_id: Id
    mentee_id: Id
    reached_at: AwareDatetime
    goal_id: Id | None = None


# --- upcasters: v1 records are read as v2, their text dropped --------------------------------


def _flag_instead(field: str, flag: str) -> Any:
    def upcast(data: dict[str, Any]) -> dict[str, Any]:
        value = data.get(field)
        out = {k: v for k, v in data.items() if k != field}
        out[flag] = isinstance(value, str) and bool(value.strip())
        return out

    return upcast


def upcast_cancelled(data: dict[str, Any]) -> dict[str, Any]:
    return {**{k: v for k, v in data.items() if k != "reason"}, **reason_fields(data.get("reason"))}


def upcast_milestone(data: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in data.items() if k != "title"}


for _old, _new, _upcast in (
    (SessionScheduled, SessionScheduledV2, _flag_instead("agenda", "has_agenda")),
    (SessionCancelled, SessionCancelledV2, upcast_cancelled),
    (SessionCompleted, SessionCompletedV2, _flag_instead("notes", "has_notes")),
    (SessionFeedbackSubmitted, SessionFeedbackSubmittedV2, _flag_instead("comment", "has_comment")),
    (MilestoneReached, MilestoneReachedV2, upcast_milestone),
):
    register_upcaster(_old.event_type, _new.event_type, _upcast)
