"""Reactions to other services' events: profile events keep the contact book; matching and
scheduling events become deliveries, created and sent at once (or held, or waiting)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from mentorship_contracts import Envelope, as_newest
from mentorship_contracts.profile import ProfileSnapshot
from mentorship_contracts.scheduling import SessionRescheduled, SessionScheduledV2

from ..adapters.deliveries import WAITING
from .planning import Planned
from .waiting import ContactWaiting


class EventHandling(ContactWaiting):
    # --- profile events: the contact book ------------------------------------------------------
    async def contact_changed(self, profile: ProfileSnapshot, as_of: datetime) -> None:
        await self.contacts.apply_snapshot(profile, as_of)
        await self.contact_arrived(profile.profile_id)

    async def contact_removed(self, profile_id: str, as_of: datetime) -> None:
        """A tombstone on `profile.state`: the person was erased (ProfileErased does the rest)."""
        await self.contacts.erase(profile_id, as_of)
        await self.contact_arrived(profile_id)  # held messages for them now fail as "recipient erased"

    async def contact_active(self, profile_id: str, active: bool, as_of: datetime) -> None:
        await self.contacts.set_active(profile_id, active, as_of)

    # --- events -> deliveries ------------------------------------------------------------------
    async def handle(self, envelope: Envelope[Any]) -> None:
        envelope = as_newest(envelope)  # v1 and v2 alike: the rules and templates know v2 only
        now = self.clock.now()
        data = envelope.data
        if isinstance(data, SessionScheduledV2 | SessionRescheduled):
            await self.sessions.remember(data.ical_uid, data.duration_minutes)
        planned = await self._plan(envelope, now)
        waiting = [doc for doc, _ in planned if doc["state"] == WAITING]
        for doc in waiting:  # listed BEFORE the delivery exists, so a contact arriving now finds it
            await self.waits.add(doc["recipient_id"], [doc["_id"]])
        await self._create_and_progress(planned, now)
        for doc in waiting:
            # The contact may have arrived between our read and the listing above (its handler
            # then found nothing to release): look once more, so nothing waits a full interval.
            if await self.contacts.get(doc["recipient_id"]) is not None:
                await self.recheck_contact(doc["_id"])

    async def _create_and_progress(self, planned: Planned, now: datetime) -> None:
        # A delivery due now is inserted already claimed by us, exactly as `claim` would leave it:
        # the insert doubles as the claim (one store write fewer per message).
        created = await self.deliveries.create_many(
            [
                (self.deliveries.claimed(doc, now) if doc["state"] == "pending" else doc, events)
                for doc, events in planned
            ]
        )
        if any(new and events for new, (_, events) in zip(created, planned, strict=True)):
            self.ctx.events_written()
        fresh = [doc for new, (doc, _) in zip(created, planned, strict=True) if new]
        claimed = [doc for doc in fresh if doc["state"] == "pending"]
        # Only deliveries that existed already (a redelivered event) are read back, to resume
        # whatever an earlier attempt left open; what we inserted is as we wrote it.
        ids = {doc["_id"] for doc in fresh}
        resumed = await self.deliveries.get_many([doc["_id"] for doc, _ in planned if doc["_id"] not in ids])
        await self._progress([doc for doc in fresh if doc["state"] != "pending"] + resumed, claimed=claimed)
