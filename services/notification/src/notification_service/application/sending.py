"""One attempt at a delivery: claim it, send it (in-app inbox, email, webhook), record the outcome.

An attempt claims the delivery (pending -> sending, leased), sends, and records the outcome
with its event in one write. What a crash between "sent" and "recorded" does (email): the
delivery stays `sending` until its lease lapses; the recovery loop then claims it again and
sends it AGAIN, with the same Message-ID and delivery header. So the email channel is
AT-LEAST-ONCE for that window, chosen deliberately: a lost reminder is worse than a duplicate
that mail clients can collapse by Message-ID. The in-app channel is exactly-once (the inbox
item's id is the delivery key), and webhooks are at-least-once with a stable
`Mentorship-Delivery-Id` header for receivers to dedupe.
"""

from __future__ import annotations

import asyncio
import os
from datetime import datetime
from typing import Any

import httpx
import structlog

from mentorship_contracts import Envelope
from mentorship_contracts.notification import NotificationDelivered, WebhookEndpointDisabled
from mentorship_kit.metrics import DELIVERIES_FAILED

from .. import domain
from ..adapters.deliveries import WAITING
from ..adapters.smtp import SendFailed, build_email
from ..adapters.webhooks import ForbiddenUrl
from .base import RELEASE_TIMER, RETRY_TIMER, EndpointFailure, NotificationBase

log = structlog.get_logger()


class DeliveryAttempts(NotificationBase):
    async def _progress(self, deliveries: list[dict[str, Any]], claimed: list[dict[str, Any]]) -> None:
        """Schedule held deliveries, attempt pending ones, and send those `claimed` at insert
        (given as they were before the claim)."""
        due: list[str] = []
        for doc in deliveries:
            if doc["state"] == "held":
                await self._schedule(RELEASE_TIMER, f"release:{doc['_id']}", doc["due_at"], doc)
            elif doc["state"] == WAITING:
                await self._schedule_recheck(doc)
            elif doc["state"] == "pending":
                due.append(doc["_id"])
            # `sending` with a live lease belongs to another attempt; a lapsed one to recovery
        in_app = [d for d in claimed if d["channel"] == domain.Channel.IN_APP and d["state"] == "pending"]
        others = [d for d in claimed if not any(d is i for i in in_app)]
        await asyncio.gather(
            *(self.attempt(d) for d in due),
            *(self._attempt_claimed(d) for d in others),
            self._deliver_in_app(in_app),
        )

    async def _deliver_in_app(self, claimed: list[dict[str, Any]]) -> None:
        """First attempts of an event's in-app deliveries, together: their inbox items in one
        insert, their outcomes (delivered + NotificationDelivered) in one bulk write. The same
        steps as `_attempt_claimed`, which takes over for all of them if the store fails here."""
        if len(claimed) < 2:
            await asyncio.gather(*(self._attempt_claimed(d) for d in claimed))
            return
        try:
            await self.inbox.put_many([self._inbox_item(d) for d in claimed])
            await self._redact_if_erased_meanwhile(claimed)
        except Exception as exc:  # a store hiccup: each one goes the usual way (retries, failure events)
            log.warning("in-app batch failed; attempting one by one", error=repr(exc)[:300])
            await asyncio.gather(*(self._attempt_claimed(d) for d in claimed))
            return
        now = self.clock.now()
        outcomes = [self._delivered_outcome(d, int(d.get("attempt_count") or 0) + 1, [], now) for d in claimed]
        recorded = await self.deliveries.finish_many(
            [
                (d["_id"], fields, attempt_log, [event])
                for d, (fields, attempt_log, event) in zip(claimed, outcomes, strict=True)
            ]
        )
        if any(recorded):
            self.ctx.events_written()
        for d, ok in zip(claimed, recorded, strict=True):
            if not ok:  # our lease lapsed and another attempt took over: it records its own outcome
                log.warning("delivery outcome not recorded: lease lost", delivery_id=d["_id"])

    async def _redact_if_erased_meanwhile(self, deliveries: list[dict[str, Any]]) -> None:
        """A person an item names was erased while it was on its way: its redacted text replaces it
        (the tombstone is written before the erasure rewrites the inbox, so one of the two sees it)."""
        with_text = [d for d in deliveries if (d.get("message") or {}).get("redacted")]
        if not with_text:
            return
        people = sorted({p for d in with_text for p in [d["recipient_id"], *(d.get("mentions") or [])]})
        erased = {pid for pid, c in (await self.contacts.get_many(people)).items() if c.get("erased")}
        for d in with_text:
            if erased & {d["recipient_id"], *(d.get("mentions") or [])}:
                await self.inbox.redact(d["_id"])

    async def attempt(self, delivery_id: str) -> str | None:
        """Claim, send, record. Returns the new state, or None if not ours to send."""
        now = self.clock.now()
        before = await self.deliveries.claim(delivery_id, now)
        if before is None:
            return None
        before = await self._still_sendable(before)
        if before is None:
            return "cancelled"
        return await self._attempt_claimed(before, now)

    async def _still_sendable(self, before: dict[str, Any]) -> dict[str, Any] | None:
        """A claimed delivery about to be sent again (retry, quiet hours over, recovery): None if its
        recipient or, for an email, a person it names was erased meanwhile (it is then cancelled);
        else the delivery, its in-app text or webhook body without the free text of an erased person."""
        cancel, erased_mention = await self._erasure_check(before)
        if cancel:
            await self.deliveries.finish(
                before["_id"],
                {
                    "state": "cancelled",
                    "reason": cancel,
                    "message": None,
                    "due_at": None,
                    "updated_at": self.clock.now(),
                },
                [],
                [],
            )
            return None
        message = before.get("message") or {}
        if erased_mention and before["channel"] == domain.Channel.IN_APP and message.get("redacted"):
            return {**before, "message": {**message, **message["redacted"], "redacted": None}}
        if erased_mention and before["channel"] == domain.Channel.WEBHOOK and message.get("body"):
            return {**before, "message": {**message, "body": domain.bare_event_json(message["body"])}}
        return before

    async def _erasure_check(self, doc: dict[str, Any]) -> tuple[str | None, bool]:
        """(why to cancel it, if so; whether a person it names is erased), from the contact book."""
        person = doc.get("recipient_kind", "person") == "person"
        people = [doc["recipient_id"]] if person else []
        people += [p for p in doc.get("mentions") or [] if p not in people]
        contacts = await self.contacts.get_many(people) if people else {}
        erased = {pid for pid, c in contacts.items() if c.get("erased")}
        if person and doc["recipient_id"] in erased:
            return "recipient erased", True
        if erased and doc["channel"] == domain.Channel.EMAIL:
            return domain.ERASED_MENTION, True
        return None, bool(erased)

    async def _attempt_claimed(self, before: dict[str, Any], now: datetime | None = None) -> str:
        """Send and record a delivery we hold the claim on; `before` is it as it was before the claim."""
        now = now or self.clock.now()
        n = int(before.get("attempt_count") or 0) + 1
        attempt_log: list[dict[str, Any]] = []
        if before["state"] == "sending":
            attempt_log.append(
                {
                    "n": n - 1,
                    "at": now,
                    "outcome": "abandoned",
                    "detail": "the sender stopped before recording an outcome; sending again "
                    "(same Message-ID / delivery id)",
                }
            )
        failure: SendFailed | None = None
        try:
            await self._send(before)
        except SendFailed as exc:
            failure = exc
        except Exception as exc:  # a store or library hiccup: transient, never a crash of the consumer
            failure = SendFailed(f"unexpected {type(exc).__name__}: {str(exc)[:200]}", permanent=False)
        now = self.clock.now()
        if failure is None:
            return await self._delivered(before, n, attempt_log, now)
        return await self._failed(before, n, attempt_log, failure, now)

    async def _send(self, delivery: dict[str, Any]) -> None:
        message = delivery.get("message") or {}
        channel = delivery["channel"]
        if channel == domain.Channel.IN_APP:
            await self.inbox.put(self._inbox_item(delivery))
            if message.get("redacted") and (await self._erasure_check(delivery))[1]:
                # A person it names was erased while this was on its way (the tombstone is written
                # before the erasure rewrites the inbox, so one of the two sees this item).
                await self.inbox.redact(delivery["_id"])
        elif channel == domain.Channel.EMAIL:
            email = build_email(
                sender=self.settings.smtp_from,
                to_name=message["to_name"],
                to_address=message["to_address"],
                subject=message["subject"],
                text=message["text"],
                html=message["html"],
                message_id=domain.message_id(delivery["_id"], self.settings.message_id_domain),
                date=delivery["created_at"],
                delivery_id=delivery["_id"],
                ics=message.get("ics"),
                ics_method=message.get("ics_method"),
            )
            await self.mailer.send(email, message["to_address"])
            if self.settings.fault_exit_after_email_sent:
                os._exit(70)  # test-only: die between the SMTP send and recording it
        elif channel == domain.Channel.WEBHOOK:
            await self._post_webhook(delivery, message)
        else:
            raise SendFailed(f"no channel {channel!r}", permanent=True)

    def _inbox_item(self, delivery: dict[str, Any]) -> dict[str, Any]:
        message = delivery.get("message") or {}
        return {
            "_id": delivery["_id"],
            "recipient_id": delivery["recipient_id"],
            "category": delivery["category"],
            "title": message["title"],
            "text": message["text"],
            "template": message.get("template"),
            "mentions": delivery.get("mentions") or [],
            "redacted": message.get("redacted"),
            "source_event_id": delivery["source_event_id"],
            "source_event_type": delivery["source_event_type"],
            "created_at": self.clock.now(),
            "read_at": None,
        }

    async def _post_webhook(self, delivery: dict[str, Any], message: dict[str, Any]) -> None:
        endpoint = await self.endpoints.get(delivery["recipient_id"])
        if endpoint is None:
            raise SendFailed("webhook endpoint was deleted", permanent=True)
        if not endpoint.get("enabled"):
            raise SendFailed("webhook endpoint is disabled", permanent=True)
        try:
            result = await self.webhooks.post(
                url=endpoint["url"],
                secret=endpoint["secret"],
                body=message["body"].encode(),
                headers={
                    "Mentorship-Delivery-Id": delivery["_id"],
                    "Mentorship-Event-Id": delivery["source_event_id"],
                    "Mentorship-Event-Type": delivery["source_event_type"],
                },
            )
        except ForbiddenUrl as exc:
            raise EndpointFailure(str(exc), permanent=True) from exc
        except httpx.HTTPError as exc:
            raise EndpointFailure(f"{type(exc).__name__}: {str(exc)[:200]}", permanent=False) from exc
        status = result.status or 0
        if 200 <= status < 300:
            await self.endpoints.succeeded(endpoint["_id"])
            return
        # 5xx, 408 and 429 may pass; any other answer (3xx, 4xx) will not change by retrying.
        retryable = status >= 500 or status in (408, 429)
        raise EndpointFailure(f"endpoint answered {result.detail}", permanent=not retryable)

    async def _delivered(self, before: dict[str, Any], n: int, attempt_log: list[dict[str, Any]], now: datetime) -> str:
        fields, attempt_log, event = self._delivered_outcome(before, n, attempt_log, now)
        await self._finish(before, fields, attempt_log, [event])
        return "delivered"

    def _delivered_outcome(
        self, before: dict[str, Any], n: int, attempt_log: list[dict[str, Any]], now: datetime
    ) -> tuple[dict[str, Any], list[dict[str, Any]], Envelope[Any]]:
        """What a delivered attempt records: fields, the attempt log, NotificationDelivered."""
        attempt_log = [*attempt_log, {"n": n, "at": now, "outcome": "delivered", "detail": None}]
        event = self._about(
            before,
            NotificationDelivered(
                delivery_id=before["_id"],
                recipient_id=before["recipient_id"],
                channel=before["channel"],
                category=before["category"],
                source_event_id=before["source_event_id"],
                source_event_type=before["source_event_type"],
                delivered_at=now,
                attempts=n,
            ),
            now,
        )
        # Sent: the log keeps ids and status only (the message, with names and addresses, is gone).
        fields = {
            "state": "delivered",
            "delivered_at": now,
            "reason": None,
            "due_at": None,
            "message": None,
            "updated_at": now,
        }
        return fields, attempt_log, event

    async def _failed(
        self, before: dict[str, Any], n: int, attempt_log: list[dict[str, Any]], failure: SendFailed, now: datetime
    ) -> str:
        attempt_log.append(
            {
                "n": n,
                "at": now,
                "outcome": "permanent_failure" if failure.permanent else "failure",
                "detail": failure.reason,
            }
        )
        log.warning(
            "delivery attempt failed",
            delivery_channel=before["channel"],
            attempt=n,
            permanent=failure.permanent,
            reason=failure.reason[:200],
        )
        endpoint_disabled = False
        if isinstance(failure, EndpointFailure):
            endpoint_disabled = await self._count_endpoint_failure(before["recipient_id"], failure, now)
        if failure.permanent or endpoint_disabled or n >= self.settings.delivery_max_attempts:
            reason = (
                failure.reason
                if failure.permanent or endpoint_disabled
                else f"gave up after {n} attempts: {failure.reason}"
            )
            event = self._failed_event(before, reason, permanent=failure.permanent, attempts=n, now=now)
            fields = {
                "state": "failed",
                "reason": reason,
                "failed_at": now,
                "due_at": None,
                "message": None,
                "updated_at": now,
            }
            await self._finish(before, fields, attempt_log, [event])
            DELIVERIES_FAILED.labels(self.ctx.events.source, before["channel"], "failed").inc()
            return "failed"
        DELIVERIES_FAILED.labels(self.ctx.events.source, before["channel"], "retrying").inc()
        retry_at = now + domain.retry_delay(
            n, self.settings.delivery_retry_base_seconds, self.settings.delivery_retry_max_seconds
        )
        fields = {"state": "retrying", "reason": failure.reason, "due_at": retry_at, "updated_at": now}
        if await self._finish(before, fields, attempt_log, []):
            timer_id = f"retry:{before['_id']}:{n}"
            await self._schedule(RETRY_TIMER, timer_id, retry_at, before)
            # Erased while this attempt was under way (the erasure left a `sending` email to us):
            # the retry must not keep the message or send it.
            cancel, _ = await self._erasure_check(before)
            if cancel is not None and await self.deliveries.rewrite(
                before["_id"],
                "retrying",
                {"state": "cancelled", "reason": cancel, "message": None, "due_at": None, "updated_at": now},
            ):
                await self.ctx.timers.cancel(timer_id)
                return "cancelled"
        return "retrying"

    async def _count_endpoint_failure(self, endpoint_id: str, failure: SendFailed, now: datetime) -> bool:
        failures = await self.endpoints.failed(endpoint_id)
        threshold = self.settings.webhook_disable_after_failures
        if failures < threshold:
            return False
        reason = f"{failures} consecutive failed deliveries, last: {failure.reason}"[:500]
        event = self.ctx.events.new(
            WebhookEndpointDisabled(
                endpoint_id=endpoint_id, reason=reason, consecutive_failures=failures, disabled_at=now
            ),
            time=now,
        )
        if await self.endpoints.disable(endpoint_id, reason, threshold, now, [event]):
            log.warning("webhook endpoint disabled", endpoint_id=endpoint_id, consecutive_failures=failures)
            self.ctx.events_written()
        return True

    async def _finish(
        self,
        before: dict[str, Any],
        fields: dict[str, Any],
        attempt_log: list[dict[str, Any]],
        events: list[Envelope[Any]],
    ) -> bool:
        recorded = await self.deliveries.finish(before["_id"], fields, attempt_log, events)
        if recorded:
            self.ctx.events_written()
        else:  # our lease lapsed and another attempt took over: it records its own outcome
            log.warning("delivery outcome not recorded: lease lost", delivery_id=before["_id"])
        return recorded
