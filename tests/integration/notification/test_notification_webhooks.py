"""Signed webhooks to a real HTTP receiver: verified, retried on 5xx by durable timers, disabled."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from mentorship_contracts import Topic, decode
from mentorship_contracts.matching import (
    Agreement,
    MentorshipRequestAccepted,
    MentorshipRequestExpired,
    MentorshipStarted,
)
from tests.support.kafka import eventually, read_topic
from tests.support.processes import token

pytestmark = pytest.mark.integration

ADMIN = token("admin-1", "admin")
M = dict(mentorship_id="m-1", mentee_id="ada", mentor_id="grace")
ACCEPTED = "mentorship.matching.mentorship_request_accepted"
EXPIRED = "mentorship.matching.mentorship_request_expired"
STARTED = "mentorship.matching.mentorship_started"


async def register(service, receiver, path: str, types: list[str]) -> dict:
    r = await service.http.post(
        "/webhooks", headers=ADMIN, json={"url": receiver.url(path), "secret": receiver.secret, "event_types": types}
    )
    assert r.status_code == 201, r.text
    return r.json()


async def test_webhook_signed_retried_then_disabled_and_4xx_not_retried(service, receiver, infra, prefix):
    receiver.statuses.update({"fail": 503, "gone": 410})
    ok = await register(service, receiver, "ok", [ACCEPTED, STARTED])
    failing = await register(service, receiver, "fail", [EXPIRED])
    gone = await register(service, receiver, "gone", ["*"])

    accepted = await service.send(MentorshipRequestAccepted(**M))
    await eventually(lambda: _calls(receiver, "ok", 1))
    [call] = receiver.on("ok")
    assert call["verified"]  # the receiver checked the HMAC with the shared secret on its own
    assert call["headers"]["mentorship-delivery-id"] == f"{accepted.id}:{ok['endpoint_id']}:webhook"
    assert json.loads(call["body"])["id"] == accepted.id  # the CloudEvents envelope as published
    delivered = await service.delivery(f"{accepted.id}:{ok['endpoint_id']}:webhook", state="delivered")
    assert delivered["recipient_kind"] == "webhook"

    gone_delivery = await service.delivery(f"{accepted.id}:{gone['endpoint_id']}:webhook", state="failed")
    assert gone_delivery["reason"] == "endpoint answered HTTP 410" and gone_delivery["attempt_count"] == 1

    expired = await service.send(MentorshipRequestExpired(**M))
    key = f"{expired.id}:{failing['endpoint_id']}:webhook"
    first = await service.delivery(key, state="retrying")
    assert len(receiver.on("fail")) == 1
    # Backoff is a durable timer: nothing happens until the (controllable) clock reaches it.
    await service.fire_timers()
    assert len(receiver.on("fail")) == 1
    service.runtime.clock.set(first["due_at"] + timedelta(seconds=1))
    await service.fire_timers()
    second = await service.delivery(key, state="retrying")
    assert len(receiver.on("fail")) == 2
    assert second["due_at"] - service.runtime.clock.now() > first["due_at"] - first["updated_at"]  # grows
    service.runtime.clock.set(second["due_at"] + timedelta(seconds=1))
    await service.fire_timers()
    final = await service.delivery(key, state="failed")
    assert len(receiver.on("fail")) == 3  # disabled after 3 consecutive failures
    assert [a["outcome"] for a in final["attempts"]] == ["failure"] * 3
    endpoint = (await service.http.get(f"/webhooks/{failing['endpoint_id']}", headers=ADMIN)).json()
    assert endpoint["enabled"] is False and endpoint["consecutive_failures"] == 3
    assert "HTTP 503" in endpoint["disabled_reason"]

    async def disabled_events():
        # Other delivery events share the topic; read until the disabled one has been published.
        records = await read_topic(infra.kafka_bootstrap, f"{prefix}{Topic.NOTIFICATION}", want=1000, timeout=2)
        found = [decode(r.value) for r in records if decode(r.value).type.endswith("webhook_endpoint_disabled")]
        return found or None

    disabled = await eventually(disabled_events, timeout=30)
    assert len(disabled) == 1 and disabled[0].data.endpoint_id == failing["endpoint_id"]
    assert disabled[0].data.consecutive_failures == 3

    # A disabled endpoint gets nothing new; re-enabled, it does.
    started = await service.send(MentorshipStarted(**M, agreement=Agreement(), started_at=service.runtime.clock.now()))
    await eventually(lambda: _calls(receiver, "ok", 2))
    assert await service.notifications.deliveries.get(f"{started.id}:{failing['endpoint_id']}:webhook") is None
    r = await service.http.post(f"/webhooks/{failing['endpoint_id']}/enable", headers=ADMIN)
    assert r.json()["enabled"] is True and r.json()["consecutive_failures"] == 0


@pytest.mark.parametrize(
    "url, reason",
    [
        ("ftp://example.org/hook", "only http and https"),
        ("http://169.254.169.254/latest/meta-data", "link-local or cloud metadata"),
        ("http://10.0.0.7/hook", "private network"),
        ("http://[fe80::1]/hook", "link-local"),
        ("http://user:pw@example.org/hook", "credentials"),
    ],
)
async def test_forbidden_webhook_urls_are_refused_with_the_field_named(service, url, reason):
    r = await service.http.post("/webhooks", headers=ADMIN, json={"url": url, "event_types": [ACCEPTED]})
    assert r.status_code == 422, r.text
    problem = r.json()
    assert r.headers["content-type"].startswith("application/problem+json")
    assert problem["errors"][0]["field"] == "url" and reason in problem["detail"]


async def test_webhook_admin_only_and_event_types_checked(service):
    r = await service.http.post(
        "/webhooks", headers=token("ada"), json={"url": "http://127.0.0.1:1/x", "event_types": [ACCEPTED]}
    )
    assert r.status_code == 403
    r = await service.http.post(
        "/webhooks", headers=ADMIN, json={"url": "http://127.0.0.1:1/x", "event_types": ["made.up"]}
    )
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "event_types"


async def _calls(receiver, path: str, n: int) -> bool:
    return len(receiver.on(path)) >= n
