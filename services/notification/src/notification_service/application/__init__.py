"""Use cases of the notification service, one module per capability.

From an event to messages: plan the deliveries (rules table x recipients x channels, after
preferences and quiet hours), create each as a document whose id is the delivery key, then
attempt the ones that are due. A recipient not yet in the contact book is waited for (a held
placeholder, re-checked by a timer and released by their profile event) before failing as an
unknown recipient.

`NotificationUseCases` is the one application object the HTTP routes, consumers and timers use;
it is the sum of these capabilities, which share one constructor (`base.NotificationBase`):

- `handling`: profile events (contact book) and matching/scheduling events (-> deliveries)
- `planning`: which deliveries an event calls for (pure decisions over the contact book)
- `sending`: one attempt at a delivery, and its recorded outcome (delivery guarantees there)
- `waiting`: recipients not yet in the contact book
- `recovery`: timers, and deliveries abandoned by a crashed sender
- `endpoints`: webhook endpoint administration
"""

from __future__ import annotations

from .base import CONTACT_TIMER, RELEASE_TIMER, RETRY_TIMER, UNKNOWN_RECIPIENT, EndpointFailure
from .endpoints import EndpointAdmin
from .handling import EventHandling
from .recovery import DeliveryRecovery


class NotificationUseCases(EventHandling, DeliveryRecovery, EndpointAdmin):
    """All of notification's use cases: `NotificationUseCases(ctx, settings=..., contacts=...,
    waits=..., deliveries=..., inbox=..., endpoints=..., sessions=..., mailer=..., webhooks=...)`."""


__all__ = [
    "CONTACT_TIMER",
    "RELEASE_TIMER",
    "RETRY_TIMER",
    "UNKNOWN_RECIPIENT",
    "EndpointFailure",
    "NotificationUseCases",
]
