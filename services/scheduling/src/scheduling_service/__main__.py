"""Run the scheduling service: `scheduling-service` or `python -m scheduling_service`."""

from mentorship_kit.serve import serve

from .settings import Settings


def main() -> None:
    serve("scheduling_service.entrypoints.app:create", Settings())


if __name__ == "__main__":
    main()
