"""Timers (quiet hours over, retry due, contact re-check) and the safety net for deliveries whose
sender died or whose timer write was lost."""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Any

import structlog

from mentorship_contracts import Envelope

from ..adapters.deliveries import CHECKING, WAITING
from .base import CONTACT_TIMER, RELEASE_TIMER
from .waiting import ContactWaiting

log = structlog.get_logger()


class DeliveryRecovery(ContactWaiting):
    async def on_timer(self, timer: dict[str, Any], now: datetime) -> list[Envelope[Any]]:
        """Quiet hours ended, or a retry is due: make the delivery pending again and attempt it."""
        delivery_id = timer["payload"]["delivery_id"]
        if timer["kind"] == CONTACT_TIMER:
            await self.recheck_contact(delivery_id)
            return []
        from_state = "held" if timer["kind"] == RELEASE_TIMER else "retrying"
        if await self.deliveries.move(delivery_id, from_state, "pending", now):
            await self.attempt(delivery_id)
        return []  # the delivery document carries its own events

    async def recover_once(self) -> int:
        """Safety net: deliveries whose sender died, or whose timer write was lost."""
        now = self.clock.now()
        touched = 0
        for doc in await self.deliveries.abandoned(now):
            if doc["state"] in (WAITING, CHECKING):
                await self.recheck_contact(doc["_id"])
                touched += 1
                continue
            if doc["state"] in ("held", "retrying"):
                await self.deliveries.move(doc["_id"], doc["state"], "pending", now)
            if await self.attempt(doc["_id"]):
                touched += 1
        return touched

    async def recover_forever(self) -> None:
        while True:
            await asyncio.sleep(self.settings.delivery_recovery_interval_seconds)
            try:
                await self.recover_once()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("delivery recovery pass failed", error=repr(exc)[:300])
