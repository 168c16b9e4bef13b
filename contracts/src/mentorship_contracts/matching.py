"""Events of the matching service (topic `matching.events`).

Key: the mentorship id for the whole lifecycle (a request IS a mentorship in state
`requested`, so request and mentorship events of one pair stay in order), the program id for
cohort events, the introduction id for introductions.

Personal data: none carry names or addresses, only profile ids. Free text written by people
(`message`, `reason`, agreement goals and `expectations`) is marked as personal data in version 1
and is not in version 2 (`...V2`, type `mentorship.<service>.v2.<name>`): v2 says that text exists (`has_message`,
`has_reason`, goal counts) and gives a reason code; the text stays in the matching service, readable
through its API by the participants. Upcasters read v1 records as v2, dropping the text, so a replay
of old records never re-creates it in a read model (docs/decisions/personal-data-in-events.md).
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StringConstraints

from .envelope import EventData
from .reasons import ReasonCode, reason_fields
from .registry import event, register_upcaster
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
    protection={"reason": "kept as a code in v2 (`reason_code`, `has_reason`); the text stays in matching"},
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
    protection={
        "agreement": "goal titles and expectations dropped in v2 (`AgreementFacts`: goal ids and count, "
        "cadence, planned end kept); the text stays in matching"
    },
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


@event(
    "mentorship.matching.mentorship_ended",
    topic=Topic.MATCHING,
    subject="mentorship_id",
    personal_data=("reason",),
    protection={"reason": "kept as a code in v2 (`reason_code`, `has_reason`); the text stays in matching"},
)
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
    protection={
        "agreement": "goal titles and expectations dropped in v2 (`AgreementFacts`: goal ids and count, "
        "cadence, planned end kept); the text stays in matching"
    },
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


# --- version 2: no free text ----------------------------------------------------------------


class AgreementFacts(BaseModel):
    """The non-personal facts of an agreement: the goal titles and expectations stay in matching."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    goal_ids: list[Id] = Field(default_factory=list, max_length=20)
    goal_count: int = Field(default=0, ge=0, le=20, description="how many goals were agreed")
    has_expectations: bool = False
    cadence: Cadence = "biweekly"
    planned_end: date | None = None

    @classmethod
    def of(cls, agreement: Agreement) -> AgreementFacts:
        return cls(
            goal_ids=list(agreement.goal_ids),
            goal_count=len(agreement.goals),
            has_expectations=bool(agreement.expectations.strip()),
            cadence=agreement.cadence,
            planned_end=agreement.planned_end,
        )


@event("mentorship.matching.v2.mentorship_requested", topic=Topic.MATCHING, subject="mentorship_id", version=2)
class MentorshipRequestedV2(EventData):
    """A mentee asked a mentor to mentor them; expires at `expires_at` if unanswered. The message,
    if any (`has_message`), is read through matching's API (GET /mentorships/{id})."""

    mentorship_id: Id
    mentee_id: Id
    mentor_id: Id
    program_id: Id | None = None
    has_message: bool = False
    expires_at: AwareDatetime


@event("mentorship.matching.v2.mentorship_request_declined", topic=Topic.MATCHING, subject="mentorship_id", version=2)
class MentorshipRequestDeclinedV2(EventData):
    """The mentor (or an admin, or the platform at capacity) declined the request. A reason the
    person wrote (`has_reason`) is read through matching's API."""

    mentorship_id: Id
    mentee_id: Id
    mentor_id: Id
    program_id: Id | None = None
    reason_code: ReasonCode = "other"
    has_reason: bool = False
    automatic: bool = Field(default=False, description="declined by the platform, e.g. mentor at capacity")


@event("mentorship.matching.v2.mentorship_started", topic=Topic.MATCHING, subject="mentorship_id", version=2)
class MentorshipStartedV2(EventData):
    """A mentorship is active: participants, program, cadence and the agreement's non-personal facts."""

    mentorship_id: Id
    mentee_id: Id
    mentor_id: Id
    program_id: Id | None = None
    agreement: AgreementFacts
    started_at: AwareDatetime
    origin: Literal["request", "cohort"] = "request"


@event("mentorship.matching.v2.mentorship_ended", topic=Topic.MATCHING, subject="mentorship_id", version=2)
class MentorshipEndedV2(EventData):
    """The mentorship ended early; `not_a_good_fit` frees the slot and excludes the pair. A reason
    the person wrote (`has_reason`) is read through matching's API."""

    mentorship_id: Id
    mentee_id: Id
    mentor_id: Id
    program_id: Id | None = None
    reason_code: ReasonCode = "other"
    has_reason: bool = False
    not_a_good_fit: bool = False
    ended_at: AwareDatetime


@event("mentorship.matching.v2.introduction_made", topic=Topic.MATCHING, subject="introduction_id", version=2)
class IntroductionMadeV2(EventData):
    """A mentor introduced their mentee to another member for networking; the message, if any
    (`has_message`), is read through matching's API (GET /introductions/{id})."""

    introduction_id: Id
    mentorship_id: Id
    introduced_by: Id
    mentee_id: Id
    contact_id: Id
    has_message: bool = False


@event("mentorship.matching.v2.mentorship_agreement_revised", topic=Topic.MATCHING, subject="mentorship_id", version=2)
class MentorshipAgreementRevisedV2(EventData):
    """Both participants agreed on a revised agreement: it replaces the one the mentorship had
    (cadence and planned end included) from `revised_at` on. Goal titles and expectations are read
    through matching's API."""

    mentorship_id: Id
    mentee_id: Id
    mentor_id: Id
    program_id: Id | None = None
    agreement: AgreementFacts
    proposed_by: Id
    accepted_by: Id
    revised_at: AwareDatetime


# --- upcasters: v1 records are read as v2, their text dropped --------------------------------


def _without(data: dict[str, Any], *fields: str) -> dict[str, Any]:
    return {k: v for k, v in data.items() if k not in fields}


def _text(data: dict[str, Any], field: str) -> bool:
    value = data.get(field)
    return isinstance(value, str) and bool(value.strip())


def upcast_requested(data: dict[str, Any]) -> dict[str, Any]:
    return {**_without(data, "message"), "has_message": _text(data, "message")}


def upcast_with_reason(data: dict[str, Any]) -> dict[str, Any]:
    return {**_without(data, "reason"), **reason_fields(data.get("reason"))}


def upcast_agreement(data: dict[str, Any]) -> dict[str, Any]:
    agreement = Agreement.model_validate(data.get("agreement") or {})
    return {**data, "agreement": AgreementFacts.of(agreement).model_dump(mode="json")}


def upcast_introduction(data: dict[str, Any]) -> dict[str, Any]:
    return {**_without(data, "message"), "has_message": _text(data, "message")}


for _old, _new, _upcast in (
    (MentorshipRequested, MentorshipRequestedV2, upcast_requested),
    (MentorshipRequestDeclined, MentorshipRequestDeclinedV2, upcast_with_reason),
    (MentorshipStarted, MentorshipStartedV2, upcast_agreement),
    (MentorshipEnded, MentorshipEndedV2, upcast_with_reason),
    (IntroductionMade, IntroductionMadeV2, upcast_introduction),
    (MentorshipAgreementRevised, MentorshipAgreementRevisedV2, upcast_agreement),
):
    register_upcaster(_old.event_type, _new.event_type, _upcast)
