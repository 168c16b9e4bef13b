"""Where the tests find Kafka and the Mongo-compatible store.

Order: KAFKA_BOOTSTRAP_SERVERS / MONGODB_URI from the environment (what `make test` sets after
starting the local launcher once per run); else testcontainers when a Docker engine answers;
else the local launcher in deploy/local/infra.py, started here for this session.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Infra:
    kafka_bootstrap: str
    mongodb_uri: str
    how: str


def _docker_answers() -> bool:
    if not shutil.which("docker"):
        return False
    try:
        return subprocess.run(["docker", "info"], capture_output=True, timeout=10).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def _launcher():
    spec = importlib.util.spec_from_file_location("mentorship_infra", ROOT / "deploy/local/infra.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@contextmanager
def provide_infra() -> Iterator[Infra]:
    kafka, mongo = os.environ.get("KAFKA_BOOTSTRAP_SERVERS"), os.environ.get("MONGODB_URI")
    if kafka and mongo:
        yield Infra(kafka, mongo, "environment")
        return
    if _docker_answers():
        from testcontainers.kafka import KafkaContainer
        from testcontainers.mongodb import MongoDbContainer

        with KafkaContainer("apache/kafka:4.1.1").with_kraft() as k, MongoDbContainer("mongo:7") as m:
            yield Infra(k.get_bootstrap_server(), m.get_connection_url(), "testcontainers")
        return
    launcher = _launcher()
    state_dir = Path(tempfile.mkdtemp(prefix="mentorship-test-infra-"))
    info = launcher.start(state_dir)
    try:
        yield Infra(info["kafka_bootstrap"], info["mongodb_uri"], "local launcher")
    finally:
        launcher.stop(state_dir)
        shutil.rmtree(state_dir, ignore_errors=True)
