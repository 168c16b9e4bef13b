"""Bearer authentication: company sign-on (OpenID Connect) and development HS256 tokens.

Development tokens (HS256 with JWT_SECRET): subject = the caller's profile id, roles in `roles`.
Accepted when OIDC_ISSUER is not set, or beside it with ALLOW_DEV_TOKENS=true.

Company tokens (OIDC_ISSUER set): verified by `mentorship_kit.oidc.OidcVerifier`; the person is mapped
to a profile id by the service's `IdentityDirectory` (`runtime.identities`), from its own data: the
profile service from its store, the others from the identity map in their profile read model. A
person mapped to no profile yet is told to call `GET /me` on the profile service first.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Annotated, Literal

import jwt
from fastapi import Depends, Request

from .oidc import Identity, OidcVerifier
from .problems import Forbidden, Unauthorized

RoleName = Literal["admin", "mentor", "mentee"]
ROLES: tuple[str, ...] = ("admin", "mentor", "mentee")


@dataclass(frozen=True)
class Principal:
    """The caller: `subject` is their profile id; `identity` is set when they signed on through OIDC."""

    subject: str
    roles: frozenset[str]
    identity: Identity | None = None

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


def bearer_token(request: Request) -> str:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized()
    return token.strip()


def oidc_verifier(request: Request) -> OidcVerifier | None:
    """The service's verifier (one per process: it caches the provider's keys), or None without OIDC."""
    runtime = request.app.state.runtime
    verifier: OidcVerifier | None = getattr(runtime, "oidc", None)
    if verifier is None and runtime.settings.oidc_issuer:
        verifier = OidcVerifier(runtime.settings)
        runtime.oidc = verifier
    return verifier


def _is_dev_token(token: str) -> bool:
    try:
        return jwt.get_unverified_header(token).get("alg") == "HS256"
    except jwt.PyJWTError:
        return False


def _dev_principal(request: Request, token: str) -> Principal:
    settings = request.app.state.runtime.settings
    return decode_token(settings.jwt_secret, token, issuer=settings.jwt_issuer, leeway=settings.jwt_leeway_seconds)


async def current_caller(request: Request) -> Principal | Identity:
    """Who holds the token, before any mapping: a Principal for a development token, the Identity for
    a company token. Only the profile service's `GET /me` needs this; every other route takes
    `CurrentPrincipal`."""
    token = bearer_token(request)
    verifier = oidc_verifier(request)
    if verifier is None:
        return _dev_principal(request, token)
    if _is_dev_token(token):
        if request.app.state.runtime.settings.allow_dev_tokens:
            return _dev_principal(request, token)
        raise Unauthorized(
            "invalid token: development HS256 tokens are not accepted here; sign in through "
            "the company identity provider (RS256/ES256 tokens)"
        )
    return await verifier.verify(token)


async def current_principal(request: Request) -> Principal:
    caller = await current_caller(request)
    if isinstance(caller, Principal):
        return caller
    directory = getattr(request.app.state.runtime, "identities", None)
    profile_id = await directory.profile_for(caller) if directory is not None else None
    if profile_id is None:
        raise Forbidden(
            "no profile is linked to this sign-on yet: call GET /me on the profile service first "
            "(it links your imported profile or creates one)"
        )
    return Principal(subject=profile_id, roles=caller.roles, identity=caller)


CurrentPrincipal = Annotated[Principal, Depends(current_principal)]
CurrentCaller = Annotated[Principal | Identity, Depends(current_caller)]
