"""Events of the matching service (topic `matching.events`).

Key: the mentorship id for the whole lifecycle (a request IS a mentorship in state
`requested`, so request and mentorship events of one pair stay in order), the program id for
cohort events, the introduction id for introductions.

Personal data: none carry names or addresses, only profile ids. Free text written by people
(`message`, `reason`, agreement `expectations`) is marked as personal data.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StringConstraints

from .envelope import EventData
from .registry import event
from .text import IDS_MAX, NAME_MAX, Id, Name
from .topics import Topic

Cadence = Literal["weekly", "biweekly", "monthly"]


class Agreement(BaseModel):
    """What mentor and mentee agreed on when the mentorship started."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    goals: list[Name] = Field(default_factory=list, max_length=20, description="goal titles")
    goal_ids: list[Id] = Field(default_factory=list, max_length=20)
    expectations: str = Field(default="", max_length=4000)
    cadence: Cadence = "biweekly"
    planned_end: date | None = None


class MatchQuality(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    total_score: float
    bound_ratio: float = Field(description="total score / best known upper bound")
    p10_score: float
    matched: int
    unmatched: int
    top5_share: float
    blocking_pair_mentees: int


@event(
    "mentorship.matching.mentorship_requested",
    topic=Topic.MATCHING,
    subject="mentorship_id",
    personal_data=("message",),
)
class MentorshipRequested(EventData):
    """A mentee asked a mentor to mentor them; expires at `expires_at` if unanswered."""

    mentorship_id: Id
    mentee_id: Id
    mentor_id: Id
    program_id: Id | None = None
    message: str = Field(default="", max_length=2000)
    expires_at: AwareDatetime


@event("mentorship.matching.mentorship_request_accepted", topic=Topic.MATCHING, subject="mentorship_id")
class MentorshipRequestAccepted(EventData):
    """The mentor accepted (if the program needs admin approval, MentorshipStarted follows it)."""

    mentorship_id: Id
    mentee_id: Id
    mentor_id: Id
    program_id: Id | None = None
    awaiting_admin_approval: bool = False


@event(
    "mentorship.matching.mentorship_request_declined",
    topic=Topic.MATCHING,
    subject="mentorship_id",
    personal_data=("reason",),
)
class MentorshipRequestDeclined(EventData):
    """The mentor (or an admin, or the platform at capacity) declined the request."""

    mentorship_id: Id
    mentee_id: Id
    mentor_id: Id
    program_id: Id | None = None
    reason: str = Field(default="", max_length=2000)
    automatic: bool = Field(default=False, description="declined by the platform, e.g. mentor at capacity")


@event("mentorship.matching.mentorship_request_expired", topic=Topic.MATCHING, subject="mentorship_id")
class MentorshipRequestExpired(EventData):
    """Nobody answered the request in time."""

    mentorship_id: Id
    mentee_id: Id
    mentor_id: Id
    program_id: Id | None = None


@event("mentorship.matching.mentorship_request_withdrawn", topic=Topic.MATCHING, subject="mentorship_id")
class MentorshipRequestWithdrawn(EventData):
    """The mentee withdrew the request."""

    mentorship_id: Id
    mentee_id: Id
    mentor_id: Id
    program_id: Id | None = None


@event(
    "mentorship.matching.mentorship_started",
    topic=Topic.MATCHING,
    subject="mentorship_id",
    personal_data=("agreement",),
)
class MentorshipStarted(EventData):
    """A mentorship is active: participants, program, agreement and cadence."""

    mentorship_id: Id
    mentee_id: Id
    mentor_id: Id
    program_id: Id | None = None
    agreement: Agreement
    started_at: AwareDatetime
    origin: Literal["request", "cohort"] = "request"


@event("mentorship.matching.mentorship_completed", topic=Topic.MATCHING, subject="mentorship_id")
class MentorshipCompleted(EventData):
    """The mentorship reached its end as planned."""

    mentorship_id: Id
    mentee_id: Id
    mentor_id: Id
    program_id: Id | None = None
    completed_at: AwareDatetime


@event("mentorship.matching.mentorship_ended", topic=Topic.MATCHING, subject="mentorship_id", personal_data=("reason",))
class MentorshipEnded(EventData):
    """The mentorship ended early; `not_a_good_fit` frees the slot and excludes the pair."""

    mentorship_id: Id
    mentee_id: Id
    mentor_id: Id
    program_id: Id | None = None
    reason: str = Field(default="", max_length=2000)
    not_a_good_fit: bool = False
    ended_at: AwareDatetime


@event("mentorship.matching.cohort_match_published", topic=Topic.MATCHING, subject="program_id")
class CohortMatchPublished(EventData):
    """An admin published a cohort run: all its mentorships start at once."""

    program_id: Id
    program_name: Annotated[str, StringConstraints(max_length=NAME_MAX)]
    run_id: Id
    mentorship_ids: list[Id] = Field(max_length=IDS_MAX)
    quality: MatchQuality
    admin_ids: list[Id] = Field(default_factory=list, max_length=1000)


@event(
    "mentorship.matching.introduction_made", topic=Topic.MATCHING, subject="introduction_id", personal_data=("message",)
)
class IntroductionMade(EventData):
    """A mentor introduced their mentee to another member for networking."""

    introduction_id: Id
    mentorship_id: Id
    introduced_by: Id
    mentee_id: Id
    contact_id: Id
    message: str = Field(default="", max_length=2000)


@event("mentorship.matching.introduction_accepted", topic=Topic.MATCHING, subject="introduction_id")
class IntroductionAccepted(EventData):
    """The introduced person accepted the introduction."""

    introduction_id: Id
    mentee_id: Id
    contact_id: Id
    introduced_by: Id


@event("mentorship.matching.introduction_declined", topic=Topic.MATCHING, subject="introduction_id")
class IntroductionDeclined(EventData):
    """The introduced person declined the introduction."""

    introduction_id: Id
    mentee_id: Id
    contact_id: Id
    introduced_by: Id


@event("mentorship.matching.program_created", topic=Topic.MATCHING, subject="program_id")
class ProgramCreated(EventData):
    """An admin created a mentoring program (its name is the program's, not a person's)."""

    program_id: Id
    name: Name
    mode: Literal["self-select", "admin-approved", "automatic"]
    starts_on: date | None = None
    ends_on: date | None = None
    created_at: AwareDatetime


@event("mentorship.matching.program_participant_enrolled", topic=Topic.MATCHING, subject="program_id")
class ProgramParticipantEnrolled(EventData):
    """Someone was enrolled in a program as mentee or mentor. `enrolment_id` names this
    enrolment (a person who withdraws and enrols again gets a new one)."""

    program_id: Id
    profile_id: Id
    role: Literal["mentee", "mentor"]
    enrolment_id: Id
    enrolled_at: AwareDatetime


@event("mentorship.matching.program_participant_withdrawn", topic=Topic.MATCHING, subject="program_id")
class ProgramParticipantWithdrawn(EventData):
    """An enrolment ended (the person withdrew or an admin withdrew them); `enrolment_id` and
    `enrolled_at` name the enrolment it ends, so events arriving out of order still add up."""

    program_id: Id
    profile_id: Id
    role: Literal["mentee", "mentor"]
    enrolment_id: Id
    enrolled_at: AwareDatetime
    withdrawn_at: AwareDatetime


@event(
    "mentorship.matching.mentorship_agreement_revised",
    topic=Topic.MATCHING,
    subject="mentorship_id",
    personal_data=("agreement",),
)
class MentorshipAgreementRevised(EventData):
    """Both participants agreed on a revised agreement: it replaces the one the mentorship had
    (cadence and planned end included) from `revised_at` on."""

    mentorship_id: Id
    mentee_id: Id
    mentor_id: Id
    program_id: Id | None = None
    agreement: Agreement
    proposed_by: Id
    accepted_by: Id
    revised_at: AwareDatetime
