"""What every notification use case shares: its collaborators, timers, and events about a delivery."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import Any

from mentorship_contracts import Envelope, EventData
from mentorship_contracts.notification import NotificationFailed
from mentorship_kit.clock import Clock
from mentorship_kit.usecase import UseCaseContext

from ..adapters.contacts import ContactBook, ContactWaits
from ..adapters.deliveries import DeliveryStore
from ..adapters.inbox import Inbox
from ..adapters.sessions import SessionDurations
from ..adapters.smtp import SendFailed, SmtpMailer
from ..adapters.webhooks import EndpointStore, WebhookSender
from ..settings import Settings
from ..templates import Renderer

RELEASE_TIMER = "notification.release_held"
RETRY_TIMER = "notification.retry"
CONTACT_TIMER = "notification.contact_recheck"
UNKNOWN_RECIPIENT = "unknown recipient"
# A mail server's answer may quote the recipient's address; NotificationFailed goes on the event
# stream, which outlives an erase, so addresses are cut out of its reason.
EMAIL_ADDRESS = re.compile(r"[^\s<>()\[\]\"',;:]+@[^\s<>()\[\]\"',;:]+")


def without_addresses(reason: str) -> str:
    """The reason with every email address replaced by `<address>`."""
    return EMAIL_ADDRESS.sub("<address>", reason)


class EndpointFailure(SendFailed):
    """A failed webhook call that counts against its endpoint (not 'endpoint disabled')."""


class NotificationBase:
    """The constructor and shared helpers of every capability of `NotificationUseCases`."""

    def __init__(
        self,
        ctx: UseCaseContext,
        *,
        settings: Settings,
        contacts: ContactBook,
        waits: ContactWaits,
        deliveries: DeliveryStore,
        inbox: Inbox,
        endpoints: EndpointStore,
        sessions: SessionDurations,
        mailer: SmtpMailer,
        webhooks: WebhookSender,
        renderer: Renderer | None = None,
    ) -> None:
        self.ctx = ctx
        self.settings = settings
        self.contacts = contacts
        self.waits = waits
        self.deliveries = deliveries
        self.inbox = inbox
        self.endpoints = endpoints
        self.sessions = sessions
        self.mailer = mailer
        self.webhooks = webhooks
        self.renderer = renderer or Renderer(app_url=settings.app_url)
        self.contact_wait = timedelta(seconds=settings.contact_wait_seconds)
        self.contact_recheck = timedelta(seconds=settings.contact_recheck_seconds)
        self.urgent_window = timedelta(minutes=settings.urgent_reminder_minutes)

    @property
    def clock(self) -> Clock:
        return self.ctx.clock

    def _about(self, delivery: dict[str, Any], data: EventData, now: datetime) -> Envelope[Any]:
        """An event about a delivery: in the correlation of the event it came from, caused by it."""
        event = self.ctx.events.new(data, correlation_id=delivery["correlation_id"], time=now)
        return event.model_copy(update={"causationid": delivery["source_event_id"]})

    def _failed_event(
        self, doc: dict[str, Any], reason: str, *, permanent: bool, attempts: int, now: datetime
    ) -> Envelope[Any]:
        return self._about(
            doc,
            NotificationFailed(
                delivery_id=doc["_id"],
                recipient_id=doc["recipient_id"],
                channel=doc["channel"],
                category=doc["category"],
                source_event_id=doc["source_event_id"],
                source_event_type=doc["source_event_type"],
                reason=without_addresses(reason)[:2000],
                permanent=permanent,
                failed_at=now,
                attempts=attempts,
            ),
            now,
        )

    async def _schedule(self, kind: str, timer_id: str, due_at: datetime, doc: dict[str, Any]) -> None:
        await self.ctx.timers.schedule(timer_id, kind, due_at, {"delivery_id": doc["_id"]}, group=doc["recipient_id"])

    async def _schedule_recheck(self, doc: dict[str, Any]) -> None:
        # One timer per check: a fired timer is never moved, the next check gets its own id.
        await self._schedule(
            CONTACT_TIMER, f"contact:{doc['_id']}:{doc.get('contact_checks') or 0}", doc["due_at"], doc
        )
