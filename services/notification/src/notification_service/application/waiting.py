"""Recipients not yet in the contact book: their held placeholder is re-checked (by a timer, and
at once when their profile event arrives) and released, or failed as an unknown recipient after
the grace period."""

from __future__ import annotations

from typing import Any

import structlog

from mentorship_contracts import Envelope, decode

from ..adapters.deliveries import CHECKING, WAITING
from .base import UNKNOWN_RECIPIENT
from .planning import DeliveryPlanning
from .sending import DeliveryAttempts

log = structlog.get_logger()


class ContactWaiting(DeliveryPlanning, DeliveryAttempts):
    async def contact_arrived(self, profile_id: str) -> None:
        """A profile event reached the contact book: check the deliveries waiting for this person
        now rather than at their next re-check."""
        for delivery_id in await self.waits.waiting(profile_id):
            await self.recheck_contact(delivery_id)

    async def recheck_contact(self, delivery_id: str) -> None:
        """Under a leased claim (one check at a time): known -> create the person's deliveries and
        send them; erased -> fail at once; still unknown -> fail after the grace period, else wait."""
        now = self.clock.now()
        before = await self.deliveries.claim_check(delivery_id, now)
        if before is None:  # being checked elsewhere (that check tidies up), or settled already
            doc = await self.deliveries.get(delivery_id)
            if doc is not None and doc["state"] not in (WAITING, CHECKING):
                await self.waits.done(doc["recipient_id"], delivery_id)  # a redelivered event listed it again
            return
        pid = before["recipient_id"]
        contact = await self.contacts.get(pid)
        checks = int(before.get("contact_checks") or 0) + 1
        if contact is not None and not contact.get("erased"):
            planned = await self._plan_people(decode(before["source_event"].encode()), now, only=pid)
            # Crash after this insert: the lapsed check is redone, the delivery keys absorb the repeat.
            created = await self.deliveries.create_many(planned)
            fields = {
                "state": "released",
                "reason": None,
                "due_at": None,
                "source_event": None,
                "contact_checks": checks,
                "updated_at": now,
            }
            await self._finish_check(before, fields, [])
            fresh = {doc["_id"] for new, (doc, _) in zip(created, planned, strict=True) if new}
            if any(new and events for new, (_, events) in zip(created, planned, strict=True)):
                self.ctx.events_written()
            await self._progress(await self.deliveries.get_many([doc["_id"] for doc, _ in planned]), claimed=[])
            log.info("held notification released: recipient arrived", recipient_id=pid, deliveries=len(fresh))
            return
        if contact is not None or now >= before["wait_until"]:
            reason = "recipient erased" if contact is not None else UNKNOWN_RECIPIENT
            event = self._failed_event(before, reason, permanent=True, attempts=0, now=now)
            fields = {
                "state": "failed",
                "reason": reason,
                "failed_at": now,
                "due_at": None,
                "source_event": None,
                "contact_checks": checks,
                "updated_at": now,
            }
            await self._finish_check(before, fields, [event])
            log.warning("notification recipient not found", recipient_id=pid, reason=reason)
            return
        due_at = min(now + self.contact_recheck, before["wait_until"])
        fields = {"state": WAITING, "due_at": due_at, "contact_checks": checks, "updated_at": now}
        if await self.deliveries.finish(before["_id"], fields, [], [], from_state=CHECKING):
            await self._schedule_recheck({**before, "due_at": due_at, "contact_checks": checks})
            # A contact that arrived during our check found it claimed and left it to us.
            if await self.contacts.get(pid) is not None:
                await self.recheck_contact(delivery_id)

    async def _finish_check(self, before: dict[str, Any], fields: dict[str, Any], events: list[Envelope[Any]]) -> None:
        if await self.deliveries.finish(before["_id"], fields, [], events, from_state=CHECKING):
            await self.waits.done(before["recipient_id"], before["_id"])
            if events:
                self.ctx.events_written()
