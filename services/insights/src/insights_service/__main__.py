"""Run the insights service: `insights-service` or `python -m insights_service`."""

from mentorship_kit.serve import serve

from .settings import Settings


def main() -> None:
    serve("insights_service.entrypoints.app:create", Settings())


if __name__ == "__main__":
    main()
