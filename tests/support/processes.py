"""Run a service as its own process, as in production, and wait until it is ready."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from mentorship_kit.auth import issue_token

JWT_SECRET = "test-secret-for-the-whole-suite-0123456789"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class ServiceProcess:
    name: str
    port: int
    env: dict[str, str]
    log_path: Path
    proc: subprocess.Popen[bytes] | None = None
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 60.0) -> ServiceProcess:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", f"{self.name}_service"], env=self.env, stdout=log, stderr=subprocess.STDOUT
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.proc.returncode}:\n{self.tail()}")
            try:
                if httpx.get(f"{self.url}/ready", timeout=2).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"{self.name} not ready after {timeout}s:\n{self.tail()}")

    def stop(self, timeout: float = 30.0) -> int | None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode if self.proc else None

    def kill(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


def service_env(name: str, *, kafka: str, mongo: str, prefix: str, port: int, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KAFKA_", "MONGODB_", "HTTP_"))}
    env.update(
        SERVICE_NAME=name,
        KAFKA_BOOTSTRAP_SERVERS=kafka,
        KAFKA_TOPIC_PREFIX=prefix,
        KAFKA_TOPIC_PARTITIONS="2",
        MONGODB_URI=mongo,
        MONGODB_DATABASE=f"{prefix.replace('.', '_').strip('_')}_{name}",
        HTTP_HOST="127.0.0.1",
        HTTP_PORT=str(port),
        JWT_SECRET=JWT_SECRET,
        LOG_LEVEL="INFO",
        OUTBOX_POLL_INTERVAL_MS="200",
        TIMER_POLL_INTERVAL_MS="200",
        CONSUMER_RETRY_BACKOFF_MS="50",
    )
    env.update({k.upper(): v for k, v in extra.items()})
    return env


def token(subject: str, *roles: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {issue_token(JWT_SECRET, subject, list(roles) or ['mentee'])}"}
