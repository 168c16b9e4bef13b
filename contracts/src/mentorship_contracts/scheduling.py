"""Events of the scheduling service (topic `scheduling.events`, key = mentorship id).

Personal data: no names or addresses, only profile ids. Free text (agenda, notes, comments,
reasons) is marked as personal data. Times are UTC; readers show them in each person's zone.
"""

from __future__ import annotations

from typing import Literal

from pydantic import AwareDatetime, Field

from .envelope import EventData
from .registry import event
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


@event("mentorship.scheduling.milestone_reached", topic=Topic.SCHEDULING, subject="mentorship_id")
class MilestoneReached(EventData):
    """A milestone of the mentorship's goals was reached: something to celebrate."""

    mentorship_id: Id
    milestone_id: Id
    title: Name
    mentor_id: Id
    mentee_id: Id
    reached_at: AwareDatetime
    goal_id: Id | None = None
