"""Durable timers of scheduling: session reminders, overdue check-ins, inactive mentorships."""

from __future__ import annotations

import asyncio
import contextlib
from datetime import datetime, timedelta
from typing import Any

import structlog

from mentorship_contracts import Envelope
from mentorship_contracts.scheduling import CheckInOverdue, MentorshipInactive, SessionReminderDue
from mentorship_kit.auth import Principal
from mentorship_kit.clock import Clock
from mentorship_kit.problems import Conflict, NotFound
from mentorship_kit.timers import TIMERS_REVIVED, JobLease

from ..domain import CADENCE_DAYS
from .base import SchedulingBase, event_base, utc

log = structlog.get_logger()

REMINDER = "session-reminder"
CHECK_IN = "check-in-overdue"
INACTIVE = "mentorship-inactive"
KINDS = (REMINDER, CHECK_IN, INACTIVE)
RECONCILER = "reminder-reconciler"


class ReminderPlans(SchedulingBase):
    # --- session reminders ----------------------------------------------------------------
    async def plan_reminders(self, s: dict[str, Any]) -> None:
        """(Re-)plan a session's reminders; ids carry the sequence so a moved session gets fresh ones."""
        group = f"session:{s['_id']}"
        await self.ctx.timers.cancel_group(group)
        now = self.now()
        for offset in sorted(set(self.settings.reminder_offsets_minutes)):
            due = s["start"] - timedelta(minutes=offset)
            if due > now:
                await self.ctx.timers.schedule(
                    f"reminder:{s['_id']}:{s['sequence']}:{offset}",
                    REMINDER,
                    due,
                    {"session_id": s["_id"], "sequence": s["sequence"], "offset_minutes": offset},
                    group=group,
                )

    async def reconcile_reminders(self) -> int:
        """Plan reminders of upcoming sessions that have none pending (a crash between writing a
        session and planning its reminders); timer ids are deterministic, so this is idempotent.
        Then revive timers given up after their attempts (`revive_failed_timers`). Returns how
        many sessions got reminders planned."""
        planned = 0
        for s in await self.store.upcoming(self.now()):
            ids = [
                f"reminder:{s['_id']}:{s['sequence']}:{o}"
                for o in set(self.settings.reminder_offsets_minutes)
                if s["start"] - timedelta(minutes=o) > self.now()
            ]
            if ids and not await self.ctx.timers.all_planned(ids, revivable=True):
                await self.plan_reminders(s)
                planned += 1
        await self.revive_failed_timers()
        return planned

    async def revive_failed_timers(self) -> int:
        """Put timers given up after their attempts back to pending (after a backoff that doubles
        per revival, at most `timer_max_revivals` times); the timer still fires once. A reminder
        whose session moved, was cancelled or has begun stays failed: it has nothing left to say."""
        revived = 0
        backoff = timedelta(seconds=self.settings.timer_revive_backoff_seconds)
        bound = self.settings.timer_max_revivals
        for timer in await self.ctx.timers.failed(kinds=KINDS, revivals_below=bound, limit=500):
            if timer["kind"] == REMINDER and not await self._reminder_still_due(timer):
                continue
            again = await self.ctx.timers.revive(timer["_id"], max_revivals=bound, backoff=backoff)
            if again is None:
                continue
            revived += 1
            TIMERS_REVIVED.labels(self.settings.service_name, timer["kind"], "reconciler").inc()
            log.warning(
                "revived a failed timer",
                timer_id=timer["_id"],
                kind=timer["kind"],
                revivals=again["revivals"],
                due_at=again["due_at"].isoformat(),
                last_error=str(timer.get("last_error", ""))[:200],
            )
        return revived

    async def _reminder_still_due(self, timer: dict[str, Any]) -> bool:
        p = timer["payload"]
        s = await self.store.get(p["session_id"])
        return bool(
            s is not None
            and s["status"] == "scheduled"
            and s["sequence"] == p["sequence"]
            and utc(s["start"]) > self.now()
        )

    async def keep_reminders_planned(self) -> None:
        """Background job: at start, then every `reminder_reconcile_seconds`, the replica holding
        the reconciler's lease plans missing reminders and revives failed timers."""
        # real time: moving the dev clock must not hand the lease of a live replica to another
        lease = JobLease(self.ctx.timers.db, Clock(), RECONCILER, lease_seconds=self.settings.reconcile_lease_seconds)
        try:
            while True:
                try:
                    if await lease.hold() and (planned := await self.reconcile_reminders()):
                        log.warning("planned missing reminders", sessions=planned)
                except Exception as exc:  # keep the job alive; the next pass retries
                    log.warning("reminder reconciliation failed", error=repr(exc)[:300])
                await asyncio.sleep(self.settings.reminder_reconcile_seconds)
        finally:
            with contextlib.suppress(Exception):
                await asyncio.shield(lease.release())

    # --- operators: failed timers -----------------------------------------------------------
    async def failed_timers(self, principal: Principal, *, limit: int) -> list[dict[str, Any]]:
        """Timers given up after their attempts (and their revivals), oldest first."""
        principal.require_admin()
        return [_present_timer(t) for t in await self.ctx.timers.failed(limit=limit)]

    async def redrive_timer(self, principal: Principal, timer_id: str) -> dict[str, Any]:
        """An operator sends a failed timer round again, past the reconciler's bound."""
        principal.require_admin()
        again = await self.ctx.timers.revive(timer_id, max_revivals=0, backoff=timedelta(0), force=True)
        if again is None:
            if await self.ctx.timers.db["timers"].find_one({"_id": timer_id}, {"_id": 1}) is None:
                raise NotFound("timer", timer_id)
            raise Conflict("only a failed timer can be re-driven")
        TIMERS_REVIVED.labels(self.settings.service_name, again["kind"], "operator").inc()
        log.warning("failed timer re-driven by an operator", timer_id=timer_id, kind=again["kind"])
        return _present_timer(again)

    async def on_reminder(self, timer: dict[str, Any], now: datetime) -> list[Envelope[Any]]:
        p = timer["payload"]
        s = await self.store.get(p["session_id"])
        if s is None or s["status"] != "scheduled" or s["sequence"] != p["sequence"]:
            return []  # stale: the session moved, was cancelled or is gone
        return [
            self.ctx.events.new(
                SessionReminderDue(
                    **event_base(s),
                    start=s["start"],
                    duration_minutes=s["duration_minutes"],
                    offset_minutes=p["offset_minutes"],
                    location=s.get("location"),
                )
            )
        ]

    # --- check-ins and inactivity -----------------------------------------------------------
    async def plan_check_ins(self, m: dict[str, Any]) -> None:
        """Check-in overdue and inactivity timers, anchored at the last held session (or the start)."""
        anchor = m.get("last_session_at") or m["started_at"]
        group = f"checkin:{m['_id']}"
        await self.ctx.timers.cancel_group(group)
        days = CADENCE_DAYS.get(m.get("cadence") or "biweekly", 14)
        stamp = utc(anchor).strftime("%Y%m%dT%H%M%S")
        payload = {"mentorship_id": m["_id"], "anchor": utc(anchor)}
        await self.ctx.timers.schedule(
            f"checkin:{m['_id']}:{stamp}",
            CHECK_IN,
            anchor + timedelta(days=days + self.settings.check_in_grace_days),
            payload,
            group=group,
        )
        await self.ctx.timers.schedule(
            f"inactive:{m['_id']}:{stamp}",
            INACTIVE,
            anchor + timedelta(days=days * self.settings.inactive_after_cadences),
            payload,
            group=group,
        )

    async def _still_silent(self, timer: dict[str, Any]) -> dict[str, Any] | None:
        m = await self.mentorships.get(timer["payload"]["mentorship_id"])
        if m is None or m.get("status") != "active":
            return None
        anchor = m.get("last_session_at") or m["started_at"]
        return m if utc(anchor) == utc(timer["payload"]["anchor"]) else None

    async def on_check_in(self, timer: dict[str, Any], now: datetime) -> list[Envelope[Any]]:
        m = await self._still_silent(timer)
        if m is None:
            return []
        return [
            self.ctx.events.new(
                CheckInOverdue(
                    mentorship_id=m["_id"],
                    mentor_id=m["mentor_id"],
                    mentee_id=m["mentee_id"],
                    cadence=m.get("cadence") or "biweekly",
                    last_session_at=m.get("last_session_at"),
                    due_since=timer["due_at"],
                )
            )
        ]

    async def on_inactive(self, timer: dict[str, Any], now: datetime) -> list[Envelope[Any]]:
        m = await self._still_silent(timer)
        if m is None:
            return []
        return [
            self.ctx.events.new(
                MentorshipInactive(
                    mentorship_id=m["_id"],
                    mentor_id=m["mentor_id"],
                    mentee_id=m["mentee_id"],
                    last_session_at=m.get("last_session_at"),
                    inactive_since=timer["due_at"],
                )
            )
        ]


def _present_timer(t: dict[str, Any]) -> dict[str, Any]:
    """A timer for operators: ids, kind, times, attempts and the last error (the payload holds ids only)."""
    fields = ("kind", "state", "due_at", "attempts", "revivals", "failed_at", "revived_at", "last_error", "payload")
    return {"timer_id": t["_id"], **{k: t.get(k) for k in fields}}
