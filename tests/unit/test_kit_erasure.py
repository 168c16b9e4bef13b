"""Events still in an outbox when a person is erased lose their personal fields (same ids)."""

from __future__ import annotations

from datetime import UTC, date, datetime

from mentorship_contracts import Envelope, decode
from mentorship_contracts.matching import Agreement, MentorshipEnded, MentorshipRequested, MentorshipStarted
from mentorship_kit.erasure import scrubbed_pending, without_personal_data
from mentorship_kit.outbox import new_document

NOW = datetime(2031, 3, 3, 8, 0, tzinfo=UTC)
IDS = {"mentorship_id": "m1", "mentee_id": "erin", "mentor_id": "mo"}


def test_text_goes_codes_ids_and_dates_stay() -> None:
    requested = Envelope.wrap(MentorshipRequested(**IDS, message="I am Erin", expires_at=NOW), source="matching")
    clean = without_personal_data(requested)
    assert clean.id == requested.id and clean.data.message == "" and clean.data.mentee_id == "erin"
    agreement = Agreement(
        goals=["Erin leads"],
        goal_ids=["g1"],
        expectations="Erin's burnout",
        cadence="weekly",
        planned_end=date(2031, 6, 1),
    )
    started = Envelope.wrap(MentorshipStarted(**IDS, agreement=agreement, started_at=NOW), source="matching")
    kept = without_personal_data(started).data.agreement
    assert (kept.goals, kept.expectations, kept.goal_ids, kept.cadence, kept.planned_end) == (
        [],
        "",
        ["g1"],
        "weekly",
        date(2031, 6, 1),
    )


def test_neutral_texts_are_kept_and_a_clean_event_is_the_same_object() -> None:
    ended = Envelope.wrap(
        MentorshipEnded(**IDS, reason="the person left the platform", ended_at=NOW), source="matching"
    )
    assert without_personal_data(ended, keep={"the person left the platform"}) is ended


def test_scrubbed_pending_rewrites_only_what_carries_text() -> None:
    requested = Envelope.wrap(MentorshipRequested(**IDS, message="I am Erin", expires_at=NOW), source="matching")
    doc = new_document({"_id": "m1:000001"}, [requested])
    [clean] = scrubbed_pending(doc) or []
    # a v1 event waiting in the outbox is rewritten as v2 (the upcaster drops the message)
    assert clean.id == requested.id and "I am Erin" not in clean.model_dump_json()
    assert decode(clean.model_dump_json()).data.has_message is True
    assert scrubbed_pending(new_document({"_id": "x"}, [clean])) is None
    assert scrubbed_pending({**doc, "outbox_pending": False}) is None
