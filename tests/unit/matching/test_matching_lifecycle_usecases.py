"""The lifecycle use cases against in-memory fakes of their ports (no broker, no store)."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from mentorship_contracts.matching import Agreement
from mentorship_kit.auth import Principal
from mentorship_kit.problems import Conflict, Forbidden, Problem

from .fakes import World, world

ADMIN = Principal("admin-1", frozenset({"admin"}))


def who(pid: str) -> Principal:
    return Principal(pid, frozenset({"mentee", "mentor"}))


async def pair(w: World, capacity: int = 2) -> tuple[str, str]:
    mentor = w.profiles.add("mentor-1", ["mentor"], mentor_capacity=capacity, seniority="staff")
    mentee = w.profiles.add("mentee-1", ["mentee"])
    await w.lifecycle.profile_changed(w.profiles.by_id[mentor])
    return mentee, mentor


def types(w: World) -> list[str]:
    return [e.type.rsplit(".", 1)[1] for e in w.store.events()]


async def test_request_plans_its_expiry_and_locks_the_pair() -> None:
    w = world()
    mentee, mentor = await pair(w)
    m = await w.lifecycle.request(who(mentee), mentor, "hi", None)
    assert m.state == "requested" and m.expires_at == w.clock.now() + timedelta(hours=168)
    assert f"expiry:{m.mentorship_id}" in w.timers.planned
    assert w.store.locks == {(mentee, mentor): m.mentorship_id}
    with pytest.raises(Conflict):  # a second open request to the same mentor
        await w.lifecycle.request(who(mentee), mentor, "again", None)
    assert types(w) == ["mentorship_requested"] and w.written


async def test_accept_takes_a_slot_lets_go_of_timer_and_lock() -> None:
    w = world()
    mentee, mentor = await pair(w)
    m = await w.lifecycle.request(who(mentee), mentor, "", None)
    with pytest.raises(Forbidden):
        await w.lifecycle.accept(who(mentee), m.mentorship_id, None)
    accepted = await w.lifecycle.accept(who(mentor), m.mentorship_id, None)
    assert accepted.state == "active" and w.store.holders(mentor) == [m.mentorship_id]
    assert w.timers.cancelled == [f"expiry:{m.mentorship_id}"] and not w.store.locks
    assert w.store.forgotten == [mentee]
    assert types(w) == ["mentorship_requested", "mentorship_request_accepted", "mentorship_started"]
    started = w.store.events()[2]
    assert started.correlationid == w.store.events()[1].correlationid  # one use case, one correlation


async def test_a_refused_accept_holds_no_capacity() -> None:
    """A planned_end in the past is a 422, and the mentor's slot stays free."""
    w = world()
    mentee, mentor = await pair(w, capacity=1)
    m = await w.lifecycle.request(who(mentee), mentor, "", None)
    with pytest.raises(Problem) as refused:
        await w.lifecycle.accept(who(mentor), m.mentorship_id, Agreement(planned_end=date(2020, 1, 1)))
    assert refused.value.status == 422
    assert w.store.holders(mentor) == []
    accepted = await w.lifecycle.accept(who(mentor), m.mentorship_id, None)
    assert accepted.state == "active"


async def test_an_accept_that_loses_the_race_gives_the_slot_back() -> None:
    w = world()
    mentee, mentor = await pair(w)
    m = await w.lifecycle.request(who(mentee), mentor, "", None)
    stale = await w.store.mentorship(m.mentorship_id)
    await w.lifecycle.withdraw(who(mentee), m.mentorship_id)

    async def still_stale(_: str) -> object:  # the accept decided from the version before the withdrawal
        return stale

    w.store.mentorship = still_stale  # type: ignore[method-assign,assignment]
    with pytest.raises(Conflict):
        await w.lifecycle.accept(who(mentor), m.mentorship_id, None)
    assert w.store.holders(mentor) == []


async def test_reaching_capacity_declines_the_other_open_requests() -> None:
    w = world()
    mentor = w.profiles.add("mentor-1", ["mentor"], mentor_capacity=1, seniority="staff")
    await w.lifecycle.profile_changed(w.profiles.by_id[mentor])
    ids = []
    for n in range(3):
        mentee = w.profiles.add(f"mentee-{n}", ["mentee"])
        ids.append((await w.lifecycle.request(who(mentee), mentor, "", None)).mentorship_id)
    await w.lifecycle.accept(who(mentor), ids[0], None)
    others = [await w.store.mentorship(i) for i in ids[1:]]
    assert all(o is not None and o.state == "declined" and o.automatic for o in others)
    assert not w.store.locks and all(f"expiry:{i}" not in w.timers.planned for i in ids)


async def test_decline_withdraw_approve_complete_end() -> None:
    w = world()
    mentee, mentor = await pair(w)
    w.store.programs["p"] = {
        "_id": "p",
        "mode": "admin-approved",
        "weights": {},
        "constraints": {},
        "cadence": "monthly",
        "duration_weeks": 20,
    }
    first = await w.lifecycle.request(who(mentee), mentor, "", "p")
    declined = await w.lifecycle.decline(who(mentor), first.mentorship_id, "no time")
    assert declined.state == "declined" and not w.store.locks
    second = await w.lifecycle.request(who(mentee), mentor, "", "p")
    awaiting = await w.lifecycle.accept(who(mentor), second.mentorship_id, None)
    assert awaiting.state == "awaiting_approval" and awaiting.agreement is not None
    assert awaiting.agreement.cadence == "monthly"
    with pytest.raises(Forbidden):
        await w.lifecycle.approve(who(mentor), second.mentorship_id)
    active = await w.lifecycle.approve(ADMIN, second.mentorship_id)
    assert active.state == "active" and active.approved_by == "admin-1"
    with pytest.raises(Conflict) as refused:
        await w.lifecycle.withdraw(who(mentee), second.mentorship_id)
    assert refused.value.extra["state"] == "active"
    ended = await w.lifecycle.end(who(mentee), second.mentorship_id, "moved teams", True)
    assert ended.state == "ended" and ended.not_a_good_fit and w.store.holders(mentor) == []
    with pytest.raises(Conflict):
        await w.lifecycle.complete(who(mentee), second.mentorship_id)


async def test_expiry_closes_an_unanswered_request_once() -> None:
    w = world()
    mentee, mentor = await pair(w)
    m = await w.lifecycle.request(who(mentee), mentor, "", None)
    timer = w.timers.planned[f"expiry:{m.mentorship_id}"]
    w.clock.advance(timedelta(hours=169))
    assert await w.lifecycle.expire(timer, w.clock.now()) == []
    assert (await w.store.mentorship(m.mentorship_id)).state == "expired"  # type: ignore[union-attr]
    assert w.timers.cancelled == [] and not w.store.locks  # the firing timer is not cancelled
    await w.lifecycle.expire(timer, w.clock.now())  # fired again: nothing more
    assert types(w) == ["mentorship_requested", "mentorship_request_expired"]


async def test_review_flags_are_shown_to_admins_only() -> None:
    w = world()
    mentee, mentor = await pair(w)
    m = await w.lifecycle.request(who(mentee), mentor, "", None)
    await w.store.flag_for_review(m.mentorship_id, {"event_id": "e1", "session_id": "s1", "author_role": "mentee"})
    assert (await w.lifecycle.get(who(mentor), m.mentorship_id)).review_flags == []
    assert "review_flags" not in (await w.lifecycle.get(who(mentee), m.mentorship_id)).as_dict()
    view = await w.lifecycle.get(ADMIN, m.mentorship_id)
    assert [f["author_role"] for f in view.review_flags] == ["mentee"]
    with pytest.raises(Forbidden):
        await w.lifecycle.get(who("stranger"), m.mentorship_id)
