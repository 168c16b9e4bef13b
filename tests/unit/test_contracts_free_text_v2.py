"""Version 2 of the events that carried free text: no text, and old (v1) records read as v2 with
their text dropped, so a replay never re-creates it (docs/decisions/personal-data-in-events.md)."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from typing import Any

import pytest

from mentorship_contracts import Envelope, EventData, all_models, decode, encode
from mentorship_contracts.matching import (
    Agreement,
    IntroductionMade,
    IntroductionMadeV2,
    MentorshipAgreementRevised,
    MentorshipAgreementRevisedV2,
    MentorshipEnded,
    MentorshipEndedV2,
    MentorshipRequestDeclined,
    MentorshipRequestDeclinedV2,
    MentorshipRequested,
    MentorshipRequestedV2,
    MentorshipStarted,
    MentorshipStartedV2,
)
from mentorship_contracts.reasons import PLATFORM_REASONS, reason_fields
from mentorship_contracts.registry import protection_of, upcast_target
from mentorship_contracts.scheduling import (
    MilestoneReached,
    MilestoneReachedV2,
    SessionCancelled,
    SessionCancelledV2,
    SessionCompleted,
    SessionCompletedV2,
    SessionFeedbackSubmitted,
    SessionFeedbackSubmittedV2,
    SessionScheduled,
    SessionScheduledV2,
)

AT = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
SECRET = "Ada's private words: burnout, salary, 42 Elm Street"
IDS = {"mentorship_id": "m1", "mentee_id": "ada", "mentor_id": "bob"}
SESSION = {**IDS, "session_id": "s1", "ical_uid": "s1@mentorship"}
AGREEMENT = Agreement(
    goals=["Get promoted despite my manager", "Handle anxiety"],
    goal_ids=["g1", "g2"],
    expectations=SECRET,
    cadence="weekly",
    planned_end=date(2027, 3, 31),
)


def _v1_cases() -> list[tuple[EventData, type[EventData]]]:
    return [
        (MentorshipRequested(**IDS, message=SECRET, expires_at=AT), MentorshipRequestedV2),
        (MentorshipRequestDeclined(**IDS, reason=SECRET), MentorshipRequestDeclinedV2),
        (MentorshipStarted(**IDS, agreement=AGREEMENT, started_at=AT), MentorshipStartedV2),
        (MentorshipEnded(**IDS, reason=SECRET, ended_at=AT), MentorshipEndedV2),
        (
            IntroductionMade(
                introduction_id="i1",
                mentorship_id="m1",
                introduced_by="bob",
                mentee_id="ada",
                contact_id="cy",
                message=SECRET,
            ),
            IntroductionMadeV2,
        ),
        (
            MentorshipAgreementRevised(**IDS, agreement=AGREEMENT, proposed_by="ada", accepted_by="bob", revised_at=AT),
            MentorshipAgreementRevisedV2,
        ),
        (
            SessionScheduled(**SESSION, start=AT, duration_minutes=30, agenda=SECRET, scheduled_by="ada"),
            SessionScheduledV2,
        ),
        (SessionCancelled(**SESSION, start=AT, reason=SECRET, cancelled_by="ada"), SessionCancelledV2),
        (SessionCompleted(**SESSION, start=AT, completed_at=AT, notes=SECRET), SessionCompletedV2),
        (
            SessionFeedbackSubmitted(
                mentorship_id="m1", session_id="s1", author_id="ada", author_role="mentee", rating=4, comment=SECRET
            ),
            SessionFeedbackSubmittedV2,
        ),
        (
            MilestoneReached(
                mentorship_id="m1", milestone_id="x1", title=SECRET, mentor_id="bob", mentee_id="ada", reached_at=AT
            ),
            MilestoneReachedV2,
        ),
    ]


@pytest.mark.parametrize(("old", "new_model"), _v1_cases(), ids=lambda v: getattr(v, "event_type", ""))
def test_a_v1_record_is_read_as_v2_without_its_text(old: EventData, new_model: type[EventData]) -> None:
    raw = encode(Envelope.wrap(old, source="test"))
    assert SECRET.encode() in raw or b"promoted" in raw  # the old record does carry text

    read = decode(raw)

    assert isinstance(read.data, new_model)
    assert read.type == new_model.event_type and read.dataversion == 2
    assert read.dataschema.endswith(":v2")
    out = encode(read)
    for text in (SECRET, "promoted", "anxiety"):
        assert text not in out.decode()


def test_flags_say_that_text_existed() -> None:
    cases = {type(new.data): new.data for new in (decode(encode(Envelope.wrap(o, source="t"))) for o, _ in _v1_cases())}
    assert cases[MentorshipRequestedV2].has_message is True
    assert cases[IntroductionMadeV2].has_message is True
    assert cases[SessionScheduledV2].has_agenda is True
    assert cases[SessionCompletedV2].has_notes is True
    assert cases[SessionFeedbackSubmittedV2].has_comment is True
    declined = cases[MentorshipRequestDeclinedV2]
    assert (declined.reason_code, declined.has_reason) == ("other", True)
    cancelled = cases[SessionCancelledV2]
    assert (cancelled.reason_code, cancelled.has_reason) == ("other", True)
    started = cases[MentorshipStartedV2].agreement
    assert started.goal_ids == ["g1", "g2"] and started.goal_count == 2 and started.has_expectations
    assert started.cadence == "weekly" and started.planned_end == date(2027, 3, 31)
    revised = cases[MentorshipAgreementRevisedV2]
    assert revised.agreement.cadence == "weekly" and revised.proposed_by == "ada"
    assert cases[MilestoneReachedV2].milestone_id == "x1"


def test_no_text_means_no_flag() -> None:
    empty = decode(encode(Envelope.wrap(MentorshipRequested(**IDS, message="   ", expires_at=AT), source="t")))
    assert empty.data.has_message is False
    no_reason = decode(encode(Envelope.wrap(SessionCancelled(**SESSION, start=AT, cancelled_by="bob"), source="t")))
    assert (no_reason.data.reason_code, no_reason.data.has_reason) == ("other", False)


@pytest.mark.parametrize(("text", "code"), sorted(PLATFORM_REASONS.items()))
def test_the_platforms_own_reasons_are_kept_as_codes(text: str, code: str) -> None:
    declined = decode(encode(Envelope.wrap(MentorshipRequestDeclined(**IDS, reason=text), source="t")))
    assert (declined.data.reason_code, declined.data.has_reason) == (code, False)
    ended = decode(encode(Envelope.wrap(MentorshipEnded(**IDS, reason=text, ended_at=AT), source="t")))
    assert (ended.data.reason_code, ended.data.has_reason) == (code, False)
    assert reason_fields(text) == {"reason_code": code, "has_reason": False}


def test_a_v2_record_reads_as_itself() -> None:
    new = MentorshipEndedV2(**IDS, reason_code="participant_left", ended_at=AT)
    assert decode(encode(Envelope.wrap(new, source="t"))).data == new


def test_unknown_fields_of_an_old_record_do_not_break_the_upcast() -> None:
    doc: dict[str, Any] = json.loads(
        encode(Envelope.wrap(MentorshipRequested(**IDS, message=SECRET, expires_at=AT), source="t"))
    )
    doc["data"]["added_later"] = "x"
    assert decode(doc).data.has_message is True


def test_no_newest_event_carries_free_text_and_every_personal_field_says_how_it_is_protected() -> None:
    text_fields = {"message", "reason", "agenda", "notes", "comment", "title", "expectations", "goals"}
    for type_, model in all_models().items():
        if not type_.startswith(("mentorship.matching.", "mentorship.scheduling.")):
            continue
        protection = protection_of(model)
        assert all(not how.startswith("not protected") for how in protection.values()), (type_, protection)
        if upcast_target(type_) is None:
            assert not model.personal_data, type_
            assert not text_fields & set(model.model_fields), (type_, text_fields & set(model.model_fields))
