"""Insights from the event stream: a program's journey published as real envelopes on the four
topics; the figures asserted over HTTP; duplicates, unused events, erasure and a replay."""

from __future__ import annotations

import csv
import io
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from mentorship_contracts import Envelope, EventData, Topic, dead_letter_topic
from mentorship_contracts.matching import (
    Agreement,
    CohortMatchPublished,
    IntroductionMade,
    MatchQuality,
    MentorshipEnded,
    MentorshipRequestAccepted,
    MentorshipRequestDeclined,
    MentorshipRequested,
    MentorshipStarted,
    ProgramCreated,
    ProgramParticipantEnrolled,
    ProgramParticipantWithdrawn,
)
from mentorship_contracts.notification import NotificationDelivered, NotificationFailed, WebhookEndpointDisabled
from mentorship_contracts.profile import ProfileErased, ProfileRegistered, ProfileSnapshot, ProfileState
from mentorship_contracts.registry import as_newest, upcast_target
from mentorship_contracts.scheduling import (
    CheckInOverdue,
    MentorshipInactive,
    MilestoneReached,
    SessionCancelled,
    SessionCompleted,
    SessionFeedbackSubmitted,
    SessionNoShow,
    SessionReminderDue,
    SessionRescheduled,
    SessionScheduled,
)
from tests.support.kafka import eventually, read_topic
from tests.support.processes import token

from .conftest import Running, publish

pytestmark = pytest.mark.integration

ADMIN = token("admin-1", "admin")
NOW = datetime.now(UTC)


def ago(days: float) -> datetime:
    return NOW - timedelta(days=days)


def env(data: EventData, at: datetime) -> Envelope[Any]:
    return Envelope.wrap(data, source="test", time=at)


def snapshot(
    pid: str,
    roles: list[str],
    *,
    skills: tuple[str, ...] = (),
    seeks: tuple[str, ...] = (),
    capacity: int | None = None,
) -> ProfileSnapshot:
    return ProfileSnapshot(
        profile_id=pid,
        display_name=f"Person {pid}",
        email=f"{pid}@example.org",
        roles=roles,
        skills=[{"name": s} for s in skills],
        development_areas=list(seeks),
        mentor_capacity=capacity,
    )


class Journey:
    """One program's story, as envelopes of the four producing services."""

    def __init__(self) -> None:
        u = uuid.uuid4().hex[:6]
        self.program = f"prog-{u}"
        self.m1, self.m2, self.e1, self.e2, self.e3, self.e4, self.e5 = (
            f"{n}-{u}" for n in ("m1", "m2", "e1", "e2", "e3", "e4", "e5")
        )
        self.ids = {k: f"{k}-{u}" for k in ("ms1", "ms2", "ms3", "ms4", "ms5", "ms6")}
        P, m = self.program, self.ids
        people = [
            snapshot(self.m1, ["mentor"], skills=("python",), capacity=2),
            snapshot(self.m2, ["mentor"], skills=("go",), capacity=1),
            snapshot(self.e1, ["mentee"], seeks=("rust", "python")),
            snapshot(self.e2, ["mentee"], seeks=("rust",)),
            snapshot(self.e3, ["mentee"], seeks=("kotlin",)),
            snapshot(self.e4, ["mentee"], seeks=("python",)),
            snapshot(self.e5, ["mentee"], seeks=("cobol",)),
        ]
        self.profile = [env(ProfileState(profile_id=p.profile_id, version=1, profile=p), ago(40)) for p in people]

        def req(mid: str, mentee: str, mentor: str, at: datetime, program: str | None = P) -> Envelope[Any]:
            return env(
                MentorshipRequested(
                    mentorship_id=mid,
                    mentee_id=mentee,
                    mentor_id=mentor,
                    program_id=program,
                    expires_at=at + timedelta(days=14),
                ),
                at,
            )

        def start(mid: str, mentee: str, mentor: str, at: datetime, cadence: str, origin: str = "request"):
            return env(
                MentorshipStarted(
                    mentorship_id=mid,
                    mentee_id=mentee,
                    mentor_id=mentor,
                    program_id=P,
                    agreement=Agreement(goals=["Secret goal"], expectations="private", cadence=cadence),  # type: ignore[arg-type]
                    started_at=at,
                    origin=origin,
                ),
                at,
            )  # type: ignore[arg-type]

        self.started_ms1 = start(m["ms1"], self.e1, self.m1, ago(19), "weekly")
        self.matching = [
            env(
                CohortMatchPublished(
                    program_id=P,
                    program_name="Spring cohort",
                    run_id="run-1",
                    mentorship_ids=[m["ms5"]],
                    quality=MatchQuality(
                        total_score=1,
                        bound_ratio=1,
                        p10_score=1,
                        matched=1,
                        unmatched=0,
                        top5_share=1,
                        blocking_pair_mentees=0,
                    ),
                ),
                ago(30),
            ),
            start(m["ms5"], self.e5, self.m2, ago(30), "monthly", "cohort"),
            env(
                MentorshipEnded(
                    mentorship_id=m["ms5"],
                    mentee_id=self.e5,
                    mentor_id=self.m2,
                    program_id=P,
                    reason="private reason",
                    not_a_good_fit=True,
                    ended_at=ago(3),
                ),
                ago(3),
            ),
            req(m["ms1"], self.e1, self.m1, ago(20)),
            env(
                MentorshipRequestAccepted(mentorship_id=m["ms1"], mentee_id=self.e1, mentor_id=self.m1, program_id=P),
                ago(19),
            ),
            self.started_ms1,
            req(m["ms2"], self.e2, self.m1, ago(10)),
            start(m["ms2"], self.e2, self.m1, ago(9), "biweekly"),  # accepted and started at once
            req(m["ms3"], self.e3, self.m2, ago(9)),  # never answered
            req(m["ms4"], self.e4, self.m2, ago(5)),
            env(
                MentorshipRequestDeclined(
                    mentorship_id=m["ms4"], mentee_id=self.e4, mentor_id=self.m2, program_id=P, reason="busy"
                ),
                ago(4),
            ),
            req(m["ms6"], self.e1, self.m2, ago(2), program=None),  # a direct request
            # not used by insights: skipped
            env(
                IntroductionMade(
                    introduction_id=f"i-{u}",
                    mentorship_id=m["ms1"],
                    introduced_by=self.m1,
                    mentee_id=self.e1,
                    contact_id=self.m2,
                    message="hi",
                ),
                ago(5),
            ),
        ]

        def ids(mid: str, mentee: str, mentor: str, sid: str) -> dict[str, Any]:
            return {
                "mentorship_id": mid,
                "session_id": sid,
                "mentor_id": mentor,
                "mentee_id": mentee,
                "ical_uid": f"{sid}@x",
            }

        def scheduled(mid: str, mentee: str, mentor: str, sid: str, days: float) -> list[Envelope[Any]]:
            return [
                env(
                    SessionScheduled(
                        **ids(mid, mentee, mentor, sid),
                        start=ago(days),
                        duration_minutes=60,
                        scheduled_by=mentee,
                        agenda="private agenda",
                    ),
                    ago(days + 2),
                )
            ]

        def held(mid: str, mentee: str, mentor: str, sid: str, days: float) -> list[Envelope[Any]]:
            base = ids(mid, mentee, mentor, sid)
            return [
                *scheduled(mid, mentee, mentor, sid, days),
                env(
                    SessionCompleted(
                        **base,
                        sequence=1,
                        start=ago(days),
                        completed_at=ago(days) + timedelta(hours=1),
                        notes="private notes",
                    ),
                    ago(days) + timedelta(hours=1),
                ),
            ]

        def rate(mid: str, sid: str, author: str, role: str, rating: int, days: float) -> Envelope[Any]:
            return env(
                SessionFeedbackSubmitted(
                    mentorship_id=mid,
                    session_id=sid,
                    author_id=author,
                    author_role=role,
                    rating=rating,
                    comment="private",
                ),  # type: ignore[arg-type]
                ago(days),
            )

        self.reminder = env(
            SessionReminderDue(
                **ids(m["ms1"], self.e1, self.m1, f"s6-{u}"), start=ago(5), duration_minutes=60, offset_minutes=60
            ),
            ago(5) - timedelta(hours=1),
        )
        self.scheduling = [
            *held(m["ms1"], self.e1, self.m1, f"s1-{u}", 18),
            *held(m["ms1"], self.e1, self.m1, f"s2-{u}", 11),
            *held(m["ms1"], self.e1, self.m1, f"s3-{u}", 8),
            rate(m["ms1"], f"s1-{u}", self.e1, "mentee", 5, 17),
            rate(m["ms1"], f"s1-{u}", self.m1, "mentor", 4, 17),
            env(
                MilestoneReached(
                    mentorship_id=m["ms1"],
                    milestone_id=f"ml-{u}",
                    title="private title",
                    mentor_id=self.m1,
                    mentee_id=self.e1,
                    reached_at=ago(10),
                ),
                ago(10),
            ),
            *held(m["ms2"], self.e2, self.m1, f"s4-{u}", 7),
            rate(m["ms2"], f"s4-{u}", self.e2, "mentee", 2, 6),
            rate(m["ms2"], f"s4-{u}", self.m1, "mentor", 1, 6),
            # A check-in signal answered by the session after it: no effect. A standing inactivity signal.
            env(
                CheckInOverdue(
                    mentorship_id=m["ms2"], mentor_id=self.m1, mentee_id=self.e2, cadence="biweekly", due_since=ago(8.5)
                ),
                ago(8.5),
            ),
            env(
                MentorshipInactive(mentorship_id=m["ms1"], mentor_id=self.m1, mentee_id=self.e1, inactive_since=ago(1)),
                ago(1),
            ),
            # Sessions that were not held: moved then cancelled, and a no-show.
            *scheduled(m["ms2"], self.e2, self.m1, f"s5-{u}", -3)[:1],
            env(
                SessionRescheduled(
                    **ids(m["ms2"], self.e2, self.m1, f"s5-{u}"),
                    sequence=1,
                    previous_start=ago(-3),
                    start=ago(-4),
                    duration_minutes=60,
                    rescheduled_by=self.e2,
                ),
                ago(1),
            ),
            env(
                SessionCancelled(
                    **ids(m["ms2"], self.e2, self.m1, f"s5-{u}"),
                    sequence=2,
                    start=ago(-4),
                    reason="private",
                    cancelled_by=self.m1,
                ),
                ago(0.5),
            ),
            *scheduled(m["ms1"], self.e1, self.m1, f"s6-{u}", 5)[:1],
            env(
                SessionNoShow(
                    **ids(m["ms1"], self.e1, self.m1, f"s6-{u}"),
                    start=ago(5),
                    absent_ids=[self.m1],
                    reported_by=self.e1,
                ),
                ago(5),
            ),
            self.reminder,
        ]

        def failed(delivery: str, source: Envelope[Any], at: datetime) -> Envelope[Any]:
            return env(
                NotificationFailed(
                    delivery_id=delivery,
                    recipient_id=self.e1,
                    channel="email",
                    category="mentorship",
                    source_event_id=source.id,
                    source_event_type=source.type,
                    reason="550 e1@example.org unknown",
                    failed_at=at,
                ),
                at,
            )

        unrelated = env(ProfileRegistered(profile_id=self.e1, profile=people[2]), ago(40))
        self.notification = [
            failed(f"d1-{u}", self.started_ms1, ago(19)),  # counts against the program
            failed(f"d4-{u}", self.reminder, ago(5)),  # so does a reminder of one of its sessions
            failed(f"d2-{u}", unrelated, ago(1)),  # a welcome mail: no program
            env(
                NotificationDelivered(
                    delivery_id=f"d3-{u}",
                    recipient_id=self.e2,
                    channel="email",
                    category="mentorship",
                    source_event_id="x",
                    source_event_type="y",
                    delivered_at=ago(1),
                ),
                ago(1),
            ),
            env(
                WebhookEndpointDisabled(
                    endpoint_id=f"w-{u}", reason="down", consecutive_failures=5, disabled_at=ago(1)
                ),
                ago(1),
            ),
        ]

    def all(self) -> list[Envelope[Any]]:
        return self.profile + self.scheduling + self.matching + self.notification


EXPECTED = {
    "enrolled_mentees": 5,
    "enrolled_mentors": 2,
    "matched_mentees": 3,
    "unmatched_mentees": 2,
    "requests_pending": 1,
    "acceptance_rate": 0.667,
    "median_hours_to_accept": 24.0,
    "active_pairs": 2,
    "completed_pairs": 0,
    "ended_pairs": 1,
    "sessions_held": 4,
    "pairs_overdue": 1,
    "pairs_inactive": 1,
    "average_session_rating": 3.0,
    "milestones_reached": 1,
    "notification_failures": 2,
}


async def figures(svc: Running, program: str) -> dict[str, Any]:
    r = await svc.http.get(f"/programs/{program}/health", headers=ADMIN)
    assert r.status_code == 200, r.text
    return r.json()["figures"]


async def settled(svc: Running, program: str) -> dict[str, Any]:
    async def check() -> dict[str, Any] | None:
        r = await svc.http.get(f"/programs/{program}/health", headers=ADMIN)
        if r.status_code != 200:
            return None
        f = r.json()["figures"]
        return f if {k: f[k]["value"] for k in EXPECTED} == EXPECTED else None

    return await eventually(check, timeout=60)


def read_as(type_: str) -> str:
    """The type a consumer reads an event as (an old version as its newest)."""
    return upcast_target(type_) or type_


SKIPPED = {IntroductionMade.event_type, NotificationDelivered.event_type, WebhookEndpointDisabled.event_type}
STATE = ProfileState.event_type  # profile.state is read like a table: no processed marks


async def consumed(svc: Running, mongo: Any, events: list[Envelope[Any]]) -> None:
    """Wait until every event insights uses is marked processed and every person of profile.state
    (a table: no marks) is in its read model (the reports then show all of them)."""
    db = mongo[svc.runtime.settings.database_name]
    wanted = len({e.id for e in events if e.type not in SKIPPED and e.type != STATE})
    people = sorted({e.subject for e in events if e.type == STATE})

    async def check() -> bool:
        return await db["processed_events"].count_documents({}) >= wanted and await db["people"].count_documents(
            {"_id": {"$in": people}}
        ) >= len(people)

    await eventually(check, timeout=60)


def values(f: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in f.items() if not k.startswith("pending_")}  # ages move with the clock


async def test_program_reports_from_the_event_stream_and_a_replay_gives_the_same(
    start_insights, infra, prefix, mongo
) -> None:
    svc = await start_insights()
    j = Journey()
    events = j.all()
    # Scheduling before matching, and every event twice: neither order nor duplicates change a figure.
    await publish(infra, prefix, events + events[::3])

    await consumed(svc, mongo, events)
    f = await settled(svc, j.program)
    assert 9 * 24 - 1 < f["pending_oldest_hours"]["value"] < 9 * 24 + 1
    assert f["sessions_per_pair_per_month"]["value"] > 0 and f["cadence_attainment"]["value"] > 0
    assert len(f["sessions_held"]["weekly"]) == 8 and sum(f["sessions_held"]["weekly"]) == 4
    r = await svc.http.get(f"/programs/{j.program}/health", headers=ADMIN)
    assert r.json()["name"] == "Spring cohort" and len(r.json()["weeks"]) == 8

    # Attention: each pair with its reasons.
    r = await svc.http.get(f"/programs/{j.program}/attention", headers=ADMIN)
    reasons = {p["mentorship_id"]: [x["code"] for x in p["reasons"]] for p in r.json()["pairs"]}
    assert reasons == {
        j.ids["ms1"]: ["no_session_within_cadence", "inactive"],
        j.ids["ms2"]: ["low_rating"],
        j.ids["ms3"]: ["request_unanswered"],
    }

    # Mentor load: m1 at capacity with two active pairs; m2 has two requests waiting (one direct).
    r = await svc.http.get(f"/programs/{j.program}/mentor-load", headers=ADMIN)
    load = {row["mentor_id"]: row for row in r.json()["mentors"]}
    assert load[j.m1]["active_total"] == 2 and load[j.m1]["load"] == 1.0 and load[j.m1]["at_capacity"]
    assert load[j.m2]["active_total"] == 0 and load[j.m2]["pending_requests"] == 2 and load[j.m2]["capacity"] == 1

    # Direct requests are the pseudo-program `direct`; everything together is `overall`.
    direct = await figures(svc, "direct")
    assert direct["requests_pending"]["value"] >= 1
    r = await svc.http.get("/insights/overall", headers=ADMIN)
    assert r.status_code == 200 and r.json()["figures"]["notification_failures"]["value"] == 3

    # Supply gap: skills sought that no mentor offers.
    r = await svc.http.get("/insights/supply-gap", headers=ADMIN)
    gap = {s["skill"]: s["mentees_seeking"] for s in r.json()["skills"]}
    assert gap["rust"] == 2 and gap["kotlin"] == 1 and gap["cobol"] == 1 and "python" not in gap

    # CSV exports.
    r = await svc.http.get(f"/programs/{j.program}/pairs.csv", headers=ADMIN)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    rows = {row["mentorship_id"]: row for row in csv.DictReader(io.StringIO(r.text))}
    assert set(rows) == {j.ids[k] for k in ("ms1", "ms2", "ms3", "ms4", "ms5")}
    assert rows[j.ids["ms1"]]["sessions_held"] == "3" and rows[j.ids["ms1"]]["average_rating"] == "4.5"
    assert rows[j.ids["ms5"]]["state"] == "ended" and rows[j.ids["ms5"]]["not_a_good_fit"] == "true"
    r = await svc.http.get("/programs.csv", headers=ADMIN)
    programs = {row["program_id"]: row for row in csv.DictReader(io.StringIO(r.text))}
    assert programs[j.program]["sessions_held"] == "4" and programs[j.program]["name"] == "Spring cohort"
    assert "direct" in programs

    # No free text was kept anywhere.
    db = mongo[svc.runtime.settings.database_name]
    for coll in ("pairs", "programs", "people", "failures", "event_refs", "enrolments"):
        async for doc in db[coll].find({}):
            text = repr(doc)
            for secret in ("private", "Secret goal", "example.org", "Person ", "busy"):
                assert secret not in text, (coll, doc)

    # Events insights does not use were skipped: never marked as processed, never dead-lettered.
    marked = set(await db["processed_events"].distinct("type"))
    # v1 events are read (and marked) as their v2 (the contracts' upcasters); profile.state is a table
    assert not marked & {read_as(t) for t in SKIPPED}
    assert {read_as(e.type) for e in events if e.type not in SKIPPED} - {STATE} <= marked
    for topic in (Topic.MATCHING, Topic.NOTIFICATION):
        assert await read_topic(infra.kafka_bootstrap, dead_letter_topic(f"{prefix}{topic}"), want=1, timeout=2) == []

    # A duplicate applied straight to the read model (past the processed marks) changes nothing.
    before = values(await figures(svc, j.program))
    for e in events:
        if isinstance(e.data, SessionCompleted | MentorshipStarted | SessionFeedbackSubmitted):
            consumer = next(c for c in svc.runtime.consumers if c.topic == e.data.topic)
            newest = as_newest(e)  # what the consumer hands its handlers (v1 upcast to v2)
            await consumer.handlers[newest.type](newest)
    assert values(await figures(svc, j.program)) == before

    # Replay: the same topics from offset zero into an empty database give the same figures.
    replay = await start_insights(service_name="insights-replay")
    await consumed(replay, mongo, events)
    assert values(await figures(replay, j.program)) == before
    assert (await replay.http.get(f"/programs/{j.program}/attention", headers=ADMIN)).json()["pairs"] == (
        await svc.http.get(f"/programs/{j.program}/attention", headers=ADMIN)
    ).json()["pairs"]

    # Erasure: the person's skills are forgotten, the counts stay, the id no longer shows.
    await publish(infra, prefix, [env(ProfileErased(profile_id=j.e5), datetime.now(UTC))])

    async def forgotten() -> bool:
        r = await svc.http.get("/insights/supply-gap", headers=ADMIN)
        return "cobol" not in {s["skill"] for s in r.json()["skills"]}

    await eventually(forgotten)
    tombstone = await db["people"].find_one({"_id": j.e5})
    assert set(tombstone) == {"_id", "erased", "as_of"} and tombstone["erased"] is True
    assert values(await figures(svc, j.program)) == before
    r = await svc.http.get(f"/programs/{j.program}/pairs.csv", headers=ADMIN)
    assert j.e5 not in r.text and "erased" in r.text


async def test_reports_are_for_admins_and_unknown_programs_are_404(start_insights) -> None:
    svc = await start_insights()
    r = await svc.http.get("/programs/nope/health", headers=ADMIN)
    assert r.status_code == 404 and r.headers["content-type"] == "application/problem+json"
    for path in ("/programs/nope/attention", "/programs/nope/mentor-load", "/programs/nope/pairs.csv"):
        assert (await svc.http.get(path, headers=ADMIN)).status_code == 404
    for path in ("/programs/nope/health", "/programs.csv", "/insights/supply-gap", "/insights/overall"):
        assert (await svc.http.get(path, headers=token("someone", "mentor"))).status_code == 403
        assert (await svc.http.get(path)).status_code == 401


def enrolment_journey(u: str) -> tuple[str, str, dict[str, str], list[Envelope[Any]]]:
    """A program known from ProgramCreated; people enrol, one withdraws and enrols again, a mentor
    withdraws (the withdrawal published before the enrolment it ends); one mentee is matched."""
    program, quiet = f"autumn-{u}", f"quiet-{u}"
    p = {n: f"{n}-{u}" for n in ("m1", "m2", "m3", "e1", "e2", "e3", "e4", "e5")}

    def enrolled(who: str, role: str, days: float, spell: int = 1, of: str = program) -> Envelope[Any]:
        return env(
            ProgramParticipantEnrolled(
                program_id=of,
                profile_id=p[who],
                role=role,
                enrolment_id=f"{of}:{role}:{p[who]}#{spell}",
                enrolled_at=ago(days),
            ),  # type: ignore[arg-type]
            ago(days),
        )

    def withdrawn(who: str, role: str, since: float, days: float, spell: int = 1) -> Envelope[Any]:
        return env(
            ProgramParticipantWithdrawn(
                program_id=program,
                profile_id=p[who],
                role=role,
                enrolment_id=f"{program}:{role}:{p[who]}#{spell}",
                enrolled_at=ago(since),
                withdrawn_at=ago(days),
            ),  # type: ignore[arg-type]
            ago(days),
        )

    events = [
        env(ProfileState(profile_id=p["m3"], version=1, profile=snapshot(p["m3"], ["mentor"], capacity=2)), ago(30)),
        env(ProgramCreated(program_id=program, name="Autumn cohort", mode="automatic", created_at=ago(20)), ago(20)),
        env(ProgramCreated(program_id=quiet, name="Quiet program", mode="self-select", created_at=ago(4)), ago(4)),
        withdrawn("m2", "mentor", 19, 2),  # before the enrolment it ends: the order does not matter
        enrolled("m1", "mentor", 19),
        enrolled("m2", "mentor", 19),
        enrolled("m3", "mentor", 19),
        *(enrolled(e, "mentee", 18) for e in ("e1", "e2", "e3", "e4")),
        withdrawn("e4", "mentee", 18, 10),
        enrolled("e4", "mentee", 5, spell=2),
        enrolled("e5", "mentee", 1),
        enrolled("e5", "mentee", 1, of=quiet),
        env(
            MentorshipStarted(
                mentorship_id=f"c1-{u}",
                mentee_id=p["e1"],
                mentor_id=p["m1"],
                program_id=program,
                agreement=Agreement(cadence="weekly"),
                started_at=ago(15),
                origin="cohort",
            ),
            ago(15),
        ),
        env(
            MentorshipRequested(
                mentorship_id=f"r1-{u}",
                mentee_id=p["e2"],
                mentor_id=p["m1"],
                program_id=program,
                expires_at=ago(-11),
            ),
            ago(3),
        ),
    ]
    return program, quiet, p, events


async def test_enrolment_events_count_enrolled_and_unmatched_people_and_replay_the_same(
    start_insights, infra, prefix, mongo
) -> None:
    svc = await start_insights()
    program, quiet, p, events = enrolment_journey(uuid.uuid4().hex[:6])
    await publish(infra, prefix, events + events[::2])  # duplicates change nothing
    await consumed(svc, mongo, events)

    want = {
        "enrolled_mentees": 5,
        "enrolled_mentors": 2,
        "matched_mentees": 1,
        "unmatched_mentees": 4,
        "requests_pending": 1,
        "active_pairs": 1,
    }

    async def check() -> dict[str, Any] | None:
        f = await figures(svc, program)
        return f if {k: f[k]["value"] for k in want} == want else None

    f = await eventually(check, timeout=60)
    # e4 withdrew 10 days ago and came back 5 days ago; e5 enrolled yesterday: the stock moves by week
    assert f["enrolled_mentees"]["weekly"][-1] == 5 and f["enrolled_mentees"]["weekly"][0] == 0
    assert max(f["enrolled_mentees"]["weekly"]) == 5 and min(f["enrolled_mentees"]["weekly"][-3:]) >= 3
    r = await svc.http.get(f"/programs/{program}/health", headers=ADMIN)
    assert r.json()["name"] == "Autumn cohort"

    # A program known only from its creation and one enrolment: no mentorship yet.
    q = await figures(svc, quiet)
    assert q["enrolled_mentees"]["value"] == 1 and q["unmatched_mentees"]["value"] == 1
    assert q["matched_mentees"]["value"] == 0 and q["active_pairs"]["value"] == 0
    r = await svc.http.get("/programs.csv", headers=ADMIN)
    rows = {row["program_id"]: row for row in csv.DictReader(io.StringIO(r.text))}
    assert rows[quiet]["name"] == "Quiet program" and rows[program]["unmatched_mentees"] == "4"

    # Mentor load: enrolled mentors too (m3 has no pair yet); m2 withdrew.
    r = await svc.http.get(f"/programs/{program}/mentor-load", headers=ADMIN)
    load = {row["mentor_id"]: row for row in r.json()["mentors"]}
    assert set(load) == {p["m1"], p["m3"]}
    assert load[p["m3"]]["active_total"] == 0 and load[p["m3"]]["capacity"] == 2
    assert load[p["m1"]]["active_in_program"] == 1

    overall = (await svc.http.get("/insights/overall", headers=ADMIN)).json()["figures"]
    assert overall["enrolled_mentees"]["value"] >= 5

    # Replay into an empty database: the same figures.
    before = {n: values(await figures(svc, n)) for n in (program, quiet)}
    replay = await start_insights(service_name="insights-replay")
    await consumed(replay, mongo, events)
    assert {n: values(await figures(replay, n)) for n in (program, quiet)} == before
