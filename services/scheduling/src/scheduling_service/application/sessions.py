"""Sessions: book one or a series, move, cancel (what happens after a session: `outcomes`).

Every state change and the events it causes are one single-document write (outbox). The
double-booking guard is the claim step in adapters.sessions; it runs before the session write
and is undone when anything after it is refused, so a refused request leaves nothing behind.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from mentorship_contracts import Envelope
from mentorship_contracts.reasons import reason_fields
from mentorship_contracts.scheduling import (
    SessionCancelledV2,
    SessionRescheduled,
    SessionScheduledV2,
)
from mentorship_kit.auth import Principal
from mentorship_kit.problems import Conflict, Unprocessable

from .. import domain
from ..adapters.sessions import BookingConflict
from ..domain import RuleViolation
from .base import event_base, stale, utc
from .timers import ReminderPlans


class SessionUseCases(ReminderPlans):
    def _new_session(
        self,
        m: dict[str, Any],
        principal: Principal,
        start: datetime,
        duration: int,
        location: str | None,
        agenda: str,
        series: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        sid = uuid.uuid4().hex
        now = self.now()
        return {
            "_id": sid,
            "mentorship_id": m["_id"],
            "mentor_id": m["mentor_id"],
            "mentee_id": m["mentee_id"],
            "participants": [m["mentor_id"], m["mentee_id"]],
            "start": start,
            "end": start + timedelta(minutes=duration),
            "duration_minutes": duration,
            "location": location,
            "agenda": agenda,
            "status": "scheduled",
            "sequence": 0,
            "ical_uid": f"{sid}@mentorship-platform",
            "scheduled_by": principal.subject,
            "created_at": now,
            "updated_at": now,
            "feedback": {},
            **(series or {"series_id": None}),
        }

    def _scheduled_event(self, s: dict[str, Any]) -> Envelope[Any]:
        return self.ctx.events.new(
            SessionScheduledV2(
                **event_base(s),
                start=s["start"],
                duration_minutes=s["duration_minutes"],
                location=s["location"],
                has_agenda=bool((s.get("agenda") or "").strip()),
                series_id=s.get("series_id"),
                scheduled_by=s["scheduled_by"],
            )
        )

    async def _targets(self, session: dict[str, Any], scope: str) -> list[dict[str, Any]]:
        """The session alone, or with the later scheduled occurrences of its series."""
        if scope != "following":
            return [session]
        if not session.get("series_id"):
            raise Unprocessable("this session is not part of a series", field="scope")
        return [
            o
            for o in await self.store.of_series(session["series_id"])
            if o["series_index"] >= session["series_index"] and o["status"] == "scheduled"
        ]

    # --- booking ------------------------------------------------------------------------------
    async def schedule(
        self,
        principal: Principal,
        mentorship_id: str,
        *,
        start: datetime,
        duration: int,
        location: str | None,
        agenda: str,
    ) -> dict[str, Any]:
        m = await self.mentorship_for(principal, mentorship_id)
        start = self._times(start, duration)
        doc = self._new_session(m, principal, start, duration, location, agenda)
        await self._book([doc], m)
        return doc

    async def create_series(
        self,
        principal: Principal,
        mentorship_id: str,
        *,
        first_start: datetime,
        duration: int,
        cadence: str | None,
        count: int | None,
        until: datetime | None,
        time_zone: str | None,
        location: str | None,
        agenda: str,
    ) -> list[dict[str, Any]]:
        m = await self.mentorship_for(principal, mentorship_id)
        cadence = cadence or m.get("cadence") or "biweekly"
        first = self._times(first_start, duration, "first_start")
        tz_name = time_zone or await self.zone_of(principal.subject)
        try:
            domain.zone(tz_name)
            starts = domain.occurrences(
                first,
                cadence,
                tz_name,
                count=count,
                until=until and utc(until),
                limit=self.settings.series_max_occurrences,
            )
        except RuleViolation as exc:
            raise Unprocessable(str(exc), field=exc.field) from None
        series_id = uuid.uuid4().hex
        docs = [
            self._new_session(
                m,
                principal,
                s,
                duration,
                location,
                agenda,
                {"series_id": series_id, "series_index": i, "series_tz": tz_name, "cadence": cadence},
            )
            for i, s in enumerate(starts)
        ]
        await self._book(docs, m)
        return docs

    async def _book(self, docs: Sequence[dict[str, Any]], m: dict[str, Any]) -> None:
        """Claim everyone's time for all sessions, then write them; all or nothing."""
        taken: list[str] = []
        try:
            for d in docs:
                taken += await self.store.claim(
                    d["_id"], d["participants"], d["start"], d["duration_minutes"], self.now()
                )
        except BookingConflict as exc:
            await self.store.release_ids(taken)
            raise self._conflict(exc, m) from None
        written: list[str] = []
        try:
            for d in docs:
                await self.store.add(d, [self._scheduled_event(d)])
                written.append(d["_id"])
        except Exception:
            # Undo: the sessions not written must not keep their claims; written ones stay valid.
            for d in docs:
                if d["_id"] not in written:
                    await self.store.release_except(d["_id"], [], d["start"], 0)
            raise
        self.ctx.events_written()
        for d in docs:
            await self.plan_reminders(d)

    # --- changes ------------------------------------------------------------------------------
    async def reschedule(
        self,
        principal: Principal,
        session_id: str,
        *,
        start: datetime,
        duration: int | None,
        location: str | None,
        scope: str,
        expected_sequence: int | None,
    ) -> list[dict[str, Any]]:
        s = await self.session_for(principal, session_id)
        m = await self.mentorship_for(principal, s["mentorship_id"])
        if s["status"] != "scheduled":
            raise Conflict(f"a {s['status']} session cannot be moved", reason="session_not_scheduled")
        if expected_sequence is not None and expected_sequence != s["sequence"]:
            raise stale()
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
        done: list[dict[str, Any]] = []
        for o, o_start in plan:
            new_loc = location if location is not None else o.get("location")
            event = self.ctx.events.new(
                SessionRescheduled(
                    **event_base({**o, "sequence": o["sequence"] + 1}),
                    previous_start=o["start"],
                    start=o_start,
                    duration_minutes=duration,
                    location=new_loc,
                    rescheduled_by=principal.subject,
                )
            )
            updated = await self.store.move(
                o["_id"],
                o["sequence"],
                start=o_start,
                duration_minutes=duration,
                location=new_loc,
                now=self.now(),
                events=[event],
            )
            if updated is None:
                # Someone changed this occurrence meanwhile: give back what we claimed for it.
                await self.store.release_except(o["_id"], o["participants"], o["start"], o["duration_minutes"])
                if not done:
                    raise stale()
                continue
            await self.store.release_except(o["_id"], o["participants"], o_start, duration)
            await self.plan_reminders(updated)
            done.append(updated)
        self.ctx.events_written()
        return done

    async def cancel(
        self,
        principal: Principal | None,
        session_id: str,
        *,
        reason: str,
        scope: str = "this",
        cause: Envelope[Any] | None = None,
        by: str | None = None,
    ) -> list[dict[str, Any]]:
        if principal is not None:
            s = await self.session_for(principal, session_id)
            by = principal.subject
        else:
            found = await self.store.get(session_id)
            if found is None:
                return []
            s = found
        if s["status"] != "scheduled":
            raise Conflict(f"a {s['status']} session cannot be cancelled", reason="session_not_scheduled")
        done: list[dict[str, Any]] = []
        for o in await self._targets(s, scope):
            data = SessionCancelledV2(
                **event_base({**o, "sequence": o["sequence"] + 1}),
                start=o["start"],
                **reason_fields(reason),
                cancelled_by=by or "system",
            )
            event = self.ctx.events.caused_by(cause, data) if cause else self.ctx.events.new(data)
            updated = await self.store.cancel(
                o["_id"], o["sequence"], reason=reason, by=by, now=self.now(), events=[event]
            )
            if updated is None:
                if o is s and principal is not None:
                    raise stale()
                continue
            await self.store.release_except(o["_id"], [], o["start"], 0)
            await self.ctx.timers.cancel_group(f"session:{o['_id']}")
            done.append(updated)
        self.ctx.events_written()
        return done
