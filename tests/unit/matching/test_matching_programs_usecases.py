"""Programs and enrolments against an in-memory store: the events each change carries, enrolling
twice, withdrawing and enrolling again, the program listing's status filter, who may do what."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from matching_service.application import ProgramQuery, ProgramUseCases
from matching_service.domain import MatchingMode, ProgramSpec, ProgramStatus
from mentorship_kit.auth import Principal
from mentorship_kit.problems import Forbidden, NotFound
from mentorship_kit.usecase import EventFactory, UseCaseContext

from .fakes import FakeProfiles, FakeProgramStore, FakeTimers, FixedClock

ADMIN = Principal("admin-1", frozenset({"admin"}))


def setup() -> tuple[ProgramUseCases, FakeProgramStore, FakeProfiles, FixedClock, list[int]]:
    clock, store, profiles, written = FixedClock(), FakeProgramStore(), FakeProfiles(), []
    ctx = UseCaseContext(
        clock=clock,
        timers=FakeTimers(),
        events=EventFactory("matching", clock),  # type: ignore[arg-type]
        events_written=lambda: written.append(1),
    )
    return ProgramUseCases(ctx, programs=store, profiles=profiles), store, profiles, clock, written


def spec(name: str, starts: date, ends: date, mode: MatchingMode = MatchingMode.SELF_SELECT) -> ProgramSpec:
    return ProgramSpec(name=name, starts_on=starts, ends_on=ends, mode=mode)


def kinds(store: FakeProgramStore) -> list[str]:
    return [e.type.rsplit(".", 1)[1] for e in store.outbox]


async def test_creating_a_program_carries_program_created_keyed_by_the_program() -> None:
    programs, store, _, clock, written = setup()
    created = await programs.create_program(
        ADMIN, spec("Spring", date(2026, 3, 1), date(2026, 8, 31), MatchingMode.AUTOMATIC)
    )
    assert kinds(store) == ["program_created"] and written == [1]
    event = store.outbox[0]
    assert event.subject == created["program_id"]
    assert (event.data.name, event.data.mode, event.data.created_at) == ("Spring", "automatic", clock.now())
    assert created["enrolled"] == {"mentee": 0, "mentor": 0}
    with pytest.raises(Forbidden):
        await programs.create_program(Principal("m", frozenset({"mentor"})), spec("x", date.today(), date.today()))


async def test_enrolment_events_once_per_enrolment_and_a_withdrawal_names_the_one_it_ends() -> None:
    programs, store, profiles, clock, _ = setup()
    program_id = (await programs.create_program(ADMIN, spec("P", date(2026, 1, 1), date(2026, 12, 31))))["program_id"]
    me = Principal(profiles.add("e1", ["mentee"]), frozenset({"mentee"}))
    version = store.programs[program_id]["version"]
    await programs.enroll(me, program_id, "e1", "mentee")
    await programs.enroll(ADMIN, program_id, "e1", "mentee")  # enrolled already: nothing new
    assert kinds(store) == ["program_created", "program_participant_enrolled"]
    assert store.programs[program_id]["version"] == version + 1  # older dry runs are stale
    clock.advance(timedelta(days=1))
    await programs.unenroll(me, program_id, "e1", "mentee")
    with pytest.raises(NotFound):
        await programs.unenroll(me, program_id, "e1", "mentee")
    clock.advance(timedelta(days=1))
    await programs.enroll(me, program_id, "e1", "mentee")
    assert kinds(store)[1:] == [
        "program_participant_enrolled",
        "program_participant_withdrawn",
        "program_participant_enrolled",
    ]
    first, withdrawn, second = (e.data for e in store.outbox[1:])
    assert withdrawn.enrolment_id == first.enrolment_id != second.enrolment_id
    assert withdrawn.enrolled_at == first.enrolled_at < withdrawn.withdrawn_at < second.enrolled_at
    assert all(e.subject == program_id for e in store.outbox)
    assert await store.enrolled(program_id, "mentee") == ["e1"]
    with pytest.raises(Forbidden):
        await programs.enroll(Principal("other", frozenset({"mentee"})), program_id, "e1", "mentee")


async def test_program_listing_filters_by_status_from_the_dates() -> None:
    programs, _, _, clock, _ = setup()
    today = clock.now().date()
    ids = {}
    for name, starts, ends in [("past", -60, -30), ("now", -1, 0), ("later", 1, 30)]:
        created = await programs.create_program(
            ADMIN, spec(name, today + timedelta(days=starts), today + timedelta(days=ends))
        )
        ids[name] = created["program_id"]
        clock.advance(timedelta(seconds=1))
    clock.at = clock.at.replace(hour=12)
    listed = await programs.list_programs(ADMIN, ProgramQuery())
    assert [p["name"] for p in listed["items"]] == ["later", "now", "past"]
    assert {p["name"]: p["status"] for p in listed["items"]} == {"later": "upcoming", "now": "running", "past": "ended"}
    for status, name in [
        (ProgramStatus.UPCOMING, "later"),
        (ProgramStatus.RUNNING, "now"),
        (ProgramStatus.ENDED, "past"),
    ]:
        page = await programs.list_programs(ADMIN, ProgramQuery(status=status))
        assert [p["program_id"] for p in page["items"]] == [ids[name]] and page["next_offset"] is None
    page = await programs.list_programs(ADMIN, ProgramQuery(limit=2))
    assert page["total"] == 3 and page["next_offset"] == 2
    with pytest.raises(Forbidden):
        await programs.list_programs(Principal("e", frozenset({"mentee"})), ProgramQuery())
