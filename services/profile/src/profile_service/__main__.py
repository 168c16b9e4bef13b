"""Run the profile service: `profile-service` or `python -m profile_service`."""

from mentorship_kit.serve import serve

from .settings import Settings


def main() -> None:
    serve("profile_service.entrypoints.app:create", Settings())


if __name__ == "__main__":
    main()
