"""Events of the notification service (topic `notification.events`, key = recipient id).

Personal data: none; deliveries name the recipient by profile id (or webhook endpoint id)
and the channel, never an address.
"""

from __future__ import annotations

from pydantic import AwareDatetime

from .envelope import EventData
from .registry import event
from .text import Id, Name, Text
from .topics import Topic


@event("mentorship.notification.notification_delivered", topic=Topic.NOTIFICATION, subject="recipient_id")
class NotificationDelivered(EventData):
    """A message reached a person (or a webhook endpoint) on one channel."""

    delivery_id: Id
    recipient_id: Id
    channel: Name
    category: Name
    source_event_id: Id
    source_event_type: Name
    delivered_at: AwareDatetime
    attempts: int = 1


@event("mentorship.notification.notification_failed", topic=Topic.NOTIFICATION, subject="recipient_id")
class NotificationFailed(EventData):
    """A delivery failed for good (bad address, rejected, unknown recipient, template error)."""

    delivery_id: Id
    recipient_id: Id
    channel: Name
    category: Name
    source_event_id: Id
    source_event_type: Name
    reason: Text
    permanent: bool = True
    failed_at: AwareDatetime
    attempts: int = 1


@event("mentorship.notification.webhook_endpoint_disabled", topic=Topic.NOTIFICATION, subject="endpoint_id")
class WebhookEndpointDisabled(EventData):
    """A webhook endpoint kept failing and was disabled; an admin must re-enable it."""

    endpoint_id: Id
    reason: Text
    consecutive_failures: int
    disabled_at: AwareDatetime
