"""Issue a local development token: python -m mentorship_kit.devtoken SUBJECT ROLE [ROLE ...]."""

from __future__ import annotations

import argparse
from datetime import timedelta

from .auth import ROLES, issue_token
from .settings import ServiceSettings


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("subject", help="profile id the token speaks for")
    parser.add_argument("roles", nargs="+", choices=ROLES)
    parser.add_argument("--hours", type=float, default=12)
    args = parser.parse_args(argv)
    settings = ServiceSettings()
    print(
        issue_token(
            settings.jwt_secret, args.subject, args.roles, issuer=settings.jwt_issuer, ttl=timedelta(hours=args.hours)
        )
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
