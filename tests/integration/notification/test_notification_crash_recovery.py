"""The service killed between the SMTP send and recording it, then restarted: nothing lost.

Design guarantee for that window (email): AT-LEAST-ONCE. The delivery stays `sending` until its
lease lapses; the restarted service sends it again with the SAME Message-ID (and delivery
header), so mail clients can collapse the copy. Every other delivery is sent exactly once.
"""

from __future__ import annotations

import time
from collections import Counter
from datetime import UTC, datetime

import httpx
import pytest

from mentorship_contracts import Envelope, Topic, decode, encode
from mentorship_contracts.scheduling import MilestoneReached
from tests.integration.notification.conftest import person
from tests.support.kafka import eventually, produce, read_topic
from tests.support.processes import token

pytestmark = pytest.mark.integration


async def test_killed_between_send_and_record_then_restarted_loses_nothing(spawn, smtp, infra, prefix, mongo):
    box, port = smtp
    common = dict(
        smtp_host="127.0.0.1",
        smtp_port=str(port),
        smtp_pool_size="1",
        dev_clock_enabled="true",
        delivery_recovery_interval_seconds="0.3",
        delivery_lease_seconds="60",
    )
    doomed = spawn("notification", fault_exit_after_email_sent="true", **common)
    topic = lambda t: f"{prefix}{t}"  # noqa: E731

    async def send(data):
        env = Envelope.wrap(data, source="test")
        await produce(infra.kafka_bootstrap, topic(data.topic), encode(env), key=env.subject.encode())
        return env

    await send(person("ada", "Ada"))
    await send(person("grace", "Grace", roles=("mentor",)))
    db = mongo[f"{prefix.replace('.', '_').strip('_')}_notification"]

    async def contacts_known():
        return await db["contacts"].count_documents({}) == 2

    await eventually(contacts_known)
    event = await send(
        MilestoneReached(
            mentorship_id="m-1",
            mentee_id="ada",
            mentor_id="grace",
            milestone_id="ms",
            title="Shipped",
            reached_at=datetime.now(UTC),
        )
    )

    deadline = time.monotonic() + 30
    while doomed.proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.1)
    assert doomed.proc.returncode == 70  # died right after the SMTP server took the message
    assert len(box.messages) == 1
    sent_before_crash = box.messages[0]
    stuck = await db["deliveries"].find_one({"state": "sending"})
    assert stuck is not None and stuck["channel"] == "email"  # sent, not recorded

    restarted = spawn("notification", replica=1, **common)
    async with httpx.AsyncClient(base_url=restarted.url, timeout=10) as http:
        # The lease of the dead sender lapses (on the controllable clock): recovery takes over.
        r = await http.post("/_dev/clock", headers=token("admin-1", "admin"), json={"advance_seconds": 120})
        assert r.status_code == 200

        async def all_delivered():
            docs = [d async for d in db["deliveries"].find({"source_event_id": event.id})]
            return len(docs) == 4 and all(d["state"] == "delivered" for d in docs) and docs

        docs = await eventually(all_delivered, timeout=30)
        recovered = next(d for d in docs if d["_id"] == stuck["_id"])
        assert [a["outcome"] for a in recovered["attempts"]] == ["abandoned", "delivered"]

        per_message_id = Counter(str(m["Message-ID"]) for m in box.messages)
        assert len(per_message_id) == 2  # both people got their email: nothing lost
        assert per_message_id[str(sent_before_crash["Message-ID"])] == 2  # the re-send is recognisable
        assert {str(m["To"]) for m in box.messages} == {"Ada <ada@example.org>", "Grace <grace@example.org>"}
        for pid in ("ada", "grace"):
            r = await http.get(f"/people/{pid}/inbox", headers=token(pid))
            assert len(r.json()["items"]) == 1  # in-app: exactly once

    records = await read_topic(infra.kafka_bootstrap, topic(Topic.NOTIFICATION), want=4, timeout=20)
    delivered = {decode(r.value).data.delivery_id for r in records}
    assert delivered == {d["_id"] for d in docs}
