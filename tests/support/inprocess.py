"""A service's real app (runtime, consumers, relay, timers) in the test process, on the real broker
and store, with an HTTP client that calls it without a socket."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx


@dataclass
class InProcess:
    app: Any
    http: httpx.AsyncClient

    @property
    def runtime(self) -> Any:
        return self.app.state.runtime


@asynccontextmanager
async def in_process(app: Any, name: str) -> AsyncIterator[tuple[Any, httpx.AsyncClient]]:
    """Start `app` (its lifespan: runtime start and stop) and yield it with a client to it."""
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=f"http://{name}", timeout=30) as http,
    ):
        yield app, http
