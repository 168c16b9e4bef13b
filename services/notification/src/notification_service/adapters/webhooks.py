"""Webhook endpoints (Mongo) and the signed HTTP sender.

Endpoint documents are an outbox collection: disabling one and its WebhookEndpointDisabled
event are one conditional write, so the event is emitted exactly once per disabling.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import time
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

import httpx
from pymongo import ASCENDING, IndexModel, ReturnDocument
from pymongo.asynchronous.database import AsyncDatabase

from mentorship_contracts import Envelope
from mentorship_kit.mongo import Indexes
from mentorship_kit.outbox import new_document, with_events

from ..domain import SIGNATURE_HEADER, forbidden_address, sign

ENDPOINTS = "webhook_endpoints"
INDEXES = Indexes(ENDPOINTS, (IndexModel([("enabled", ASCENDING)], name="enabled"),))


class ForbiddenUrl(ValueError):
    """The URL is not http(s) or points at an address webhooks may not call."""


class EndpointStore:
    def __init__(self, db: AsyncDatabase[dict[str, Any]]) -> None:
        self.coll = db[ENDPOINTS]

    async def add(self, doc: dict[str, Any]) -> None:
        await self.coll.insert_one(new_document(doc, []))

    async def get(self, endpoint_id: str) -> dict[str, Any] | None:
        return await self.coll.find_one({"_id": endpoint_id})

    async def all(self) -> list[dict[str, Any]]:
        return [d async for d in self.coll.find({}).sort("created_at", ASCENDING)]

    async def subscribed(self, event_type: str) -> list[dict[str, Any]]:
        cursor = self.coll.find({"enabled": True, "$or": [{"event_types": event_type}, {"event_types": "*"}]})
        return [d async for d in cursor]

    async def delete(self, endpoint_id: str) -> bool:
        return (await self.coll.delete_one({"_id": endpoint_id})).deleted_count == 1

    async def enable(self, endpoint_id: str, now: datetime) -> dict[str, Any] | None:
        return await self.coll.find_one_and_update(
            {"_id": endpoint_id},
            {"$set": {"enabled": True, "consecutive_failures": 0, "disabled_reason": None, "updated_at": now}},
            return_document=ReturnDocument.AFTER,
        )

    async def succeeded(self, endpoint_id: str) -> None:
        await self.coll.update_one(
            {"_id": endpoint_id, "consecutive_failures": {"$ne": 0}}, {"$set": {"consecutive_failures": 0}}
        )

    async def failed(self, endpoint_id: str) -> int:
        doc = await self.coll.find_one_and_update(
            {"_id": endpoint_id}, {"$inc": {"consecutive_failures": 1}}, return_document=ReturnDocument.AFTER
        )
        return int(doc["consecutive_failures"]) if doc else 0

    async def disable(
        self, endpoint_id: str, reason: str, threshold: int, now: datetime, events: list[Envelope[Any]]
    ) -> bool:
        """Disable once: only the write that flips `enabled` carries the event."""
        res = await self.coll.update_one(
            {"_id": endpoint_id, "enabled": True, "consecutive_failures": {"$gte": threshold}},
            with_events({"$set": {"enabled": False, "disabled_reason": reason, "disabled_at": now}}, events),
        )
        return res.modified_count == 1


def check_url_syntax(url: str) -> tuple[str, str, int]:
    """(scheme, host, port) of an http(s) URL without credentials, or ForbiddenUrl."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise ForbiddenUrl(f"not a valid URL: {exc}") from exc
    if parts.scheme not in ("http", "https"):
        raise ForbiddenUrl("only http and https URLs are allowed")
    if not parts.hostname:
        raise ForbiddenUrl("the URL has no host")
    if parts.username or parts.password:
        raise ForbiddenUrl("credentials in the URL are not allowed; use the signing secret")
    return parts.scheme, parts.hostname, port or (443 if parts.scheme == "https" else 80)


async def check_url(url: str, *, allow_loopback: bool, allow_private: bool) -> None:
    """Every address the host resolves to must be allowed (checked at registration and per send)."""
    _, host, port = check_url_syntax(url)
    try:
        addresses = [ipaddress.ip_address(host)]
    except ValueError:
        try:
            infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except OSError as exc:
            raise ForbiddenUrl(f"host {host!r} does not resolve") from exc
        addresses = [ipaddress.ip_address(str(info[4][0]).split("%", 1)[0]) for info in infos]
    for address in addresses:
        reason = forbidden_address(address, allow_loopback=allow_loopback, allow_private=allow_private)
        if reason:
            raise ForbiddenUrl(f"{host} resolves to a forbidden address ({reason})")


class WebhookResult:
    def __init__(self, status: int | None, detail: str) -> None:
        self.status = status
        self.detail = detail


class WebhookSender:
    def __init__(self, *, timeout: float, allow_loopback: bool, allow_private: bool) -> None:
        self.allow_loopback = allow_loopback
        self.allow_private = allow_private
        # Redirects are not followed: a redirect could lead to an address we refuse.
        self.client = httpx.AsyncClient(timeout=timeout, follow_redirects=False)

    async def post(self, *, url: str, secret: str, body: bytes, headers: dict[str, str]) -> WebhookResult:
        """Raises ForbiddenUrl (permanent) or httpx.HTTPError (transient: timeout, refused)."""
        await check_url(url, allow_loopback=self.allow_loopback, allow_private=self.allow_private)
        signature = sign(secret, int(time.time()), body)
        response = await self.client.post(
            url,
            content=body,
            headers={"content-type": "application/json", SIGNATURE_HEADER: signature, **headers},
        )
        return WebhookResult(response.status_code, f"HTTP {response.status_code}")

    async def close(self) -> None:
        await self.client.aclose()
