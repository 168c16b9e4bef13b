"""What notification's bootstrap gathers, checked without a broker or a store (nothing connects
before `runtime.start()`)."""

from __future__ import annotations

from notification_service.bootstrap import bootstrap
from notification_service.settings import Settings


async def test_consumers_and_clients_closed_by_the_runtime_stop_hooks():
    runtime, notifications = bootstrap(Settings(kafka_topic_prefix="unit."))
    assert {c.name for c in runtime.consumers} == {"contact-book", "contacts", "matching-events", "scheduling-events"}
    assert not notifications.webhooks.client.is_closed
    await runtime.stop()  # never started: only the stop hooks have something to do
    assert notifications.webhooks.client.is_closed
