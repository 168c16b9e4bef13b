"""Forgetting a person (`ProfileErased`), and reading the inbox with people's current names.

What the service held about a person and what an erasure does there:
- the contact book entry -> a tombstone (id, `erased`, time): later profile events cannot bring it back;
- their own deliveries -> open ones cancelled, every one reduced to ids and states (no message,
  no held event, no failure details), their timers cancelled, held placeholders failed;
- their inbox -> deleted;
- other people's deliveries and inbox items that name them -> in-app texts hold people as
  references (rendered when read: "a former member"), and their free text is replaced by the
  version without it; open emails about them are cancelled (an email cannot be re-rendered without
  the event, and already names them); webhook bodies and held events lose their free text;
  finished deliveries keep ids and states only (already so since they finished).
Running it again changes nothing; events arriving later find the tombstone (see `planning`).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import structlog

from .. import domain
from ..adapters.deliveries import CHECKING, WAITING
from .waiting import ContactWaiting

log = structlog.get_logger()

FINAL_STATES = ("delivered", "failed", "skipped", "cancelled", "released")


class Erasure(ContactWaiting):
    async def forget(self, profile_id: str, as_of: datetime) -> None:
        now = self.clock.now()
        await self.contacts.erase(profile_id, as_of)
        await self.contact_arrived(profile_id)  # held messages for them now fail as "recipient erased"
        await self.deliveries.forget_recipient(profile_id, now)
        await self.ctx.timers.cancel_group(profile_id)  # quiet-hours releases, retries, contact re-checks
        await self.inbox.forget(profile_id)
        await self.inbox.redact_mentions(profile_id)
        changed = 0
        for doc in await self.deliveries.mentioning(profile_id):
            fields = self._without_erased(doc, now)
            if fields and await self.deliveries.rewrite(doc["_id"], doc["state"], fields):
                changed += 1
                if fields.get("state") == "cancelled":
                    await self._cancel_timers(doc)
        log.info("person forgotten", profile_id=profile_id, others_deliveries_changed=changed)

    def _without_erased(self, doc: dict[str, Any], now: datetime) -> dict[str, Any] | None:
        """What changes in another person's delivery whose event names an erased person."""
        state, channel, message = doc["state"], doc["channel"], doc.get("message")
        if state in FINAL_STATES:
            return {"message": None, "source_event": None} if message or doc.get("source_event") else None
        if state in (WAITING, CHECKING) and doc.get("source_event"):
            bare = domain.bare_event_json(doc["source_event"])
            return {"source_event": bare} if bare != doc["source_event"] else None
        if not message:
            return None
        if channel == domain.Channel.EMAIL:
            if state == "sending":  # being sent right now: its attempt decides (see `attempt`)
                return None
            return {
                "state": "cancelled",
                "reason": domain.ERASED_MENTION,
                "message": None,
                "due_at": None,
                "updated_at": now,
            }
        if channel == domain.Channel.IN_APP and message.get("redacted"):
            return {"message": {**message, **message["redacted"], "redacted": None}}
        if channel == domain.Channel.WEBHOOK and message.get("body"):
            bare = domain.bare_event_json(message["body"])
            return {"message": {**message, "body": bare}} if bare != message["body"] else None
        return None

    async def _cancel_timers(self, doc: dict[str, Any]) -> None:
        await self.ctx.timers.cancel(f"release:{doc['_id']}")
        await self.ctx.timers.cancel(f"retry:{doc['_id']}:{int(doc.get('attempt_count') or 0)}")

    # --- reading the inbox -----------------------------------------------------------------------
    async def inbox_page(
        self, profile_id: str, *, limit: int, after: tuple[datetime, str] | None, unread_only: bool
    ) -> list[dict[str, Any]]:
        """A page of the inbox with every person reference shown as that person's current name, and
        an item naming an erased person shown without free text (also when it was written in the
        instant the erasure ran, after the erasure had rewritten the stored items)."""
        items = await self.inbox.page(profile_id, limit=limit, after=after, unread_only=unread_only)
        people = domain.referenced_people(*(i[f] for i in items for f in ("title", "text")))
        people |= {pid for i in items if i.get("redacted") for pid in i.get("mentions") or []}
        contacts = await self.contacts.get_many(sorted(people)) if people else {}
        erased = {pid for pid, c in contacts.items() if c.get("erased")}
        names = {
            pid: domain.FORMER_MEMBER if pid in erased else str(c.get("display_name") or domain.UNKNOWN_MEMBER)
            for pid, c in contacts.items()
        }
        shown = []
        for item in items:
            if item.get("redacted") and erased.intersection(item.get("mentions") or []):
                item = {**item, **item["redacted"]}
            shown.append(
                {
                    **item,
                    "title": domain.resolve_refs(item["title"], names),
                    "text": domain.resolve_refs(item["text"], names),
                }
            )
        return shown
