"""A realistic load through the public HTTP APIs, recorded in a ledger of what each 2xx promised.

Waves of people arrive (an HR import, plus one self-registration); mentors get capacity, mentees
goals. Some mentees are matched in a cohort (program, enrollments, run, publish), the others ask a
suggested mentor directly (the mentor accepts or declines). Accepted pairs book sessions; some are
cancelled, the rest held with feedback once the clock has passed them. One leaver per wave is
erased. A clock task moves every replica's clock, so reminders and overdue check-ins fall due.

A command whose answer never came (connection cut, replica killed mid-request) promised nothing;
one refused before it reached any replica is sent again (nothing happened). Only 2xx answers go
into the ledger.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import httpx

from mentorship_kit.auth import issue_token

from .fleet import Fleet

SKILLS = ("python", "sql", "kubernetes", "leadership", "public-speaking", "system-design", "negotiation")
ZONES = ("Europe/London", "Europe/Berlin", "America/New_York", "Asia/Kolkata")
BROAD_HOURS = [{"weekday": d, "start": "06:00", "end": "22:00"} for d in range(7)]


@dataclass
class Promise:
    """A 2xx answer and the state it promised, checked once everything settled."""

    kind: str
    service: str
    path: str
    expect: dict[str, Any]  # field -> allowed values (a list), or {"status": 404}
    at: float = field(default_factory=time.time)


@dataclass
class Ledger:
    requests: Counter[str] = field(default_factory=Counter)  # "service METHOD outcome"
    promises: list[Promise] = field(default_factory=list)
    people: dict[str, dict[str, Any]] = field(default_factory=dict)  # profile_id -> row
    erased: set[str] = field(default_factory=set)
    accepted: set[str] = field(default_factory=set)
    declined: set[str] = field(default_factory=set)
    publishes: list[dict[str, Any]] = field(default_factory=list)  # {program_id, run_id, pairs}
    sessions: dict[str, dict[str, Any]] = field(default_factory=dict)  # session_id -> session (as answered)
    cancelled: set[str] = field(default_factory=set)
    completed: set[str] = field(default_factory=set)
    feedback: set[tuple[str, str]] = field(default_factory=set)  # (session_id, author)
    webhook_endpoint: str | None = None
    stuck_runs: list[tuple[str, str]] = field(default_factory=list)  # (program_id, run_id) never finished
    errors: Counter[str] = field(default_factory=Counter)
    inflight: Counter[str] = field(default_factory=Counter)  # commands that had their replica killed mid-way

    @property
    def total_requests(self) -> int:
        return sum(self.requests.values())


class Unanswered(Exception):
    """The request may or may not have been carried out (no answer came)."""


class Load:
    def __init__(self, fleet: Fleet, *, seed: int, jwt_secret: str, webhook_url: str, workers: int = 3) -> None:
        self.fleet = fleet
        self.rng = random.Random(seed)
        self.secret = jwt_secret
        self.webhook_url = webhook_url
        self.workers = workers
        self.ledger = Ledger()
        self.http = httpx.AsyncClient(timeout=httpx.Timeout(30.0, connect=3.0))
        self._tokens: dict[str, str] = {}
        self._wave = 0
        self._stop = asyncio.Event()
        self.run_tag = f"c{seed}"
        # set by the fault injector when in-flight crashes are wanted: kills the replica at this URL
        self.crash: Callable[[str], Awaitable[None]] | None = None
        self.inflight_share = 0.5  # of cohort runs, publishes and accepts that get a crash in flight

    # --- plumbing ---------------------------------------------------------------------------------
    def token(self, subject: str, *roles: str) -> str:
        key = f"{subject}|{','.join(roles)}"
        if key not in self._tokens:
            self._tokens[key] = issue_token(self.secret, subject, list(roles), ttl=timedelta(hours=6))
        return self._tokens[key]

    def admin(self) -> str:
        return self.token(f"{self.run_tag}-admin", "admin")

    async def call(
        self,
        service: str,
        method: str,
        path: str,
        *,
        as_: str,
        ok: tuple[int, ...] = (200, 201, 202, 204),
        patience: float = 90.0,
        pin: str | None = None,
        **kwargs: Any,
    ) -> httpx.Response | None:
        """The answer if its status is in `ok`, None for any other answer. A request no replica
        took is sent again (to another replica) until `patience` runs out; one whose answer was cut
        off raises Unanswered. Reads are also retried on 5xx (a store outage)."""
        headers = {"authorization": f"Bearer {as_}", **kwargs.pop("headers", {})}
        # once the load stops, a request waits for no replica: the run is winding down
        deadline = time.monotonic() + (min(patience, 10.0) if self._stop.is_set() else patience)
        read = method == "GET"
        while True:
            url = (pin or self.fleet.url(service)) + path
            pin = None  # a retry goes wherever the balancer sends it
            try:
                r = await self.http.request(method, url, headers=headers, **kwargs)
            except (httpx.ConnectError, httpx.ConnectTimeout):
                self.ledger.requests[f"{service} {method} refused"] += 1
                if time.monotonic() > deadline:
                    raise Unanswered(f"{service} {method} {path}: no replica answered") from None
                await asyncio.sleep(0.5)
                continue
            except httpx.HTTPError as exc:
                self.ledger.requests[f"{service} {method} cut"] += 1
                if read and time.monotonic() < deadline:
                    await asyncio.sleep(0.5)
                    continue
                raise Unanswered(f"{service} {method} {path}: {type(exc).__name__}") from exc
            self.ledger.requests[f"{service} {method} {r.status_code // 100}xx"] += 1
            if read and r.status_code >= 500 and time.monotonic() < deadline:
                await asyncio.sleep(0.5)
                continue
            if r.status_code in ok:
                return r
            if r.status_code >= 500:
                self.ledger.errors[f"{service} {method} {r.status_code}"] += 1
            return None

    async def with_crash(self, what: str, service: str, method: str, path: str, **kwargs: Any) -> httpx.Response | None:
        """Send a command; sometimes (when in-flight crashes are on) pinned to one replica that is
        SIGKILLed a moment after the request left. A command whose answer was cut off is sent again
        once, to the balancer, as a client retries: it must then be carried out exactly once."""
        if self.crash is None or self.rng.random() >= self.inflight_share:
            return await self.call(service, method, path, **kwargs)
        pin = self.fleet.url(service)
        self.ledger.inflight[what] += 1
        sent = asyncio.create_task(self.call(service, method, path, pin=pin, **kwargs))
        await asyncio.sleep(self.rng.uniform(0.0, 0.4))
        await self.crash(pin)
        try:
            r = await sent
        except Unanswered:
            self.ledger.inflight[f"{what} retried"] += 1
            r = await self.call(service, method, path, **kwargs)
        return r

    def promise(self, kind: str, service: str, path: str, **expect: Any) -> None:
        self.ledger.promises.append(Promise(kind, service, path, expect))

    async def eventually(self, check: Callable[[], Awaitable[Any]], timeout: float = 120.0) -> Any:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and not self._stop.is_set():
            try:
                found = await check()
            except Unanswered:
                found = None
            if found:
                return found
            await asyncio.sleep(1.0)
        return None

    # --- people ---------------------------------------------------------------------------------
    def _person(self, kind: str, wave: int, n: int) -> dict[str, Any]:
        pid = f"{self.run_tag}-w{wave}-{kind}{n}"
        row: dict[str, Any] = {
            "profile_id": pid,
            "email": f"{pid}@chaos.mentorship.local",
            "display_name": f"{kind.title()} {wave}.{n}",
            "languages": ["en"],
            "time_zone": self.rng.choice(ZONES),
            "availability": BROAD_HOURS,
        }
        if kind == "mentor":
            skills = self.rng.sample(SKILLS, 3)
            row.update(
                roles=["mentor"],
                seniority="staff",
                years_experience=12,
                skills=[{"name": s, "proficiency": 4} for s in skills],
                mentor_capacity=2,
            )
        else:
            areas = self.rng.sample(SKILLS, 2)
            row.update(
                roles=["mentee"],
                seniority="junior",
                years_experience=2,
                development_areas=areas,
                goals=[{"goal_id": "g1", "title": f"Grow in {areas[0]}", "skills": [areas[0]], "priority": 1}],
            )
        return row

    async def import_people(self, rows: list[dict[str, Any]]) -> list[str]:
        body = "\n".join(json.dumps(r) for r in rows) + "\n"
        try:
            r = await self.call(
                "profile",
                "POST",
                "/profiles/import",
                as_=self.admin(),
                content=body.encode(),
                headers={"content-type": "application/x-ndjson"},
            )
        except Unanswered:
            return []
        if r is None:
            return []
        lines = [json.loads(line) for line in r.text.splitlines() if line.strip()]
        summary = lines[-1] if lines else {}
        if summary.get("type") != "summary" or summary.get("rejected"):
            self.ledger.errors["import incomplete"] += 1
            return []
        for row in rows:
            self.ledger.people[row["profile_id"]] = row
            self.promise("imported", "profile", f"/profiles/{row['profile_id']}", status=[200])
        return [row["profile_id"] for row in rows]

    async def register_self(self, row: dict[str, Any]) -> bool:
        try:
            r = await self.call("profile", "POST", "/profiles", as_=self.token(row["profile_id"], "mentee"), json=row)
        except Unanswered:
            return False
        if r is None:
            return False
        self.ledger.people[row["profile_id"]] = row
        self.promise("registered", "profile", f"/profiles/{row['profile_id']}", status=[200])
        return True

    async def known_to_matching(self, ids: list[str], timeout: float = 150.0) -> bool:
        pending = set(ids)

        async def check() -> bool:
            for pid in sorted(pending):
                r = await self.call(
                    "matching", "GET", f"/read-models/profiles/{pid}", as_=self.admin(), ok=(200,), patience=20
                )
                if r is not None:
                    pending.discard(pid)
            return not pending

        return bool(await self.eventually(check, timeout))

    async def erase(self, pid: str) -> None:
        try:
            r = await self.call("profile", "DELETE", f"/profiles/{pid}", as_=self.token(pid, "mentee"))
        except Unanswered:
            return
        if r is not None:
            self.ledger.erased.add(pid)
            self.promise("erased", "profile", f"/profiles/{pid}", status=[404, 410])

    # --- matching -------------------------------------------------------------------------------
    async def cohort(self, wave: int, mentees: list[str], mentors: list[str]) -> None:
        admin = self.admin()
        today = self.fleet.now().date()
        spec = {
            "name": f"Chaos cohort {self.run_tag} wave {wave}",
            "starts_on": today.isoformat(),
            "ends_on": (today + timedelta(weeks=12)).isoformat(),
            "mode": "self-select",
            "self_enrollment": True,
            "cadence": "weekly",
            "duration_weeks": 12,
        }
        try:
            r = await self.call("matching", "POST", "/programs", as_=admin, json=spec)
            if r is None:
                return
            program_id = r.json()["program_id"]
            for pid in mentees + mentors:
                role = "mentor" if pid in mentors else "mentee"
                await self.call(
                    "matching",
                    "POST",
                    f"/programs/{program_id}/enrollments",
                    as_=self.token(pid, role),
                    json={"profile_id": pid, "role": role},
                )
            r = await self.call("matching", "POST", f"/programs/{program_id}/runs", as_=admin, json={})
            if r is None:
                return
            run_id = r.json()["run_id"]
            if self.crash is not None and self.rng.random() < self.inflight_share:
                # the replica that took the run (and computes it) dies while computing
                self.ledger.inflight["cohort run"] += 1
                await self.crash(str(r.request.url.copy_with(path="/", query=None)).rstrip("/"))

            async def finished() -> dict[str, Any] | None:
                got = await self.call(
                    "matching", "GET", f"/programs/{program_id}/runs/{run_id}", as_=admin, patience=20
                )
                body = got.json() if got is not None else {}
                return body if body.get("status") in ("done", "failed") else None

            run = await self.eventually(finished, timeout=90)
            if run is None:
                self.ledger.stuck_runs.append((program_id, run_id))
                return
            if run["status"] != "done":
                self.ledger.errors[f"cohort run failed: {str(run.get('error'))[:80]}"] += 1
                return
            r = await self.with_crash(
                "publish", "matching", "POST", f"/programs/{program_id}/runs/{run_id}/publish", as_=admin
            )
            if r is None:
                return
            pairs = [(a["mentee_id"], a["mentor_id"]) for a in run.get("assignments", [])]
            self.ledger.publishes.append({"program_id": program_id, "run_id": run_id, "pairs": pairs})
        except Unanswered:
            return

    async def ask_and_answer(self, mentee: str) -> str | None:
        """The mentee asks a suggested mentor; the mentor accepts (3 in 4) or declines."""
        me = self.token(mentee, "mentee")
        try:
            r = await self.call("matching", "GET", f"/suggestions/{mentee}", as_=me, params={"k": 3}, patience=30)
            if r is None or not r.json().get("suggestions"):
                return None
            mentor = str(r.json()["suggestions"][0]["mentor_id"])
            r = await self.call("matching", "POST", "/mentorships", as_=me, json={"mentor_id": mentor, "message": "hi"})
            if r is None:
                return None
            mid = str(r.json()["mentorship_id"])
            self.promise(
                "requested",
                "matching",
                f"/mentorships/{mid}",
                state=["requested", "active", "declined", "expired", "withdrawn", "ended", "completed"],
            )
            await asyncio.sleep(self.rng.uniform(0.0, 2.0))
            mentor_token = self.token(mentor, "mentor")
            if self.rng.random() < 0.75:
                r = await self.with_crash(
                    "accept",
                    "matching",
                    "POST",
                    f"/mentorships/{mid}/accept",
                    as_=mentor_token,
                    json={"agreement": {"goals": ["Grow"], "cadence": "weekly"}},
                )
                if r is not None:
                    self.ledger.accepted.add(mid)
                    self.promise("accepted", "matching", f"/mentorships/{mid}", state=["active", "completed", "ended"])
                    self.promise("known to scheduling", "scheduling", f"/mentorships/{mid}", status=["active"])
                    return mid
            else:
                r = await self.call(
                    "matching", "POST", f"/mentorships/{mid}/decline", as_=mentor_token, json={"reason": "no time"}
                )
                if r is not None:
                    self.ledger.declined.add(mid)
                    self.promise("declined", "matching", f"/mentorships/{mid}", state=["declined"])
        except Unanswered:
            return None
        return None

    # --- scheduling -----------------------------------------------------------------------------
    async def book(self, mid: str, mentee: str) -> None:
        me = self.token(mentee, "mentee")

        last: list[int] = []

        async def slots() -> list[dict[str, Any]] | None:
            r = await self.call(
                "scheduling",
                "GET",
                f"/mentorships/{mid}/slots",
                as_=me,
                ok=tuple(range(200, 500)),
                patience=20,
                params={
                    "count": 2,
                    "duration_minutes": 60,
                    "from": (self.fleet.now() + timedelta(hours=self.rng.randint(3, 40))).isoformat(),
                },
            )
            if r is None:
                return None
            last[:] = [r.status_code]
            return r.json()["slots"] if r.status_code == 200 else None

        proposed = await self.eventually(slots, timeout=120)
        if not proposed:
            self.ledger.errors[f"no slot within 120 s (last answer {last or 'none'})"] += 1
            return
        try:
            r = await self.call(
                "scheduling",
                "POST",
                f"/mentorships/{mid}/sessions",
                as_=me,
                json={"start": proposed[0]["start"], "duration_minutes": 60, "location": "video"},
            )
            if r is None:
                return
            session = r.json()
            sid = session["session_id"]
            self.ledger.sessions[sid] = {**session, "booked_clock": self.fleet.now().isoformat()}
            self.promise("booked", "scheduling", f"/sessions/{sid}", status=["scheduled", "cancelled", "completed"])
            if self.rng.random() < 0.25:
                await asyncio.sleep(self.rng.uniform(0.0, 3.0))
                r = await self.call(
                    "scheduling", "POST", f"/sessions/{sid}/cancel", as_=me, json={"reason": "conflict"}
                )
                if r is not None:
                    self.ledger.cancelled.add(sid)
                    self.promise("cancelled", "scheduling", f"/sessions/{sid}", status=["cancelled"])
        except Unanswered:
            return

    async def hold_past_sessions(self) -> None:
        """Sessions whose time has come (by the moved clock) are held, and both give feedback."""
        now = self.fleet.now().isoformat()
        due = [
            s
            for sid, s in list(self.ledger.sessions.items())
            if sid not in self.ledger.cancelled and sid not in self.ledger.completed and s["start"] < now
        ]
        for s in due[:6]:
            sid = s["session_id"]
            try:
                r = await self.call(
                    "scheduling",
                    "POST",
                    f"/sessions/{sid}/complete",
                    as_=self.token(s["mentor_id"], "mentor"),
                    json={"notes": "good"},
                )
                if r is None:
                    continue
                self.ledger.completed.add(sid)
                self.promise("completed", "scheduling", f"/sessions/{sid}", status=["completed"])
                for author, role in ((s["mentee_id"], "mentee"), (s["mentor_id"], "mentor")):
                    r = await self.call(
                        "scheduling",
                        "POST",
                        f"/sessions/{sid}/feedback",
                        as_=self.token(author, role),
                        json={"rating": self.rng.randint(3, 5), "comment": "thanks"},
                    )
                    if r is not None:
                        self.ledger.feedback.add((sid, author))
            except Unanswered:
                continue

    # --- the run --------------------------------------------------------------------------------
    async def setup(self) -> None:
        admin = {
            "profile_id": f"{self.run_tag}-admin",
            "email": f"{self.run_tag}-admin@chaos.mentorship.local",
            "display_name": "Program Admin",
            "roles": ["mentee"],
            "time_zone": "Europe/London",
        }
        await self.call("profile", "POST", "/profiles", as_=self.admin(), json=admin)
        r = await self.call(
            "notification",
            "POST",
            "/webhooks",
            as_=self.admin(),
            json={"url": f"{self.webhook_url}/hook", "event_types": ["*"], "description": "chaos receiver"},
        )
        if r is not None:
            self.ledger.webhook_endpoint = r.json()["endpoint_id"]

    async def wave(self) -> None:
        self._wave += 1
        w = self._wave
        mentors = [self._person("mentor", w, i) for i in range(3)]
        mentees = [self._person("mentee", w, i) for i in range(6)]
        leaver = self._person("leaver", w, 0)
        selfreg = self._person("self", w, 0)
        imported = await self.import_people([*mentors, *mentees, leaver])
        if not imported:
            return
        await self.register_self(selfreg)
        mentor_ids = [m["profile_id"] for m in mentors]
        mentee_ids = [m["profile_id"] for m in mentees]
        if not await self.known_to_matching(mentor_ids + mentee_ids + [leaver["profile_id"]]):
            self.ledger.errors["matching never learnt an imported wave"] += 1
            return
        await self.erase(leaver["profile_id"])
        cohort_mentees, direct_mentees = mentee_ids[:3], mentee_ids[3:]
        if self.rng.random() < 0.5 and self.ledger.people:
            direct_mentees.append(selfreg["profile_id"])
        await self.cohort(w, cohort_mentees, mentor_ids)
        accepted = await asyncio.gather(*(self.ask_and_answer(m) for m in direct_mentees))
        await asyncio.gather(
            *(self.book(mid, mentee) for mid, mentee in zip(accepted, direct_mentees, strict=True) if mid)
        )

    async def worker(self) -> None:
        while not self._stop.is_set():
            try:
                await self.wave()
            except Exception as exc:
                self.ledger.errors[f"load step raised {type(exc).__name__}: {str(exc)[:100]}"] += 1
                await asyncio.sleep(1)

    async def clock_mover(self, every: float, hours: tuple[int, ...]) -> None:
        """Every `every` seconds, one of `hours` passes for every replica."""
        while not self._stop.is_set():
            try:
                await asyncio.wait_for(self._stop.wait(), every)
            except TimeoutError:
                await self.fleet.advance(timedelta(hours=self.rng.choice(hours)))

    async def holder(self, every: float = 5.0) -> None:
        """Sessions whose time came are held, apart from the clock (which must keep its pace)."""
        while not self._stop.is_set():
            try:
                await asyncio.wait_for(self._stop.wait(), every)
            except TimeoutError:
                await self.hold_past_sessions()

    async def run(
        self, duration: float, clock_every: float = 15.0, clock_hours: tuple[int, ...] = (30, 40, 50)
    ) -> None:
        await self.setup()
        tasks = [asyncio.create_task(self.worker()) for _ in range(self.workers)]
        tasks.append(asyncio.create_task(self.clock_mover(clock_every, clock_hours)))
        tasks.append(asyncio.create_task(self.holder()))
        try:
            await asyncio.wait_for(self._stop.wait(), duration)
        except TimeoutError:
            pass
        self._stop.set()
        await asyncio.gather(*tasks, return_exceptions=True)

    def pick_pair(self) -> tuple[str, str] | None:
        """A real mentee and mentor (not erased), for a planted record that must reach a handler."""
        alive = [(pid, row) for pid, row in self.ledger.people.items() if pid not in self.ledger.erased]
        mentees = [pid for pid, row in alive if row["roles"] == ["mentee"]]
        mentors = [pid for pid, row in alive if row["roles"] == ["mentor"]]
        return (mentees[0], mentors[0]) if mentees and mentors else None

    async def close(self) -> None:
        await self.http.aclose()
