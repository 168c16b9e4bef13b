"""The whole mentoring journey with the five services as separate processes on the real broker and
store, asserted only through public surfaces: HTTP answers, the SMTP sink, and the Kafka topics
read with a plain consumer that knows nothing but the published contracts. The journey ends with
the program's health as the insights service (built only from the events) reports it.

The journey runs once per module (it takes a while on a small machine); the replay test then stops
every service, rewinds every consumer group to offset zero, forgets the processed-event marks (and
empties insights' read models: `mentorship replay insights --rebuild`), restarts them and checks
that nothing changed, nothing was sent twice and insights reports the same figures.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import io
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from pymongo import AsyncMongoClient

from mentorship_ops import kafka_ops
from mentorship_ops.cli import cmd_replay
from mentorship_ops.connection import SERVICES
from mentorship_ops.journey import CLOCK_DRIVEN_FIGURES, Journey, StepRecord
from mentorship_ops.support import ServiceProcess, SmtpSink, free_port
from tests.support.infra import Infra
from tests.support.kafka import eventually
from tests.support.processes import JWT_SECRET, service_env

pytestmark = pytest.mark.e2e


@dataclass
class Platform:
    prefix: str
    infra: Infra
    sink: SmtpSink
    processes: dict[str, ServiceProcess]
    logs: Path

    @property
    def urls(self) -> dict[str, str]:
        return {name: proc.url for name, proc in self.processes.items()}

    def extra(self, name: str) -> dict[str, str]:
        common = {"DEV_CLOCK_ENABLED": "true"}
        if name == "notification":
            common.update(
                SMTP_HOST="127.0.0.1",
                SMTP_PORT=str(self.sink.port),
                WEBHOOK_ALLOW_LOOPBACK="true",
                DELIVERY_RECOVERY_INTERVAL_SECONDS="2",
            )
        return common

    def start(self, name: str, generation: int = 0) -> ServiceProcess:
        port = free_port()
        env = service_env(
            name,
            kafka=self.infra.kafka_bootstrap,
            mongo=self.infra.mongodb_uri,
            prefix=self.prefix,
            port=port,
            **self.extra(name),
        )
        proc = ServiceProcess(name, port, env, self.logs / f"{name}-{generation}.log")
        self.processes[name] = proc
        return proc.start(timeout=90)

    def database(self, name: str) -> str:
        return self.processes[name].env["MONGODB_DATABASE"]


@dataclass
class Played:
    platform: Platform
    journey: Journey
    steps: list[StepRecord]
    summary: dict[str, Any]


@pytest.fixture(scope="module")
async def played(infra: Infra, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Played]:
    prefix = f"e{uuid.uuid4().hex[:10]}."
    sink = SmtpSink().start()
    platform = Platform(prefix, infra, sink, {}, tmp_path_factory.mktemp("e2e-logs"))
    try:
        for name in SERVICES:
            await asyncio.to_thread(platform.start, name)
        journey = Journey(
            urls=platform.urls,
            kafka=infra.kafka_bootstrap,
            prefix=prefix,
            jwt_secret=JWT_SECRET,
            sink=sink,
            mentees=8,
            mentors=4,
            wait_timeout=120,
        )
        try:
            steps = await journey.run()
            summary = await journey.summary()
            yield Played(platform, journey, steps, summary)
        finally:
            await journey.close()
    finally:
        for proc in platform.processes.values():
            proc.stop()
            print(f"--- {proc.name} log (tail) ---\n{proc.tail(40)}")
        sink.stop()


def step(played: Played, starts: str) -> StepRecord:
    return next(s for s in played.steps if s.title.startswith(starts))


async def test_the_journey_runs_from_program_to_pay_it_forward(played: Played) -> None:
    j, summary = played.journey, played.summary
    assert [s.title for s in played.steps] == [
        "An admin creates a program",
        "HR bulk-imports people (JSON Lines)",
        "People enroll in the program",
        "Cohort dry run and its quality report",
        "The admin publishes the matches",
        "A mentee asks a mentor directly; the mentor accepts",
        "Scheduling proposes common hours; a session is booked",
        "Time passes: reminders fire",
        "The session is held; both give feedback",
        "Weeks of silence: an overdue check-in nudges the pair",
        "A milestone is reached and celebrated",
        "The mentor introduces their mentee to someone",
        "Pay it forward: a mentee becomes a mentor",
        "The program manager checks the program's health",
    ]

    imported = step(played, "HR bulk-imports")
    assert imported.facts["created"] == len(j.everyone) and imported.facts["rejected"] == 0
    assert imported.events["ProfileRegistered"] == len(j.everyone)
    assert len({p.time_zone for p in j.everyone}) >= 4

    # The cohort: everyone matched within capacity (8 mentees, 4 mentors with 2-3 slots each).
    quality = j.ids["run"]["quality"]
    assert quality["matched"] + quality["unmatched"] == 8 and quality["matched"] >= 7
    assert 0 < quality["bound_ratio"] <= 1.0 + 1e-9
    load = Counter(a["mentor_id"] for a in j.ids["run"]["assignments"])
    capacity = {p.profile_id: p.row["mentor_capacity"] for p in j.people["mentors"]}
    assert all(load[m] <= capacity[m] for m in load)
    assert step(played, "The admin publishes").events["MentorshipStarted"] >= quality["matched"]
    assert step(played, "The admin publishes").events["CohortMatchPublished"] == 1

    # Each notification-bearing step: the email reached the SMTP sink and the item the inbox.
    for title, event, people in [
        ("The admin publishes", "CohortMatchPublished", 1),
        ("A mentee asks", "MentorshipRequested", 1),
        ("A mentee asks", "MentorshipRequestAccepted", 1),
        ("A mentee asks", "MentorshipStarted", 2),
        ("Scheduling proposes", "SessionScheduled", 2),
        ("Time passes", "SessionReminderDue", 4),
        ("Weeks of silence", "CheckInOverdue", 2),
        ("A milestone", "MilestoneReached", 2),
        ("The mentor introduces", "IntroductionMade", 2),
    ]:
        notices = [n for n in step(played, title).notices if n.event == event]
        assert Counter(n.channel for n in notices) == {"email": people, "in_app": people}, (title, notices)

    scheduled = step(played, "Scheduling proposes")
    assert scheduled.facts["calendar invite attached"] is True
    assert step(played, "Time passes").events["SessionReminderDue"] == 2
    held = step(played, "The session is held")
    assert held.events["SessionCompleted"] == 1 and held.events["SessionFeedbackSubmitted"] == 2
    assert held.facts == {"sessions held": 1, "average rating": 4.5}
    assert step(played, "A milestone").events["MilestoneReached"] == 1
    intro = step(played, "The mentor introduces")
    assert intro.events["IntroductionMade"] == 1 and intro.events["IntroductionAccepted"] == 1
    paid = step(played, "Pay it forward")
    assert paid.events["ProfileRoleAdded"] == 1

    # Read back over HTTP: the direct mentorship is active, the new mentor has both roles.
    direct = j.people["direct"]
    r = await j.call("matching", "GET", f"/mentorships/{j.ids['direct_mentorship']}", as_=j.admin())
    assert r.json()["state"] == "active"
    r = await j.call("profile", "GET", f"/profiles/{direct.profile_id}", as_=j.admin())
    assert sorted(r.json()["roles"]) == ["mentee", "mentor"] and r.json()["mentor_capacity"] == 1
    assert summary["sessions held"] == 1 and summary["milestones reached"] == 1
    assert summary["emails"] >= 17 and summary["in-app unread"] >= 17
    assert j.watcher.undecodable == 0  # every record on every topic is a published contract


async def test_insights_reports_the_programs_health_from_the_events(played: Played) -> None:
    """The health figures, read over HTTP, agree with what the journey did to the program."""
    j = played.journey
    pid = j.ids["program"]["program_id"]
    direct_mid, direct_mentor = j.ids["direct_mentorship"], j.ids["direct_mentor"]
    cohort = j.ids["run"]["assignments"]
    matched = j.ids["run"]["quality"]["matched"]
    assert len(cohort) == matched == len(j.ids["cohort_mentorships"])
    mentors = {a["mentor_id"] for a in cohort} | {direct_mentor}

    health = (await j.call("insights", "GET", f"/programs/{pid}/health", as_=j.admin())).json()
    assert _steady(health) == _steady(j.ids["health"])  # as the journey's last step saw it
    assert health["program_id"] == pid and health["name"] == f"Engineering mentoring {j.run_id}"
    figures = health["figures"]
    value = {name: figure["value"] for name, figure in figures.items()}
    # "Enrolled": everyone who enrolled (each journey mentee and mentor enrolls themselves), plus the
    # people in the program's mentorships who did not (the direct pair requested without enrolling).
    enrolled_mentees = {p.profile_id for p in j.people["mentees"]}
    enrolled_mentors = {p.profile_id for p in j.people["mentors"]}
    assert value["enrolled_mentees"] == len(enrolled_mentees | {j.people["direct"].profile_id})
    assert value["enrolled_mentors"] == len(enrolled_mentors | mentors)
    assert value["matched_mentees"] == matched + 1
    assert value["unmatched_mentees"] == len(enrolled_mentees) - matched
    assert value["requests_pending"] == 0 and value["pending_oldest_hours"] is None
    assert value["acceptance_rate"] == 1.0  # the one request was accepted (cohort starts are no requests)
    assert value["median_hours_to_accept"] is not None and value["median_hours_to_accept"] >= 0
    assert value["active_pairs"] == matched + 1
    assert value["completed_pairs"] == 0 and value["ended_pairs"] == 0
    assert value["sessions_held"] == 1 and value["average_session_rating"] == 4.5  # ratings 5 and 4
    assert value["milestones_reached"] == 1
    # Only the direct pair (weekly cadence, silent for 10 days, check-in overdue) is behind; the
    # cohort's pairs check in monthly and started less than a month ago.
    assert value["pairs_overdue"] == 1 and value["pairs_inactive"] == 0
    assert value["notification_failures"] == 0
    assert value["sessions_per_pair_per_month"] > 0 and value["cadence_attainment"] > 0
    assert len(health["weeks"]) == 8
    for name in ("sessions_held", "milestones_reached"):  # flows: the weeks add up to the total
        assert sum(figures[name]["weekly"]) == value[name], name
    for name in ("active_pairs", "enrolled_mentees"):  # stocks: this week's value is the value now
        assert figures[name]["weekly"][-1] == value[name], name

    facts = step(played, "The program manager").facts
    assert facts["active pairs"] == matched + 1 and facts["sessions held"] == 1
    assert facts["pairs needing attention"] == 1 and facts["why"] == "no_session_within_cadence (1)"

    attention = (await j.call("insights", "GET", f"/programs/{pid}/attention", as_=j.admin())).json()
    assert [(p["mentorship_id"], p["state"]) for p in attention["pairs"]] == [(direct_mid, "active")]
    assert {r["code"] for r in attention["pairs"][0]["reasons"]} == {"no_session_within_cadence"}

    r = await j.call("insights", "GET", f"/programs/{pid}/pairs.csv", as_=j.admin())
    rows = {row["mentorship_id"]: row for row in csv.DictReader(io.StringIO(r.text))}
    assert set(rows) == {*j.ids["cohort_mentorships"], direct_mid}
    assert rows[direct_mid]["sessions_held"] == "1" and rows[direct_mid]["average_rating"] == "4.5"
    assert rows[direct_mid]["cadence"] == "weekly" and rows[direct_mid]["origin"] == "request"
    assert {rows[m]["cadence"] for m in j.ids["cohort_mentorships"]} == {"monthly"}

    # Admin only, problem+json for an unknown program.
    mentee = j.token(j.people["direct"].profile_id, "mentee")
    await j.call("insights", "GET", f"/programs/{pid}/health", as_=mentee, expect=(403,))
    r = await j.call("insights", "GET", "/programs/no-such-program/health", as_=j.admin(), expect=(404,))
    assert r.headers["content-type"].startswith("application/problem+json")


def _steady(health: dict[str, Any]) -> dict[str, Any]:
    """The figures that only events change (not the ones that move with the clock alone)."""
    return {k: v for k, v in health["figures"].items() if k not in CLOCK_DRIVEN_FIGURES}


async def _observable_state(j: Journey) -> dict[str, Any]:
    admin = j.admin()
    state: dict[str, Any] = {"profiles": {}, "read_model": {}, "mentorships": {}, "inbox": {}, "deliveries": {}}
    for p in j.everyone:
        pid = p.profile_id
        state["profiles"][pid] = (await j.call("profile", "GET", f"/profiles/{pid}", as_=admin)).json()
        state["read_model"][pid] = (await j.call("matching", "GET", f"/read-models/profiles/{pid}", as_=admin)).json()
        state["mentorships"][pid] = sorted(
            (await j.call("matching", "GET", "/mentorships", as_=admin, params={"profile_id": pid})).json(),
            key=lambda m: m["mentorship_id"],
        )
        inbox = (await j.call("notification", "GET", f"/people/{pid}/inbox", as_=admin, params={"limit": 100})).json()
        state["inbox"][pid] = sorted((i["item_id"], i["read_at"]) for i in inbox["items"])
        log = (
            await j.call("notification", "GET", "/deliveries", as_=admin, params={"recipient_id": pid, "limit": 500})
        ).json()
        state["deliveries"][pid] = sorted((d["delivery_id"], d["state"], len(d["attempts"])) for d in log)
    mid = j.ids["direct_mentorship"]
    state["sessions"] = (await j.call("scheduling", "GET", f"/mentorships/{mid}/sessions", as_=admin)).json()
    state["scheduling"] = (await j.call("scheduling", "GET", f"/mentorships/{mid}", as_=admin)).json()
    state["progress"] = (await j.call("scheduling", "GET", f"/mentorships/{mid}/progress", as_=admin)).json()
    for cohort_mid in j.ids["cohort_mentorships"][:3]:
        state[f"scheduling:{cohort_mid}"] = (
            await j.call("scheduling", "GET", f"/mentorships/{cohort_mid}", as_=admin)
        ).json()
    pid = j.ids["program"]["program_id"]
    state["program"] = (await j.call("matching", "GET", f"/programs/{pid}", as_=admin)).json()
    return state


async def _settled(played: Played) -> None:
    """Consumer lag zero on every group, and the mailbox and delivery log stop changing."""
    prefix, kafka = played.platform.prefix, played.platform.infra.kafka_bootstrap

    async def no_lag() -> bool:
        lags = await kafka_ops.group_lags(kafka, prefix)
        return bool(lags) and all(g.lag == 0 for g in lags)

    await eventually(no_lag, timeout=120, interval=1)
    previous: list[Any] = []

    async def quiet() -> bool:
        now = [played.platform.sink.count, await _observable_state(played.journey)]
        same = now == previous
        previous[:] = now
        return same

    await eventually(quiet, timeout=120, interval=3)


async def _insights_state(j: Journey) -> dict[str, Any]:
    """Every insights report about the journey's program (and overall), without the `as_of` stamps;
    `as_of` and `figures` of the program's health on the side."""
    admin, pid = j.admin(), j.ids["program"]["program_id"]

    async def get(path: str) -> Any:
        r = await j.call("insights", "GET", path, as_=admin)
        return r.text if path.endswith(".csv") else r.json()

    health = await get(f"/programs/{pid}/health")
    reports = {"health": health}
    for path in (
        f"/programs/{pid}/attention",
        f"/programs/{pid}/mentor-load",
        f"/programs/{pid}/pairs.csv",
        "/programs.csv",
        "/insights/overall",
        "/insights/supply-gap",
    ):
        reports[path] = await get(path)
    stamped = {
        k: {f: v for f, v in r.items() if f != "as_of"} if isinstance(r, dict) else r for k, r in reports.items()
    }
    return {"as_of": health["as_of"], "figures": health["figures"], "reports": stamped}


async def _insights_documents(platform: Platform) -> int:
    """Documents left in insights' read models (as its consumers declare them)."""
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(platform.infra.mongodb_uri, tz_aware=True)
    try:
        db = client[platform.database("insights")]
        models = {m for c in await db["ops_consumers"].find({}).to_list() for m in c.get("read_models", [])}
        assert models, "insights declares no read models"
        return sum([await db[m].count_documents({}) for m in sorted(models)])
    finally:
        await client.close()


def _email_keys(sink: SmtpSink) -> Counter[str]:
    return Counter(str(m["X-Mentorship-Delivery"]).strip() for m in sink.messages)


async def test_replaying_every_input_topic_changes_nothing_and_sends_nothing_twice(played: Played) -> None:
    j, platform = played.journey, played.platform
    await _settled(played)
    before = await _observable_state(j)
    insights_before = await _insights_state(j)
    mails_before = _email_keys(platform.sink)
    assert mails_before and max(mails_before.values()) == 1  # no duplicates even before the replay
    delivered_before = len(j.watcher.matching("NotificationDelivered"))

    for proc in platform.processes.values():
        proc.stop()
    for name in SERVICES:
        # Insights is rebuilt: its read models are emptied and refilled from every topic.
        args = argparse.Namespace(
            service=name,
            database=platform.database(name),
            rebuild=name == "insights",
            forget_processed=True,
            kafka=platform.infra.kafka_bootstrap,
            mongo=platform.infra.mongodb_uri,
            prefix=platform.prefix,
        )
        assert await cmd_replay(args) == (1 if name == "profile" else 0)  # profile consumes nothing
    lags = await kafka_ops.group_lags(platform.infra.kafka_bootstrap, platform.prefix)
    assert sum(g.lag for g in lags) > 0  # really rewound: there is history to replay
    assert await _insights_documents(platform) == 0  # an empty insights store

    for name in SERVICES:
        await asyncio.to_thread(platform.start, name, 1)
    j.urls = platform.urls
    # A restarted process starts at real time: resume the journey's time. Insights instead is set to
    # the moment of the figures before, so that both are computed as of the same instant.
    await j.clocks(resume=True, services=[s for s in SERVICES if s != "insights"])
    await _settled(played)

    after = await _observable_state(j)
    for key in before:
        assert after[key] == before[key], key
    assert _email_keys(platform.sink) == mails_before  # not one email more
    assert len(j.watcher.matching("NotificationDelivered")) == delivered_before

    await j.call("insights", "POST", "/_dev/clock", as_=j.admin(), json={"set_to": insights_before["as_of"]})
    insights_after = await _insights_state(j)
    assert insights_after["figures"]["active_pairs"]["value"] == len(j.ids["cohort_mentorships"]) + 1
    for key in insights_before["reports"]:
        assert insights_after["reports"][key] == insights_before["reports"][key], key
