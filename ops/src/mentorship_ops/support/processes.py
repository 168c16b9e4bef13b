"""Run a service as its own process (`python -m <name>_service`, as in production) and wait until
it answers /ready."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx


def service_env(
    name: str, *, kafka: str, mongo: str, prefix: str, port: int, jwt_secret: str, **settings: str
) -> dict[str, str]:
    """This process's environment without the platform's own variables, then the service's: its
    name, broker, store, topic prefix, a database named after the prefix, loopback port, JWT secret,
    and `settings` (keyword names upper-cased: `log_level="INFO"` sets LOG_LEVEL)."""
    inherited = ("KAFKA_", "MONGODB_", "HTTP_", "JWT_", f"{name.upper()}_")
    env = {k: v for k, v in os.environ.items() if not k.startswith(inherited)}
    env.update(
        SERVICE_NAME=name,
        KAFKA_BOOTSTRAP_SERVERS=kafka,
        KAFKA_TOPIC_PREFIX=prefix,
        MONGODB_URI=mongo,
        MONGODB_DATABASE=f"{prefix.replace('.', '_').strip('_')}_{name}",
        HTTP_HOST="127.0.0.1",
        HTTP_PORT=str(port),
        JWT_SECRET=jwt_secret,
    )
    env.update({k.upper(): v for k, v in settings.items()})
    return env


@dataclass
class ServiceProcess:
    """One service process; its output goes to `log_path`."""

    name: str
    port: int
    env: dict[str, str]
    log_path: Path
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 60.0) -> ServiceProcess:
        return self.launch().wait_ready(timeout)

    def launch(self) -> ServiceProcess:
        """Start the process without waiting (several services then start side by side)."""
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", f"{self.name}_service"], env=self.env, stdout=log, stderr=subprocess.STDOUT
            )
        return self

    def wait_ready(self, timeout: float = 60.0) -> ServiceProcess:
        """Until GET /ready answers 200; fails early, with the log's tail, if the process exits."""
        assert self.proc is not None, "launch() first"
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
        """SIGTERM (a clean shutdown), SIGKILL if it does not end within `timeout`."""
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
