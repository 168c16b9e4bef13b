"""Webhook endpoints (admin): register one with its secret, enable a disabled one again."""

from __future__ import annotations

import secrets
from typing import Any

from mentorship_kit.problems import NotFound, Unprocessable

from ..adapters.webhooks import ForbiddenUrl, check_url
from .base import NotificationBase


class EndpointAdmin(NotificationBase):
    async def register_endpoint(
        self, *, url: str, secret: str | None, event_types: list[str], description: str, known_types: set[str]
    ) -> dict[str, Any]:
        try:
            await check_url(
                url,
                allow_loopback=self.settings.webhook_allow_loopback,
                allow_private=self.settings.webhook_allow_private,
            )
        except ForbiddenUrl as exc:
            raise Unprocessable(str(exc), field="url") from exc
        unknown = sorted(set(event_types) - known_types - {"*"})
        if unknown:
            raise Unprocessable(f"unknown event type(s): {', '.join(unknown)}", field="event_types")
        now = self.clock.now()
        doc = {
            "_id": f"wh_{secrets.token_hex(8)}",
            "url": url,
            "secret": secret or f"whsec_{secrets.token_urlsafe(32)}",
            "event_types": sorted(set(event_types)),
            "description": description,
            "enabled": True,
            "consecutive_failures": 0,
            "disabled_reason": None,
            "created_at": now,
            "updated_at": now,
        }
        await self.endpoints.add(doc)
        return doc

    async def enable_endpoint(self, endpoint_id: str) -> dict[str, Any]:
        doc = await self.endpoints.enable(endpoint_id, self.clock.now())
        if doc is None:
            raise NotFound("webhook endpoint", endpoint_id)
        return doc
