"""Agreement revisions on the mentorship aggregate: propose, accept, decline, withdraw, and every
answer the open proposal (or its absence, or the mentorship's state) does not allow."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from matching_service.domain import (
    AgreementDefaults,
    Mentorship,
    RevisionRefused,
    RuleViolation,
    State,
    TransitionRefused,
    request_mentorship,
)
from mentorship_contracts.matching import Agreement, MentorshipAgreementRevisedV2

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
LATER = NOW + timedelta(days=3)
REVISED = Agreement(goals=["Ship a talk"], expectations="weekly calls", cadence="weekly", planned_end=date(2026, 9, 1))


def active() -> Mentorship:
    requested = request_mentorship(
        mentorship_id="m1",
        mentee_id="mentee",
        mentor_id="mentor",
        program_id="p1",
        message="hi",
        approval_required=False,
        now=NOW,
        expires_at=NOW + timedelta(days=7),
    ).after
    return requested.accept(None, AgreementDefaults(cadence="monthly", duration_weeks=10), NOW).after


def proposed(by: str = "mentee") -> Mentorship:
    return active().propose_revision(by, REVISED, NOW).after


def test_a_proposal_opens_a_revision_without_changing_the_agreement_or_publishing():
    before = active()
    change = before.propose_revision("mentor", REVISED, NOW)
    assert change.events == []
    assert change.after.agreement == before.agreement
    assert change.after.revision is not None
    assert change.after.revision.proposed_by == "mentor" and change.after.revision.agreement == REVISED
    assert change.after.version == before.version + 1
    assert change.after.as_dict()["revision"]["agreement"]["cadence"] == "weekly"


def test_the_other_participant_accepts_and_the_agreement_changes_with_one_event():
    before = proposed("mentee")
    change = before.accept_revision("mentor", LATER)
    assert change.after.agreement == REVISED and change.after.revision is None
    assert change.after.state == State.ACTIVE
    assert change.after.as_dict()["revision"] is None
    [event] = change.events
    assert isinstance(event, MentorshipAgreementRevisedV2)
    assert (event.mentorship_id, event.proposed_by, event.accepted_by) == ("m1", "mentee", "mentor")
    assert event.agreement.cadence == "weekly" and event.revised_at == LATER


def test_a_proposal_without_a_planned_end_keeps_the_current_one():
    before = active()
    change = before.propose_revision("mentee", Agreement(cadence="weekly"), NOW)
    assert change.after.revision is not None
    assert before.agreement is not None
    assert change.after.revision.agreement.planned_end == before.agreement.planned_end


def test_decline_and_withdraw_close_the_proposal_and_keep_the_agreement():
    declined = proposed("mentee").decline_revision("mentor")
    withdrawn = proposed("mentee").withdraw_revision("mentee")
    for change in (declined, withdrawn):
        assert change.events == [] and change.after.revision is None
        assert change.after.agreement == active().agreement


def test_one_open_proposal_at_a_time():
    with pytest.raises(RevisionRefused):
        proposed("mentee").propose_revision("mentor", REVISED, NOW)


@pytest.mark.parametrize(
    "answer",
    [
        lambda m: m.accept_revision("mentee", NOW),  # the proposer accepting their own
        lambda m: m.decline_revision("mentee"),  # the proposer declining their own
        lambda m: m.withdraw_revision("mentor"),  # the other withdrawing it
    ],
)
def test_answers_from_the_wrong_side_are_refused(answer):
    with pytest.raises(RevisionRefused):
        answer(proposed("mentee"))


@pytest.mark.parametrize(
    "answer",
    [
        lambda m: m.accept_revision("mentor", NOW),
        lambda m: m.decline_revision("mentor"),
        lambda m: m.withdraw_revision("mentee"),
    ],
)
def test_answers_without_an_open_proposal_are_refused(answer):
    with pytest.raises(RevisionRefused):
        answer(active())


@pytest.mark.parametrize("close", [lambda m: m.complete(NOW), lambda m: m.end("done", False, "mentee", NOW)])
def test_a_mentorship_that_is_no_longer_active_takes_no_revision(close):
    closed = close(active()).after
    with pytest.raises(TransitionRefused):
        closed.propose_revision("mentee", REVISED, NOW)
    with pytest.raises(TransitionRefused):
        close(proposed("mentee")).after.accept_revision("mentor", NOW)


def test_a_planned_end_in_the_past_is_a_rule_violation():
    with pytest.raises(RuleViolation) as refused:
        active().propose_revision("mentee", Agreement(cadence="weekly", planned_end=NOW.date()), NOW)
    assert refused.value.field == "planned_end"


def test_erasure_scrubs_the_free_text_of_an_open_proposal():
    scrubbed = proposed("mentee").scrubbed()
    assert scrubbed.revision is not None
    assert scrubbed.revision.agreement.goals == [] and scrubbed.revision.agreement.expectations == ""
    assert scrubbed.revision.agreement.cadence == "weekly"
