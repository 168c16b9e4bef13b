"""Wiring of the notification service process."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from fastapi import FastAPI

from mentorship_contracts import Topic
from mentorship_kit.runtime import ServiceRuntime, create_app

from ..adapters import deliveries, inbox, webhooks
from ..adapters.contacts import ContactBook
from ..adapters.deliveries import DeliveryStore
from ..adapters.inbox import Inbox
from ..adapters.smtp import SmtpMailer
from ..adapters.webhooks import EndpointStore, WebhookSender
from ..application import CONTACT_TIMER, RELEASE_TIMER, RETRY_TIMER, Notifications
from ..settings import Settings
from .consumers import register_consumers
from .http import routers


def build(settings: Settings | None = None) -> tuple[ServiceRuntime, Notifications]:
    settings = settings or Settings()
    runtime = ServiceRuntime(settings)
    mailer = SmtpMailer(settings)
    sender = WebhookSender(timeout=settings.webhook_timeout_seconds, allow_loopback=settings.webhook_allow_loopback,
                           allow_private=settings.webhook_allow_private)
    app = Notifications(
        settings=settings, clock=runtime.clock, contacts=ContactBook(runtime.db),
        deliveries=DeliveryStore(runtime.db, lease=timedelta(seconds=settings.delivery_lease_seconds)),
        inbox=Inbox(runtime.db), endpoints=EndpointStore(runtime.db), mailer=mailer, webhooks=sender,
        timers=runtime.timers, db=runtime.db, on_events=runtime.wake_relay,
    )
    runtime.indexes(deliveries.INDEXES, inbox.INDEXES, webhooks.INDEXES)
    runtime.outbox_collection(deliveries.DELIVERIES)
    runtime.outbox_collection(webhooks.ENDPOINTS)
    runtime.produces(Topic.NOTIFICATION)
    runtime.timer(RELEASE_TIMER, app.on_timer)
    runtime.timer(RETRY_TIMER, app.on_timer)
    runtime.timer(CONTACT_TIMER, app.on_timer)
    register_consumers(runtime, app)

    async def recovery() -> None:
        await app.recover_forever()

    async def close_clients_on_stop() -> None:
        try:
            await asyncio.Event().wait()  # background jobs are cancelled when the runtime stops
        finally:
            await mailer.close()
            await sender.close()

    runtime.background(recovery)
    runtime.background(close_clients_on_stop)
    return runtime, app


def create(settings: Settings | None = None) -> FastAPI:
    runtime, notifications = build(settings)
    app = create_app(runtime, title="Notification service",
                     description="Email, signed webhooks and the in-app inbox; preferences, quiet hours, "
                                 "delivery log.", routers=routers)
    app.state.notifications = notifications
    return app
