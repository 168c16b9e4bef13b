"""The kit's limits without infrastructure: request bodies, event sizes, JWT leeway and secrets."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import jwt
import pytest
from fastapi import APIRouter, Request
from pydantic import BaseModel, ValidationError

from mentorship_contracts import Envelope
from mentorship_contracts.profile import Goal, ProfileRegistered, ProfileSnapshot
from mentorship_kit import outbox
from mentorship_kit.auth import CurrentPrincipal, decode_token, issue_token
from mentorship_kit.problems import Problem
from mentorship_kit.runtime import ServiceRuntime, create_app
from mentorship_kit.settings import ServiceSettings

SECRET = "unit-secret-for-the-kit-tests-0123456789"
MiB = 1024 * 1024


class Settings(ServiceSettings):
    service_name: str = "kit-unit"
    jwt_secret: str = SECRET

    def body_limits(self) -> dict[tuple[str, str], int]:
        return {("POST", "/big"): 4 * MiB}


class Thing(BaseModel):
    text: str


def app_under_test() -> Any:
    router = APIRouter()

    @router.post("/things")
    async def post_thing(thing: Thing, principal: CurrentPrincipal) -> dict[str, int]:
        return {"length": len(thing.text)}

    @router.post("/big")
    async def post_big(request: Request) -> dict[str, int]:
        size = 0
        async for chunk in request.stream():
            size += len(chunk)
        return {"size": size}

    # Not started: no broker or store is touched by these requests.
    return create_app(ServiceRuntime(Settings()), title="kit-unit", routers=[router])


async def call(app: Any, *, path: str, headers: list[tuple[bytes, bytes]], chunks: Any) -> tuple[int, dict, int]:
    """Drive the ASGI app by hand: count how many body bytes it pulled."""
    pulled = 0
    answer: dict[str, Any] = {"body": b""}

    async def receive() -> dict[str, Any]:
        nonlocal pulled
        try:
            chunk = next(chunks)
        except StopIteration:
            return {"type": "http.request", "body": b"", "more_body": False}
        pulled += len(chunk)
        return {"type": "http.request", "body": chunk, "more_body": True}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            answer["status"] = message["status"]
            answer["headers"] = {k.decode(): v.decode() for k, v in message["headers"]}
        elif message["type"] == "http.response.body":
            answer["body"] += message.get("body", b"")

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": headers,
        "client": ("127.0.0.1", 1),
        "server": ("127.0.0.1", 80),
    }
    await app(scope, receive, send)
    assert answer["headers"]["content-type"] == "application/problem+json" or answer["status"] < 400
    return answer["status"], json.loads(answer["body"] or b"{}"), pulled


def endless(chunk_size: int = 64 * 1024, total: int = 50 * MiB) -> Any:
    return iter([b"x" * chunk_size] * (total // chunk_size))


async def test_a_declared_50_mb_body_is_refused_before_a_byte_is_read_or_the_token_checked():
    status, body, pulled = await call(
        app_under_test(),
        path="/things",
        headers=[(b"content-length", str(50 * MiB).encode()), (b"content-type", b"application/json")],
        chunks=endless(),
    )
    assert status == 413 and pulled == 0
    assert body["title"] == "Content too large" and body["limit"] == MiB


async def test_a_chunked_body_is_cut_off_just_past_the_cap():
    status, body, pulled = await call(
        app_under_test(),
        path="/things",
        headers=[(b"content-type", b"application/json"), (b"transfer-encoding", b"chunked")],
        chunks=endless(),
    )
    assert status == 413 and body["status"] == 413
    assert MiB < pulled <= MiB + 64 * 1024  # never the whole 50 MB


async def test_a_route_with_its_own_cap_takes_more_and_still_stops():
    app = app_under_test()
    status, body, pulled = await call(
        app, path="/big", headers=[(b"content-length", str(3 * MiB).encode())], chunks=endless(total=3 * MiB)
    )
    assert status == 200 and body == {"size": 3 * MiB}
    status, body, pulled = await call(app, path="/big", headers=[], chunks=endless())
    assert status == 413 and body["limit"] == 4 * MiB and pulled <= 4 * MiB + 64 * 1024


async def test_a_body_under_the_cap_goes_through_to_authentication():
    transport = httpx.ASGITransport(app=app_under_test())
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
        assert (await http.post("/things", json={"text": "hi"})).status_code == 401
        token = issue_token(SECRET, "p-1", ["mentee"])
        r = await http.post("/things", json={"text": "x" * 1000}, headers={"Authorization": f"Bearer {token}"})
        assert r.status_code == 200 and r.json() == {"length": 1000}


def registered(description: str) -> Envelope[Any]:
    profile = ProfileSnapshot(
        profile_id="p-1",
        display_name="Ada",
        email="ada@example.org",
        roles=["mentee"],
        goals=[Goal(goal_id=f"g{i}", title="Grow", description=description) for i in range(20)],
    )
    return Envelope.wrap(ProfileRegistered(profile_id="p-1", profile=profile), source="test")


def test_an_event_above_the_limit_is_refused_with_422_before_anything_is_written():
    outbox.set_event_max_bytes(8 * 1024)
    try:
        assert outbox.outbox_entries([registered("short")])[0]["type"] == "mentorship.profile.profile_registered"
        with pytest.raises(outbox.EventTooLarge) as refused:
            outbox.with_events({"$set": {"x": 1}}, [registered("y" * 1000)])
        assert isinstance(refused.value, Problem) and refused.value.status == 422
        assert refused.value.extra["limit"] == 8 * 1024 and refused.value.extra["size"] > 8 * 1024
    finally:
        outbox.set_event_max_bytes(outbox.DEFAULT_EVENT_MAX_BYTES)


def test_the_default_event_limit_is_below_kafkas_default_message_size():
    assert ServiceSettings().event_max_bytes == outbox.DEFAULT_EVENT_MAX_BYTES < 1024 * 1024


def _token(exp_offset: float) -> str:
    now = datetime.now(UTC)
    return jwt.encode(
        {
            "sub": "p-1",
            "roles": ["mentee"],
            "iss": "mentorship-platform",
            "iat": now - timedelta(hours=1),
            "exp": now + timedelta(seconds=exp_offset),
        },
        SECRET,
        algorithm="HS256",
    )


def test_jwt_validation_allows_30_seconds_of_clock_skew():
    assert decode_token(SECRET, _token(-10)).subject == "p-1"  # expired 10 s ago on our clock: skew
    with pytest.raises(Problem) as refused:
        decode_token(SECRET, _token(-60))
    assert refused.value.status == 401
    assert ServiceSettings().jwt_leeway_seconds == 30


def test_jwt_secrets_have_at_least_32_bytes():
    with pytest.raises(ValidationError):
        ServiceSettings(jwt_secret="sixteen-chars-ok")
    assert len(ServiceSettings().jwt_secret) >= 32
    from tests.support.processes import JWT_SECRET

    assert ServiceSettings(jwt_secret=JWT_SECRET).jwt_secret == JWT_SECRET
