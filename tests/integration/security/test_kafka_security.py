"""Company Kafka: topics owned by the platform team, and every client over SASL_SSL.

The topic tests use the suite's broker. The SASL_SSL tests start their own second broker through
the local launcher (`start(..., sasl=True)`: a throwaway CA, a broker certificate for 127.0.0.1,
SCRAM-SHA-512 users) once for the module, and run the services as processes over it.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from typing import Any

import httpx
import pytest
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from mentorship_kit.messaging import DEAD_LETTER_RETENTION_MS, EVENTS_RETENTION_MS
from tests.support.processes import ServiceProcess, free_port, service_env

pytestmark = pytest.mark.integration


async def cli(kafka: str, prefix: str, *args: str, env: dict[str, str] | None = None) -> str:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "mentorship_ops", "--kafka", kafka, "--prefix", prefix, *args,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        env={"PATH": "/usr/bin:/bin", **(env or {})},
    )
    out, _ = await proc.communicate()
    assert proc.returncode == 0, out.decode()
    return out.decode()


async def ready_body(proc: ServiceProcess) -> tuple[int, dict[str, Any]]:
    async with httpx.AsyncClient(timeout=5) as http:
        r = await http.get(f"{proc.url}/ready")
        return r.status_code, r.json()


async def wait_ready_state(proc: ServiceProcess, want: int, contains: str = "", timeout: float = 60) -> dict[str, Any]:
    """Poll /ready until it answers `want` (and its checks mention `contains`); the process must live."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        assert proc.proc is not None and proc.proc.poll() is None, f"{proc.name} exited:\n{proc.tail()}"
        try:
            status, body = await ready_body(proc)
            last = (status, body)
            if status == want and contains in json.dumps(body):
                return body
        except httpx.HTTPError as exc:
            last = exc
        await asyncio.sleep(0.3)
    raise AssertionError(f"/ready never answered {want} with {contains!r}; last: {last!r}\n{proc.tail()}")


def launch(name: str, env: dict[str, str], log_dir: Any) -> ServiceProcess:
    """Start a service process without waiting for readiness (it may never be ready)."""
    import subprocess

    port = int(env["HTTP_PORT"])
    proc = ServiceProcess(name, port, env, log_dir / f"{name}-{port}.log")
    proc.log_path.parent.mkdir(parents=True, exist_ok=True)
    proc.proc = subprocess.Popen([sys.executable, "-m", f"{name}_service"], env=env,
                                 stdout=proc.log_path.open("ab"), stderr=subprocess.STDOUT)
    return proc


# --- topics owned by the platform team (suite broker) ---------------------------------------------

async def test_topics_plan_prints_every_topic_with_partitions_replication_retention_and_cleanup(infra, prefix):
    out = await cli(infra.kafka_bootstrap, prefix, "topics", "plan", "--partitions", "6", "--replication", "3",
                    "--json")
    plan = {t["name"]: t for t in json.loads(out)}
    streams = ("profile.events", "matching.events", "scheduling.events", "notification.events")
    assert set(plan) == {prefix + s for s in streams} | {f"{prefix}{s}.dlt" for s in streams}
    for s in streams:
        events, dead = plan[prefix + s], plan[f"{prefix}{s}.dlt"]
        assert (events["partitions"], events["replication_factor"]) == (6, 3)
        assert events["configs"] == {"cleanup.policy": "delete", "retention.ms": str(30 * 86_400_000),
                                     "min.insync.replicas": "2"}
        assert dead["kind"] == "dead letters" and dead["configs"]["retention.ms"] == str(14 * 86_400_000)
    assert EVENTS_RETENTION_MS == 30 * 86_400_000 and DEAD_LETTER_RETENTION_MS == 14 * 86_400_000

    table = await cli(infra.kafka_bootstrap, prefix, "topics", "plan")
    assert f"{prefix}profile.events.dlt" in table and "14 days" in table and "30 days" in table


async def test_topics_apply_creates_the_missing_ones_and_reports_the_differing_ones(infra, prefix):
    odd = f"{prefix}matching.events"
    admin = AIOKafkaAdminClient(bootstrap_servers=infra.kafka_bootstrap)
    await admin.start()
    try:  # provisioned earlier by hand, with a one-hour retention
        await admin.create_topics([NewTopic(odd, 1, 1, topic_configs={"retention.ms": "3600000"})])
    finally:
        await admin.close()

    out = await cli(infra.kafka_bootstrap, prefix, "topics", "apply", "--partitions", "2")
    assert "7 topic(s) created, 1 already there" in out
    assert f"created {prefix}profile.events.dlt" in out and f"created {odd}\n" not in out
    drift = [line for line in out.splitlines() if odd in line and "created" not in line]
    assert any("retention.ms" in line and "3600000" in line and "2592000000" in line for line in drift), out
    assert any("partitions" in line for line in drift), out

    admin = AIOKafkaAdminClient(bootstrap_servers=infra.kafka_bootstrap)
    await admin.start()
    try:
        described = {t["topic"]: t for t in await admin.describe_topics([f"{prefix}profile.events.dlt"])}
        assert len(described[f"{prefix}profile.events.dlt"]["partitions"]) == 2
    finally:
        await admin.close()

    again = await cli(infra.kafka_bootstrap, prefix, "topics", "apply", "--partitions", "2")
    assert "0 topic(s) created, 8 already there" in again


async def test_without_topic_creation_a_service_is_not_ready_and_names_the_missing_topics(infra, prefix, tmp_path):
    env = service_env("profile", kafka=infra.kafka_bootstrap, mongo=infra.mongodb_uri, prefix=prefix,
                      port=free_port(), KAFKA_CREATE_TOPICS="false")
    proc = launch("profile", env, tmp_path)
    try:
        body = await wait_ready_state(proc, 503, f"{prefix}profile.events")
        assert "missing topics" in body["checks"]["kafka"] and "KAFKA_CREATE_TOPICS=false" in body["checks"]["kafka"]
        assert "missing topics" in proc.tail(200)  # the log says it too

        await cli(infra.kafka_bootstrap, prefix, "topics", "apply", "--partitions", "2")
        body = await wait_ready_state(proc, 200, timeout=90)  # it kept checking and starts on its own
        assert body["checks"]["kafka"] == "ok"
    finally:
        proc.stop()
