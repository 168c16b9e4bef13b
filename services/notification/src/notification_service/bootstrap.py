"""Everything the notification service process is made of, gathered in one place.

Stores and senders, the use cases, indexes, outbox collections, produced topics, consumers,
timers, the recovery job, and the stop hooks that close the SMTP pool and the webhook client.
"""

from __future__ import annotations

from datetime import timedelta

from mentorship_contracts import Topic
from mentorship_kit.runtime import ServiceRuntime

from .adapters import deliveries, inbox, webhooks
from .adapters.contacts import ContactBook, ContactWaits
from .adapters.deliveries import DeliveryStore
from .adapters.inbox import Inbox
from .adapters.sessions import SessionDurations
from .adapters.smtp import SmtpMailer
from .adapters.webhooks import EndpointStore, WebhookSender
from .application import CONTACT_TIMER, RELEASE_TIMER, RETRY_TIMER, NotificationUseCases
from .entrypoints.consumers import register_consumers
from .settings import Settings


def bootstrap(settings: Settings | None = None) -> tuple[ServiceRuntime, NotificationUseCases]:
    settings = settings or Settings()
    runtime = ServiceRuntime(settings)
    mailer = SmtpMailer(settings)
    sender = WebhookSender(
        timeout=settings.webhook_timeout_seconds,
        allow_loopback=settings.webhook_allow_loopback,
        allow_private=settings.webhook_allow_private,
    )
    notifications = NotificationUseCases(
        runtime.context(),
        settings=settings,
        contacts=ContactBook(runtime.db),
        waits=ContactWaits(runtime.db),
        deliveries=DeliveryStore(runtime.db, lease=timedelta(seconds=settings.delivery_lease_seconds)),
        inbox=Inbox(runtime.db),
        endpoints=EndpointStore(runtime.db),
        sessions=SessionDurations(runtime.db),
        mailer=mailer,
        webhooks=sender,
    )
    runtime.indexes(deliveries.INDEXES, inbox.INDEXES, webhooks.INDEXES)
    runtime.outbox_collection(deliveries.DELIVERIES)
    runtime.outbox_collection(webhooks.ENDPOINTS)
    runtime.produces(Topic.NOTIFICATION)
    register_consumers(runtime, notifications)
    for kind in (RELEASE_TIMER, RETRY_TIMER, CONTACT_TIMER):
        runtime.timer(kind, notifications.on_timer)
    runtime.background(notifications.recover_forever)
    runtime.on_stop(mailer.close)
    runtime.on_stop(sender.close)
    return runtime, notifications
