"""Durable timers of scheduling: session reminders, overdue check-ins, inactive mentorships."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from typing import Any

import structlog

from mentorship_contracts import Envelope
from mentorship_contracts.scheduling import CheckInOverdue, MentorshipInactive, SessionReminderDue

from ..domain import CADENCE_DAYS
from .base import SchedulingBase, event_base, utc

log = structlog.get_logger()

REMINDER = "session-reminder"
CHECK_IN = "check-in-overdue"
INACTIVE = "mentorship-inactive"


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
        session and planning its reminders); timer ids are deterministic, so this is idempotent."""
        planned = 0
        for s in await self.store.upcoming(self.now()):
            ids = [
                f"reminder:{s['_id']}:{s['sequence']}:{o}"
                for o in set(self.settings.reminder_offsets_minutes)
                if s["start"] - timedelta(minutes=o) > self.now()
            ]
            if ids and not await self.ctx.timers.all_planned(ids):
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
