"""The one way a service process starts: `python -m <service>_service` or its console script."""

from __future__ import annotations

import uvicorn

from .settings import ServiceSettings


def serve(app_factory: str, settings: ServiceSettings) -> None:
    """Run `app_factory` ("package.entrypoints.app:create") under uvicorn with the service's settings."""
    uvicorn.run(
        app_factory,
        factory=True,
        host=settings.http_host,
        port=settings.http_port,
        log_level="warning",
        timeout_graceful_shutdown=20,
        timeout_keep_alive=30,  # longer than clients' idle expiry (httpx: 5 s): no close-vs-reuse race
    )
