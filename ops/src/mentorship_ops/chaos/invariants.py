"""What must hold once the load stopped and the lag drained, read from the topics, the stores, the
SMTP sink and the webhook receiver. Each check adds counted findings: `duplicates` and `lost` must be
zero; `window` counts what the documented at-least-once window allows (an email or webhook sent
again because its sender died, or the store went away, between sending it and recording it)."""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from pymongo import AsyncMongoClient

from mentorship_contracts import DEAD_LETTER_SUFFIX, Topic, decode

from .. import kafka_ops
from ..support import SmtpSink, TopicReader
from .faults import Chaos
from .load import Load
from .receiver import WebhookReceiver


@dataclass
class Findings:
    duplicates: Counter[str] = field(default_factory=Counter)
    lost: Counter[str] = field(default_factory=Counter)
    window: Counter[str] = field(default_factory=Counter)
    other: Counter[str] = field(default_factory=Counter)  # violations that are neither (stuck, wrong state)
    details: list[str] = field(default_factory=list)
    figures: dict[str, Any] = field(default_factory=dict)

    def note(self, bucket: Counter[str], what: str, detail: str, limit: int = 8) -> None:
        bucket[what] += 1
        if bucket[what] <= limit:
            self.details.append(f"{what}: {detail}")

    @property
    def violations(self) -> int:
        return sum(self.duplicates.values()) + sum(self.lost.values()) + sum(self.other.values())


def database(prefix: str, service: str) -> str:
    return f"{prefix.replace('.', '_').strip('_')}_{service}"


def event_name(envelope: Any) -> str:
    """The event's name whatever its version (`MentorshipStartedV2` -> `MentorshipStarted`)."""
    return re.sub(r"V\d+$", "", type(envelope.data).__name__)


async def read_events(kafka: str, prefix: str) -> tuple[dict[str, list[Any]], Counter[str]]:
    """Every decodable event per type name, each event id once; and how often an id was published
    more than once (an outbox relay that died between publishing and marking: absorbed downstream)."""
    topics = [prefix + t for t in Topic]
    by_type: dict[str, list[Any]] = defaultdict(list)
    seen: Counter[str] = Counter()
    async with TopicReader(kafka, topics) as reader:
        records = await reader.read_to_end(idle_ms=3000)
    for r in records:
        try:
            envelope = decode(r.value)
        except Exception:  # noqa: S112 (planted poison: checked with the dead letters)
            continue
        seen[envelope.id] += 1
        if seen[envelope.id] == 1:
            by_type[event_name(envelope)].append(envelope)
    return by_type, Counter({eid: n - 1 for eid, n in seen.items() if n > 1})


def _faults_between(chaos: Chaos, start: float, end: float, kinds: tuple[str, ...]) -> bool:
    return any(start - 2 <= f.at <= end + 1 for f in chaos.faults if f.kind in kinds)


async def check(
    *,
    load: Load,
    chaos: Chaos,
    sink: SmtpSink,
    receiver: WebhookReceiver,
    kafka: str,
    mongo: str,
    prefix: str,
    final_clock: datetime,
) -> Findings:
    f = Findings()
    ledger = load.ledger
    events, republished = await read_events(kafka, prefix)
    f.figures["events"] = sum(len(v) for v in events.values())
    f.figures["republished (absorbed)"] = sum(republished.values())

    # --- mentorships ------------------------------------------------------------------------------
    started: dict[str, list[Any]] = defaultdict(list)
    for e in events["MentorshipStarted"]:
        started[e.data.mentorship_id].append(e)
    for mid, got in started.items():
        if len(got) > 1:
            f.note(f.duplicates, "MentorshipStarted twice", f"mentorship {mid}: {len(got)} events")
    for mid in sorted(ledger.accepted):
        if mid not in started:
            f.note(f.lost, "accepted without MentorshipStarted", mid)
    for e in events["MentorshipRequestAccepted"]:
        if not e.data.awaiting_admin_approval and e.data.mentorship_id not in started:
            f.note(f.lost, "MentorshipRequestAccepted without MentorshipStarted", e.data.mentorship_id)

    # capacity: active at the end per mentor (nothing in the load ends a mentorship)
    closed = {e.data.mentorship_id for t in ("MentorshipCompleted", "MentorshipEnded") for e in events[t]}
    active = Counter(got[0].data.mentor_id for mid, got in started.items() if mid not in closed)
    for mentor, n in active.items():
        row = ledger.people.get(mentor)
        capacity = row.get("mentor_capacity") if row else None
        if capacity is not None and n > capacity:
            f.note(f.other, "mentor above capacity", f"{mentor}: {n} active, capacity {capacity}")

    # cohort publishes: each pair once, the publication once
    published = Counter(e.data.run_id for e in events["CohortMatchPublished"])
    pair_started = Counter((e.data.program_id, e.data.mentee_id, e.data.mentor_id) for e in events["MentorshipStarted"])
    for pub in ledger.publishes:
        if published[pub["run_id"]] != 1:
            bucket = f.lost if published[pub["run_id"]] == 0 else f.duplicates
            f.note(bucket, "CohortMatchPublished not once", f"run {pub['run_id']}: {published[pub['run_id']]}")
        for mentee, mentor in pub["pairs"]:
            n = pair_started[(pub["program_id"], mentee, mentor)]
            if n != 1:
                bucket = f.lost if n == 0 else f.duplicates
                f.note(bucket, "published pair not started once", f"run {pub['run_id']} {mentee}/{mentor}: {n}")
    f.figures["publishes"] = len(ledger.publishes)

    # --- reminders and check-ins ------------------------------------------------------------------
    offsets = (1440, 60)
    reminders: dict[tuple[str, int], list[Any]] = defaultdict(list)
    for e in events["SessionReminderDue"]:
        reminders[(e.data.session_id, e.data.offset_minutes)].append(e)
    for key, got in reminders.items():
        if len(got) > 1:
            f.note(f.duplicates, "reminder fired twice", f"session {key[0]} {key[1]} min: {len(got)}")
    cancelled = {e.data.session_id for e in events["SessionCancelled"]} | ledger.cancelled
    # A reminder timer the platform cancelled because the session was held first is moot, not lost
    # (the clock jumps a day at a time: a session can be held right after its reminder fell due).
    reminder_states: dict[str, str] = {}
    client0: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(mongo, tz_aware=True)
    try:
        async for t in client0[database(prefix, "scheduling")]["timers"].find({"kind": "session-reminder"}):
            reminder_states[str(t["_id"])] = str(t.get("state"))
    finally:
        await client0.close()
    moot = 0
    for sid, s in ledger.sessions.items():
        if sid in cancelled:
            continue
        start = datetime.fromisoformat(s["start"])
        booked = datetime.fromisoformat(s["booked_clock"])
        for offset in offsets:
            due = start - timedelta(minutes=offset)
            planned = booked < due - timedelta(minutes=5) and due < final_clock - timedelta(minutes=1)
            if planned and (sid, offset) not in reminders:
                timer_state = reminder_states.get(f"reminder:{sid}:{s.get('sequence', 0)}:{offset}")
                # cancelled, or fired without an event, because the session was held first
                if sid in ledger.completed and timer_state in ("cancelled", "fired"):
                    moot += 1
                    continue
                f.note(f.lost, "due reminder never fired", f"session {sid} {offset} min (due {due:%d %H:%M})")
    f.figures["reminders"] = len(reminders)
    f.figures["reminders moot (session held first)"] = moot
    checkins: dict[tuple[str, str], list[Any]] = defaultdict(list)
    for e in events["CheckInOverdue"]:
        checkins[(e.data.mentorship_id, e.data.due_since.isoformat())].append(e)
    for ckey, got in checkins.items():
        if len(got) > 1:
            f.note(f.duplicates, "check-in fired twice", f"mentorship {ckey[0]} due {ckey[1]}: {len(got)}")
    f.figures["check-ins"] = len(checkins)

    # --- the stores: outboxes, timers, deliveries -------------------------------------------------
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(mongo, tz_aware=True)
    try:
        for service in load.fleet.services:
            db = client[database(prefix, service)]
            for name in await db.list_collection_names():
                pending = await db[name].count_documents({"outbox_pending": True})
                if pending:
                    f.note(f.lost, "outbox entry never published", f"{service}.{name}: {pending} documents")
                dead = await db[name].count_documents({"outbox_dead.0": {"$exists": True}})
                if dead:
                    f.note(f.other, "outbox entry set aside", f"{service}.{name}: {dead} documents")
            async for t in db["timers"].find({"state": {"$in": ["pending", "failed"]}}):
                if t["state"] == "failed":
                    f.note(
                        f.lost,
                        "timer failed for good",
                        f"{service} {t['_id']} ({t.get('kind')}): {str(t.get('last_error') or t.get('error'))[:120]}",
                    )
                elif t["due_at"] < final_clock - timedelta(minutes=1):
                    f.note(f.lost, "due timer never fired", f"{service} {t['_id']} due {t['due_at']:%d %H:%M}")
        # matching's capacity and publication claims against what the events say
        matching = client[database(prefix, "matching")]
        holding = {mid for mid in started if mid not in closed}
        claimed: set[str] = set()
        async for claim in matching["slot_claims"].find({}):
            claimed.add(str(claim.get("mentorship_id")))
            if claim.get("mentorship_id") not in holding:
                f.note(
                    f.lost,
                    "capacity claim leaked",
                    f"{claim['_id']} held for {claim.get('mentorship_id')}, "
                    "which is not an active mentorship: the mentor lost a slot",
                )
        for mid in sorted(holding - claimed):
            f.note(f.other, "active mentorship holds no capacity claim", mid)
        published_runs = {e.data.run_id for e in events["CohortMatchPublished"]}
        async for claim in matching["publication_claims"].find({}):
            run_id = claim.get("run_id")
            if run_id is not None and run_id not in published_runs:
                f.note(
                    f.lost,
                    "publication claim left behind",
                    f"{claim['_id']} for run {run_id}: never published, the program cannot be published again",
                )
        async for run in matching["runs"].find({"status": {"$nin": ["done", "failed", "published"]}}):
            f.note(
                f.other, "cohort run never finished", f"run {run['_id']} still {run.get('status')!r} after the drain"
            )
        deliveries = client[database(prefix, "notification")]["deliveries"]
        states: Counter[str] = Counter()
        async for d in deliveries.find({}, {"state": 1, "channel": 1, "reason": 1, "last_error": 1}):
            states[d["state"]] += 1
            if d["state"] in ("pending", "sending", "failed") and not str(d["_id"]).startswith("poison-"):
                f.note(f.lost, f"delivery {d['state']}", f"{d['_id']}: {str(d.get('last_error') or '')[:120]}")
        f.figures["deliveries"] = dict(states)
        if ledger.webhook_endpoint:
            ep = await client[database(prefix, "notification")]["webhook_endpoints"].find_one(
                {"_id": ledger.webhook_endpoint}
            )
            if ep is not None and not ep.get("enabled", True):
                f.note(f.other, "webhook endpoint disabled", str(ep.get("disabled_reason")))
    finally:
        await client.close()

    # --- emails and webhooks ----------------------------------------------------------------------
    kill_kinds = ("kill notification", "kill store")
    mails: dict[str, list[float]] = defaultdict(list)
    for m in sink.messages:
        mails[str(m.get("X-Mentorship-Delivery", "")).strip()].append(float(m["X-Sink-Received-At"]))
    for mkey, times in mails.items():
        if len(times) > 1:
            if _faults_between(chaos, min(times), max(times), kill_kinds):
                f.window["email sent again (at-least-once window)"] += 1
            else:
                f.note(
                    f.duplicates,
                    "email sent twice",
                    f"{mkey}: {len(times)} times, {max(times) - min(times):.1f} s "
                    "apart, no notification replica or store died in between",
                )
    f.figures["emails"] = len(mails)
    hooks: dict[str, list[float]] = defaultdict(list)
    for c in receiver.snapshot():
        hooks[c.delivery_id].append(c.at)
    for hkey, times in hooks.items():
        if len(times) > 1:
            if _faults_between(chaos, min(times), max(times), kill_kinds):
                f.window["webhook sent again (at-least-once window)"] += 1
            else:
                f.note(f.duplicates, "webhook delivery id twice", f"{hkey}: {len(times)} times")
    f.figures["webhooks"] = len(hooks)

    # --- consumer lag -----------------------------------------------------------------------------
    lags = await kafka_ops.group_lags(kafka, prefix)
    for g in lags:
        if g.lag:
            f.note(f.lost, "consumer group not at lag 0", f"{g.group} {g.topic}[{g.partition}]: {g.lag}")
    groups_of: dict[str, set[str]] = defaultdict(set)
    for g in lags:
        groups_of[g.topic].add(g.group)

    # --- dead letters -----------------------------------------------------------------------------
    letters = await kafka_ops.list_dead_letters(kafka, prefix)
    planted_values = {p.value for p in chaos.poisons}
    found = 0
    for p in chaos.poisons:
        got = [d for d in letters if d.value == p.value and d.topic == p.topic + DEAD_LETTER_SUFFIX]
        groups = {d.headers.get("dlt-consumer-group", b"").decode() for d in got}
        without_reason = [d for d in got if not d.error]
        expected = groups_of.get(p.topic, set()) if p.expect_all_groups else set()
        if not got or (expected - groups) or without_reason:
            f.note(
                f.lost,
                "planted poison not dead-lettered",
                f"{p.kind} on {p.topic}: in {sorted(groups)}, expected {sorted(expected) or 'at least one group'}",
            )
        else:
            found += 1
    for letter in letters:
        if letter.value not in planted_values:
            f.note(
                f.lost,
                "real event dead-lettered",
                f"{letter.topic} by {letter.headers.get('dlt-consumer-group', b'')!r}: {letter.error[:200]}",
            )
    f.figures["dead letters planted"] = len(chaos.poisons)
    f.figures["dead letters found"] = found

    # --- every 2xx in the state it promised -------------------------------------------------------
    broken = 0
    for promise in ledger.promises:
        if promise.kind in ("imported", "registered") and promise.path.rsplit("/", 1)[-1] in ledger.erased:
            continue
        try:
            r = await load.call(promise.service, "GET", promise.path, as_=load.admin(), ok=(200, 404, 410), patience=30)
        except Exception as exc:
            f.note(f.other, "promise unreadable", f"{promise.kind} {promise.path}: {exc}")
            continue
        if r is None:
            f.note(f.other, "promise unreadable", f"{promise.kind} {promise.path}")
            continue
        ok = True
        for field_name, allowed in promise.expect.items():
            if field_name == "status" and promise.service == "profile":
                value: Any = r.status_code
            else:
                value = r.json().get(field_name) if r.status_code == 200 else r.status_code
            if value not in allowed:
                ok = False
                f.note(
                    f.lost,
                    f"2xx '{promise.kind}' not visible as promised",
                    f"{promise.path}: {field_name}={value!r}, promised one of {allowed}",
                )
        broken += not ok
    f.figures["promises checked"] = len(ledger.promises)
    return f
