"""Two replicas of a service started at the same moment both come up (FerretDB used to drop the
connection of the second one's createIndexes, and that replica exited at start)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from mentorship_ops.support import ServiceProcess, free_port
from tests.support.infra import Infra
from tests.support.processes import service_env

pytestmark = pytest.mark.integration


@pytest.fixture
def replicas(infra: Infra, prefix: str, tmp_path: Path) -> Iterator[list[ServiceProcess]]:
    made = []
    for replica in (0, 1):
        port = free_port()
        env = service_env("scheduling", kafka=infra.kafka_bootstrap, mongo=infra.mongodb_uri, prefix=prefix, port=port)
        made.append(ServiceProcess("scheduling", port, env, tmp_path / f"scheduling-{replica}.log"))
    yield made
    for proc in made:
        proc.stop()
        print(f"--- {proc.name} log (tail) ---\n{proc.tail(60)}")  # shown when the test failed


def test_two_replicas_started_at_the_same_moment_both_become_ready(replicas: list[ServiceProcess]) -> None:
    # Both processes launched before either is waited for: their index creation on the one
    # (fresh) database races, as two pods of a Deployment rolled out together do.
    for proc in replicas:
        proc.launch()
    for proc in replicas:
        proc.wait_ready(timeout=180)
    assert [proc.proc is not None and proc.proc.poll() is None for proc in replicas] == [True, True]
