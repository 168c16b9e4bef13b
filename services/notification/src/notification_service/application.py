"""Use cases of the notification service.

From an event to messages: plan the deliveries (rules table x recipients x channels, after
preferences and quiet hours), create each as a document whose id is the delivery key, then
attempt the ones that are due. An attempt claims the delivery (pending -> sending, leased),
sends, and records the outcome with its event in one write. A recipient not yet in the contact
book is waited for (a held placeholder, re-checked by a timer and released by their profile event)
before failing as an unknown recipient.

What a crash between "sent" and "recorded" does (email): the delivery stays `sending` until
its lease lapses; the recovery loop then claims it again and sends it AGAIN, with the same
Message-ID and delivery header. So the email channel is AT-LEAST-ONCE for that window, chosen
deliberately: a lost reminder is worse than a duplicate that mail clients can collapse by
Message-ID. The in-app channel is exactly-once (the inbox item's id is the delivery key), and
webhooks are at-least-once with a stable `Mentorship-Delivery-Id` header for receivers to dedupe.
"""

from __future__ import annotations

import asyncio
import os
import secrets
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import httpx
import structlog

from mentorship_contracts import Envelope, EventData, decode, encode
from mentorship_contracts.notification import NotificationDelivered, NotificationFailed, WebhookEndpointDisabled
from mentorship_contracts.scheduling import SessionCancelled, SessionRescheduled, SessionScheduled
from mentorship_kit.clock import Clock
from mentorship_kit.metrics import DELIVERIES_FAILED
from mentorship_kit.problems import NotFound, Unprocessable
from mentorship_kit.timers import Timers

from . import domain
from .adapters.contacts import ContactBook, ContactWaits
from .adapters.deliveries import CHECKING, WAITING, DeliveryStore
from .adapters.inbox import Inbox
from .adapters.smtp import SendFailed, SmtpMailer, build_email
from .adapters.webhooks import EndpointStore, ForbiddenUrl, WebhookSender, check_url
from .settings import Settings
from .templates import Renderer, RenderError

SOURCE = "notification"
RELEASE_TIMER = "notification.release_held"
RETRY_TIMER = "notification.retry"
CONTACT_TIMER = "notification.contact_recheck"
UNKNOWN_RECIPIENT = "unknown recipient"
SESSIONS = "session_durations"

log = structlog.get_logger()


class EndpointFailure(SendFailed):
    """A failed webhook call that counts against its endpoint (not 'endpoint disabled')."""


class Notifications:
    def __init__(
        self, *, settings: Settings, clock: Clock, contacts: ContactBook, deliveries: DeliveryStore,
        inbox: Inbox, endpoints: EndpointStore, mailer: SmtpMailer, webhooks: WebhookSender, timers: Timers,
        db: Any, renderer: Renderer | None = None, on_events: Callable[[], None] = lambda: None,
        waits: ContactWaits | None = None,
    ) -> None:
        self.settings = settings
        self.clock = clock
        self.contacts = contacts
        self.deliveries = deliveries
        self.inbox = inbox
        self.endpoints = endpoints
        self.mailer = mailer
        self.webhooks = webhooks
        self.timers = timers
        self.sessions = db[SESSIONS]
        self.waits = waits or ContactWaits(db)
        self.contact_wait = timedelta(seconds=settings.contact_wait_seconds)
        self.contact_recheck = timedelta(seconds=settings.contact_recheck_seconds)
        self.renderer = renderer or Renderer()
        self.on_events = on_events
        self.urgent_window = timedelta(minutes=settings.urgent_reminder_minutes)

    # --- profile events: the contact book ------------------------------------------------------
    async def forget(self, profile_id: str, as_of: datetime) -> None:
        await self.contacts.erase(profile_id, as_of)
        await self.contact_arrived(profile_id)  # held messages for them now fail as "recipient erased"
        await self.deliveries.forget_recipient(profile_id, self.clock.now())
        await self.inbox.forget(profile_id)

    # --- events -> deliveries ------------------------------------------------------------------
    async def handle(self, envelope: Envelope[Any]) -> None:
        now = self.clock.now()
        data = envelope.data
        if isinstance(data, SessionScheduled | SessionRescheduled):
            await self.sessions.update_one({"_id": data.ical_uid},
                                           {"$set": {"duration_minutes": data.duration_minutes}}, upsert=True)
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

    async def _create_and_progress(self, planned: list[tuple[dict[str, Any], list[Envelope[Any]]]],
                                   now: datetime) -> None:
        # A delivery due now is inserted already claimed by us, exactly as `claim` would leave it:
        # the insert doubles as the claim (one store write fewer per message).
        created = await self.deliveries.create_many(
            [(self.deliveries.claimed(doc, now) if doc["state"] == "pending" else doc, events)
             for doc, events in planned])
        if any(new and events for new, (_, events) in zip(created, planned, strict=True)):
            self.on_events()
        fresh = [doc for new, (doc, _) in zip(created, planned, strict=True) if new]
        claimed = [doc for doc in fresh if doc["state"] == "pending"]
        # Only deliveries that existed already (a redelivered event) are read back, to resume
        # whatever an earlier attempt left open; what we inserted is as we wrote it.
        ids = {doc["_id"] for doc in fresh}
        resumed = await self.deliveries.get_many([doc["_id"] for doc, _ in planned if doc["_id"] not in ids])
        await self._progress([doc for doc in fresh if doc["state"] != "pending"] + resumed, claimed=claimed)

    async def _plan(self, envelope: Envelope[Any], now: datetime) -> list[tuple[dict[str, Any], list[Envelope[Any]]]]:
        planned = await self._plan_people(envelope, now)
        rule = domain.rule_for(envelope.data)
        for endpoint in await self.endpoints.subscribed(envelope.type):
            doc = self._base(envelope, endpoint["_id"], domain.Channel.WEBHOOK,
                             rule.category.value if rule else "events", now)
            doc.update(recipient_kind="webhook", state="pending", message={"body": encode(envelope).decode()})
            planned.append((doc, []))
        return planned

    async def _plan_people(self, envelope: Envelope[Any], now: datetime, only: str | None = None,
                           ) -> list[tuple[dict[str, Any], list[Envelope[Any]]]]:
        """The personal deliveries of an event (of one recipient, `only`)."""
        data = envelope.data
        planned: list[tuple[dict[str, Any], list[Envelope[Any]]]] = []
        rule = domain.rule_for(data)
        if rule is not None:
            people = [(pid, who) for pid, who in domain.recipients(rule, data) if only in (None, pid)]
            mentioned = {v for f in ("mentee_id", "mentor_id", "contact_id", "introduced_by")
                         if isinstance(v := getattr(data, f, None), str)}
            contacts = await self.contacts.get_many(sorted(mentioned | {pid for pid, _ in people}))
            names = {pid: c["display_name"] for pid, c in contacts.items() if not c.get("erased")}
            urgent = domain.is_urgent(data, now, self.urgent_window)
            for pid, audience in people:
                planned += await self._personal(envelope, rule, pid, audience, contacts.get(pid), names,
                                                urgent, now)
        return planned

    def _base(self, envelope: Envelope[Any], recipient_id: str, channel: str, category: str,
              now: datetime) -> dict[str, Any]:
        return {
            "_id": domain.delivery_id(envelope.id, recipient_id, channel),
            "source_event_id": envelope.id, "source_event_type": envelope.type,
            "correlation_id": envelope.correlationid, "recipient_id": recipient_id, "recipient_kind": "person",
            "channel": channel, "category": category, "state": "pending", "reason": None, "urgent": False,
            "message": None, "due_at": None, "attempts": [], "attempt_count": 0, "lease_until": None,
            "lease_owner": None, "created_at": now, "updated_at": now,
        }

    async def _personal(
        self, envelope: Envelope[Any], rule: domain.Rule, pid: str, audience: str, contact: dict[str, Any] | None,
        names: dict[str, str], urgent: bool, now: datetime,
    ) -> list[tuple[dict[str, Any], list[Envelope[Any]]]]:
        category = rule.category.value
        if contact is None and self.contact_wait:
            # Profile events come on their own consumer: this person may simply not have reached
            # the contact book yet. Hold one placeholder (channel "none"); it is planned again
            # when they arrive, and fails as an unknown recipient only after the grace period.
            doc = self._base(envelope, pid, "none", category, now)
            wait_until = now + self.contact_wait
            doc.update(state=WAITING, reason="recipient not in the contact book yet", wait_until=wait_until,
                       due_at=min(now + self.contact_recheck, wait_until), contact_checks=0,
                       source_event=encode(envelope).decode())
            log.info("notification waits for its recipient's contact", recipient_id=pid)
            return [(doc, [])]
        if contact is None or contact.get("erased"):
            reason = "recipient erased" if contact else UNKNOWN_RECIPIENT
            doc = self._base(envelope, pid, "none", category, now)
            doc.update(state="failed", reason=reason)
            log.warning("notification recipient not found", recipient_id=pid, reason=reason)
            return [(doc, [self._failed_event(doc, reason, permanent=True, attempts=0, now=now)])]
        try:
            rendered = self.renderer.render(rule.template, me=contact["display_name"],
                                            time_zone=contact.get("time_zone") or "UTC", audience=audience,
                                            event=envelope.data, names=names)
            render_error = None
        except RenderError as exc:
            rendered, render_error = None, str(exc)
            log.error("template failed", template=rule.template, error=render_error[:300])
        prefs = contact.get("preferences") or {}
        hold_until = None if urgent else domain.quiet_hours_end(now, contact.get("time_zone") or "UTC",
                                                                prefs.get("quiet_hours"))
        out: list[tuple[dict[str, Any], list[Envelope[Any]]]] = []
        for channel in domain.PERSONAL_CHANNELS:
            doc = self._base(envelope, pid, channel.value, category, now)
            doc["urgent"] = urgent
            skip = domain.skip_reason(contact, channel, rule.category)
            if skip:
                doc.update(state="skipped", reason=skip)
                out.append((doc, []))
                continue
            if rendered is None:
                doc.update(state="failed", reason=render_error)
                out.append((doc, [self._failed_event(doc, render_error or "", permanent=True, attempts=0,
                                                     now=now)]))
                continue
            if channel is domain.Channel.EMAIL:
                doc["message"] = {
                    "to_name": contact["display_name"], "to_address": contact["email"],
                    "subject": rendered.subject, "text": rendered.text, "html": rendered.html,
                    **await self._invite(rule, envelope.data, contact["email"], rendered.subject, now),
                }
            else:
                doc["message"] = {"title": rendered.subject, "text": rendered.in_app, "template": rule.template}
            if hold_until is not None:
                doc.update(state="held", due_at=hold_until, reason="quiet hours")
            out.append((doc, []))
        return out

    async def _invite(self, rule: domain.Rule, data: EventData, attendee: str, summary: str,
                      now: datetime) -> dict[str, Any]:
        if rule.calendar is None:
            return {}
        duration = getattr(data, "duration_minutes", None)
        if duration is None and isinstance(data, SessionCancelled):
            known = await self.sessions.find_one({"_id": data.ical_uid})
            duration = known["duration_minutes"] if known else 60
        ics = domain.icalendar(
            method=rule.calendar, uid=data.ical_uid, sequence=data.sequence, start=data.start,  # type: ignore[attr-defined]
            duration_minutes=int(duration or 60), summary=summary, organizer=self.mailer.sender_address,
            attendee=attendee, stamp=now, location=getattr(data, "location", None),
        )
        return {"ics": ics, "ics_method": rule.calendar}

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
        await asyncio.gather(*(self.attempt(d) for d in due), *(self._attempt_claimed(d) for d in claimed))

    async def _schedule(self, kind: str, timer_id: str, due_at: datetime, doc: dict[str, Any]) -> None:
        await self.timers.schedule(timer_id, kind, due_at, {"delivery_id": doc["_id"]}, group=doc["recipient_id"])

    async def _schedule_recheck(self, doc: dict[str, Any]) -> None:
        # One timer per check: a fired timer is never moved, the next check gets its own id.
        await self._schedule(CONTACT_TIMER, f"contact:{doc['_id']}:{doc.get('contact_checks') or 0}",
                             doc["due_at"], doc)

    # --- recipients not yet in the contact book -------------------------------------------------
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
            fields = {"state": "released", "reason": None, "due_at": None, "source_event": None,
                      "contact_checks": checks, "updated_at": now}
            await self._finish_check(before, fields, [])
            fresh = {doc["_id"] for new, (doc, _) in zip(created, planned, strict=True) if new}
            if any(new and events for new, (_, events) in zip(created, planned, strict=True)):
                self.on_events()
            await self._progress(await self.deliveries.get_many([doc["_id"] for doc, _ in planned]), claimed=[])
            log.info("held notification released: recipient arrived", recipient_id=pid, deliveries=len(fresh))
            return
        if contact is not None or now >= before["wait_until"]:
            reason = "recipient erased" if contact is not None else UNKNOWN_RECIPIENT
            event = self._failed_event(before, reason, permanent=True, attempts=0, now=now)
            fields = {"state": "failed", "reason": reason, "failed_at": now, "due_at": None, "source_event": None,
                      "contact_checks": checks, "updated_at": now}
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

    async def _finish_check(self, before: dict[str, Any], fields: dict[str, Any],
                            events: list[Envelope[Any]]) -> None:
        if await self.deliveries.finish(before["_id"], fields, [], events, from_state=CHECKING):
            await self.waits.done(before["recipient_id"], before["_id"])
            if events:
                self.on_events()

    # --- one attempt ----------------------------------------------------------------------------
    async def attempt(self, delivery_id: str) -> str | None:
        """Claim, send, record. Returns the new state, or None if not ours to send."""
        now = self.clock.now()
        before = await self.deliveries.claim(delivery_id, now)
        if before is None:
            return None
        return await self._attempt_claimed(before, now)

    async def _attempt_claimed(self, before: dict[str, Any], now: datetime | None = None) -> str:
        """Send and record a delivery we hold the claim on; `before` is it as it was before the claim."""
        now = now or self.clock.now()
        n = int(before.get("attempt_count") or 0) + 1
        attempt_log: list[dict[str, Any]] = []
        if before["state"] == "sending":
            attempt_log.append({"n": n - 1, "at": now, "outcome": "abandoned",
                                "detail": "the sender stopped before recording an outcome; sending again "
                                          "(same Message-ID / delivery id)"})
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
            await self.inbox.put({
                "_id": delivery["_id"], "recipient_id": delivery["recipient_id"], "category": delivery["category"],
                "title": message["title"], "text": message["text"], "template": message.get("template"),
                "source_event_id": delivery["source_event_id"], "source_event_type": delivery["source_event_type"],
                "created_at": self.clock.now(), "read_at": None,
            })
        elif channel == domain.Channel.EMAIL:
            email = build_email(
                sender=self.settings.smtp_from, to_name=message["to_name"], to_address=message["to_address"],
                subject=message["subject"], text=message["text"], html=message["html"],
                message_id=domain.message_id(delivery["_id"], self.settings.message_id_domain),
                date=delivery["created_at"], delivery_id=delivery["_id"], ics=message.get("ics"),
                ics_method=message.get("ics_method"),
            )
            await self.mailer.send(email, message["to_address"])
            if self.settings.fault_exit_after_email_sent:
                os._exit(70)  # test-only: die between the SMTP send and recording it
        elif channel == domain.Channel.WEBHOOK:
            await self._post_webhook(delivery, message)
        else:
            raise SendFailed(f"no channel {channel!r}", permanent=True)

    async def _post_webhook(self, delivery: dict[str, Any], message: dict[str, Any]) -> None:
        endpoint = await self.endpoints.get(delivery["recipient_id"])
        if endpoint is None:
            raise SendFailed("webhook endpoint was deleted", permanent=True)
        if not endpoint.get("enabled"):
            raise SendFailed("webhook endpoint is disabled", permanent=True)
        try:
            result = await self.webhooks.post(
                url=endpoint["url"], secret=endpoint["secret"], body=message["body"].encode(),
                headers={"Mentorship-Delivery-Id": delivery["_id"], "Mentorship-Event-Id": delivery["source_event_id"],
                         "Mentorship-Event-Type": delivery["source_event_type"]},
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
        raise EndpointFailure(f"endpoint answered {result.detail}", permanent=not (status >= 500 or status in (408, 429)))

    async def _delivered(self, before: dict[str, Any], n: int, attempt_log: list[dict[str, Any]],
                         now: datetime) -> str:
        attempt_log.append({"n": n, "at": now, "outcome": "delivered", "detail": None})
        event = Envelope.wrap(
            NotificationDelivered(
                delivery_id=before["_id"], recipient_id=before["recipient_id"], channel=before["channel"],
                category=before["category"], source_event_id=before["source_event_id"],
                source_event_type=before["source_event_type"], delivered_at=now, attempts=n,
            ),
            source=SOURCE, correlation_id=before["correlation_id"], causation_id=before["source_event_id"], time=now,
        )
        fields = {"state": "delivered", "delivered_at": now, "reason": None, "due_at": None, "updated_at": now}
        await self._finish(before, fields, attempt_log, [event])
        return "delivered"

    async def _failed(self, before: dict[str, Any], n: int, attempt_log: list[dict[str, Any]],
                      failure: SendFailed, now: datetime) -> str:
        attempt_log.append({"n": n, "at": now, "outcome": "permanent_failure" if failure.permanent else "failure",
                            "detail": failure.reason})
        log.warning("delivery attempt failed", delivery_channel=before["channel"], attempt=n,
                    permanent=failure.permanent, reason=failure.reason[:200])
        endpoint_disabled = False
        if isinstance(failure, EndpointFailure):
            endpoint_disabled = await self._count_endpoint_failure(before["recipient_id"], failure, now)
        if failure.permanent or endpoint_disabled or n >= self.settings.delivery_max_attempts:
            reason = failure.reason if failure.permanent or endpoint_disabled \
                else f"gave up after {n} attempts: {failure.reason}"
            event = self._failed_event(before, reason, permanent=failure.permanent, attempts=n, now=now)
            fields = {"state": "failed", "reason": reason, "failed_at": now, "due_at": None, "updated_at": now}
            await self._finish(before, fields, attempt_log, [event])
            DELIVERIES_FAILED.labels(SOURCE, before["channel"], "failed").inc()
            return "failed"
        DELIVERIES_FAILED.labels(SOURCE, before["channel"], "retrying").inc()
        retry_at = now + domain.retry_delay(n, self.settings.delivery_retry_base_seconds,
                                            self.settings.delivery_retry_max_seconds)
        fields = {"state": "retrying", "reason": failure.reason, "due_at": retry_at, "updated_at": now}
        if await self._finish(before, fields, attempt_log, []):
            await self._schedule(RETRY_TIMER, f"retry:{before['_id']}:{n}", retry_at, before)
        return "retrying"

    async def _count_endpoint_failure(self, endpoint_id: str, failure: SendFailed, now: datetime) -> bool:
        failures = await self.endpoints.failed(endpoint_id)
        threshold = self.settings.webhook_disable_after_failures
        if failures < threshold:
            return False
        reason = f"{failures} consecutive failed deliveries, last: {failure.reason}"[:500]
        event = Envelope.wrap(
            WebhookEndpointDisabled(endpoint_id=endpoint_id, reason=reason, consecutive_failures=failures,
                                    disabled_at=now),
            source=SOURCE, time=now,
        )
        if await self.endpoints.disable(endpoint_id, reason, threshold, now, [event]):
            log.warning("webhook endpoint disabled", endpoint_id=endpoint_id, consecutive_failures=failures)
            self.on_events()
        return True

    async def _finish(self, before: dict[str, Any], fields: dict[str, Any], attempt_log: list[dict[str, Any]],
                      events: list[Envelope[Any]]) -> bool:
        recorded = await self.deliveries.finish(before["_id"], fields, attempt_log, events)
        if recorded:
            self.on_events()
        else:  # our lease lapsed and another attempt took over: it records its own outcome
            log.warning("delivery outcome not recorded: lease lost", delivery_id=before["_id"])
        return recorded

    def _failed_event(self, doc: dict[str, Any], reason: str, *, permanent: bool, attempts: int,
                      now: datetime) -> Envelope[Any]:
        return Envelope.wrap(
            NotificationFailed(
                delivery_id=doc["_id"], recipient_id=doc["recipient_id"], channel=doc["channel"],
                category=doc["category"], source_event_id=doc["source_event_id"],
                source_event_type=doc["source_event_type"], reason=reason[:2000], permanent=permanent,
                failed_at=now, attempts=attempts,
            ),
            source=SOURCE, correlation_id=doc["correlation_id"], causation_id=doc["source_event_id"], time=now,
        )

    # --- timers and recovery --------------------------------------------------------------------
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

    # --- webhook endpoints (admin) --------------------------------------------------------------
    async def register_endpoint(self, *, url: str, secret: str | None, event_types: list[str],
                                description: str, known_types: set[str]) -> dict[str, Any]:
        try:
            await check_url(url, allow_loopback=self.settings.webhook_allow_loopback,
                            allow_private=self.settings.webhook_allow_private)
        except ForbiddenUrl as exc:
            raise Unprocessable(str(exc), field="url") from exc
        unknown = sorted(set(event_types) - known_types - {"*"})
        if unknown:
            raise Unprocessable(f"unknown event type(s): {', '.join(unknown)}", field="event_types")
        now = self.clock.now()
        doc = {
            "_id": f"wh_{secrets.token_hex(8)}", "url": url, "secret": secret or f"whsec_{secrets.token_urlsafe(32)}",
            "event_types": sorted(set(event_types)), "description": description, "enabled": True,
            "consecutive_failures": 0, "disabled_reason": None, "created_at": now, "updated_at": now,
        }
        await self.endpoints.add(doc)
        return doc

    async def enable_endpoint(self, endpoint_id: str) -> dict[str, Any]:
        doc = await self.endpoints.enable(endpoint_id, self.clock.now())
        if doc is None:
            raise NotFound("webhook endpoint", endpoint_id)
        return doc
