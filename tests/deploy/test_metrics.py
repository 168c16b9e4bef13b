"""The operator metrics, read from a real service's /metrics after producing each situation.

Notification runs in this process on the shared broker and store: an HTTP request, an SMTP
refusal (a delivery that fails for good), a record that is no event (a dead letter), an outbox
entry and a timer held by "another replica" (so they stay unpublished / unfired), then the
gauges are sampled and /metrics is read.
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from mentorship_contracts import Topic
from mentorship_contracts.scheduling import CheckInOverdue
from notification_service.entrypoints.app import create
from tests.integration.notification.conftest import Running, known, notification_settings, person, smtp  # noqa: F401
from tests.support.kafka import eventually, produce

pytestmark = pytest.mark.integration

DASHBOARD = Path(__file__).resolve().parents[2] / "deploy" / "helm" / "mentorship" / "files" / "dashboard.json"
SERVICE = "notification"


Samples = list[tuple[str, dict[str, str], float]]


def samples(text: str) -> Samples:
    return [
        (s.name, dict(s.labels), s.value) for family in text_string_to_metric_families(text) for s in family.samples
    ]


def value(found: Samples, name: str, **labels: str) -> float | None:
    for sample_name, sample_labels, sample_value in found:
        if sample_name == name and all(sample_labels.get(k) == v for k, v in labels.items()):
            return sample_value
    return None


@pytest.fixture
async def service(settings_for: Any, smtp: Any, infra: Any, prefix: str) -> AsyncIterator[Running]:  # noqa: F811
    app = create(notification_settings(settings_for, smtp[1]))
    await app.state.runtime.start()
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://notification") as http:
        try:
            yield Running(app, http, infra, prefix)
        finally:
            await app.state.runtime.stop()


async def metrics(service: Running) -> Samples:
    response = await service.http.get("/metrics")
    assert response.status_code == 200
    return samples(response.text)


async def test_every_operator_metric_is_exposed_with_a_plausible_value(
    service: Running,
    smtp: Any,  # noqa: F811 (a fixture imported above)
    prefix: str,
) -> None:
    box, _ = smtp
    runtime = service.runtime
    before = await metrics(service)
    failed_before = (
        value(before, "mentorship_deliveries_failed_total", service=SERVICE, channel="email", outcome="failed") or 0.0
    )

    # HTTP: one request on a route template; /ready also sets the readiness gauge
    assert (await service.http.get("/health")).status_code == 200
    assert (await service.http.get("/ready")).status_code == 200

    # a delivery that fails for good: the SMTP server refuses the recipient
    box.refuse.add("bounce@example.org")
    await service.send(person("bounce", "Bo", roles=("mentor",)))
    await known(service, "bounce")
    refused = await service.send(
        CheckInOverdue(
            mentorship_id="m-4", mentee_id="x", mentor_id="bounce", cadence="weekly", due_since=runtime.clock.now()
        )
    )
    await service.delivery(f"{refused.id}:bounce:email", state="failed")

    # a dead letter: bytes that are no event
    dead_topic = f"{prefix}{Topic.PROFILE}"
    await produce(service.infra.kafka_bootstrap, dead_topic, b"not an event", key=b"k")

    async def dead_lettered() -> bool:
        return bool(
            value(await metrics(service), "mentorship_dead_letters_written_total", service=SERVICE, topic=dead_topic)
        )

    await eventually(dead_lettered, timeout=30)

    # an outbox entry written 300 s ago that "another replica" holds (so it stays unpublished),
    # and a timer due 120 s ago under another replica's lease (so it stays unfired)
    now = runtime.clock.now()
    held = now + timedelta(hours=1)
    await runtime.db["timers"].insert_one(
        {
            "_id": "metrics-stuck-outbox",
            "state": "fired",
            "kind": "none",
            "due_at": now,
            "outbox": [
                {
                    "id": "e1",
                    "type": "t",
                    "topic": Topic.NOTIFICATION.value,
                    "key": "k",
                    "body": "{}",
                    "headers": {},
                    "time": now - timedelta(seconds=300),
                }
            ],
            "outbox_seq": 1,
            "outbox_pending": True,
            "outbox_lease_until": held,
        }
    )
    await runtime.db["timers"].insert_one(
        {
            "_id": "metrics-late-timer",
            "state": "pending",
            "kind": "retry",
            "due_at": now - timedelta(seconds=120),
            "payload": {},
            "group": None,
            "lease_until": held,
            "owner": "another-replica",
            "outbox": [],
            "outbox_seq": 0,
            "outbox_pending": False,
        }
    )

    groups = {f"{prefix}{SERVICE}.{name}" for name in ("contacts", "matching-events", "scheduling-events")}

    async def sampled() -> Samples | None:
        await runtime.sample_gauges()
        found = await metrics(service)
        lags = {
            labels["group"]: v
            for name, labels, v in found
            if name == "mentorship_consumer_lag" and labels["group"] in groups
        }
        # every group assigned and caught up with what was produced (the dead letter included)
        return found if set(lags) == groups and not any(lags.values()) else None

    found = await eventually(sampled, timeout=60, interval=1.0)

    def at(name: str, **labels: str) -> float:
        got = value(found, name, **labels)
        assert got is not None, f"{name}{labels} missing from /metrics"
        return got

    health = {"service": SERVICE, "method": "GET", "route": "/health", "status": "200"}
    count = at("mentorship_http_request_duration_seconds_count", **health)
    assert count >= 1
    assert at("mentorship_http_request_duration_seconds_bucket", **health, le="+Inf") == count
    assert 0 < at("mentorship_http_request_duration_seconds_sum", **health) < 5 * count
    for group in groups:
        assert at("mentorship_consumer_lag", service=SERVICE, group=group, partition="0") == 0
    assert 300 <= at("mentorship_outbox_oldest_unpublished_age_seconds", service=SERVICE, collection="timers") < 400
    assert at("mentorship_timers_due", service=SERVICE) == 1
    assert 120 <= at("mentorship_timers_oldest_lateness_seconds", service=SERVICE) < 220
    assert at("mentorship_dead_letters_written_total", service=SERVICE, consumer="contacts", topic=dead_topic) == 1
    assert (
        at("mentorship_deliveries_failed_total", service=SERVICE, channel="email", outcome="failed")
        == failed_before + 1
    )
    assert at("mentorship_gauges_sampled_timestamp_seconds", service=SERVICE) > 0

    # every metric the dashboard queries has a sample in this service's /metrics
    dashboard = json.loads(DASHBOARD.read_text())
    queried = {
        m
        for p in dashboard["panels"]
        for t in p.get("targets", [])
        for m in re.findall(r"([a-zA-Z_:][a-zA-Z0-9_:]*)\{", t["expr"])
    }
    shown = {name for name, labels, _ in found if labels.get("service") == SERVICE}
    assert queried <= shown, sorted(queried - shown)

    # the outbox gauge goes back to zero once nothing waits
    await runtime.db["timers"].delete_one({"_id": "metrics-stuck-outbox"})
    await runtime.sample_gauges()
    assert (
        value(
            await metrics(service),
            "mentorship_outbox_oldest_unpublished_age_seconds",
            service=SERVICE,
            collection="timers",
        )
        == 0
    )
