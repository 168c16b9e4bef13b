"""Run the notification service: `notification-service` or `python -m notification_service`."""

from mentorship_kit.serve import serve

from .settings import Settings


def main() -> None:
    serve("notification_service.entrypoints.app:create", Settings())


if __name__ == "__main__":
    main()
