"""Forgetting a person in matching: the aggregate's rules (pure) and the erasure use case over fakes."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from matching_service.domain import LEFT_REASON, Mentorship, State
from mentorship_contracts import Envelope
from mentorship_contracts.matching import Agreement
from mentorship_contracts.profile import ProfileErased, ProfileSnapshot, ProfileUpdated
from mentorship_kit.auth import Principal

from .fakes import START, ErasureWorld, erasure_world

MESSAGE = "Please help me, I am Erin from payroll"
GOAL = "Erin wants to lead the payroll team"
EXPECT = "Weekly calls about Erin's divorce"


def who(pid: str) -> Principal:
    return Principal(pid, frozenset({"mentee", "mentor"}))


def active(**fields: Any) -> Mentorship:
    base: dict[str, Any] = dict(
        mentorship_id="m1",
        mentee_id="erin",
        mentor_id="mo",
        state=State.ACTIVE,
        message=MESSAGE,
        requested_at=START,
        started_at=START,
        agreement=Agreement(goals=[GOAL], goal_ids=["g1"], expectations=EXPECT),
        version=3,
    )
    return Mentorship(**{**base, **fields})


def test_scrubbed_keeps_ids_states_and_numbers_but_no_free_text() -> None:
    m = active(reason="Erin was rude", score=0.8)
    clean = m.scrubbed()
    assert clean.message == "" and clean.reason == ""
    assert clean.agreement is not None and clean.agreement.goals == [] and clean.agreement.expectations == ""
    assert clean.agreement.goal_ids == ["g1"] and clean.agreement.cadence == m.agreement.cadence  # type: ignore[union-attr]
    assert (clean.mentee_id, clean.mentor_id, clean.state, clean.score, clean.version) == (
        "erin",
        "mo",
        "active",
        0.8,
        3,
    )
    assert clean.scrubbed() is clean  # nothing left to scrub: the same object (no write)


def test_scrubbed_keeps_the_reasons_the_platform_wrote() -> None:
    assert active(reason=LEFT_REASON).scrubbed().reason == LEFT_REASON


def test_leave_ends_an_active_mentorship_with_a_neutral_reason() -> None:
    change = active().scrubbed().leave("erin", START)
    assert change is not None and change.after.state == State.ENDED and change.frees_slot
    assert change.after.reason == LEFT_REASON and change.after.not_a_good_fit is False
    ended = change.events[0]
    # v2: a code, not the text (the platform's neutral reason is not personal either way)
    assert type(ended).__name__ == "MentorshipEndedV2" and ended.reason_code == "participant_left"  # type: ignore[attr-defined]
    assert MESSAGE not in change.after.model_dump_json() and GOAL not in change.after.model_dump_json()


def test_leave_closes_an_open_request_either_way() -> None:
    request = active(state=State.REQUESTED, agreement=None, started_at=None)
    by_mentee = request.leave("erin", START)
    by_mentor = request.leave("mo", START)
    assert by_mentee is not None and by_mentee.after.state == State.WITHDRAWN and by_mentee.answers_request
    assert by_mentor is not None and by_mentor.after.state == State.DECLINED
    assert by_mentor.after.reason == LEFT_REASON
    waiting = active(state=State.AWAITING_APPROVAL).leave("mo", START)
    assert waiting is not None and waiting.after.state == State.DECLINED and waiting.frees_slot


def test_leave_changes_nothing_closed_or_foreign() -> None:
    assert active(state=State.COMPLETED).leave("erin", START) is None
    assert active().leave("someone-else", START) is None


def erased(pid: str) -> Envelope[Any]:
    return Envelope.wrap(ProfileErased(profile_id=pid), source="profile")


async def history(w: ErasureWorld) -> dict[str, str]:
    """Erin (mentee) with an active mentorship with Mo, an open request to Pat, an introduction to
    Cy, an enrolment, exposures; Mo also mentors Dee (untouched)."""
    base = w.base
    for pid, roles, cap in (
        ("mo", ["mentor"], 2),
        ("pat", ["mentor"], 2),
        ("erin", ["mentee", "mentor"], 1),
        ("dee", ["mentee"], None),
        ("cy", ["mentee"], None),
    ):
        base.profiles.add(pid, roles, mentor_capacity=cap, display_name=pid.title())
        await base.lifecycle.profile_changed(base.profiles.by_id[pid])
    agreement = Agreement(goals=[GOAL], expectations=EXPECT)
    m1 = await base.lifecycle.request(who("erin"), "mo", MESSAGE, None)
    await base.lifecycle.accept(who("mo"), m1.mentorship_id, agreement)
    m2 = await base.lifecycle.request(who("erin"), "pat", MESSAGE, None)
    m3 = await base.lifecycle.request(who("dee"), "mo", "hello Mo", None)
    await base.store.expose("erin", ["mo", "pat"], START + timedelta(hours=1))
    await base.store.expose("dee", ["erin"], START + timedelta(hours=1))
    await base.store.expose("cy", ["mo"], START + timedelta(hours=1))
    await w.introductions.insert_introduction(
        {
            "_id": "i1",
            "mentorship_id": m1.mentorship_id,
            "introduced_by": "mo",
            "mentee_id": "erin",
            "contact_id": "cy",
            "message": "Erin, meet Cy",
            "state": "pending",
            "made_at": START,
        },
        [],
    )
    w.programs.programs["p1"] = {"_id": "p1", "version": 1, "name": "Spring"}
    w.programs.enrolments["p1:mentee:erin#1"] = {
        "_id": "p1:mentee:erin#1",
        "program_id": "p1",
        "role": "mentee",
        "profile_id": "erin",
        "spell": 1,
        "enrolled_at": START,
    }
    return {"active": m1.mentorship_id, "request": m2.mentorship_id, "other": m3.mentorship_id}


def text_of(w: ErasureWorld) -> str:
    versions = [m.model_dump_json() for m, _ in w.base.store.versions.values()]
    return " ".join([*versions, repr(w.introductions.intros), repr(w.base.profiles.by_id)])


async def test_erasure_closes_scrubs_frees_and_forgets() -> None:
    w = erasure_world()
    ids = await history(w)
    store = w.base.store
    assert store.holders("mo") == [ids["active"]]
    await w.erasure.profile_erased(erased("erin"))

    ended = await store.mentorship(ids["active"])
    request = await store.mentorship(ids["request"])
    assert ended is not None and ended.state == State.ENDED and ended.reason == LEFT_REASON
    assert request is not None and request.state == State.WITHDRAWN
    assert store.holders("mo") == [] and (await store.load("mo"))["free"] == 2  # type: ignore[index]
    assert f"expiry:{ids['request']}" in w.base.timers.cancelled and ("erin", "pat") not in store.locks
    for text in (MESSAGE, GOAL, EXPECT, "Erin, meet Cy", "Erin"):
        assert text not in text_of(w)
    assert (await store.mentorship(ids["other"])).message == "hello Mo"  # type: ignore[union-attr]
    assert w.introductions.intros["i1"]["state"] == "closed"
    assert store.exposures == {"cy": ["mo"]}  # Erin's own and those showing Erin are gone
    assert "erin" not in store.capacity
    assert await w.programs.enrolled("p1", "mentee") == []
    last = {mid: [e.type.rsplit(".", 1)[1] for e in events] for (mid, _), (_, events) in sorted(store.versions.items())}
    assert last[ids["active"]] == ["mentorship_ended"] and last[ids["request"]] == ["mentorship_request_withdrawn"]
    assert [e.type.rsplit(".", 1)[1] for e in w.programs.outbox] == ["program_participant_withdrawn"]


async def test_a_second_erasure_changes_nothing_more() -> None:
    w = erasure_world()
    await history(w)
    await w.erasure.profile_erased(erased("erin"))
    store = w.base.store
    before = (
        dict(store.versions),
        dict(store.claims),
        dict(w.programs.withdrawals),
        repr(w.introductions.intros),
        len(w.programs.outbox),
    )
    await w.erasure.profile_erased(erased("erin"))
    after = (
        dict(store.versions),
        dict(store.claims),
        dict(w.programs.withdrawals),
        repr(w.introductions.intros),
        len(w.programs.outbox),
    )
    assert before == after


async def test_an_erased_person_is_not_brought_back_by_a_late_update() -> None:
    w = erasure_world()
    await history(w)
    await w.erasure.profile_erased(erased("erin"))
    snapshot = ProfileSnapshot(profile_id="erin", display_name="Erin", email="erin@example.org", roles=["mentee"])
    late = ProfileUpdated(
        profile_id="erin", changed_fields=["display_name"], changes={"display_name": "Erin"}, profile=snapshot
    )
    assert await w.base.profiles.upsert(late.profile, START + timedelta(days=1)) is False
    assert "erin" not in w.base.profiles.by_id
    assert await w.base.profiles.profile("erin") is None


async def test_the_mentor_leaving_frees_the_mentee_and_declines_requests_to_them() -> None:
    w = erasure_world()
    ids = await history(w)
    await w.erasure.profile_erased(erased("mo"))
    store = w.base.store
    assert (await store.mentorship(ids["active"])).state == State.ENDED  # type: ignore[union-attr]
    declined = await store.mentorship(ids["other"])
    assert declined is not None and declined.state == State.DECLINED and declined.reason == LEFT_REASON
    assert declined.message == "" and "mo" not in store.capacity
    assert w.introductions.intros["i1"]["state"] == "closed" and w.introductions.intros["i1"]["message"] == ""
