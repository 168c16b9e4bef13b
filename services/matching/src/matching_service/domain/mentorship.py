"""The mentorship lifecycle as an aggregate (pure, no I/O).

A mentorship starts as a request (or, from a published cohort run, as an active mentorship) and
moves only through the transitions below. Each transition checks that it is allowed from the
current state and returns a `Change`: the next state of the aggregate and the events it causes.
A refused transition raises `TransitionRefused` (or a more specific rule error) and changes
nothing, so the caller may check it before it takes any claim (a capacity slot, a lock).

    requested ──accept──> active                    (one-sided)
    requested ──accept──> awaiting_approval ──approve──> active   (admin-approved programs)
    requested ──decline | withdraw | expire──> declined | withdrawn | expired
    awaiting_approval ──decline (admin) | withdraw──> declined | withdrawn
    active ──complete | end──> completed | ended
    active ──propose_revision──> active with an open revision ──accept | decline | withdraw──> active
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from mentorship_contracts import EventData
from mentorship_contracts.matching import (
    Agreement,
    AgreementFacts,
    Cadence,
    MentorshipAgreementRevisedV2,
    MentorshipCompleted,
    MentorshipEndedV2,
    MentorshipRequestAccepted,
    MentorshipRequestDeclinedV2,
    MentorshipRequestedV2,
    MentorshipRequestExpired,
    MentorshipRequestWithdrawn,
    MentorshipStartedV2,
)
from mentorship_contracts.reasons import reason_fields

from .programs import planned_end

AUTO_DECLINE_REASON = "the mentor reached their capacity"
# Said when a participant erased their profile: neutral, names nobody.
LEFT_REASON = "the person left the platform"
ERASURE_ACTOR = "platform"
# Reasons the platform writes itself: no personal data, so they survive a scrub.
PLATFORM_REASONS = (AUTO_DECLINE_REASON, LEFT_REASON)


class State(StrEnum):
    REQUESTED = "requested"
    AWAITING_APPROVAL = "awaiting_approval"
    ACTIVE = "active"
    DECLINED = "declined"
    EXPIRED = "expired"
    WITHDRAWN = "withdrawn"
    COMPLETED = "completed"
    ENDED = "ended"


OPEN_STATES = (State.REQUESTED,)
HOLDS_SLOT = (State.AWAITING_APPROVAL, State.ACTIVE)
# A pair that has been together (or held an accepted slot) counts as previous partners.
PARTNER_STATES = (State.ACTIVE, State.COMPLETED, State.ENDED)
# States from which a request is still open to an answer (and holds its pair lock or timer).
PENDING_STATES = (State.REQUESTED, State.AWAITING_APPROVAL)


class LifecycleError(ValueError):
    """A rule of the lifecycle refused the change."""


class TransitionRefused(LifecycleError):
    def __init__(self, action: str, state: State) -> None:
        super().__init__(f"cannot {action} a mentorship that is {state.value}")
        self.action = action
        self.state = state


class RequestExpired(LifecycleError):
    def __init__(self) -> None:
        super().__init__("cannot accept: the request has expired")


class RevisionRefused(LifecycleError):
    """The open revision (or its absence) does not allow this answer from this participant."""


class RuleViolation(LifecycleError):
    """A value given for the change breaks a rule; `field` names it."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


@dataclass(frozen=True)
class AgreementDefaults:
    """What an agreement falls back to: the program's cadence and duration, or the platform's."""

    cadence: Cadence = "biweekly"
    duration_weeks: int = 12


def settle_agreement(agreement: Agreement | None, defaults: AgreementDefaults, today: date) -> Agreement:
    """The agreement a mentorship starts with: the one given, completed from the defaults."""
    end = planned_end(today, defaults.duration_weeks)
    if agreement is None:
        return Agreement(cadence=defaults.cadence, planned_end=end)
    if agreement.planned_end is None:
        return agreement.model_copy(update={"planned_end": end})
    if agreement.planned_end <= today:
        raise RuleViolation("agreement.planned_end", "planned_end must be in the future")
    return agreement


class Revision(BaseModel):
    """A revised agreement one participant proposed; the other accepts or declines it."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    agreement: Agreement
    proposed_by: str
    proposed_at: datetime


class Mentorship(BaseModel):
    """One mentorship (or the request it starts as). `version` counts the changes stored so far;
    a change is written only on top of the version it was decided from."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    mentorship_id: str
    mentee_id: str
    mentor_id: str
    program_id: str | None = None
    state: State
    origin: Literal["request", "cohort"] = "request"
    message: str = ""
    requested_at: datetime | None = None
    expires_at: datetime | None = None
    approval_required: bool = False
    accepted_at: datetime | None = None
    agreement: Agreement | None = None
    started_at: datetime | None = None
    approved_by: str | None = None
    closed_at: datetime | None = None
    reason: str | None = None
    automatic: bool | None = None
    not_a_good_fit: bool | None = None
    ended_by: str | None = None
    run_id: str | None = None
    score: float | None = None
    revision: Revision | None = None
    version: int = 0

    # --- what the state means ---------------------------------------------------------------------
    @property
    def holds_slot(self) -> bool:
        return self.state in HOLDS_SLOT

    @property
    def pending(self) -> bool:
        return self.state in PENDING_STATES

    def has_participant(self, profile_id: str, *roles: Literal["mentee", "mentor"]) -> bool:
        return any(profile_id == (self.mentee_id if role == "mentee" else self.mentor_id) for role in roles)

    def expired_at(self, now: datetime) -> bool:
        return self.expires_at is not None and now >= self.expires_at

    def as_dict(self) -> dict[str, Any]:
        """The fields this mentorship has (as stored and shown): dates as datetimes, the agreement
        as plain JSON values, no version bookkeeping."""
        out = self.model_dump(exclude_unset=True, exclude={"version"})
        out["state"] = self.state.value
        if self.agreement is not None:
            out["agreement"] = self.agreement.model_dump(mode="json")
        if self.revision is not None:
            out["revision"] = {**self.revision.model_dump(mode="json"), "proposed_at": self.revision.proposed_at}
        return out

    # --- transitions ------------------------------------------------------------------------------
    def accept(self, agreement: Agreement | None, defaults: AgreementDefaults, now: datetime) -> Change:
        """The mentor says yes: active at once, or awaiting an admin in admin-approved programs."""
        self._require("accept", State.REQUESTED)
        if self.expired_at(now):
            raise RequestExpired()
        settled = settle_agreement(agreement, defaults, now.date())
        accepted = MentorshipRequestAccepted(**self._ids(), awaiting_admin_approval=self.approval_required)
        if self.approval_required:
            after = self._next(state=State.AWAITING_APPROVAL, accepted_at=now, agreement=settled)
            return Change(self, after, [accepted])
        after = self._next(state=State.ACTIVE, accepted_at=now, agreement=settled, started_at=now)
        return Change(self, after, [accepted, after.started_event()])

    def decline(self, reason: str, now: datetime, *, by_admin: bool = False) -> Change:
        """The mentor declines an open request; an admin may also decline one awaiting approval."""
        self._require("decline", *((State.REQUESTED, State.AWAITING_APPROVAL) if by_admin else (State.REQUESTED,)))
        after = self._next(state=State.DECLINED, closed_at=now, reason=reason)
        return Change(self, after, [MentorshipRequestDeclinedV2(**self._ids(), **reason_fields(reason))])

    def auto_decline(self, now: datetime) -> Change:
        """The mentor reached their capacity: their other open requests are declined for them."""
        self._require("decline", State.REQUESTED)
        after = self._next(state=State.DECLINED, closed_at=now, reason=AUTO_DECLINE_REASON, automatic=True)
        return Change(
            self,
            after,
            [MentorshipRequestDeclinedV2(**self._ids(), **reason_fields(AUTO_DECLINE_REASON), automatic=True)],
        )

    def withdraw(self, now: datetime) -> Change:
        """The mentee takes the request back (before it starts)."""
        self._require("withdraw", *PENDING_STATES)
        after = self._next(state=State.WITHDRAWN, closed_at=now)
        return Change(self, after, [MentorshipRequestWithdrawn(**self._ids())])

    def expire(self, now: datetime) -> Change:
        """Nobody answered in time (the expiry timer fired)."""
        self._require("expire", State.REQUESTED)
        after = self._next(state=State.EXPIRED, closed_at=now)
        return Change(self, after, [MentorshipRequestExpired(**self._ids())])

    def approve(self, admin_id: str, now: datetime) -> Change:
        self._require("approve", State.AWAITING_APPROVAL)
        after = self._next(state=State.ACTIVE, started_at=now, approved_by=admin_id)
        return Change(self, after, [after.started_event()])

    def complete(self, now: datetime) -> Change:
        self._require("complete", State.ACTIVE)
        after = self._next(state=State.COMPLETED, closed_at=now)
        return Change(self, after, [MentorshipCompleted(**self._ids(), completed_at=now)])

    def end(self, reason: str, not_a_good_fit: bool, by: str, now: datetime) -> Change:
        """End early, with a reason; "not a good fit" keeps the pair apart from now on."""
        self._require("end", State.ACTIVE)
        after = self._next(state=State.ENDED, closed_at=now, reason=reason, not_a_good_fit=not_a_good_fit, ended_by=by)
        return Change(
            self,
            after,
            [MentorshipEndedV2(**self._ids(), **reason_fields(reason), not_a_good_fit=not_a_good_fit, ended_at=now)],
        )

    # --- agreement revisions ------------------------------------------------------------------------
    def propose_revision(self, by: str, agreement: Agreement, now: datetime) -> Change:
        """A participant proposes a revised agreement; one open proposal at a time. Nothing is
        published yet: the agreement changes only when the other participant accepts."""
        self._require("revise the agreement of", State.ACTIVE)
        if self.revision is not None:
            raise RevisionRefused("a revision is already open: the other participant answers it first")
        if agreement.planned_end is not None and agreement.planned_end <= now.date():
            raise RuleViolation("planned_end", "planned_end must be in the future")
        if agreement.planned_end is None and self.agreement is not None:
            agreement = agreement.model_copy(update={"planned_end": self.agreement.planned_end})
        after = self._next(revision=Revision(agreement=agreement, proposed_by=by, proposed_at=now))
        return Change(self, after, [])

    def accept_revision(self, by: str, now: datetime) -> Change:
        """The other participant accepts: the revised agreement replaces the current one."""
        revision = self._open_revision("accept")
        if by == revision.proposed_by:
            raise RevisionRefused("you proposed this revision: the other participant accepts it")
        after = self._next(agreement=revision.agreement, revision=None)
        revised = MentorshipAgreementRevisedV2(
            **self._ids(),
            agreement=AgreementFacts.of(revision.agreement),
            proposed_by=revision.proposed_by,
            accepted_by=by,
            revised_at=now,
        )
        return Change(self, after, [revised])

    def decline_revision(self, by: str) -> Change:
        """The other participant declines: the agreement stays as it was."""
        revision = self._open_revision("decline")
        if by == revision.proposed_by:
            raise RevisionRefused("you proposed this revision: withdraw it instead")
        return Change(self, self._next(revision=None), [])

    def withdraw_revision(self, by: str) -> Change:
        """The proposer takes their proposal back."""
        revision = self._open_revision("withdraw")
        if by != revision.proposed_by:
            raise RevisionRefused("only the participant who proposed this revision may withdraw it")
        return Change(self, self._next(revision=None), [])

    def _open_revision(self, action: str) -> Revision:
        self._require(f"{action} a revision of", State.ACTIVE)
        if self.revision is None:
            raise RevisionRefused(f"cannot {action}: no revision is open")
        return self.revision

    # --- erasure ---------------------------------------------------------------------------------
    def scrubbed(self) -> Mentorship:
        """The same mentorship without free text (the request message, a reason a person wrote, the
        agreement's goal titles and expectations): what a participant's erasure leaves. Ids, dates,
        states and numbers stay; so do the reasons the platform wrote itself."""
        changes: dict[str, object] = {}
        if self.message:
            changes["message"] = ""
        if self.reason and self.reason not in PLATFORM_REASONS:
            changes["reason"] = ""
        if self.agreement is not None and (self.agreement.goals or self.agreement.expectations):
            changes["agreement"] = self.agreement.model_copy(update={"goals": [], "expectations": ""})
        if self.revision is not None:
            blank = self.revision.agreement.model_copy(update={"goals": [], "expectations": ""})
            changes["revision"] = self.revision.model_copy(update={"agreement": blank})
        return self.model_copy(update=changes) if changes else self

    def leave(self, person_id: str, now: datetime) -> Change | None:
        """A participant erased their profile: an open request closes (withdrawn when the mentee
        left, declined when the mentor did) and an active mentorship ends, each with a neutral
        reason. None when nothing is open any more (or the person takes no part)."""
        if not self.has_participant(person_id, "mentee", "mentor"):
            return None
        mentee_left = person_id == self.mentee_id
        if self.state in PENDING_STATES:
            return self.withdraw(now) if mentee_left else self.decline(LEFT_REASON, now, by_admin=True)
        if self.state == State.ACTIVE:
            return self.end(LEFT_REASON, False, ERASURE_ACTOR, now)
        return None

    # --- helpers --------------------------------------------------------------------------------
    def started_event(self) -> MentorshipStartedV2:
        assert self.agreement is not None and self.started_at is not None
        return MentorshipStartedV2(
            **self._ids(), agreement=AgreementFacts.of(self.agreement), started_at=self.started_at, origin=self.origin
        )

    def _require(self, action: str, *allowed: State) -> None:
        if self.state not in allowed:
            raise TransitionRefused(action, self.state)

    def _ids(self) -> dict[str, str | None]:
        return {
            "mentorship_id": self.mentorship_id,
            "mentee_id": self.mentee_id,
            "mentor_id": self.mentor_id,
            "program_id": self.program_id,
        }

    def _next(self, **changes: object) -> Mentorship:
        return self.model_copy(update={**changes, "version": self.version + 1})


@dataclass(frozen=True)
class Change:
    """The outcome of a transition: the aggregate before and after, and the events it causes."""

    before: Mentorship | None
    after: Mentorship
    events: list[EventData] = field(default_factory=list)

    @property
    def frees_slot(self) -> bool:
        """The mentor's capacity slot is given back (the mentorship closed after holding one)."""
        return self.before is not None and self.before.holds_slot and not self.after.holds_slot

    @property
    def answers_request(self) -> bool:
        """An open request was answered or closed: its expiry timer and pair lock let go."""
        return self.before is not None and self.before.state == State.REQUESTED and self.after.state != State.REQUESTED


def request_mentorship(
    *,
    mentorship_id: str,
    mentee_id: str,
    mentor_id: str,
    program_id: str | None,
    message: str,
    approval_required: bool,
    now: datetime,
    expires_at: datetime,
) -> Change:
    """A mentee asks a mentor (the checks of who may be asked are the application's: they read
    profiles and capacity)."""
    if mentee_id == mentor_id:
        raise RuleViolation("mentor_id", "you cannot request yourself as a mentor")
    after = Mentorship(
        mentorship_id=mentorship_id,
        mentee_id=mentee_id,
        mentor_id=mentor_id,
        program_id=program_id,
        state=State.REQUESTED,
        message=message,
        requested_at=now,
        expires_at=expires_at,
        origin="request",
        approval_required=approval_required,
        version=1,
    )
    event = MentorshipRequestedV2(
        mentorship_id=mentorship_id,
        mentee_id=mentee_id,
        mentor_id=mentor_id,
        program_id=program_id,
        has_message=bool(message.strip()),
        expires_at=expires_at,
    )
    return Change(None, after, [event])


def start_from_cohort(
    *,
    mentorship_id: str,
    mentee_id: str,
    mentor_id: str,
    program_id: str,
    run_id: str,
    score: float,
    agreement: Agreement,
    now: datetime,
) -> Change:
    """A published cohort run starts its mentorships directly (the admin's review was the approval)."""
    after = Mentorship(
        mentorship_id=mentorship_id,
        mentee_id=mentee_id,
        mentor_id=mentor_id,
        program_id=program_id,
        state=State.ACTIVE,
        origin="cohort",
        run_id=run_id,
        score=score,
        requested_at=now,
        accepted_at=now,
        started_at=now,
        agreement=agreement,
        version=1,
    )
    return Change(None, after, [after.started_event()])
