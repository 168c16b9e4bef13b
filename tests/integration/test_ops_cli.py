"""The operator CLI lists a dead-lettered record and re-drives it after a fix."""

from __future__ import annotations

import asyncio
import sys

import pytest

from mentorship_contracts import Topic, encode
from mentorship_kit.settings import ServiceSettings
from tests.integration.test_kit_messaging import CountingService, registered
from tests.support.kafka import eventually, produce

pytestmark = pytest.mark.integration


async def cli(infra, prefix: str, *args: str, check: bool = True) -> str:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "mentorship_ops",
        "--kafka",
        infra.kafka_bootstrap,
        "--mongo",
        infra.mongodb_uri,
        "--prefix",
        prefix,
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        env={"COLUMNS": "250", "PATH": "/usr/bin:/bin"},
    )
    out, _ = await proc.communicate()
    assert proc.returncode == 0 or not check, out.decode()
    return out.decode()


async def test_dead_letter_is_listed_then_redriven_after_the_fix(settings_for, infra, prefix):
    svc = CountingService(settings_for(ServiceSettings, service_name="ops-dlt"), fail_names={"p-bug"})
    await svc.runtime.start()
    topic = f"{prefix}{Topic.PROFILE}"
    try:
        event = registered("p-bug")
        await produce(infra.kafka_bootstrap, topic, encode(event), key=b"p-bug")
        await produce(infra.kafka_bootstrap, topic, encode(registered("p-ok")), key=b"p-ok")
        await eventually(lambda: svc.count("p-ok"))

        listed = await cli(infra, prefix, "dlt", "list")
        assert f"{topic}.dlt" in listed and "cannot handle p-bug" in listed and "p-bug" in listed

        svc.fail_names = set()  # the fix is deployed
        redriven = await cli(infra, prefix, "dlt", "redrive", f"{topic}.dlt")
        assert "re-drove 1 record(s)" in redriven
        await eventually(lambda: svc.count("p-bug"))
        assert await svc.count("p-bug") == 1

        again = await cli(infra, prefix, "dlt", "redrive", f"{topic}.dlt")
        assert "re-drove 0 record(s)" in again  # each dead letter is re-driven once
        assert "yes" in await cli(infra, prefix, "dlt", "list")
        # exit code 1: only the consumer groups exist here, no service answers /ready
        status = await cli(infra, prefix, "status", check=False)
        assert "ops-dlt.counter" in status
    finally:
        await svc.runtime.stop()
