"""The mentoring journey, played against the platform's public surfaces only.

It drives the services' HTTP APIs (JWTs signed with the platform's secret), watches the Kafka
topics with a plain consumer that knows nothing but the published contracts, and reads what people
received from a local SMTP sink and the notification service's inbox API. It ends with the program
manager reading the program's health from the insights service (built only from the events).
`mentorship demo` prints it; the end-to-end tests assert on it. Every step returns a `StepRecord`.

The people are generated from a seed (same names, skills and zones every time); emails and profile
ids carry a run suffix so the journey can be replayed against the same running platform.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import re
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

import httpx

from mentorship_contracts import Envelope, InvalidEvent, Topic, UnknownEventType, decode
from mentorship_kit.auth import issue_token

from . import kafka_ops
from .connection import SERVICES
from .support import SmtpSink, TopicReader

ZONES = ("America/New_York", "America/Sao_Paulo", "Europe/London", "Europe/Berlin", "Asia/Kolkata")
TOPICS = (
    "python",
    "sql",
    "kubernetes",
    "leadership",
    "public-speaking",
    "product-management",
    "data-analysis",
    "negotiation",
    "machine-learning",
    "system-design",
)
FIRST = (
    "Ada",
    "Bo",
    "Chen",
    "Dara",
    "Eli",
    "Fay",
    "Gus",
    "Hana",
    "Ivo",
    "Jun",
    "Kai",
    "Lea",
    "Mo",
    "Nia",
    "Oto",
    "Pia",
    "Quinn",
    "Ravi",
    "Sol",
    "Tae",
    "Uma",
    "Vik",
    "Wen",
    "Xia",
    "Yara",
    "Zed",
)
LAST = ("Okafor", "Silva", "Meyer", "Iyer", "Novak", "Haddad", "Kowalski", "Lindqvist", "Tanaka", "Moreau")
# Insights figures that move with the clock alone (ages, rates over active pair-days): left out when
# deciding whether insights has caught up with the events.
CLOCK_DRIVEN_FIGURES = frozenset(
    {
        "pending_oldest_hours",
        "pending_median_hours",
        "sessions_per_pair_per_month",
        "planned_sessions_per_pair_per_month",
        "cadence_attainment",
    }
)


class JourneyError(RuntimeError):
    """A step could not be completed; the message says which call or wait failed and why."""


@dataclass(frozen=True)
class Seen:
    """One event as a plain subscriber sees it."""

    topic: str
    envelope: Envelope[Any]
    at: float  # time.monotonic() when it was read

    @property
    def name(self) -> str:
        """The event's name, whatever its version (`MentorshipRequestedV2` is a MentorshipRequested)."""
        return re.sub(r"V\d+$", "", type(self.envelope.data).__name__)


class EventWatcher:
    """Reads the four event topics from a fixed start (their end now, or offset zero), in the
    background, with assigned partitions (no consumer group: it never disturbs anyone)."""

    def __init__(self, bootstrap: str, prefix: str, *, from_beginning: bool = False) -> None:
        self.bootstrap, self.prefix, self.from_beginning = bootstrap, prefix, from_beginning
        self.seen: list[Seen] = []
        self.undecodable = 0
        self._reader: TopicReader | None = None
        self._task: asyncio.Task[None] | None = None
        self._arrived = asyncio.Event()

    async def start(self) -> EventWatcher:
        topics = [self.prefix + t.value for t in Topic]
        self._reader = reader = TopicReader(self.bootstrap, topics, from_end=not self.from_beginning)
        await reader.start(wait_for_topics=30)  # the services create their topics as they start
        if not reader.partitions:
            raise JourneyError(f"no event topics with prefix {self.prefix!r} on {self.bootstrap}")
        self._task = asyncio.create_task(self._read())
        return self

    async def _read(self) -> None:
        assert self._reader is not None
        while True:
            batch = await self._reader.batch(timeout_ms=200)
            for r in batch:
                try:
                    self.seen.append(Seen(r.topic, decode(r.value), time.monotonic()))
                except (InvalidEvent, UnknownEventType):
                    self.undecodable += 1
            if batch:
                self._arrived.set()

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
        if self._reader:
            await self._reader.stop()

    def mark(self) -> int:
        return len(self.seen)

    def since(self, mark: int) -> list[Seen]:
        return self.seen[mark:]

    def matching(self, name: str, where: Callable[[Any], bool] = lambda d: True, since: int = 0) -> list[Seen]:
        return [s for s in self.seen[since:] if s.name == name and where(s.envelope.data)]

    async def wait_for(
        self,
        name: str,
        where: Callable[[Any], bool] = lambda d: True,
        *,
        count: int = 1,
        since: int = 0,
        timeout: float = 90.0,
    ) -> list[Seen]:
        deadline = time.monotonic() + timeout
        while True:
            found = self.matching(name, where, since)
            if len(found) >= count:
                return found
            if self._task and self._task.done():
                raise JourneyError(f"the event reader stopped: {self._task.exception()!r}")
            if time.monotonic() > deadline:
                raise JourneyError(f"waited {timeout:.0f} s for {count} {name} event(s), saw {len(found)}")
            self._arrived.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._arrived.wait(), 0.5)


# --- the people ------------------------------------------------------------------------------------


@dataclass
class Person:
    profile_id: str
    display_name: str
    email: str
    role: str  # "mentee" or "mentor" (their role when imported)
    time_zone: str
    row: dict[str, Any]


def _windows(rng: random.Random, days: int, start_hours: Sequence[int], length: int) -> list[dict[str, Any]]:
    out = []
    for day in sorted(rng.sample(range(5), days)):
        h = rng.choice(start_hours)
        out.append({"weekday": day, "start": f"{h:02d}:00", "end": f"{h + length:02d}:00"})
    return out


def build_people(run: str, mentees: int, mentors: int, seed: int = 7) -> dict[str, Any]:
    """A deterministic cohort (same seed, same people) with this run's ids and addresses."""
    rng = random.Random(seed)
    shuffled = [f"{f} {last}" for f in FIRST for last in LAST]
    rng.shuffle(shuffled)
    names = iter(shuffled)

    def person(kind: str, n: int, **fields: Any) -> Person:
        pid = f"{run}-{kind}-{n:02d}"
        name = fields.pop("display_name", None) or next(names)
        address = f"{name.split()[0].lower()}.{kind}{n:02d}.{run}@demo.mentorship.local"
        row = {"profile_id": pid, "email": address, "display_name": name, "languages": ["en"], **fields}
        return Person(pid, name, address, fields["roles"][0], fields["time_zone"], row)

    # Enough slots for every mentee and a few to spare: the direct request needs a mentor with room.
    base = -(-(mentees + 2) // max(mentors, 1))
    mentor_list = []
    for i in range(mentors):
        skills = rng.sample(TOPICS, 4)
        mentor_list.append(
            person(
                "mentor",
                i + 1,
                roles=["mentor"],
                time_zone=ZONES[i % len(ZONES)],
                seniority=rng.choice(["senior", "staff", "principal"]),
                years_experience=rng.randint(8, 20),
                job_title="Engineering lead",
                department=rng.choice(["Platform", "Data", "Product"]),
                skills=[{"name": s, "proficiency": rng.randint(3, 5)} for s in skills],
                mentor_capacity=rng.choice([base, base + 1]),
                availability=_windows(rng, 3, (9, 10, 13, 14), 4),
                mentoring_preferences={"topics": skills[:2], "meeting_format": "video"},
            )
        )
    mentee_list = []
    for i in range(mentees):
        areas = rng.sample(TOPICS, 2)
        mentee_list.append(
            person(
                "mentee",
                i + 1,
                roles=["mentee"],
                time_zone=ZONES[(i * 3) % len(ZONES)],
                seniority=rng.choice(["junior", "mid"]),
                years_experience=rng.randint(1, 5),
                job_title="Engineer",
                department=rng.choice(["Platform", "Data", "Product"]),
                development_areas=areas,
                availability=_windows(rng, 3, (9, 10, 13, 14), 4),
                goals=[
                    {
                        "goal_id": f"g{j + 1}",
                        "title": f"Grow in {a.replace('-', ' ')}",
                        "skills": [a],
                        "priority": j + 1,
                    }
                    for j, a in enumerate(areas)
                ],
            )
        )
    # The mentee who asks a mentor directly: broad hours, so a common slot exists with most mentors.
    direct = person(
        "mentee",
        99,
        display_name="Amara Direct",
        roles=["mentee"],
        time_zone="Europe/Berlin",
        seniority="junior",
        years_experience=2,
        job_title="Engineer",
        department="Platform",
        development_areas=["system-design", "leadership"],
        availability=[{"weekday": d, "start": "07:00", "end": "21:00"} for d in range(5)],
        goals=[
            {"goal_id": "g1", "title": "Lead a design review", "skills": ["system-design"], "priority": 1},
            {"goal_id": "g2", "title": "Run the team's planning", "skills": ["leadership"], "priority": 2},
        ],
    )
    manager = person(
        "admin",
        1,
        display_name="Pat Programlead",
        roles=["mentee"],
        time_zone="Europe/London",
        job_title="Program manager",
        department="People",
    )
    return {"mentees": mentee_list, "mentors": mentor_list, "direct": direct, "manager": manager}


# --- records -------------------------------------------------------------------------------------


@dataclass
class Notice:
    recipient: str  # display name
    channel: str  # email or in_app
    subject: str
    event: str  # the event type that caused it


@dataclass
class StepRecord:
    number: int
    title: str
    story: str = ""
    facts: dict[str, Any] = field(default_factory=dict)
    events: Counter[str] = field(default_factory=Counter)
    notices: list[Notice] = field(default_factory=list)
    seconds: float = 0.0


class Reporter(Protocol):
    def step_started(self, number: int, title: str) -> None: ...
    def step_done(self, record: StepRecord) -> None: ...
    def waiting(self, label: str, done: float, total: float | None) -> None: ...


class QuietReporter:
    def step_started(self, number: int, title: str) -> None:
        pass

    def step_done(self, record: StepRecord) -> None:
        pass

    def waiting(self, label: str, done: float, total: float | None) -> None:
        pass


# --- the journey -------------------------------------------------------------------------------------


class Journey:
    """Plays the mentoring journey; `run()` returns the step records, `summary()` the program figures."""

    def __init__(
        self,
        *,
        urls: dict[str, str],
        kafka: str,
        prefix: str,
        jwt_secret: str,
        sink: SmtpSink,
        mentees: int = 24,
        mentors: int = 10,
        seed: int = 7,
        run_id: str | None = None,
        reporter: Reporter | None = None,
        jwt_issuer: str = "mentorship-platform",
        wait_timeout: float = 120.0,
    ) -> None:
        self.urls, self.kafka, self.prefix, self.sink = urls, kafka, prefix, sink
        self.secret, self.issuer = jwt_secret, jwt_issuer
        self.run_id = run_id or f"r{uuid.uuid4().hex[:6]}"
        self.people = build_people(self.run_id, mentees, mentors, seed)
        self.reporter: Reporter = reporter or QuietReporter()
        self.timeout = wait_timeout
        self.admin_id = self.people["manager"].profile_id
        self.steps: list[StepRecord] = []
        self.ids: dict[str, Any] = {}
        self.clock_advanced = timedelta(0)
        self.watcher = EventWatcher(kafka, prefix)
        self.http = httpx.AsyncClient(timeout=30)
        self._tokens: dict[str, str] = {}
        self._started = time.monotonic()

    # --- plumbing ---------------------------------------------------------------------------------
    @property
    def everyone(self) -> list[Person]:
        p = self.people
        return [*p["mentees"], *p["mentors"], p["direct"], p["manager"]]

    def name_of(self, profile_id: str) -> str:
        return next((p.display_name for p in self.everyone if p.profile_id == profile_id), profile_id)

    def token(self, subject: str, *roles: str) -> str:
        key = f"{subject}|{','.join(roles)}"
        if key not in self._tokens:
            self._tokens[key] = issue_token(
                self.secret, subject, list(roles), issuer=self.issuer, ttl=timedelta(hours=2)
            )
        return self._tokens[key]

    def admin(self) -> str:
        return self.token(self.admin_id, "admin")

    async def call(
        self, service: str, method: str, path: str, *, as_: str, expect: Sequence[int] = (200, 201), **kwargs: Any
    ) -> httpx.Response:
        headers = {"authorization": f"Bearer {as_}", **kwargs.pop("headers", {})}
        # A read may be retried once if the server closed a kept-alive connection as we reused it.
        tries = 2 if method.upper() == "GET" else 1
        for attempt in range(1, tries + 1):
            try:
                r = await self.http.request(method, f"{self.urls[service]}{path}", headers=headers, **kwargs)
                break
            except (httpx.RemoteProtocolError, httpx.ConnectError) as exc:
                if attempt == tries:
                    raise JourneyError(f"{service} {method} {path}: {type(exc).__name__} {exc}") from exc
            except httpx.HTTPError as exc:
                raise JourneyError(f"{service} {method} {path}: {type(exc).__name__} {exc}") from exc
        if r.status_code not in expect:
            raise JourneyError(f"{service} {method} {path} -> {r.status_code}: {r.text[:500]}")
        return r

    async def eventually(
        self,
        label: str,
        check: Callable[[], Awaitable[Any]],
        *,
        total: float | None = None,
        timeout: float | None = None,
        progress: Callable[[Any], float] | None = None,
    ) -> Any:
        """Poll `check` until it returns something truthy; report progress meanwhile."""
        deadline = time.monotonic() + (timeout or self.timeout)
        delay = 0.2
        while True:
            last = await check()
            if progress is not None:
                self.reporter.waiting(label, progress(last), total)
            if last and (progress is None or total is None or progress(last) >= total):
                self.reporter.waiting(label, total or 1, total or 1)
                return last
            if time.monotonic() > deadline:
                raise JourneyError(
                    f"gave up waiting for {label} after {timeout or self.timeout:.0f} s (last: {str(last)[:300]})"
                )
            await asyncio.sleep(delay)
            delay = min(delay * 1.5, 1.0)

    @contextlib.asynccontextmanager
    async def step(self, title: str) -> AsyncIterator[StepRecord]:
        record = StepRecord(len(self.steps) + 1, title)
        self.reporter.step_started(record.number, title)
        mark, started = self.watcher.mark(), time.monotonic()
        yield record
        record.seconds = time.monotonic() - started
        record.events.update(s.name for s in self.watcher.since(mark))
        self.steps.append(record)
        self.reporter.step_done(record)

    async def notified(
        self, record: StepRecord, seen: Seen, recipients: Sequence[str], channels: Sequence[str] = ("email", "in_app")
    ) -> None:
        """Wait until each recipient got the event's message on each channel (SMTP sink, inbox API)."""
        eid = seen.envelope.id
        wanted = [(pid, ch) for pid in recipients for ch in channels]

        async def arrived() -> list[Notice]:
            out = []
            for pid, ch in wanted:
                notice = await self._notice(eid, pid, ch, seen.name)
                if notice:
                    out.append(notice)
            return out

        got = await self.eventually(f"{seen.name} notifications", arrived, total=len(wanted), progress=len)
        record.notices += got

    async def _notice(self, event_id: str, pid: str, channel: str, event_name: str) -> Notice | None:
        key = f"{event_id}:{pid}:{channel}"
        if channel == "email":
            mails = self.sink.by_delivery(key)
            return Notice(self.name_of(pid), "email", str(mails[0]["Subject"]), event_name) if mails else None
        r = await self.call("notification", "GET", f"/people/{pid}/inbox", as_=self.admin(), params={"limit": 100})
        item = next((i for i in r.json()["items"] if i["item_id"] == key), None)
        return Notice(self.name_of(pid), "in_app", item["title"], event_name) if item else None

    async def clocks(
        self, advance: timedelta = timedelta(0), *, resume: bool = False, services: Sequence[str] = SERVICES
    ) -> datetime:
        """Move every service's clock by the same amount (they stay in step); returns the new time.
        `resume` re-applies the journey's total to restarted processes (they start at real time)."""
        if resume:
            advance = self.clock_advanced
        now: list[datetime] = []
        for service in services:
            r = await self.call(
                service,
                "POST",
                "/_dev/clock",
                as_=self.admin(),
                expect=(200, 404, 405),
                json={"advance_seconds": advance.total_seconds()},
            )
            if r.status_code != 200:
                raise JourneyError(f"{service} has no dev clock: run the platform with DEV_CLOCK_ENABLED=true")
            now.append(datetime.fromisoformat(r.json()["now"]))
        if not resume:
            self.clock_advanced += advance
        return max(now)

    # --- the steps --------------------------------------------------------------------------------
    async def run(self) -> list[StepRecord]:
        await self.watcher.start()
        try:
            await self.create_program()
            await self.import_people()
            await self.enroll()
            await self.dry_run()
            await self.publish()
            await self.request_directly()
            await self.schedule_session()
            await self.reminders()
            await self.hold_session()
            await self.overdue_check_in()
            await self.milestone()
            await self.introduction()
            await self.pay_it_forward()
            await self.program_health()
            return self.steps
        except BaseException:
            await self.watcher.stop()
            raise

    async def close(self) -> None:
        await self.watcher.stop()
        await self.http.aclose()

    async def create_program(self) -> None:
        async with self.step("An admin creates a program") as rec:
            today = (await self.clocks()).date()
            spec = {
                "name": f"Engineering mentoring {self.run_id}",
                "starts_on": today.isoformat(),
                "ends_on": (today + timedelta(weeks=16)).isoformat(),
                "mode": "self-select",
                "self_enrollment": True,  # people enroll themselves below
                "cadence": "monthly",
                "duration_weeks": 16,
                "constraints": {"max_tz_distance_hours": 9, "forbid_repeat_partners": True},
            }
            r = await self.call("matching", "POST", "/programs", as_=self.admin(), json=spec)
            self.ids["program"] = program = r.json()
            rec.story = f"'{program['name']}': self-select, monthly check-ins, at most 9 h apart in time zone"
            rec.facts = {"program_id": program["program_id"], "runs": f"{spec['starts_on']} .. {spec['ends_on']}"}

    async def import_people(self) -> None:
        people = self.everyone
        async with self.step("HR bulk-imports people (JSON Lines)") as rec:
            mark = self.watcher.mark()
            body = "\n".join(json.dumps(p.row) for p in people) + "\n"
            r = await self.call(
                "profile",
                "POST",
                "/profiles/import",
                as_=self.admin(),
                content=body.encode(),
                headers={"content-type": "application/x-ndjson"},
            )
            lines = [json.loads(line) for line in r.text.splitlines() if line.strip()]
            summary = lines[-1]
            if summary.get("type") != "summary" or summary.get("rejected"):
                raise JourneyError(f"import did not go through: {summary}")
            await self.watcher.wait_for(
                "ProfileRegistered",
                lambda d: d.profile_id.startswith(self.run_id),
                count=len(people),
                since=mark,
                timeout=self.timeout,
            )
            # Matching needs them to score, notification to reach them: wait for both read models.
            await self.known_everywhere([p.profile_id for p in people], "registered")
            zones = Counter(p.time_zone for p in people)
            rec.story = (
                f"{len(self.people['mentees']) + 1} mentees with goals and development areas, "
                f"{len(self.people['mentors'])} mentors with skills and capacity, and the program "
                f"manager, over {len(zones)} time zones"
            )
            rec.facts = {
                "created": summary["created"],
                "rejected": summary["rejected"],
                "time zones": ", ".join(f"{z} ({n})" for z, n in sorted(zones.items())),
                "mentor capacity": sum(p.row["mentor_capacity"] for p in self.people["mentors"]),
            }

    async def known_everywhere(self, ids: list[str], what: str) -> None:
        """Until matching's profile read model and notification's contact book know these people."""
        pending = {("matching", pid) for pid in ids} | {("notification", pid) for pid in ids}
        paths = {"matching": "/read-models/profiles/{}", "notification": "/contacts/{}"}

        async def check() -> int:
            async def one(key: tuple[str, str]) -> None:
                service, pid = key
                r = await self.call(service, "GET", paths[service].format(pid), as_=self.admin(), expect=(200, 404))
                if r.status_code == 200:
                    pending.discard(key)

            todo = sorted(pending)
            for chunk in range(0, len(todo), 16):
                await asyncio.gather(*(one(k) for k in todo[chunk : chunk + 16]))
            return 2 * len(ids) - len(pending)

        await self.eventually(f"read models ({what})", check, total=2 * len(ids), progress=lambda n: n)

    async def enroll(self) -> None:
        async with self.step("People enroll in the program") as rec:
            pid = self.ids["program"]["program_id"]
            enrolled = self.people["mentees"] + self.people["mentors"]
            sem = asyncio.Semaphore(8)

            async def one(p: Person) -> None:
                async with sem:  # each person enrolls themselves
                    await self.call(
                        "matching",
                        "POST",
                        f"/programs/{pid}/enrollments",
                        as_=self.token(p.profile_id, p.role),
                        json={"profile_id": p.profile_id, "role": p.role},
                    )

            await asyncio.gather(*(one(p) for p in enrolled))
            program = (await self.call("matching", "GET", f"/programs/{pid}", as_=self.admin())).json()
            rec.story = "each mentee and mentor enrolls themselves"
            rec.facts = {
                "enrolled mentees": program["enrolled"]["mentee"],
                "enrolled mentors": program["enrolled"]["mentor"],
            }

    async def dry_run(self) -> None:
        async with self.step("Cohort dry run and its quality report") as rec:
            pid = self.ids["program"]["program_id"]
            run = (
                await self.call("matching", "POST", f"/programs/{pid}/runs", as_=self.admin(), json={}, expect=(202,))
            ).json()

            async def finished() -> dict[str, Any] | None:
                r = (
                    await self.call("matching", "GET", f"/programs/{pid}/runs/{run['run_id']}", as_=self.admin())
                ).json()
                self.reporter.waiting("optimal matching", float(r.get("progress") or 0), 1.0)
                return r if r["status"] in ("done", "failed") else None

            done = await self.eventually("cohort run", finished)
            if done["status"] != "done":
                raise JourneyError(f"cohort run failed: {done.get('error')}")
            self.ids["run"] = done
            q = done["quality"]
            rec.story = "min-cost flow over each mentee's best eligible mentors, capacities and hard constraints"
            rec.facts = {
                "run_id": done["run_id"],
                "matched": q["matched"],
                "unmatched": q["unmatched"],
                "total score": round(q["total_score"], 3),
                "vs best bound": f"{q['bound_ratio']:.1%}",
                "10th percentile score": round(q["p10_score"], 3),
                "got a top-5 mentor": f"{q['top5_share']:.0%}",
                "mentees in a blocking pair": q["blocking_pair_mentees"],
            }

    async def publish(self) -> None:
        async with self.step("The admin publishes the matches") as rec:
            mark = self.watcher.mark()
            pid, run = self.ids["program"]["program_id"], self.ids["run"]
            await self.call("matching", "POST", f"/programs/{pid}/runs/{run['run_id']}/publish", as_=self.admin())
            n = len(run["assignments"])
            started = await self.watcher.wait_for(
                "MentorshipStarted", lambda d: d.program_id == pid, count=n, since=mark
            )
            published = (
                await self.watcher.wait_for("CohortMatchPublished", lambda d: d.program_id == pid, since=mark)
            )[0]
            await self.notified(rec, published, [self.admin_id])
            # One pair's welcome, to show it reached both people (the rest arrive in the background).
            first = started[0].envelope.data
            await self.notified(rec, started[0], [first.mentee_id, first.mentor_id], channels=("email",))
            self.ids["cohort_mentorships"] = [s.envelope.data.mentorship_id for s in started]
            rec.story = f"{n} mentorships start at once; each pair and the program manager are told"
            rec.facts = {
                "mentorships started": n,
                "example pair": f"{self.name_of(first.mentee_id)} with {self.name_of(first.mentor_id)}",
            }

    async def request_directly(self) -> None:
        direct = self.people["direct"]
        async with self.step("A mentee asks a mentor directly; the mentor accepts") as rec:
            mark = self.watcher.mark()
            me = self.token(direct.profile_id, "mentee")
            pid = self.ids["program"]["program_id"]
            sugg = (
                await self.call(
                    "matching", "GET", f"/suggestions/{direct.profile_id}", as_=me, params={"k": 5, "program_id": pid}
                )
            ).json()["suggestions"]
            # Prefer a good score with shared hours: the pair must be able to meet.
            candidates = [s for s in sugg if s["breakdown"]["availability"]["value"] > 0] or sugg
            if not candidates:
                raise JourneyError("no mentor suggested for the direct mentee (all full?)")
            choice = candidates[0]
            mentor_id = choice["mentor_id"]
            req = (
                await self.call(
                    "matching",
                    "POST",
                    "/mentorships",
                    as_=me,
                    json={
                        "mentor_id": mentor_id,
                        "program_id": pid,
                        "message": "I'd love your help with design reviews and leading planning.",
                    },
                )
            ).json()
            mid = req["mentorship_id"]
            requested = (
                await self.watcher.wait_for("MentorshipRequested", lambda d: d.mentorship_id == mid, since=mark)
            )[0]
            await self.notified(rec, requested, [mentor_id])
            agreement = {
                "goals": ["Lead a design review", "Run the team's planning"],
                "goal_ids": ["g1", "g2"],
                "expectations": "Weekly hour; Amara brings a design doc each time.",
                "cadence": "weekly",
            }
            accept_started = time.monotonic()
            await self.call(
                "matching",
                "POST",
                f"/mentorships/{mid}/accept",
                as_=self.token(mentor_id, "mentor"),
                json={"agreement": agreement},
            )
            accepted = (
                await self.watcher.wait_for("MentorshipRequestAccepted", lambda d: d.mentorship_id == mid, since=mark)
            )[0]
            started = (await self.watcher.wait_for("MentorshipStarted", lambda d: d.mentorship_id == mid, since=mark))[
                0
            ]
            await self.notified(rec, accepted, [direct.profile_id])
            self.ids["accept_to_email_s"] = time.monotonic() - accept_started
            await self.notified(rec, started, [direct.profile_id, mentor_id])
            self.ids.update(direct_mentorship=mid, direct_mentor=mentor_id)
            rec.story = (
                f"{direct.display_name} picks {self.name_of(mentor_id)} from 5 suggestions "
                f"(score {choice['score']:.2f}: {'; '.join(choice['reasons'][:2])}); "
                "they agree on goals and a weekly cadence"
            )
            rec.facts = {
                "mentorship_id": mid,
                "agreed goals": ", ".join(agreement["goals"]),
                "acceptance -> email": f"{self.ids['accept_to_email_s']:.1f} s",
            }

    async def schedule_session(self) -> None:
        direct = self.people["direct"]
        mid, mentor_id = self.ids["direct_mentorship"], self.ids["direct_mentor"]
        async with self.step("Scheduling proposes common hours; a session is booked") as rec:
            mark = self.watcher.mark()
            me = self.token(direct.profile_id, "mentee")
            now = await self.clocks()

            async def slots() -> list[dict[str, Any]] | None:
                r = await self.call(
                    "scheduling",
                    "GET",
                    f"/mentorships/{mid}/slots",
                    as_=me,
                    expect=(200, 404, 409),
                    params={"count": 3, "duration_minutes": 60, "from": (now + timedelta(hours=26)).isoformat()},
                )
                return r.json()["slots"] if r.status_code == 200 else None  # not known to scheduling yet

            proposed = await self.eventually("scheduling to know the mentorship", slots, timeout=self.timeout)
            if not proposed:
                raise JourneyError("no common free hour in the next weeks for the direct pair")
            slot = proposed[0]
            session = (
                await self.call(
                    "scheduling",
                    "POST",
                    f"/mentorships/{mid}/sessions",
                    as_=me,
                    json={
                        "start": slot["start"],
                        "duration_minutes": 60,
                        "location": "video call",
                        "agenda": "Walk through the design doc",
                    },
                )
            ).json()
            scheduled = (
                await self.watcher.wait_for(
                    "SessionScheduled", lambda d: d.session_id == session["session_id"], since=mark
                )
            )[0]
            await self.notified(rec, scheduled, [direct.profile_id, mentor_id])
            invites = [
                m
                for m in self.sink.by_delivery(f"{scheduled.envelope.id}:{direct.profile_id}:email")
                if any(
                    p.get_content_type() == "text/calendar" or str(p.get_filename()).endswith(".ics") for p in m.walk()
                )
            ]
            self.ids["session"] = session
            rec.story = "both weekly calendars turned into UTC, intersected; the first common hour is booked"
            rec.facts = {
                "proposed (UTC)": ", ".join(s["start"][:16] for s in proposed),
                "mentee's local time": slot["local"]["mentee"][:16],
                "mentor's local time": slot["local"]["mentor"][:16],
                "session_id": session["session_id"],
                "calendar invite attached": bool(invites),
            }

    async def reminders(self) -> None:
        session = self.ids["session"]
        async with self.step("Time passes: reminders fire") as rec:
            mark = self.watcher.mark()
            now = await self.clocks()
            start = datetime.fromisoformat(session["start"])
            ahead = start + timedelta(minutes=5) - now
            await self.clocks(ahead)
            due = await self.watcher.wait_for(
                "SessionReminderDue", lambda d: d.session_id == session["session_id"], count=2, since=mark
            )
            for seen in due:
                await self.notified(rec, seen, [session["mentee_id"], session["mentor_id"]])
            rec.story = f"every service's clock moved {_human(ahead)} ahead, to just after the session's start"
            rec.facts = {"reminders": ", ".join(f"{s.envelope.data.offset_minutes} min before" for s in due)}

    async def hold_session(self) -> None:
        session = self.ids["session"]
        sid = session["session_id"]
        async with self.step("The session is held; both give feedback") as rec:
            mark = self.watcher.mark()
            mentor = self.token(session["mentor_id"], "mentor")
            mentee = self.token(session["mentee_id"], "mentee")
            await self.call(
                "scheduling",
                "POST",
                f"/sessions/{sid}/complete",
                as_=mentor,
                json={"notes": "Reviewed the doc; next: present it to the team."},
            )
            await self.call(
                "scheduling",
                "POST",
                f"/sessions/{sid}/feedback",
                as_=mentee,
                json={"rating": 5, "comment": "Concrete and kind."},
            )
            await self.call(
                "scheduling",
                "POST",
                f"/sessions/{sid}/feedback",
                as_=mentor,
                json={"rating": 4, "comment": "Well prepared."},
            )
            await self.watcher.wait_for("SessionCompleted", lambda d: d.session_id == sid, since=mark)
            await self.watcher.wait_for("SessionFeedbackSubmitted", lambda d: d.session_id == sid, count=2, since=mark)
            progress = (
                await self.call(
                    "scheduling", "GET", f"/mentorships/{session['mentorship_id']}/progress", as_=self.admin()
                )
            ).json()  # a participant sees only their own ratings
            rec.story = "the mentor marks it held with shared notes; each rates it"
            rec.facts = {"sessions held": progress["sessions"]["held"], "average rating": progress["average_rating"]}

    async def overdue_check_in(self) -> None:
        session = self.ids["session"]
        mid = session["mentorship_id"]
        async with self.step("Weeks of silence: an overdue check-in nudges the pair") as rec:
            mark = self.watcher.mark()
            gap = timedelta(days=7 + 3, hours=1)  # weekly cadence + the default grace of 3 days
            await self.clocks(gap)
            overdue = (await self.watcher.wait_for("CheckInOverdue", lambda d: d.mentorship_id == mid, since=mark))[0]
            await self.notified(rec, overdue, [session["mentee_id"], session["mentor_id"]])
            rec.story = f"clocks moved {_human(gap)}: a week's cadence and the grace period passed without a session"
            rec.facts = {"mentorship_id": mid, "due since": str(overdue.envelope.data.due_since)[:16]}

    async def milestone(self) -> None:
        session = self.ids["session"]
        mid = session["mentorship_id"]
        async with self.step("A milestone is reached and celebrated") as rec:
            mark = self.watcher.mark()
            mentee = self.token(session["mentee_id"], "mentee")
            m = (await self.call("scheduling", "GET", f"/mentorships/{mid}", as_=mentee)).json()
            first = m["milestones"][0]
            await self.call(
                "scheduling", "POST", f"/mentorships/{mid}/milestones/{first['milestone_id']}/reached", as_=mentee
            )
            reached = (await self.watcher.wait_for("MilestoneReached", lambda d: d.mentorship_id == mid, since=mark))[0]
            await self.notified(rec, reached, [session["mentee_id"], session["mentor_id"]])
            # an agreed goal's title is matching's (events carry no goal text): scheduling names it by id
            label = first["title"] or f"goal {first.get('goal_id') or first['milestone_id']}"
            rec.story = f"milestones come from the agreed goals; '{label}' is done"
            rec.facts = {"milestones": len(m["milestones"]), "reached": label}

    async def introduction(self) -> None:
        session = self.ids["session"]
        mid, mentor_id = session["mentorship_id"], session["mentor_id"]
        contact = next(p for p in self.people["mentors"] if p.profile_id != mentor_id)
        async with self.step("The mentor introduces their mentee to someone") as rec:
            mark = self.watcher.mark()
            intro = (
                await self.call(
                    "matching",
                    "POST",
                    f"/mentorships/{mid}/introductions",
                    as_=self.token(mentor_id, "mentor"),
                    json={"contact_id": contact.profile_id, "message": "You two should talk about planning at scale."},
                )
            ).json()
            iid = intro["introduction_id"]
            made = (await self.watcher.wait_for("IntroductionMade", lambda d: d.introduction_id == iid, since=mark))[0]
            await self.notified(rec, made, [session["mentee_id"], contact.profile_id])
            await self.call(
                "matching", "POST", f"/introductions/{iid}/accept", as_=self.token(contact.profile_id, "mentor")
            )
            await self.watcher.wait_for("IntroductionAccepted", lambda d: d.introduction_id == iid, since=mark)
            rec.story = (
                f"{self.name_of(mentor_id)} introduces {self.name_of(session['mentee_id'])} to "
                f"{contact.display_name}, who accepts"
            )
            rec.facts = {"introduction_id": iid, "state": "accepted"}

    async def pay_it_forward(self) -> None:
        direct = self.people["direct"]
        async with self.step("Pay it forward: a mentee becomes a mentor") as rec:
            mark = self.watcher.mark()
            me = self.token(direct.profile_id, "mentee")
            await self.call(
                "profile",
                "POST",
                f"/profiles/{direct.profile_id}/roles",
                as_=me,
                json={"role": "mentor", "mentor_capacity": 1},
            )
            await self.watcher.wait_for("ProfileRoleAdded", lambda d: d.profile_id == direct.profile_id, since=mark)

            async def mentor_in_matching() -> bool:
                r = await self.call("matching", "GET", f"/read-models/profiles/{direct.profile_id}", as_=me)
                return "mentor" in r.json()["profile"].get("roles", [])

            await self.eventually("matching to see the new mentor", mentor_in_matching)
            newcomer = self.people["mentees"][-1]
            score = (
                await self.call(
                    "matching", "GET", f"/scores/{newcomer.profile_id}/{direct.profile_id}", as_=self.admin()
                )
            ).json()
            rec.story = f"{direct.display_name} takes on the mentor role with room for one mentee"
            rec.facts = {
                "roles": "mentee, mentor",
                "capacity": 1,
                f"as a candidate for {newcomer.display_name}": f"score {score['score']:.2f}, "
                f"eligible: {score['eligible']}",
            }

    async def insights_caught_up(self, program_id: str) -> dict[str, Any]:
        """The program's health once insights has read every event: its consumer groups have no lag
        on any of the four topics and two reads in a row give the same figures."""
        groups = f"{self.prefix}insights."
        topics = {self.prefix + t.value for t in Topic}
        last: list[dict[str, Any]] = []

        async def check() -> dict[str, Any] | None:
            lags = await kafka_ops.group_lags(self.kafka, groups)
            if not topics <= {g.topic for g in lags} or any(g.lag for g in lags):
                last.clear()
                return None
            r = await self.call(
                "insights", "GET", f"/programs/{program_id}/health", as_=self.admin(), expect=(200, 404)
            )
            if r.status_code == 404:  # not a single event of the program read yet
                return None
            health: dict[str, Any] = r.json()
            figures = {k: v for k, v in health["figures"].items() if k not in CLOCK_DRIVEN_FIGURES}
            steady = last == [figures]
            last[:] = [figures]
            return health if steady else None

        result: dict[str, Any] = await self.eventually("insights to catch up with the events", check)
        return result

    async def program_health(self) -> None:
        pid = self.ids["program"]["program_id"]
        async with self.step("The program manager checks the program's health") as rec:
            health = await self.insights_caught_up(pid)
            attention = (await self.call("insights", "GET", f"/programs/{pid}/attention", as_=self.admin())).json()
            self.ids.update(health=health, attention=attention)
            f = {name: figure["value"] for name, figure in health["figures"].items()}
            reasons = Counter(r["code"] for p in attention["pairs"] for r in p["reasons"])
            rec.story = (
                "the insights service, built only from the events on the four topics, sums the program "
                "up and lists the pairs that need a look"
            )
            rec.facts = {
                "mentees / mentors enrolled": f"{f['enrolled_mentees']} / {f['enrolled_mentors']}",
                "matched / unmatched mentees": f"{f['matched_mentees']} / {f['unmatched_mentees']}",
                "active pairs": f["active_pairs"],
                "sessions held": f["sessions_held"],
                "average session rating": f["average_session_rating"],
                "milestones reached": f["milestones_reached"],
                "pairs overdue": f["pairs_overdue"],
                "pairs needing attention": len(attention["pairs"]),
                "why": ", ".join(f"{code} ({n})" for code, n in sorted(reasons.items())) or "-",
            }

    # --- the summary --------------------------------------------------------------------------------
    async def summary(self) -> dict[str, Any]:
        """Program figures from the public surfaces; emails counted in the sink for this run's people."""
        pid = self.ids["program"]["program_id"]
        program = (await self.call("matching", "GET", f"/programs/{pid}", as_=self.admin())).json()
        q = self.ids["run"]["quality"]
        addresses = {p.email for p in self.everyone}
        emails = [m for m in self.sink.messages if any(a in str(m["To"]) for a in addresses)]
        unread = 0
        for chunk in range(0, len(self.everyone), 16):
            counts = await asyncio.gather(
                *(
                    self.call("notification", "GET", f"/people/{p.profile_id}/inbox/unread-count", as_=self.admin())
                    for p in self.everyone[chunk : chunk + 16]
                )
            )
            unread += sum(r.json()["unread_count"] for r in counts)
        progress = (
            await self.call(
                "scheduling", "GET", f"/mentorships/{self.ids['direct_mentorship']}/progress", as_=self.admin()
            )
        ).json()
        seen = Counter(s.name for s in self.watcher.seen)
        return {
            "people": len(self.everyone),
            "enrolled": program.get("enrolled", {}),
            "mentorships": len(self.ids["cohort_mentorships"]) + 1,
            "matched": q["matched"],
            "unmatched": q["unmatched"],
            "bound ratio": q["bound_ratio"],
            "top-5 share": q["top5_share"],
            "p10 score": q["p10_score"],
            "sessions held": progress["sessions"]["held"],
            "average rating": progress["average_rating"],
            "milestones reached": progress["milestones"]["reached"],
            "emails": len(emails),
            "in-app unread": unread,
            "events": sum(seen.values()),
            "notifications delivered (events)": seen["NotificationDelivered"],
            "clock moved": _human(self.clock_advanced),
            "seconds": time.monotonic() - self._started,
        }


def _human(delta: timedelta) -> str:
    days, rest = divmod(int(delta.total_seconds()), 86400)
    hours, rest = divmod(rest, 3600)
    minutes = rest // 60
    parts = [f"{days} d" if days else "", f"{hours} h" if hours else "", f"{minutes} min" if minutes else ""]
    return " ".join(p for p in parts if p) or "0 min"
