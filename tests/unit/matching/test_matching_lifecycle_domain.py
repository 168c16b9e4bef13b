"""The mentorship aggregate: every transition, and every transition refused from every other state."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from matching_service.domain import (
    AUTO_DECLINE_REASON,
    AgreementDefaults,
    Mentorship,
    RequestExpired,
    RuleViolation,
    State,
    TransitionRefused,
    request_mentorship,
    start_from_cohort,
)
from mentorship_contracts.matching import (
    Agreement,
    MentorshipCompleted,
    MentorshipEndedV2,
    MentorshipRequestAccepted,
    MentorshipRequestDeclinedV2,
    MentorshipRequestedV2,
    MentorshipRequestExpired,
    MentorshipRequestWithdrawn,
    MentorshipStartedV2,
)

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
DEFAULTS = AgreementDefaults(cadence="monthly", duration_weeks=10)


def requested(*, approval_required: bool = False, expires_in: timedelta = timedelta(days=7)) -> Mentorship:
    change = request_mentorship(
        mentorship_id="m1",
        mentee_id="mentee",
        mentor_id="mentor",
        program_id="p1",
        message="hi",
        approval_required=approval_required,
        now=NOW,
        expires_at=NOW + expires_in,
    )
    return change.after


def in_state(state: State) -> Mentorship:
    """A mentorship brought to `state` through the transitions themselves."""
    if state == State.REQUESTED:
        return requested()
    if state == State.AWAITING_APPROVAL:
        return requested(approval_required=True).accept(None, DEFAULTS, NOW).after
    active = requested().accept(None, DEFAULTS, NOW).after
    return {
        State.ACTIVE: lambda: active,
        State.DECLINED: lambda: requested().decline("busy", NOW).after,
        State.EXPIRED: lambda: requested().expire(NOW).after,
        State.WITHDRAWN: lambda: requested().withdraw(NOW).after,
        State.COMPLETED: lambda: active.complete(NOW).after,
        State.ENDED: lambda: active.end("moved", False, "mentee", NOW).after,
    }[state]()


def test_a_request_starts_requested_with_its_event() -> None:
    change = request_mentorship(
        mentorship_id="m1",
        mentee_id="a",
        mentor_id="b",
        program_id=None,
        message="hi",
        approval_required=False,
        now=NOW,
        expires_at=NOW + timedelta(days=7),
    )
    assert change.before is None and change.after.state == State.REQUESTED and change.after.version == 1
    [event] = change.events
    assert isinstance(event, MentorshipRequestedV2) and event.expires_at == NOW + timedelta(days=7)
    with pytest.raises(RuleViolation) as refused:
        request_mentorship(
            mentorship_id="m2",
            mentee_id="a",
            mentor_id="a",
            program_id=None,
            message="",
            approval_required=False,
            now=NOW,
            expires_at=NOW,
        )
    assert refused.value.field == "mentor_id"


def test_accept_starts_the_mentorship_with_the_agreement_completed_from_the_defaults() -> None:
    change = requested().accept(Agreement(goals=["ship"], cadence="weekly"), DEFAULTS, NOW)
    after = change.after
    assert after.state == State.ACTIVE and after.started_at == NOW and after.accepted_at == NOW
    assert after.version == 2 and change.before is not None and change.before.version == 1
    assert after.agreement == Agreement(goals=["ship"], cadence="weekly", planned_end=date(2026, 5, 11))
    assert [type(e) for e in change.events] == [MentorshipRequestAccepted, MentorshipStartedV2]
    assert change.answers_request and not change.frees_slot
    assert after.holds_slot


def test_accept_without_agreement_takes_the_programs_cadence() -> None:
    after = requested().accept(None, DEFAULTS, NOW).after
    assert after.agreement == Agreement(cadence="monthly", planned_end=date(2026, 5, 11))


def test_accept_in_an_admin_approved_program_waits_for_the_admin() -> None:
    change = requested(approval_required=True).accept(None, DEFAULTS, NOW)
    assert change.after.state == State.AWAITING_APPROVAL and change.after.started_at is None
    [accepted] = change.events
    assert isinstance(accepted, MentorshipRequestAccepted) and accepted.awaiting_admin_approval
    approved = change.after.approve("admin-1", NOW)
    assert approved.after.state == State.ACTIVE and approved.after.approved_by == "admin-1"
    assert [type(e) for e in approved.events] == [MentorshipStartedV2]


def test_accept_refuses_an_expired_request_and_a_planned_end_in_the_past() -> None:
    with pytest.raises(RequestExpired):
        requested(expires_in=timedelta(hours=1)).accept(None, DEFAULTS, NOW + timedelta(hours=1))
    with pytest.raises(RuleViolation) as refused:
        requested().accept(Agreement(planned_end=NOW.date()), DEFAULTS, NOW)
    assert refused.value.field == "agreement.planned_end"


def test_decline_withdraw_and_expire_close_the_request() -> None:
    declined = requested().decline("no time", NOW)
    assert declined.after.state == State.DECLINED and declined.after.reason == "no time"
    assert isinstance(declined.events[0], MentorshipRequestDeclinedV2) and not declined.events[0].automatic
    assert declined.answers_request and not declined.frees_slot
    withdrawn = requested().withdraw(NOW)
    assert withdrawn.after.state == State.WITHDRAWN and isinstance(withdrawn.events[0], MentorshipRequestWithdrawn)
    expired = requested().expire(NOW)
    assert expired.after.state == State.EXPIRED and isinstance(expired.events[0], MentorshipRequestExpired)


def test_auto_decline_at_capacity_says_why() -> None:
    change = requested().auto_decline(NOW)
    assert change.after.automatic is True and change.after.reason == AUTO_DECLINE_REASON
    [event] = change.events
    assert (
        isinstance(event, MentorshipRequestDeclinedV2) and event.automatic and event.reason_code == "mentor_at_capacity"
    )


def test_closing_an_awaiting_mentorship_gives_the_slot_back() -> None:
    awaiting = in_state(State.AWAITING_APPROVAL)
    withdrawn = awaiting.withdraw(NOW)
    assert withdrawn.after.state == State.WITHDRAWN and withdrawn.frees_slot and not withdrawn.answers_request
    declined = awaiting.decline("not this quarter", NOW, by_admin=True)
    assert declined.after.state == State.DECLINED and declined.frees_slot
    with pytest.raises(TransitionRefused):  # only an admin declines once the mentor said yes
        awaiting.decline("changed my mind", NOW)


def test_complete_and_end_close_an_active_mentorship() -> None:
    active = in_state(State.ACTIVE)
    completed = active.complete(NOW)
    assert completed.after.state == State.COMPLETED and completed.frees_slot
    assert isinstance(completed.events[0], MentorshipCompleted)
    ended = active.end("different expectations", True, "mentee", NOW)
    assert ended.after.state == State.ENDED and ended.after.not_a_good_fit is True and ended.after.ended_by == "mentee"
    assert ended.frees_slot and isinstance(ended.events[0], MentorshipEndedV2) and ended.events[0].not_a_good_fit


def test_a_cohort_mentorship_starts_active() -> None:
    change = start_from_cohort(
        mentorship_id="m9",
        mentee_id="a",
        mentor_id="b",
        program_id="p",
        run_id="r",
        score=0.8,
        agreement=Agreement(planned_end=date(2026, 6, 1)),
        now=NOW,
    )
    assert change.after.state == State.ACTIVE and change.after.origin == "cohort" and change.after.version == 1
    [started] = change.events
    assert isinstance(started, MentorshipStartedV2) and started.origin == "cohort"


ALLOWED = {
    "accept": {State.REQUESTED},
    "decline": {State.REQUESTED},
    "admin_decline": {State.REQUESTED, State.AWAITING_APPROVAL},
    "auto_decline": {State.REQUESTED},
    "withdraw": {State.REQUESTED, State.AWAITING_APPROVAL},
    "expire": {State.REQUESTED},
    "approve": {State.AWAITING_APPROVAL},
    "complete": {State.ACTIVE},
    "end": {State.ACTIVE},
}
ACTIONS = {
    "accept": lambda m: m.accept(None, DEFAULTS, NOW),
    "decline": lambda m: m.decline("r", NOW),
    "admin_decline": lambda m: m.decline("r", NOW, by_admin=True),
    "auto_decline": lambda m: m.auto_decline(NOW),
    "withdraw": lambda m: m.withdraw(NOW),
    "expire": lambda m: m.expire(NOW),
    "approve": lambda m: m.approve("admin", NOW),
    "complete": lambda m: m.complete(NOW),
    "end": lambda m: m.end("r", False, "x", NOW),
}


@pytest.mark.parametrize("action", sorted(ACTIONS))
@pytest.mark.parametrize("state", list(State))
def test_every_transition_is_allowed_only_from_its_states(action: str, state: State) -> None:
    mentorship = in_state(state)
    if state in ALLOWED[action]:
        change = ACTIONS[action](mentorship)
        assert change.after.version == mentorship.version + 1 and change.events
    else:
        with pytest.raises(TransitionRefused) as refused:
            ACTIONS[action](mentorship)
        assert refused.value.state == state and state.value in str(refused.value)


def test_as_dict_keeps_only_the_fields_the_mentorship_has() -> None:
    fields = requested().as_dict()
    assert fields["state"] == "requested" and "version" not in fields and "agreement" not in fields
    active = in_state(State.ACTIVE).as_dict()
    assert active["agreement"]["planned_end"] == "2026-05-11" and active["started_at"] == NOW
