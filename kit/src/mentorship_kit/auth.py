"""JWT bearer authentication (HS256; subject = caller's profile id; roles admin/mentor/mentee)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Annotated, Literal

import jwt
from fastapi import Depends, Request

from .problems import Forbidden, Unauthorized

RoleName = Literal["admin", "mentor", "mentee"]
ROLES: tuple[str, ...] = ("admin", "mentor", "mentee")


@dataclass(frozen=True)
class Principal:
    subject: str
    roles: frozenset[str]

    @property
    def is_admin(self) -> bool:
        return "admin" in self.roles

    def require_self_or_admin(self, profile_id: str) -> None:
        if not (self.is_admin or self.subject == profile_id):
            raise Forbidden("only the person themselves or an admin may do this")

    def require_admin(self) -> None:
        if not self.is_admin:
            raise Forbidden("admin role required")


def issue_token(
    secret: str,
    subject: str,
    roles: list[str],
    *,
    issuer: str = "mentorship-platform",
    ttl: timedelta = timedelta(hours=12),
) -> str:
    unknown = set(roles) - set(ROLES)
    if unknown:
        raise ValueError(f"unknown role(s): {sorted(unknown)}")
    now = datetime.now(UTC)
    return jwt.encode(
        {"sub": subject, "roles": roles, "iss": issuer, "iat": now, "exp": now + ttl}, secret, algorithm="HS256"
    )


DEFAULT_LEEWAY = timedelta(seconds=30)


def decode_token(
    secret: str, token: str, *, issuer: str = "mentorship-platform", leeway: timedelta | float = DEFAULT_LEEWAY
) -> Principal:
    """Checks signature, issuer and times; `leeway` absorbs clock skew between issuer and service
    (a token that expired 10 s ago on a clock 20 s behind is still accepted)."""
    try:
        claims = jwt.decode(
            token, secret, algorithms=["HS256"], issuer=issuer, leeway=leeway, options={"require": ["sub", "exp"]}
        )
    except jwt.ExpiredSignatureError as exc:
        raise Unauthorized("token expired") from exc
    except jwt.PyJWTError as exc:
        raise Unauthorized(f"invalid token: {exc}") from exc
    roles = claims.get("roles") or []
    if not isinstance(roles, list) or not all(r in ROLES for r in roles):
        raise Unauthorized("invalid token: bad roles claim")
    return Principal(subject=str(claims["sub"]), roles=frozenset(roles))


def current_principal(request: Request) -> Principal:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise Unauthorized()
    settings = request.app.state.runtime.settings
    return decode_token(
        settings.jwt_secret, token.strip(), issuer=settings.jwt_issuer, leeway=settings.jwt_leeway_seconds
    )


CurrentPrincipal = Annotated[Principal, Depends(current_principal)]
