"""Run the matching service: `matching-service` or `python -m matching_service`."""

from mentorship_kit.serve import serve

from .settings import Settings


def main() -> None:
    serve("matching_service.entrypoints.app:create", Settings())


if __name__ == "__main__":
    main()
