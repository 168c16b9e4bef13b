"""From an event to the deliveries it calls for: the rules table x recipients x channels, after
preferences and quiet hours, rendered; plus one delivery per subscribed webhook endpoint.

A recipient not yet in the contact book gets one held placeholder instead (see `waiting`).
Nothing here writes: planning returns (delivery document, its events) pairs.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import structlog

from mentorship_contracts import Envelope, EventData, encode
from mentorship_contracts.registry import superseded_by_upcast
from mentorship_contracts.scheduling import SessionCancelledV2

from .. import domain
from ..adapters.deliveries import WAITING
from ..templates import RenderError
from .base import UNKNOWN_RECIPIENT, NotificationBase

log = structlog.get_logger()

Planned = list[tuple[dict[str, Any], list[Envelope[Any]]]]


class DeliveryPlanning(NotificationBase):
    async def _plan(self, envelope: Envelope[Any], now: datetime) -> Planned:
        planned = await self._plan_people(envelope, now)
        rule = domain.rule_for(envelope.data)
        endpoints = await self._subscribed(envelope.type)
        if endpoints:
            body = encode(await self._forwardable(envelope)).decode()
        for endpoint in endpoints:
            doc = self._base(
                envelope, endpoint["_id"], domain.Channel.WEBHOOK, rule.category.value if rule else "events", now
            )
            doc.update(recipient_kind="webhook", state="pending", message={"body": body})
            planned.append((doc, []))
        return planned

    async def _subscribed(self, event_type: str) -> list[dict[str, Any]]:
        """Endpoints subscribed to this type or to an older version of it: a subscription to v1 of
        an event keeps receiving it when the stream moves on to v2 (the payload is v2)."""
        found: dict[str, dict[str, Any]] = {}
        for type_ in (event_type, *superseded_by_upcast(event_type)):
            for endpoint in await self.endpoints.subscribed(type_):
                found.setdefault(endpoint["_id"], endpoint)
        return list(found.values())

    async def _forwardable(self, envelope: Envelope[Any]) -> Envelope[Any]:
        """The event as other systems may receive it: without free text if it names an erased person."""
        people = domain.mentioned_people(envelope.data)
        contacts = await self.contacts.get_many(people) if people else {}
        if any(c.get("erased") for c in contacts.values()):
            return envelope.model_copy(update={"data": domain.without_free_text(envelope.data)})
        return envelope

    async def _plan_people(self, envelope: Envelope[Any], now: datetime, only: str | None = None) -> Planned:
        """The personal deliveries of an event (of one recipient, `only`)."""
        data = envelope.data
        planned: Planned = []
        rule = domain.rule_for(data)
        if rule is not None:
            people = [(pid, who) for pid, who in domain.recipients(rule, data) if only in (None, pid)]
            mentioned = domain.mentioned_people(data)
            contacts = await self.contacts.get_many(sorted(set(mentioned) | {pid for pid, _ in people}))
            names = {pid: domain.FORMER_MEMBER if c.get("erased") else c["display_name"] for pid, c in contacts.items()}
            if any(c.get("erased") for c in contacts.values()):
                # A late event about an erased person (a retry, a re-driven dead letter): the others
                # are still told, without the erased person's name or words.
                data = domain.without_free_text(data)
            urgent = domain.is_urgent(data, now, self.urgent_window)
            for pid, audience in people:
                planned += await self._personal(
                    envelope, data, rule, pid, audience, contacts.get(pid), names, urgent, now
                )
        return planned

    def _base(
        self, envelope: Envelope[Any], recipient_id: str, channel: str, category: str, now: datetime
    ) -> dict[str, Any]:
        return {
            "_id": domain.delivery_id(envelope.id, recipient_id, channel),
            "source_event_id": envelope.id,
            "source_event_type": envelope.type,
            "correlation_id": envelope.correlationid,
            "recipient_id": recipient_id,
            "recipient_kind": "person",
            "channel": channel,
            "category": category,
            "state": "pending",
            "reason": None,
            "urgent": False,
            "message": None,
            "due_at": None,
            "attempts": [],
            "attempt_count": 0,
            "lease_until": None,
            "lease_owner": None,
            "created_at": now,
            "updated_at": now,
            # who the event names, so an erasure finds what others hold about them
            "mentions": domain.mentioned_people(envelope.data),
        }

    async def _personal(
        self,
        envelope: Envelope[Any],
        data: EventData,
        rule: domain.Rule,
        pid: str,
        audience: str,
        contact: dict[str, Any] | None,
        names: dict[str, str],
        urgent: bool,
        now: datetime,
    ) -> Planned:
        category = rule.category.value
        if contact is None and self.contact_wait:
            # Profile events come on their own consumer: this person may simply not have reached
            # the contact book yet. Hold one placeholder (channel "none"); it is planned again
            # when they arrive, and fails as an unknown recipient only after the grace period.
            doc = self._base(envelope, pid, "none", category, now)
            wait_until = now + self.contact_wait
            doc.update(
                state=WAITING,
                reason="recipient not in the contact book yet",
                wait_until=wait_until,
                due_at=min(now + self.contact_recheck, wait_until),
                contact_checks=0,
                source_event=encode(envelope).decode(),
            )
            log.info("notification waits for its recipient's contact", recipient_id=pid)
            return [(doc, [])]
        if contact is None or contact.get("erased"):
            reason = "recipient erased" if contact else UNKNOWN_RECIPIENT
            doc = self._base(envelope, pid, "none", category, now)
            doc.update(state="failed", reason=reason)
            log.warning("notification recipient not found", recipient_id=pid, reason=reason)
            return [(doc, [self._failed_event(doc, reason, permanent=True, attempts=0, now=now)])]
        try:
            zone = contact.get("time_zone") or "UTC"
            rendered = self.renderer.render(
                rule.template, me=contact["display_name"], time_zone=zone, audience=audience, event=data, names=names
            )
            in_app = self._in_app(rule.template, pid, zone, audience, data)
            render_error = None
        except RenderError as exc:
            rendered, render_error = None, str(exc)
            log.error("template failed", template=rule.template, error=render_error[:300])
        prefs = contact.get("preferences") or {}
        hold_until = (
            None if urgent else domain.quiet_hours_end(now, contact.get("time_zone") or "UTC", prefs.get("quiet_hours"))
        )
        out: Planned = []
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
                out.append((doc, [self._failed_event(doc, render_error or "", permanent=True, attempts=0, now=now)]))
                continue
            if channel is domain.Channel.EMAIL:
                doc["message"] = {
                    "to_name": contact["display_name"],
                    "to_address": contact["email"],
                    "subject": rendered.subject,
                    "text": rendered.text,
                    "html": rendered.html,
                    **await self._invite(rule, data, contact["email"], rendered.subject, now),
                }
            else:
                doc["message"] = {**in_app, "template": rule.template}
            if hold_until is not None:
                doc.update(state="held", due_at=hold_until, reason="quiet hours")
            out.append((doc, []))
        return out

    def _in_app(self, template: str, pid: str, zone: str, audience: str, data: EventData) -> dict[str, Any]:
        """Title and text with people as references; plus, when the event carries free text, the
        same without it (`redacted`), which replaces them if a person it names is erased."""
        title, text = self.renderer.render_in_app(
            template, recipient_id=pid, time_zone=zone, audience=audience, event=data
        )
        message: dict[str, Any] = {"title": title, "text": text}
        bare = domain.without_free_text(data)
        if bare is not data:
            r_title, r_text = self.renderer.render_in_app(
                template, recipient_id=pid, time_zone=zone, audience=audience, event=bare
            )
            if (r_title, r_text) != (title, text):
                message["redacted"] = {"title": r_title, "text": r_text}
        return message

    async def _invite(self, rule: domain.Rule, data: Any, attendee: str, summary: str, now: datetime) -> dict[str, Any]:
        if rule.calendar is None:
            return {}
        duration = getattr(data, "duration_minutes", None)
        if duration is None and isinstance(data, SessionCancelledV2):
            duration = await self.sessions.minutes(data.ical_uid) or 60
        ics = domain.icalendar(
            method=rule.calendar,
            uid=data.ical_uid,
            sequence=data.sequence,
            start=data.start,
            duration_minutes=int(duration or 60),
            summary=summary,
            organizer=self.mailer.sender_address,
            attendee=attendee,
            stamp=now,
            location=getattr(data, "location", None),
        )
        return {"ics": ics, "ics_method": rule.calendar}
