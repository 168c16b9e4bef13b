"""Company-scale scenario: `python -m bench company [--scale 0.05]` (`make bench-company`).

The five services run as their own processes (as in production) on KAFKA_BOOTSTRAP_SERVERS /
MONGODB_URI with a fresh topic prefix and databases, emails going to a local SMTP sink. At scale 1:

1. HR imports 100,000 profiles through the import API (`POST /profiles/import`, one JSON Lines
   file); then every ProfileRegistered is consumed by every service (all consumer groups at lag 0);
2. an admin creates a program and enrolls 20,000 mentees and 5,000 mentors (HTTP, as an admin);
3. a cohort run (dry run) matches them; the admin publishes it;
4. every resulting notification is delivered (each MentorshipStarted to mentee and mentor, the
   CohortMatchPublished to the program's admins; email to the sink and in-app: counted from the
   NotificationDelivered events), then every event is consumed by every service (lag 0).

Reported: the time of each stage, and the peak resident memory (VmHWM) of each service process.
`--scale` multiplies the three sizes (0.05: 5,000 profiles, 1,000 mentees, 250 mentors). The
targets (issue 14: import of 100k <= 2 min; publish -> last notification <= 2 min) are judged at
scale 1 only. The machine is shared: figures move with the load of the others.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from mentorship_kit.auth import issue_token
from mentorship_ops.connection import SERVICES
from mentorship_ops.kafka_ops import group_lags
from mentorship_ops.support import ServiceProcess, SmtpSink, TopicReader, free_port, print_table, service_env

from . import raw, summary

KAFKA = os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092")
MONGO = os.environ.get("MONGODB_URI", "mongodb://127.0.0.1:27017/")
SECRET = "bench-company-secret-0123456789abcdef0123456789"
PROFILES, MENTEES, MENTORS = 100_000, 20_000, 5_000
SKILLS = [
    "python", "go", "kafka", "sql", "kubernetes", "security", "testing", "system-design", "leadership",
    "public-speaking", "negotiation", "product-sense", "data-modeling", "machine-learning", "frontend",
    "accessibility", "observability", "incident-response", "hiring", "coaching", "writing", "finance",
    "sales", "design", "research", "operations", "legal", "compliance", "cloud-costs", "mobile",
]  # fmt: skip
ZONES = [
    "Europe/Berlin", "Europe/London", "America/New_York", "America/Chicago", "America/Los_Angeles",
    "Asia/Kolkata", "Asia/Tokyo", "Australia/Sydney", "Europe/Paris", "America/Sao_Paulo",
]  # fmt: skip
DEPARTMENTS = ["Platform", "Data", "Product", "Sales", "Finance", "People", "Design", "Support"]


def people(run: str, n_profiles: int, n_mentees: int, n_mentors: int, seed: int = 14) -> list[dict[str, Any]]:
    """Import rows: the program's mentors, its mentees, everyone else (mentees not enrolled), and
    the program manager last (an admin who is told when the cohort is published)."""
    rng = random.Random(seed)

    def windows() -> list[dict[str, Any]]:
        return [
            {"weekday": d, "start": f"{h:02d}:00", "end": f"{h + 3:02d}:00"}
            for d, h in zip(sorted(rng.sample(range(5), 3)), rng.choices([8, 9, 10, 13, 14], k=3), strict=True)
        ]

    rows = []
    for i in range(n_profiles - 1):
        mentor = i < n_mentors
        pid = f"{run}-{'mentor' if mentor else 'person'}-{i:06d}"
        row: dict[str, Any] = {
            "profile_id": pid,
            "email": f"{pid}@company.example",
            "display_name": f"Person {i}",
            "roles": ["mentor"] if mentor else ["mentee"],
            "time_zone": rng.choice(ZONES),
            "languages": ["en"] + (["de"] if rng.random() < 0.2 else []),
            "department": rng.choice(DEPARTMENTS),
            "job_title": "Lead" if mentor else "Engineer",
            "availability": windows(),
        }
        if mentor:
            skills = rng.sample(SKILLS, 5)
            row |= {
                "seniority": rng.choice(["senior", "staff", "principal"]),
                "years_experience": rng.randint(8, 25),
                "skills": [{"name": s, "proficiency": rng.randint(3, 5)} for s in skills],
                "mentor_capacity": rng.randint(2, 5),
            }
        else:
            areas = rng.sample(SKILLS, 3)
            row |= {
                "seniority": rng.choice(["junior", "mid"]),
                "years_experience": rng.randint(0, 7),
                "development_areas": areas[:2],
                "goals": [{"goal_id": "g1", "title": f"Grow in {areas[2]}", "skills": [areas[2]], "priority": 1}],
            }
        rows.append(row)
    manager = f"{run}-manager"
    rows.append(
        {
            "profile_id": manager,
            "email": f"{manager}@company.example",
            "display_name": "Pat Programlead",
            "roles": ["mentee"],
            "time_zone": "Europe/London",
            "department": "People",
            "job_title": "Program manager",
        }
    )
    return rows


def peak_rss_mib(proc: ServiceProcess) -> float | None:
    """VmHWM: the process's peak resident set size so far (Linux)."""
    if proc.proc is None:
        return None
    try:
        for line in Path(f"/proc/{proc.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


class Watch:
    """Counts, in the background, the events that tell when the cohort's notifications are out."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self.types: Counter[str] = Counter()
        self.delivered: Counter[str] = Counter()  # per channel
        self.admin_notices = 0  # recipients of CohortMatchPublished
        self._reader: TopicReader | None = None
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> Watch:
        topics = [f"{self.prefix}matching.events", f"{self.prefix}notification.events"]
        self._reader = await TopicReader(KAFKA, topics, from_end=True).start(wait_for_topics=30)
        self._task = asyncio.create_task(self._run())
        return self

    async def _run(self) -> None:
        assert self._reader is not None
        while True:
            for record in await self._reader.batch(timeout_ms=300):
                doc = json.loads(record.value)
                kind = doc.get("type", "").rsplit(".", 1)[-1]
                self.types[kind] += 1
                if kind == "notification_delivered":
                    self.delivered[doc["data"]["channel"]] += 1
                elif kind == "cohort_match_published":
                    self.admin_notices += len(doc["data"].get("admin_ids") or [])

    def expected_per_channel(self) -> int:
        return 2 * self.types["mentorship_started"] + self.admin_notices

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        if self._reader:
            await self._reader.stop()


async def until(label: str, check: Callable[[], Awaitable[Any]], timeout: float, every: float = 1.0) -> Any:
    deadline = time.monotonic() + timeout
    last_report = time.monotonic()
    while True:
        result = await check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise RuntimeError(f"{label}: not done after {timeout:.0f} s")
        if time.monotonic() - last_report > 30:
            print(f"  ... still waiting: {label}", flush=True)
            last_report = time.monotonic()
        await asyncio.sleep(every)


async def all_consumed(prefix: str, label: str, timeout: float) -> None:
    """Until every consumer group of this run has read every record (lag 0 twice in a row)."""
    clean = 0

    async def check() -> bool:
        nonlocal clean
        lags = await group_lags(KAFKA, prefix)
        behind = sum(g.lag for g in lags if not g.topic.endswith(".dlt"))
        clean = clean + 1 if lags and behind == 0 else 0
        return clean >= 2

    await until(label, check, timeout)


async def run(scale: float, timeout: float, keep: bool) -> int:
    n_profiles, n_mentees, n_mentors = (max(int(x * scale), 1) for x in (PROFILES, MENTEES, MENTORS))
    run_id = f"c{uuid.uuid4().hex[:6]}"
    prefix = f"{run_id}."
    print(
        f"company scenario, scale {scale:g}: {n_profiles:,} profiles; program of {n_mentees:,} mentees and "
        f"{n_mentors:,} mentors; kafka {KAFKA}, store {MONGO}",
        flush=True,
    )
    rows = people(run_id, n_profiles, n_mentees, n_mentors)
    manager = rows[-1]["profile_id"]
    mentors = [r["profile_id"] for r in rows[:n_mentors]]
    mentees = [r["profile_id"] for r in rows[n_mentors : n_mentors + n_mentees]]
    body = ("\n".join(json.dumps(r) for r in rows) + "\n").encode()
    admin = {"authorization": f"Bearer {issue_token(SECRET, manager, ['admin'], ttl=timedelta(hours=12))}"}
    stages: list[tuple[str, float, str]] = []
    sink = SmtpSink().start()
    logs = Path(os.environ.get("TMPDIR", "/tmp")) / f"bench-company-{run_id}"
    procs: list[ServiceProcess] = []
    watch = Watch(prefix)
    http = httpx.AsyncClient(timeout=timeout)

    def stage(name: str, seconds: float, note: str = "") -> None:
        stages.append((name, seconds, note))
        print(f"  {name}: {seconds:.1f} s {note}", flush=True)

    try:
        started = time.perf_counter()
        for name in SERVICES:
            env = service_env(
                name,
                kafka=KAFKA,
                mongo=raw.store_uri(name),
                prefix=prefix,
                port=free_port(),
                jwt_secret=SECRET,
                smtp_host="127.0.0.1",
                smtp_port=str(sink.port),
                log_level="WARNING",
                profile_import_max_bytes=str(max(len(body) * 2, 50 * 2**20)),
            )
            procs.append(ServiceProcess(name, int(env["HTTP_PORT"]), env, logs / f"{name}.log").launch())
        for proc in procs:
            await asyncio.to_thread(proc.wait_ready, 300)
        url = {p.name: p.url for p in procs}
        stage("start 5 services", time.perf_counter() - started)

        # 1. import
        started = time.perf_counter()
        async with http.stream(
            "POST",
            f"{url['profile']}/profiles/import",
            content=body,
            headers={**admin, "content-type": "application/x-ndjson"},
        ) as response:
            response.raise_for_status()
            last = ""
            async for line in response.aiter_lines():
                last = line or last
        result = json.loads(last)
        if result.get("created") != n_profiles:
            raise RuntimeError(f"import did not create every profile: {result}")
        import_s = time.perf_counter() - started
        stage(f"import {n_profiles:,} profiles (API, until its summary)", import_s, f"({n_profiles / import_s:,.0f}/s)")
        await all_consumed(prefix, "import consumed", timeout)
        import_all_s = time.perf_counter() - started
        stage("import -> every ProfileRegistered consumed by every service", import_all_s)

        # 2. program and enrollments
        started = time.perf_counter()
        today = datetime.now(UTC).date()
        spec = {
            "name": f"Company mentoring {run_id}",
            "starts_on": today.isoformat(),
            "ends_on": (today + timedelta(weeks=26)).isoformat(),
            "cadence": "monthly",
            "duration_weeks": 26,
            "constraints": {"max_tz_distance_hours": 9},
        }
        r = await http.post(f"{url['matching']}/programs", json=spec, headers=admin)
        r.raise_for_status()
        pid = r.json()["program_id"]
        gate = asyncio.Semaphore(16)

        async def enroll(profile_id: str, role: str) -> None:
            async with gate:
                r = await http.post(
                    f"{url['matching']}/programs/{pid}/enrollments",
                    json={"profile_id": profile_id, "role": role},
                    headers=admin,
                )
                if r.status_code not in (200, 201):
                    raise RuntimeError(f"enrollment of {profile_id}: {r.status_code} {r.text[:300]}")

        await asyncio.gather(*(enroll(m, "mentor") for m in mentors), *(enroll(m, "mentee") for m in mentees))
        stage(f"program + {n_mentees + n_mentors:,} enrollments (HTTP, 16 at a time)", time.perf_counter() - started)

        # 3. cohort run
        started = time.perf_counter()
        r = await http.post(f"{url['matching']}/programs/{pid}/runs", json={}, headers=admin)
        r.raise_for_status()
        run_path = f"{url['matching']}/programs/{pid}/runs/{r.json()['run_id']}"

        async def finished() -> dict[str, Any] | None:
            got = (await http.get(run_path, headers=admin)).json()
            return got if got["status"] in ("done", "failed") else None

        done = await until("cohort run", finished, timeout)
        if done["status"] != "done":
            raise RuntimeError(f"cohort run failed: {done.get('error')}")
        quality = done["quality"]
        stage(
            "cohort run (dry run, until done)",
            time.perf_counter() - started,
            f"(matched {quality['matched']:,}, unmatched {quality['unmatched']:,})",
        )

        # 4. publish -> every notification delivered -> every event consumed
        await watch.start()
        emails_before = sink.count
        started = time.perf_counter()
        r = await http.post(f"{run_path}/publish", headers=admin)
        r.raise_for_status()
        stage("publish (HTTP answer)", time.perf_counter() - started)
        matched = int(quality["matched"])

        async def all_started() -> bool:
            return watch.types["mentorship_started"] >= matched and watch.types["cohort_match_published"] > 0

        await until("mentorships started", all_started, timeout, every=0.2)
        stage(f"publish -> all {matched:,} MentorshipStarted on the topic", time.perf_counter() - started)

        async def all_delivered() -> bool:
            want = watch.expected_per_channel()
            return (
                watch.delivered["email"] >= want
                and watch.delivered["in_app"] >= want
                and sink.count - emails_before >= want
            )

        await until("notifications delivered", all_delivered, timeout, every=0.2)
        publish_s = time.perf_counter() - started
        want = watch.expected_per_channel()
        stage(
            "publish -> last notification delivered",
            publish_s,
            f"({want:,} emails in the sink + {want:,} in-app; {watch.types['notification_failed']} failed)",
        )
        await all_consumed(prefix, "publish consumed", timeout)
        stage("publish -> every event consumed by every service", time.perf_counter() - started)
        memory = [(p.name, peak_rss_mib(p)) for p in procs]
    finally:
        await watch.stop()
        await http.aclose()
        for proc in procs:
            await asyncio.to_thread(proc.stop)
        sink.stop()
        if not keep:
            for proc in procs:
                client = raw.mongo(proc.env["MONGODB_URI"])
                await client.drop_database(proc.env["MONGODB_DATABASE"])
                await client.close()
    print_table(("stage", "seconds", ""), [(n, f"{s:.1f}", note) for n, s, note in stages], title="Stages")
    print_table(
        ("service", "peak RSS (MiB)"),
        [(n, "-" if m is None else f"{m:,.0f}") for n, m in memory],
        title="Peak memory of each service process (VmHWM)",
    )
    full = scale >= 1
    summary.begin("company")
    summary.record(
        f"company: import {n_profiles:,} profiles (s)",
        f"{import_s:.1f}",
        baseline=f"all consumed {import_all_s:.1f} s",
        target=f"<= {summary.TARGET_COMPANY_IMPORT_S:.0f} s at 100k",
        met=import_s <= summary.TARGET_COMPANY_IMPORT_S if full else None,
    )
    summary.record(
        f"company: publish {matched:,} -> last notification (s)",
        f"{publish_s:.1f}",
        target=f"<= {summary.TARGET_COMPANY_PUBLISH_S:.0f} s at 20k x 5k",
        met=publish_s <= summary.TARGET_COMPANY_PUBLISH_S if full else None,
    )
    for name, mib in memory:
        summary.record(f"company: peak RSS {name} (MiB)", "-" if mib is None else f"{mib:,.0f}")
    summary.print_summary([])
    print(f"(service logs: {logs})")
    return 0


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench company", description=__doc__.split("\n")[0])
    parser.add_argument("--scale", type=float, default=1.0, help="multiplies 100k profiles, 20k mentees, 5k mentors")
    parser.add_argument("--timeout", type=float, default=7200.0, help="seconds any one stage may take")
    parser.add_argument("--keep", action="store_true", help="keep the databases afterwards")
    args = parser.parse_args(argv)
    return asyncio.run(run(args.scale, args.timeout, args.keep))
