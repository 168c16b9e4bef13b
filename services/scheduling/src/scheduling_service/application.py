"""Use cases of the scheduling service.

Every state change and the events it causes are one single-document write (outbox). The
double-booking guard is the claim step in adapters.sessions; it runs before the session write
and is undone when anything after it is refused, so a refused request leaves nothing behind.
"""

from __future__ import annotations

import asyncio
import hashlib
import secrets
import statistics
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import structlog

from mentorship_contracts import Envelope, EventData
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
from mentorship_kit.auth import Principal
from mentorship_kit.outbox import new_document, with_events
from mentorship_kit.problems import Conflict, Forbidden, NotFound, Unprocessable
from mentorship_kit.runtime import ServiceRuntime

from . import domain
from .adapters import ical
from .adapters.read_models import MentorshipReadModel, ProfileReadModel
from .adapters.sessions import BookingConflict, SessionStore
from .domain import CADENCE_DAYS, BUSY_STATUSES, Interval, RuleViolation
from .settings import Settings

log = structlog.get_logger()

REMINDER = "session-reminder"
CHECK_IN = "check-in-overdue"
INACTIVE = "mentorship-inactive"


def _utc(moment: datetime) -> datetime:
    return moment.astimezone(UTC)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class Scheduling:
    def __init__(self, runtime: ServiceRuntime, settings: Settings, mentorships: MentorshipReadModel,
                 profiles: ProfileReadModel, store: SessionStore) -> None:
        self.runtime = runtime
        self.settings = settings
        self.mentorships = mentorships
        self.profiles = profiles
        self.store = store

    # --- helpers ------------------------------------------------------------------------------
    def now(self) -> datetime:
        return self.runtime.clock.now()

    def wrap(self, data: EventData, cause: Envelope[Any] | None = None) -> Envelope[Any]:
        if cause is not None:
            return cause.caused(data, source=self.runtime.service, time=self.now())
        return Envelope.wrap(data, source=self.runtime.service, time=self.now())

    async def mentorship_for(self, principal: Principal, mentorship_id: str, *,
                             active: bool = True) -> dict[str, Any]:
        m = await self.mentorships.get(mentorship_id)
        if m is None or "mentor_id" not in m:
            raise NotFound("mentorship", mentorship_id)
        if not (principal.is_admin or principal.subject in (m["mentor_id"], m["mentee_id"])):
            raise Forbidden("only the mentorship's participants or an admin may do this")
        if active and m.get("status") != "active":
            raise Conflict("the mentorship is not active", reason="mentorship_not_active")
        return m

    async def session_for(self, principal: Principal, session_id: str) -> dict[str, Any]:
        s = await self.store.get(session_id)
        if s is None:
            raise NotFound("session", session_id)
        if not (principal.is_admin or principal.subject in s["participants"]):
            raise Forbidden("only the session's participants or an admin may do this")
        return s

    async def zone_of(self, person_id: str) -> str:
        p = await self.profiles.get(person_id)
        return (p or {}).get("time_zone") or "UTC"

    async def _targets(self, session: dict[str, Any], scope: str) -> list[dict[str, Any]]:
        """The session alone, or with the later scheduled occurrences of its series."""
        if scope != "following":
            return [session]
        if not session.get("series_id"):
            raise Unprocessable("this session is not part of a series", field="scope")
        return [o for o in await self.store.of_series(session["series_id"])
                if o["series_index"] >= session["series_index"] and o["status"] == "scheduled"]

    def _times(self, start: datetime, duration: int, field: str = "start") -> datetime:
        try:
            return domain.validate_session_times(
                start, duration, self.now(), min_minutes=self.settings.session_min_minutes,
                max_minutes=self.settings.session_max_minutes, field=field)
        except RuleViolation as exc:
            raise Unprocessable(str(exc), field=exc.field) from None

    @staticmethod
    def _conflict(exc: BookingConflict, m: dict[str, Any]) -> Conflict:
        role = "mentor" if exc.person_id == m["mentor_id"] else "mentee"
        when = exc.at.isoformat() if exc.at else "that time"
        return Conflict(f"the {role} already has a session at {when}", reason="double_booking",
                        person_role=role, conflicting_session_id=exc.session_id)

    @staticmethod
    def _event_base(s: dict[str, Any]) -> dict[str, Any]:
        return {"mentorship_id": s["mentorship_id"], "session_id": s["_id"], "mentor_id": s["mentor_id"],
                "mentee_id": s["mentee_id"], "ical_uid": s["ical_uid"], "sequence": s["sequence"]}

    # --- slot proposals -----------------------------------------------------------------------
    async def propose_slots(self, principal: Principal, mentorship_id: str, *, count: int, duration: int,
                            start_from: datetime | None, weeks: int | None) -> dict[str, Any]:
        m = await self.mentorship_for(principal, mentorship_id)
        people = []
        for pid in (m["mentor_id"], m["mentee_id"]):
            p = await self.profiles.get(pid)
            if p is None:
                raise Conflict("a participant's profile (time zone, availability) is not known yet",
                               reason="profile_unknown")
            people.append((p["time_zone"], domain.parse_windows(p.get("availability") or [])))
        now = self.now()
        begin = max(_utc(start_from), now) if start_from else now
        span = Interval(begin, begin + timedelta(weeks=weeks or self.settings.slot_horizon_weeks))
        busy = [Interval(s["start"], s["end"]) for s in
                await self.store.busy([m["mentor_id"], m["mentee_id"]], span.start, span.end, ("scheduled",))]
        try:
            slots = domain.propose_slots(people=people, busy=busy, span=span,
                                         duration=timedelta(minutes=duration),
                                         step=timedelta(minutes=self.settings.slot_step_minutes), count=count)
        except RuleViolation as exc:
            raise Unprocessable(str(exc), field=exc.field) from None
        zones = {"mentor": people[0][0], "mentee": people[1][0]}
        return {
            "mentorship_id": mentorship_id, "duration_minutes": duration,
            "searched": {"from": span.start, "to": span.end},
            "slots": [
                {"start": s.start, "end": s.end,
                 "local": {role: s.start.astimezone(domain.zone(z)).isoformat() for role, z in zones.items()}}
                for s in slots
            ],
        }

    # --- sessions -----------------------------------------------------------------------------
    def _new_session(self, m: dict[str, Any], principal: Principal, start: datetime, duration: int,
                     location: str | None, agenda: str, series: dict[str, Any] | None = None) -> dict[str, Any]:
        sid = uuid.uuid4().hex
        now = self.now()
        return {
            "_id": sid, "mentorship_id": m["_id"], "mentor_id": m["mentor_id"], "mentee_id": m["mentee_id"],
            "participants": [m["mentor_id"], m["mentee_id"]], "start": start,
            "end": start + timedelta(minutes=duration), "duration_minutes": duration, "location": location,
            "agenda": agenda, "status": "scheduled", "sequence": 0, "ical_uid": f"{sid}@mentorship-platform",
            "scheduled_by": principal.subject, "created_at": now, "updated_at": now, "feedback": {},
            **(series or {"series_id": None}),
        }

    def _scheduled_event(self, s: dict[str, Any]) -> Envelope[Any]:
        return self.wrap(SessionScheduled(
            **self._event_base(s), start=s["start"], duration_minutes=s["duration_minutes"],
            location=s["location"], agenda=s["agenda"], series_id=s.get("series_id"),
            scheduled_by=s["scheduled_by"]))

    async def schedule(self, principal: Principal, mentorship_id: str, *, start: datetime, duration: int,
                       location: str | None, agenda: str) -> dict[str, Any]:
        m = await self.mentorship_for(principal, mentorship_id)
        start = self._times(start, duration)
        doc = self._new_session(m, principal, start, duration, location, agenda)
        await self._book([doc], m)
        return doc

    async def _book(self, docs: Sequence[dict[str, Any]], m: dict[str, Any]) -> None:
        """Claim everyone's time for all sessions, then write them; all or nothing."""
        taken: list[str] = []
        try:
            for d in docs:
                taken += await self.store.claim(d["_id"], d["participants"], d["start"], d["duration_minutes"],
                                                self.now())
        except BookingConflict as exc:
            await self.store.release_ids(taken)
            raise self._conflict(exc, m) from None
        written: list[str] = []
        try:
            for d in docs:
                await self.store.insert(new_document(d, [self._scheduled_event(d)]))
                written.append(d["_id"])
        except Exception:
            # Undo: the sessions not written must not keep their claims; written ones stay valid.
            for d in docs:
                if d["_id"] not in written:
                    await self.store.release_except(d["_id"], [], d["start"], 0)
            raise
        self.runtime.wake_relay()
        for d in docs:
            await self.plan_reminders(d)

    async def create_series(self, principal: Principal, mentorship_id: str, *, first_start: datetime,
                            duration: int, cadence: str | None, count: int | None, until: datetime | None,
                            time_zone: str | None, location: str | None, agenda: str) -> list[dict[str, Any]]:
        m = await self.mentorship_for(principal, mentorship_id)
        cadence = cadence or m.get("cadence") or "biweekly"
        first = self._times(first_start, duration, "first_start")
        tz_name = time_zone or await self.zone_of(principal.subject)
        try:
            domain.zone(tz_name)
            starts = domain.occurrences(first, cadence, tz_name, count=count, until=until and _utc(until),
                                        limit=self.settings.series_max_occurrences)
        except RuleViolation as exc:
            raise Unprocessable(str(exc), field=exc.field) from None
        series_id = uuid.uuid4().hex
        docs = [
            self._new_session(m, principal, s, duration, location, agenda,
                              {"series_id": series_id, "series_index": i, "series_tz": tz_name,
                               "cadence": cadence})
            for i, s in enumerate(starts)
        ]
        await self._book(docs, m)
        return docs

    async def reschedule(self, principal: Principal, session_id: str, *, start: datetime,
                         duration: int | None, location: str | None, scope: str,
                         expected_sequence: int | None) -> list[dict[str, Any]]:
        s = await self.session_for(principal, session_id)
        m = await self.mentorship_for(principal, s["mentorship_id"])
        if s["status"] != "scheduled":
            raise Conflict(f"a {s['status']} session cannot be moved", reason="session_not_scheduled")
        if expected_sequence is not None and expected_sequence != s["sequence"]:
            raise Conflict("the session changed meanwhile; reload it", reason="stale_sequence")
        duration = duration or s["duration_minutes"]
        new_start = self._times(start, duration)
        targets = await self._targets(s, scope)
        tz_name = s.get("series_tz") or "UTC"
        delta = domain.wall_delta(s["start"], new_start, tz_name)
        plan = []
        for o in targets:
            o_start = new_start if o["_id"] == s["_id"] else domain.shift_wall_time(o["start"], delta, tz_name)
            plan.append((o, self._times(o_start, duration)))
        taken: list[str] = []
        try:
            for o, o_start in plan:
                taken += await self.store.claim(o["_id"], o["participants"], o_start, duration, self.now())
        except BookingConflict as exc:
            await self.store.release_ids(taken)
            raise self._conflict(exc, m) from None
        done = []
        for o, o_start in plan:
            new_loc = location if location is not None else o.get("location")
            after = {**o, "start": o_start, "end": o_start + timedelta(minutes=duration),
                     "duration_minutes": duration, "location": new_loc, "sequence": o["sequence"] + 1}
            event = self.wrap(SessionRescheduled(
                **self._event_base(after), previous_start=o["start"], start=o_start,
                duration_minutes=duration, location=new_loc, rescheduled_by=principal.subject))
            updated = await self.store.update(o["_id"], o["sequence"], with_events(
                {"$set": {"start": o_start, "end": after["end"], "duration_minutes": duration,
                          "location": new_loc, "updated_at": self.now()},
                 "$inc": {"sequence": 1}}, [event]))
            if updated is None:
                # Someone changed this occurrence meanwhile: give back what we claimed for it.
                await self.store.release_except(o["_id"], o["participants"], o["start"], o["duration_minutes"])
                if not done:
                    raise Conflict("the session changed meanwhile; reload it", reason="stale_sequence")
                continue
            await self.store.release_except(o["_id"], o["participants"], o_start, duration)
            await self.plan_reminders(updated)
            done.append(updated)
        self.runtime.wake_relay()
        return done

    async def cancel(self, principal: Principal | None, session_id: str, *, reason: str, scope: str = "this",
                     cause: Envelope[Any] | None = None, by: str | None = None) -> list[dict[str, Any]]:
        if principal is not None:
            s = await self.session_for(principal, session_id)
            by = principal.subject
        else:
            s = await self.store.get(session_id)
            if s is None:
                return []
        if s["status"] != "scheduled":
            raise Conflict(f"a {s['status']} session cannot be cancelled", reason="session_not_scheduled")
        targets = await self._targets(s, scope)
        done = []
        for o in targets:
            after = {**o, "sequence": o["sequence"] + 1}
            event = self.wrap(SessionCancelled(**self._event_base(after), start=o["start"], reason=reason,
                                               cancelled_by=by or "system"), cause)
            updated = await self.store.update(o["_id"], o["sequence"], with_events(
                {"$set": {"status": "cancelled", "cancel_reason": reason, "cancelled_by": by,
                          "updated_at": self.now()}, "$inc": {"sequence": 1}}, [event]))
            if updated is None:
                if o is s and principal is not None:
                    raise Conflict("the session changed meanwhile; reload it", reason="stale_sequence")
                continue
            await self.store.release_except(o["_id"], [], o["start"], 0)
            await self.runtime.timers.cancel_group(f"session:{o['_id']}")
            done.append(updated)
        self.runtime.wake_relay()
        return done

    def _require_started(self, s: dict[str, Any]) -> None:
        if s["status"] != "scheduled":
            raise Conflict(f"the session is {s['status']}", reason="session_not_scheduled")
        if self.now() < s["start"]:
            raise Conflict("the session has not started yet", reason="session_not_started")

    async def complete(self, principal: Principal, session_id: str, *, notes: str) -> dict[str, Any]:
        s = await self.session_for(principal, session_id)
        self._require_started(s)
        now = self.now()
        event = self.wrap(SessionCompleted(**self._event_base(s), start=s["start"], completed_at=now,
                                           notes=notes))
        updated = await self.store.update(s["_id"], s["sequence"], with_events(
            {"$set": {"status": "completed", "notes": notes, "completed_at": now, "updated_at": now}}, [event]))
        if updated is None:
            raise Conflict("the session changed meanwhile; reload it", reason="stale_sequence")
        await self.runtime.timers.cancel_group(f"session:{s['_id']}")
        await self.mentorships.coll.update_one(
            {"_id": s["mentorship_id"], "$or": [{"last_session_at": None}, {"last_session_at": {"$lt": s["start"]}}]},
            {"$set": {"last_session_at": s["start"]}})
        m = await self.mentorships.get(s["mentorship_id"])
        if m and m.get("status") == "active":
            await self.plan_check_ins(m)
        self.runtime.wake_relay()
        return updated

    async def no_show(self, principal: Principal, session_id: str, *, absent_ids: list[str]) -> dict[str, Any]:
        s = await self.session_for(principal, session_id)
        if not absent_ids or any(a not in s["participants"] for a in absent_ids):
            raise Unprocessable("absent_ids must name one or both participants", field="absent_ids")
        self._require_started(s)
        event = self.wrap(SessionNoShow(**self._event_base(s), start=s["start"], absent_ids=absent_ids,
                                        reported_by=principal.subject))
        updated = await self.store.update(s["_id"], s["sequence"], with_events(
            {"$set": {"status": "no_show", "absent_ids": absent_ids, "updated_at": self.now()}}, [event]))
        if updated is None:
            raise Conflict("the session changed meanwhile; reload it", reason="stale_sequence")
        await self.runtime.timers.cancel_group(f"session:{s['_id']}")
        self.runtime.wake_relay()
        return updated

    async def feedback(self, principal: Principal, session_id: str, *, rating: int, comment: str,
                       not_a_good_fit: bool) -> dict[str, Any]:
        s = await self.session_for(principal, session_id)
        if principal.subject not in s["participants"]:
            raise Forbidden("only the session's participants can give feedback")
        if s["status"] != "completed":
            raise Conflict("feedback is possible once the session is completed", reason="session_not_completed")
        role = "mentor" if principal.subject == s["mentor_id"] else "mentee"
        event = self.wrap(SessionFeedbackSubmitted(
            mentorship_id=s["mentorship_id"], session_id=s["_id"], author_id=principal.subject, author_role=role,
            rating=rating, comment=comment, not_a_good_fit=not_a_good_fit))
        entry = {"rating": rating, "comment": comment, "not_a_good_fit": not_a_good_fit, "at": self.now()}
        ok = await self.store.update_where(
            {"_id": s["_id"], "status": "completed", f"feedback.{role}": {"$exists": False}},
            with_events({"$set": {f"feedback.{role}": entry}}, [event]))
        if not ok:
            raise Conflict("you already gave feedback on this session", reason="feedback_exists")
        self.runtime.wake_relay()
        return {"session_id": s["_id"], "author_role": role, **entry}

    # --- milestones and progress ------------------------------------------------------------
    async def add_milestone(self, principal: Principal, mentorship_id: str, *, title: str,
                            goal_id: str | None) -> dict[str, Any]:
        m = await self.mentorship_for(principal, mentorship_id)
        order = len(m.get("milestones") or {}) + 1
        mid = f"m{uuid.uuid4().hex[:8]}"
        entry = {"title": title, "goal_id": goal_id, "reached_at": None, "order": order}
        await self.mentorships.coll.update_one({"_id": mentorship_id}, {"$set": {f"milestones.{mid}": entry}})
        return {"milestone_id": mid, **entry}

    async def reach_milestone(self, principal: Principal, mentorship_id: str, milestone_id: str) -> dict[str, Any]:
        m = await self.mentorship_for(principal, mentorship_id)
        ms = (m.get("milestones") or {}).get(milestone_id)
        if ms is None:
            raise NotFound("milestone", milestone_id)
        if ms.get("reached_at"):
            raise Conflict("the milestone was reached already", reason="milestone_reached")
        now = self.now()
        event = self.wrap(MilestoneReached(
            mentorship_id=mentorship_id, milestone_id=milestone_id, title=ms["title"], mentor_id=m["mentor_id"],
            mentee_id=m["mentee_id"], reached_at=now, goal_id=ms.get("goal_id")))
        res = await self.mentorships.coll.update_one(
            {"_id": mentorship_id, f"milestones.{milestone_id}.reached_at": None},
            with_events({"$set": {f"milestones.{milestone_id}.reached_at": now,
                                  f"milestones.{milestone_id}.reached_by": principal.subject}}, [event]))
        if not res.modified_count:
            raise Conflict("the milestone was reached already", reason="milestone_reached")
        self.runtime.wake_relay()
        return {"milestone_id": milestone_id, **ms, "reached_at": now}

    async def progress(self, principal: Principal, mentorship_id: str) -> dict[str, Any]:
        m = await self.mentorship_for(principal, mentorship_id, active=False)
        sessions = await self.store.of_mentorship(mentorship_id)
        by_status: dict[str, int] = {}
        for s in sessions:
            by_status[s["status"]] = by_status.get(s["status"], 0) + 1
        # A participant sees only the ratings they gave: the other party's, even averaged, give
        # themselves away (one rating is its own average; each new one is the difference of two).
        ratings = [f["rating"] for s in sessions for role, f in (s.get("feedback") or {}).items()
                   if principal.is_admin or s.get(f"{role}_id") == principal.subject]
        now = self.now()
        planned_end = m.get("planned_end")
        horizon = now
        if planned_end:
            horizon = datetime.fromisoformat(str(planned_end)).replace(tzinfo=UTC)
        started = m.get("started_at") or now
        milestones = m.get("milestones") or {}
        return {
            "mentorship_id": mentorship_id, "status": m.get("status"), "cadence": m.get("cadence"),
            "sessions": {
                "held": by_status.get("completed", 0), "scheduled": by_status.get("scheduled", 0),
                "cancelled": by_status.get("cancelled", 0), "no_show": by_status.get("no_show", 0),
                "planned_by_cadence": domain.planned_sessions(started, horizon, m.get("cadence") or "biweekly"),
                "planned_to_date": domain.planned_sessions(started, now, m.get("cadence") or "biweekly"),
            },
            "milestones": {"total": len(milestones),
                           "reached": sum(1 for x in milestones.values() if x.get("reached_at"))},
            "average_rating": round(statistics.fmean(ratings), 2) if ratings else None,
            "ratings": len(ratings),
            "ratings_of": "both" if principal.is_admin else "caller",
            "last_session_at": m.get("last_session_at"),
        }

    # --- calendar -------------------------------------------------------------------------------
    async def session_ical(self, principal: Principal, session_id: str) -> bytes:
        s = await self.session_for(principal, session_id)
        tz_name = "UTC" if principal.subject not in s["participants"] else await self.zone_of(principal.subject)
        return ical.calendar([s], tz_name, self.now(), name="Mentoring session",
                             cancelled_method=s["status"] == "cancelled")

    async def new_feed(self, principal: Principal) -> str:
        token = secrets.token_urlsafe(32)
        await self.store.set_feed(token_hash(token), principal.subject, self.now())
        return token

    async def feed(self, token: str) -> bytes:
        person = await self.store.feed_owner(token_hash(token))
        if person is None:
            raise NotFound("calendar feed", "…")
        since = self.now() - timedelta(days=90)
        sessions = await self.store.of_person(person, since)
        return ical.calendar(sessions, await self.zone_of(person), self.now(), name="Mentoring sessions")

    # --- timers ----------------------------------------------------------------------------------
    async def plan_reminders(self, s: dict[str, Any]) -> None:
        """(Re-)plan a session's reminders; ids carry the sequence so a moved session gets fresh ones."""
        group = f"session:{s['_id']}"
        await self.runtime.timers.cancel_group(group)
        now = self.now()
        for offset in sorted(set(self.settings.reminder_offsets_minutes)):
            due = s["start"] - timedelta(minutes=offset)
            if due > now:
                await self.runtime.timers.schedule(
                    f"reminder:{s['_id']}:{s['sequence']}:{offset}", REMINDER, due,
                    {"session_id": s["_id"], "sequence": s["sequence"], "offset_minutes": offset}, group=group)

    async def reconcile_reminders(self) -> int:
        """Plan reminders of upcoming sessions that have none pending (a crash between writing a
        session and planning its reminders); timer ids are deterministic, so this is idempotent."""
        planned = 0
        for s in await self.store.upcoming(self.now()):
            ids = [f"reminder:{s['_id']}:{s['sequence']}:{o}" for o in set(self.settings.reminder_offsets_minutes)
                   if s["start"] - timedelta(minutes=o) > self.now()]
            if ids and not await self.runtime.timers.all_planned(ids):
                await self.plan_reminders(s)
                planned += 1
        return planned

    async def keep_reminders_planned(self) -> None:
        """Background job: reconcile at start, then every `reminder_reconcile_seconds`."""
        while True:
            try:
                if planned := await self.reconcile_reminders():
                    log.warning("planned missing reminders", sessions=planned)
            except Exception as exc:  # keep the job alive; the next pass retries
                log.warning("reminder reconciliation failed", error=repr(exc)[:300])
            await asyncio.sleep(self.settings.reminder_reconcile_seconds)

    async def on_reminder(self, timer: dict[str, Any], now: datetime) -> list[Envelope[Any]]:
        p = timer["payload"]
        s = await self.store.get(p["session_id"])
        if s is None or s["status"] != "scheduled" or s["sequence"] != p["sequence"]:
            return []  # stale: the session moved, was cancelled or is gone
        return [self.wrap(SessionReminderDue(
            **self._event_base(s), start=s["start"], duration_minutes=s["duration_minutes"],
            offset_minutes=p["offset_minutes"], location=s.get("location")))]

    def _cadence_days(self, m: dict[str, Any]) -> float:
        return CADENCE_DAYS.get(m.get("cadence") or "biweekly", 14)

    async def plan_check_ins(self, m: dict[str, Any]) -> None:
        """Check-in overdue and inactivity timers, anchored at the last held session (or the start)."""
        anchor = m.get("last_session_at") or m["started_at"]
        group = f"checkin:{m['_id']}"
        await self.runtime.timers.cancel_group(group)
        days = self._cadence_days(m)
        stamp = _utc(anchor).strftime("%Y%m%dT%H%M%S")
        payload = {"mentorship_id": m["_id"], "anchor": _utc(anchor)}
        await self.runtime.timers.schedule(
            f"checkin:{m['_id']}:{stamp}", CHECK_IN,
            anchor + timedelta(days=days + self.settings.check_in_grace_days), payload, group=group)
        await self.runtime.timers.schedule(
            f"inactive:{m['_id']}:{stamp}", INACTIVE,
            anchor + timedelta(days=days * self.settings.inactive_after_cadences), payload, group=group)

    async def _still_silent(self, timer: dict[str, Any]) -> dict[str, Any] | None:
        m = await self.mentorships.get(timer["payload"]["mentorship_id"])
        if m is None or m.get("status") != "active":
            return None
        anchor = m.get("last_session_at") or m["started_at"]
        return m if _utc(anchor) == _utc(timer["payload"]["anchor"]) else None

    async def on_check_in(self, timer: dict[str, Any], now: datetime) -> list[Envelope[Any]]:
        m = await self._still_silent(timer)
        if m is None:
            return []
        return [self.wrap(CheckInOverdue(
            mentorship_id=m["_id"], mentor_id=m["mentor_id"], mentee_id=m["mentee_id"],
            cadence=m.get("cadence") or "biweekly", last_session_at=m.get("last_session_at"),
            due_since=timer["due_at"]))]

    async def on_inactive(self, timer: dict[str, Any], now: datetime) -> list[Envelope[Any]]:
        m = await self._still_silent(timer)
        if m is None:
            return []
        return [self.wrap(MentorshipInactive(
            mentorship_id=m["_id"], mentor_id=m["mentor_id"], mentee_id=m["mentee_id"],
            last_session_at=m.get("last_session_at"), inactive_since=timer["due_at"]))]

    # --- reactions to other services' events ----------------------------------------------
    async def mentorship_started(self, event: Envelope[Any]) -> None:
        d = event.data
        applied = await self.mentorships.started(
            mentorship_id=d.mentorship_id, mentor_id=d.mentor_id, mentee_id=d.mentee_id,
            cadence=d.agreement.cadence, goals=list(d.agreement.goals), goal_ids=list(d.agreement.goal_ids),
            planned_end=d.agreement.planned_end.isoformat() if d.agreement.planned_end else None,
            started_at=d.started_at, event_time=event.time)
        m = await self.mentorships.get(d.mentorship_id)
        if applied and m and m.get("status") == "active":
            await self.plan_check_ins(m)

    async def mentorship_closed(self, event: Envelope[Any]) -> None:
        mid = event.data.mentorship_id
        await self.mentorships.ended(mid, event.time)
        await self.runtime.timers.cancel_group(f"checkin:{mid}")
        now = self.now()
        for s in await self.store.of_mentorship(mid):
            if s["status"] == "scheduled" and s["start"] > now:
                try:
                    await self.cancel(None, s["_id"], reason="the mentorship ended", cause=event, by="system")
                except Conflict:
                    pass  # changed meanwhile (e.g. cancelled by a participant): nothing to do

    async def profile_changed(self, event: Envelope[Any]) -> None:
        p = event.data.profile
        await self.profiles.upsert(p.profile_id, p.time_zone,
                                   [w.model_dump(mode="json") for w in p.availability], event.time)

    async def profile_erased(self, event: Envelope[Any]) -> None:
        await self.profiles.erase(event.data.profile_id, event.time)
        await self.store.forget_person(event.data.profile_id)
