"""A service and its store going away: the service neither exits nor answers 500.

Found by `make chaos`: a replica started while the store was restarting exited (status 3) and, in a
crash loop, stayed down; during a store outage the routes answered 500 "unhandled error". Now a
service started without its store stays up, not ready, and finishes starting when the store is back;
a request during an outage gets 503 problem+json with Retry-After.

The store is reached through a TCP relay in the test that can be switched off and on, so the real
store keeps serving every other test.
"""

from __future__ import annotations

import asyncio
import contextlib
from urllib.parse import urlparse

import httpx
import pytest

from tests.support.processes import ServiceProcess, free_port, service_env, token

pytestmark = pytest.mark.integration


class SwitchableRelay:
    """Forwards a local port to the store while on; when off, refuses connections and cuts open ones."""

    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.port = free_port()
        self.server: asyncio.Server | None = None
        self.writers: set[asyncio.StreamWriter] = set()

    async def on(self) -> None:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", self.port)

    async def off(self) -> None:
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()
            self.server = None
        for writer in list(self.writers):
            writer.close()
        self.writers.clear()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection(*self.target)
        self.writers |= {writer, up_writer}

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            with contextlib.suppress(ConnectionError, OSError):
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            dst.close()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))


async def ready_status(http: httpx.AsyncClient) -> tuple[int, dict[str, object]]:
    r = await http.get("/ready")
    return r.status_code, r.json()


async def test_a_service_started_without_its_store_waits_for_it_and_an_outage_answers_503(infra, prefix, tmp_path):
    store = urlparse(infra.mongodb_uri)
    relay = SwitchableRelay(store.hostname or "127.0.0.1", store.port or 27017)
    port = free_port()
    env = service_env(
        "profile", kafka=infra.kafka_bootstrap, mongo=f"mongodb://127.0.0.1:{relay.port}/", prefix=prefix, port=port
    )
    svc = ServiceProcess("profile", port, env, tmp_path / "profile.log").launch()
    admin = token("admin-1", "admin")
    try:
        async with httpx.AsyncClient(base_url=svc.url, timeout=15) as http:
            # Started while the store is down: alive (/health), not ready, says why; it does not exit.
            for _ in range(300):
                with contextlib.suppress(httpx.HTTPError):
                    if (await http.get("/health")).status_code == 200:
                        break
                assert svc.proc is not None and svc.proc.poll() is None, svc.tail()
                await asyncio.sleep(0.2)
            status, body = await ready_status(http)
            assert status == 503 and str(body["checks"]["mongo"]).startswith("unreachable"), body  # type: ignore[index]
            await asyncio.sleep(8)  # longer than a store selection timeout (5 s): still alive
            assert svc.proc is not None and svc.proc.poll() is None, svc.tail()

            # The store comes back: the service finishes starting on its own.
            await relay.on()
            await asyncio.to_thread(svc.wait_ready, 180)
            assert (await http.get("/profiles/p-nobody", headers=admin)).status_code == 404

            # An outage while serving: 503 problem+json with Retry-After, never 500.
            await relay.off()
            r = await http.get("/profiles/p-nobody", headers=admin)
            assert r.status_code == 503, r.text
            assert r.headers["content-type"].startswith("application/problem+json")
            assert r.headers["retry-after"] == "5" and r.json()["title"] == "Service unavailable"

            await relay.on()
            for _ in range(100):
                r = await http.get("/profiles/p-nobody", headers=admin)
                if r.status_code == 404:
                    break
                await asyncio.sleep(0.2)
            assert r.status_code == 404, r.text
    finally:
        svc.stop()
        await relay.off()
