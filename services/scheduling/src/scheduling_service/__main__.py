"""Run the scheduling service: `scheduling-service` or `python -m scheduling_service`."""

import uvicorn

from .settings import Settings


def main() -> None:
    settings = Settings()
    uvicorn.run(
        "scheduling_service.entrypoints.app:create",
        factory=True,
        host=settings.http_host,
        port=settings.http_port,
        log_level="warning",
        timeout_graceful_shutdown=20,
        timeout_keep_alive=30,  # longer than clients' idle expiry (httpx: 5 s): no close-vs-reuse race
    )


if __name__ == "__main__":
    main()
