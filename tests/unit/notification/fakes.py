"""In-memory ports of the notification service: the contact book, the delivery log (with the
claim/lease/finish contract of `adapters.deliveries`), the inbox, webhook endpoints, session
durations, and senders that record what they were asked to send."""

from __future__ import annotations

import copy
from datetime import datetime, timedelta
from email.message import EmailMessage
from typing import Any

from mentorship_contracts import Envelope
from mentorship_contracts.profile import ProfileSnapshot
from notification_service.adapters.deliveries import CHECKING, WAITING
from notification_service.adapters.smtp import SendFailed
from notification_service.adapters.webhooks import WebhookResult


class FakeContacts:
    def __init__(self) -> None:
        self.docs: dict[str, dict[str, Any]] = {}

    async def apply_snapshot(self, profile: ProfileSnapshot, as_of: datetime) -> None:
        current = self.docs.get(profile.profile_id)
        if current is not None and (current.get("erased") or current["as_of"] > as_of):
            return
        self.docs[profile.profile_id] = {
            "_id": profile.profile_id,
            "display_name": profile.display_name,
            "email": profile.email,
            "time_zone": profile.time_zone,
            "active": profile.active,
            "as_of": as_of,
            "preferences": profile.notification_preferences.model_dump(mode="json"),
        }

    async def set_active(self, profile_id: str, active: bool, as_of: datetime) -> None:
        current = self.docs.get(profile_id)
        if current is not None and not current.get("erased") and current["as_of"] <= as_of:
            current.update(active=active, as_of=as_of)

    async def erase(self, profile_id: str, as_of: datetime) -> None:
        if not self.docs.get(profile_id, {}).get("erased"):
            self.docs[profile_id] = {"_id": profile_id, "erased": True, "as_of": as_of}

    async def get_many(self, profile_ids: list[str]) -> dict[str, dict[str, Any]]:
        return {pid: dict(self.docs[pid]) for pid in profile_ids if pid in self.docs}

    async def get(self, profile_id: str) -> dict[str, Any] | None:
        doc = self.docs.get(profile_id)
        return dict(doc) if doc else None


class FakeWaits:
    def __init__(self) -> None:
        self.waits: dict[str, list[str]] = {}

    async def add(self, profile_id: str, delivery_ids: list[str]) -> None:
        listed = self.waits.setdefault(profile_id, [])
        listed += [d for d in delivery_ids if d not in listed]

    async def waiting(self, profile_id: str) -> list[str]:
        return list(self.waits.get(profile_id, []))

    async def done(self, profile_id: str, delivery_id: str) -> None:
        listed = self.waits.get(profile_id, [])
        if delivery_id in listed:
            listed.remove(delivery_id)
        if not listed:
            self.waits.pop(profile_id, None)


class FakeDeliveries:
    def __init__(self, lease: timedelta = timedelta(seconds=60)) -> None:
        self.docs: dict[str, dict[str, Any]] = {}
        self.outbox: list[Envelope[Any]] = []
        self.lease = lease
        self.owner = "this-process"

    async def create_many(self, planned: list[tuple[dict[str, Any], list[Envelope[Any]]]]) -> list[bool]:
        created = []
        for doc, events in planned:
            new = doc["_id"] not in self.docs
            if new:
                self.docs[doc["_id"]] = copy.deepcopy(doc)
                self.outbox += events
            created.append(new)
        return created

    async def get(self, delivery_id: str) -> dict[str, Any] | None:
        return copy.deepcopy(self.docs.get(delivery_id))

    async def get_many(self, ids: list[str]) -> list[dict[str, Any]]:
        return [copy.deepcopy(self.docs[i]) for i in dict.fromkeys(ids) if i in self.docs]

    def claimed(self, doc: dict[str, Any], now: datetime) -> dict[str, Any]:
        return {
            **doc,
            "state": "sending",
            "lease_until": now + self.lease,
            "lease_owner": self.owner,
            "updated_at": now,
            "attempt_count": int(doc.get("attempt_count") or 0) + 1,
        }

    def _take(self, delivery_id: str, now: datetime, free: str, busy: str) -> dict[str, Any] | None:
        doc = self.docs.get(delivery_id)
        if doc is None or not (doc["state"] == free or (doc["state"] == busy and doc["lease_until"] < now)):
            return None
        before = copy.deepcopy(doc)
        doc.update(state=busy, lease_until=now + self.lease, lease_owner=self.owner, updated_at=now)
        return before

    async def claim(self, delivery_id: str, now: datetime) -> dict[str, Any] | None:
        before = self._take(delivery_id, now, "pending", "sending")
        if before is not None:
            self.docs[delivery_id]["attempt_count"] = int(before.get("attempt_count") or 0) + 1
        return before

    async def claim_check(self, delivery_id: str, now: datetime) -> dict[str, Any] | None:
        return self._take(delivery_id, now, WAITING, CHECKING)

    async def finish(
        self,
        delivery_id: str,
        fields: dict[str, Any],
        attempt_log: list[dict[str, Any]],
        events: list[Envelope[Any]],
        *,
        from_state: str = "sending",
    ) -> bool:
        doc = self.docs.get(delivery_id)
        if doc is None or doc["state"] != from_state or doc.get("lease_owner") != self.owner:
            return False
        doc.update(fields, lease_until=None, lease_owner=None)
        doc["attempts"] = doc.get("attempts", []) + attempt_log
        self.outbox += events
        return True

    async def finish_many(
        self, outcomes: list[tuple[str, dict[str, Any], list[dict[str, Any]], list[Envelope[Any]]]]
    ) -> list[bool]:
        return [await self.finish(i, fields, log, events) for i, fields, log, events in outcomes]

    async def move(self, delivery_id: str, from_state: str, to_state: str, now: datetime) -> bool:
        doc = self.docs.get(delivery_id)
        if doc is None or doc["state"] != from_state:
            return False
        doc.update(state=to_state, updated_at=now)
        return True

    async def abandoned(self, now: datetime, limit: int = 100) -> list[dict[str, Any]]:
        grace = now - timedelta(seconds=30)
        return [
            {"_id": d["_id"], "state": d["state"]}
            for d in self.docs.values()
            if (d["state"] in ("sending", CHECKING) and d["lease_until"] < now)
            or (d["state"] == "pending" and d["updated_at"] < grace)
            or (d["state"] in ("held", "retrying", WAITING) and d["due_at"] < grace)
        ][:limit]

    async def forget_recipient(self, recipient_id: str, now: datetime) -> None:
        for d in self.docs.values():
            if d["recipient_id"] == recipient_id:
                if d["state"] in ("pending", "held", "retrying"):
                    d.update(state="cancelled", reason="recipient erased", updated_at=now)
                if d.get("reason") is not None and d["state"] != "skipped":
                    d["reason"] = "recipient erased"
                d.update(
                    message=None, source_event=None, attempts=[{**a, "detail": None} for a in d.get("attempts") or []]
                )

    async def mentioning(self, profile_id: str) -> list[dict[str, Any]]:
        return [
            copy.deepcopy(d)
            for d in self.docs.values()
            if profile_id in (d.get("mentions") or []) and d["recipient_id"] != profile_id
        ]

    async def rewrite(self, delivery_id: str, state: str, fields: dict[str, Any]) -> bool:
        doc = self.docs.get(delivery_id)
        if doc is None or doc["state"] != state:
            return False
        doc.update(copy.deepcopy(fields))
        return True

    async def log(
        self,
        *,
        recipient_id: str | None,
        state: str | None,
        source_event_id: str | None,
        channel: str | None,
        limit: int,
        before: datetime | None,
    ) -> list[dict[str, Any]]:
        wanted = {"recipient_id": recipient_id, "state": state, "source_event_id": source_event_id, "channel": channel}
        found = [
            d
            for d in self.docs.values()
            if all(v is None or d[k] == v for k, v in wanted.items()) and (before is None or d["created_at"] < before)
        ]
        return copy.deepcopy(sorted(found, key=lambda d: (d["created_at"], d["_id"]), reverse=True)[:limit])

    def of(self, recipient_id: str) -> dict[str, dict[str, Any]]:
        """This person's deliveries by channel."""
        return {d["channel"]: d for d in self.docs.values() if d["recipient_id"] == recipient_id}


class FakeInbox:
    def __init__(self) -> None:
        self.items: dict[str, dict[str, Any]] = {}

    async def put(self, item: dict[str, Any]) -> None:
        self.items.setdefault(item["_id"], dict(item))

    async def put_many(self, items: list[dict[str, Any]]) -> None:
        for item in items:
            await self.put(item)

    async def page(
        self, recipient_id: str, *, limit: int, after: tuple[datetime, str] | None, unread_only: bool
    ) -> list[dict[str, Any]]:
        mine = [
            i
            for i in self.items.values()
            if i["recipient_id"] == recipient_id
            and not (unread_only and i["read_at"])
            and (after is None or (i["created_at"], i["_id"]) < after)
        ]
        return sorted(mine, key=lambda i: (i["created_at"], i["_id"]), reverse=True)[:limit]

    async def unread_count(self, recipient_id: str) -> int:
        return sum(1 for i in self.items.values() if i["recipient_id"] == recipient_id and not i["read_at"])

    async def mark_all_read(self, recipient_id: str, now: datetime) -> int:
        unread = [i for i in self.items.values() if i["recipient_id"] == recipient_id and not i["read_at"]]
        for item in unread:
            item["read_at"] = now
        return len(unread)

    async def forget(self, recipient_id: str) -> None:
        self.items = {k: v for k, v in self.items.items() if v["recipient_id"] != recipient_id}

    async def redact(self, item_id: str) -> None:
        item = self.items.get(item_id)
        if item and item.get("redacted"):
            item.update(title=item["redacted"]["title"], text=item["redacted"]["text"], redacted=None)

    async def redact_mentions(self, profile_id: str) -> int:
        found = [i for i in self.items.values() if profile_id in (i.get("mentions") or []) and i.get("redacted")]
        for item in found:
            item.update(title=item["redacted"]["title"], text=item["redacted"]["text"], redacted=None)
        return len(found)


class FakeEndpoints:
    def __init__(self) -> None:
        self.docs: dict[str, dict[str, Any]] = {}
        self.outbox: list[Envelope[Any]] = []

    async def add(self, doc: dict[str, Any]) -> None:
        self.docs[doc["_id"]] = dict(doc)

    async def get(self, endpoint_id: str) -> dict[str, Any] | None:
        doc = self.docs.get(endpoint_id)
        return dict(doc) if doc else None

    async def all(self) -> list[dict[str, Any]]:
        return [dict(d) for d in self.docs.values()]

    async def subscribed(self, event_type: str) -> list[dict[str, Any]]:
        return [
            dict(d)
            for d in self.docs.values()
            if d["enabled"] and (event_type in d["event_types"] or "*" in d["event_types"])
        ]

    async def enable(self, endpoint_id: str, now: datetime) -> dict[str, Any] | None:
        doc = self.docs.get(endpoint_id)
        if doc is None:
            return None
        doc.update(enabled=True, consecutive_failures=0, disabled_reason=None, updated_at=now)
        return dict(doc)

    async def succeeded(self, endpoint_id: str) -> None:
        self.docs[endpoint_id]["consecutive_failures"] = 0

    async def failed(self, endpoint_id: str) -> int:
        doc = self.docs.get(endpoint_id)
        if doc is None:
            return 0
        doc["consecutive_failures"] += 1
        return int(doc["consecutive_failures"])

    async def disable(
        self, endpoint_id: str, reason: str, threshold: int, now: datetime, events: list[Envelope[Any]]
    ) -> bool:
        doc = self.docs[endpoint_id]
        if not doc["enabled"] or doc["consecutive_failures"] < threshold:
            return False
        doc.update(enabled=False, disabled_reason=reason, disabled_at=now)
        self.outbox += events
        return True


class FakeSessionDurations:
    def __init__(self) -> None:
        self.minutes_by_uid: dict[str, int] = {}

    async def remember(self, ical_uid: str, duration_minutes: int) -> None:
        self.minutes_by_uid[ical_uid] = duration_minutes

    async def minutes(self, ical_uid: str) -> int | None:
        return self.minutes_by_uid.get(ical_uid)


class FakeMailer:
    """Records each email; addresses in `refuse` fail permanently, as a 550 would."""

    sender_address = "no-reply@mentorship.local"

    def __init__(self) -> None:
        self.sent: list[tuple[EmailMessage, str]] = []
        self.refuse: set[str] = set()

    async def send(self, message: EmailMessage, recipient: str) -> None:
        if recipient in self.refuse:
            raise SendFailed(f"550 mailbox unavailable: {recipient}", permanent=True)
        self.sent.append((message, recipient))

    async def close(self) -> None:
        pass


class FakeWebhooks:
    """Answers each POST with the next status of `statuses` (then 204)."""

    def __init__(self, *statuses: int) -> None:
        self.statuses = list(statuses)
        self.calls: list[dict[str, Any]] = []

    async def post(self, *, url: str, secret: str, body: bytes, headers: dict[str, str]) -> WebhookResult:
        self.calls.append({"url": url, "body": body, "headers": headers})
        status = self.statuses.pop(0) if self.statuses else 204
        return WebhookResult(status, f"HTTP {status}")

    async def close(self) -> None:
        pass
