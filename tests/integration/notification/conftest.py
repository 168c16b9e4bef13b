"""Real collaborators for the notification tests: an SMTP server (the shared sink), a webhook receiver
(starlette on uvicorn), and the service itself running in this process on the real broker and store."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from mentorship_contracts import Envelope, EventData, encode
from mentorship_contracts.profile import NotificationPreferences, ProfileSnapshot, ProfileState
from mentorship_ops.support import SmtpSink, free_port
from notification_service.entrypoints.app import create
from notification_service.settings import Settings
from tests.support.inprocess import InProcess, in_process
from tests.support.kafka import eventually, produce
from tests.support.processes import JWT_SECRET


@pytest.fixture
def smtp() -> Iterator[tuple[SmtpSink, int]]:
    with SmtpSink() as box:
        yield box, box.port


@dataclass
class Receiver:
    """A webhook receiver that verifies signatures on its own (no service code)."""

    secret: str
    port: int = 0
    statuses: dict[str, int] = field(default_factory=dict)
    calls: list[dict[str, Any]] = field(default_factory=list)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}/{path}"

    async def endpoint(self, request: Request) -> Response:
        body = await request.body()
        header = request.headers.get("mentorship-signature", "")
        parts = dict(p.split("=", 1) for p in header.split(",") if "=" in p)
        expected = hmac.new(self.secret.encode(), f"{parts.get('t')}.".encode() + body, hashlib.sha256).hexdigest()
        fresh = abs(time.time() - int(parts.get("t", "0"))) < 300
        self.calls.append(
            {
                "path": request.url.path.strip("/"),
                "body": body,
                "headers": dict(request.headers),
                "verified": hmac.compare_digest(expected, parts.get("v1", "")) and fresh,
            }
        )
        return Response(status_code=self.statuses.get(request.url.path.strip("/"), 204))

    def on(self, path: str) -> list[dict[str, Any]]:
        return [c for c in self.calls if c["path"] == path]


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    rec = Receiver(secret="whsec_test_secret_0123456789", port=free_port())
    app = Starlette(routes=[Route("/{path}", rec.endpoint, methods=["POST"])])
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=rec.port, log_level="warning", lifespan="off"))
    task = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.02)
    try:
        yield rec
    finally:
        server.should_exit = True
        await task


@dataclass
class Running(InProcess):
    infra: Any = None
    prefix: str = ""

    @property
    def notifications(self) -> Any:
        return self.app.state.notifications

    async def send(self, data: EventData, **kw: Any) -> Envelope[Any]:
        env = Envelope.wrap(data, source="test", **kw)
        await self.resend(env)
        return env

    async def resend(self, env: Envelope[Any]) -> None:
        await produce(
            self.infra.kafka_bootstrap, f"{self.prefix}{env.data.topic}", encode(env), key=env.subject.encode()
        )

    async def delivery(self, delivery_id: str, *, state: str | None = None) -> dict[str, Any]:
        async def check() -> dict[str, Any] | None:
            doc = await self.notifications.deliveries.get(delivery_id)
            return doc if doc and (state is None or doc["state"] == state) else None

        return await eventually(check, timeout=20)

    async def fire_timers(self) -> None:
        await self.runtime.timer_loop.run_due()


def notification_settings(settings_for: Any, smtp_port: int, **overrides: Any) -> Settings:
    base: dict[str, Any] = dict(
        smtp_host="127.0.0.1",
        smtp_port=smtp_port,
        jwt_secret=JWT_SECRET,
        webhook_allow_loopback=True,
        delivery_recovery_interval_seconds=0.3,
        delivery_retry_base_seconds=10,
        delivery_max_attempts=5,
        webhook_disable_after_failures=3,
        consumer_max_attempts=2,
    )
    base.update(overrides)
    return settings_for(Settings, **base)


@pytest.fixture
async def service(settings_for: Any, smtp: tuple[SmtpSink, int], infra: Any, prefix: str) -> AsyncIterator[Running]:
    async with in_process(create(notification_settings(settings_for, smtp[1])), "notification") as (app, http):
        yield Running(app, http, infra, prefix)


def person(
    pid: str, name: str, tz: str = "UTC", *, roles: tuple[str, ...] = ("mentee",), prefs: dict[str, Any] | None = None
) -> ProfileState:
    snapshot = ProfileSnapshot(
        profile_id=pid,
        display_name=name,
        email=f"{pid}@example.org",
        roles=list(roles),
        time_zone=tz,
        notification_preferences=NotificationPreferences(**(prefs or {})),
    )
    return ProfileState(profile_id=pid, version=1, profile=snapshot)  # profile.state: the contact book's source


async def known(svc: Running, *pids: str) -> None:
    """Wait until the contact book has these people."""

    async def check() -> bool:
        return len(await svc.notifications.contacts.get_many(list(pids))) == len(pids)

    await eventually(check, timeout=30)
