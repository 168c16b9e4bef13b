"""OpenID Connect bearer tokens from a company identity provider (Okta, Entra ID, Keycloak, Google...).

`OidcVerifier` checks an access or ID token the way a relying party must:
- the issuer's metadata from `<OIDC_ISSUER>/.well-known/openid-configuration` (its `issuer` must be
  OIDC_ISSUER exactly), then its keys from `jwks_uri`, both over httpx (OIDC_CA_FILE for a private CA);
- keys are cached for OIDC_JWKS_CACHE_SECONDS and fetched again when a token names a key id the cache
  does not hold, or when a token does not verify under the cached key of its key id (a provider that
  rotates keys under the same `kid`); at most one such refetch per OIDC_JWKS_MIN_REFRESH_SECONDS, so a
  stream of forged tokens cannot make us hammer the provider;
- the algorithm is pinned per key: the key's own `alg` (or the one its type implies) must be in
  OIDC_ALGORITHMS (asymmetric only) and equal the token's `alg`; `none` and HS* are never accepted,
  so an HS256 token "signed" with the public key is refused before any verification;
- `iss`, `aud` (OIDC_AUDIENCE), `exp`, `nbf` and `iat` with OIDC_LEEWAY_SECONDS of clock skew.

A rejected token is a 401 whose detail says what an operator needs to fix (expired, wrong audience,
unknown key...) and never echoes the token, its claims or key material. The details go to the log.

The verified token becomes an `Identity` (subject, email and whether the provider verified it, name,
platform roles from the groups/roles claim through OIDC_ROLE_MAP); `mentorship_kit.auth` maps it to
a profile id through the service's `IdentityDirectory`.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

import httpx
import jwt
import structlog

from .problems import Problem, Unauthorized

if TYPE_CHECKING:
    from .settings import ServiceSettings

log = structlog.get_logger()

# Asymmetric JWS algorithms only: a verifier that holds only public keys cannot check HMAC, and
# accepting HS* with a public key as the secret is the classic key-confusion forgery.
ASYMMETRIC_ALGORITHMS = frozenset({"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512"})
_EC_CURVE_ALGORITHMS = {"P-256": "ES256", "P-384": "ES384", "P-521": "ES512"}
PLATFORM_ROLES = frozenset({"admin", "mentor", "mentee"})
MAX_SUBJECT_LENGTH = 128  # ProfileSnapshot.external_id's limit


def parse_algorithms(raw: str) -> tuple[str, ...]:
    algorithms = tuple(a.strip() for a in raw.split(",") if a.strip())
    if not algorithms:
        raise ValueError("OIDC_ALGORITHMS is empty (e.g. RS256,ES256)")
    refused = [a for a in algorithms if a not in ASYMMETRIC_ALGORITHMS]
    if refused:
        raise ValueError(
            f"OIDC_ALGORITHMS: {', '.join(refused)} not accepted; only asymmetric signatures "
            f"({', '.join(sorted(ASYMMETRIC_ALGORITHMS))}), never none or HS*"
        )
    return algorithms


def parse_role_map(raw: str) -> dict[str, frozenset[str]]:
    """`mentorship-admins=admin,engineering=mentee` -> {group: {roles}}; a group may appear twice."""
    mapping: dict[str, set[str]] = {}
    for item in raw.split(","):
        if not item.strip():
            continue
        group, sep, role = item.rpartition("=")
        group, role = group.strip(), role.strip()
        if not sep or not group or role not in PLATFORM_ROLES:
            raise ValueError(f"OIDC_ROLE_MAP: {item.strip()!r} is not <group>=<admin|mentor|mentee>")
        mapping.setdefault(group, set()).add(role)
    return {group: frozenset(roles) for group, roles in mapping.items()}


def claim_at(claims: Mapping[str, Any], path: str) -> Any:
    """A claim by name, or by dotted path into nested objects (`realm_access.roles`). A claim whose
    name itself holds dots (`https://example.com/roles`) is found by its full name first."""
    if not path:
        return None
    if path in claims:
        return claims[path]
    value: Any = claims
    for part in path.split("."):
        if not isinstance(value, Mapping) or part not in value:
            return None
        value = value[part]
    return value


def _is_true(value: Any) -> bool:
    # Some providers (Cognito) send booleans as strings.
    return value is True or (isinstance(value, str) and value.strip().lower() == "true")


@dataclass(frozen=True)
class Identity:
    """A person as the identity provider vouches for them (not yet mapped to a profile)."""

    issuer: str
    subject: str
    email: str | None
    email_verified: bool
    name: str | None
    roles: frozenset[str]


class IdentityDirectory(Protocol):
    """Maps a signed-in person to their profile id, from the service's own data (no remote call)."""

    async def profile_for(self, identity: Identity) -> str | None: ...


class IdentityProviderUnavailable(Problem):
    def __init__(self) -> None:
        super().__init__(
            503, "Service unavailable", "the identity provider's signing keys could not be fetched; try again shortly"
        )


class _Refused(Exception):
    """Internal: a token is refused; `reason` is safe to show, `log_fields` only go to the log."""

    def __init__(self, reason: str, **log_fields: Any) -> None:
        super().__init__(reason)
        self.reason = reason
        self.log_fields = log_fields


def _key_algorithm(jwk: Mapping[str, Any]) -> str | None:
    alg = jwk.get("alg")
    if isinstance(alg, str):
        return alg
    if jwk.get("kty") == "RSA":
        return "RS256"
    if jwk.get("kty") == "EC":
        return _EC_CURVE_ALGORITHMS.get(str(jwk.get("crv")))
    return None


class OidcVerifier:
    def __init__(
        self,
        settings: ServiceSettings,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.issuer = settings.oidc_issuer
        self.audience = settings.oidc_audience
        self.algorithms = parse_algorithms(settings.oidc_algorithms)
        self.role_map = parse_role_map(settings.oidc_role_map)
        self.leeway = settings.oidc_leeway_seconds
        self.subject_claim = settings.oidc_subject_claim
        self.email_claim = settings.oidc_email_claim
        self.email_verified_claim = settings.oidc_email_verified_claim
        self.name_claim = settings.oidc_name_claim
        self.roles_claim = settings.oidc_roles_claim
        self.cache_seconds = settings.oidc_jwks_cache_seconds
        self.min_refresh_seconds = settings.oidc_jwks_min_refresh_seconds
        self._verify_tls: str | bool = settings.oidc_ca_file or True
        self._transport = transport
        self._monotonic = monotonic
        self._jwks_uri: str | None = None
        self._keys: dict[str | None, jwt.PyJWK] = {}
        self._fetched_at: float | None = None
        self._lock = asyncio.Lock()
        self.refreshes = 0  # how many times the keys were fetched (tests, metrics)

    @property
    def discovery_url(self) -> str:
        return self.issuer.rstrip("/") + "/.well-known/openid-configuration"

    # --- keys ---------------------------------------------------------------------------------
    async def _get_json(self, client: httpx.AsyncClient, url: str) -> dict[str, Any]:
        answer = await client.get(url, headers={"accept": "application/json"})
        answer.raise_for_status()
        data = answer.json()
        if not isinstance(data, dict):
            raise ValueError(f"{url} did not answer a JSON object")
        return data

    async def _fetch_keys(self) -> None:
        try:
            async with httpx.AsyncClient(
                verify=self._verify_tls, timeout=5.0, transport=self._transport, follow_redirects=False
            ) as client:
                if self._jwks_uri is None:
                    metadata = await self._get_json(client, self.discovery_url)
                    if metadata.get("issuer") != self.issuer:
                        log.error(
                            "oidc discovery names another issuer",
                            expected=self.issuer,
                            discovered=metadata.get("issuer"),
                        )
                        raise ValueError("the discovery document's issuer is not OIDC_ISSUER")
                    jwks_uri = metadata.get("jwks_uri")
                    if not isinstance(jwks_uri, str) or not jwks_uri:
                        raise ValueError("the discovery document has no jwks_uri")
                    self._jwks_uri = jwks_uri
                jwks = await self._get_json(client, self._jwks_uri)
        except (httpx.HTTPError, ValueError) as exc:
            log.error("oidc keys could not be fetched", issuer=self.issuer, error=str(exc))
            raise IdentityProviderUnavailable() from exc
        keys: dict[str | None, jwt.PyJWK] = {}
        for jwk in jwks.get("keys") or []:
            if not isinstance(jwk, dict) or jwk.get("use", "sig") != "sig":
                continue
            alg = _key_algorithm(jwk)
            if alg not in self.algorithms:
                continue  # a key we may never accept is as good as absent
            try:
                keys[jwk.get("kid")] = jwt.PyJWK(jwk, algorithm=alg)
            except jwt.PyJWTError as exc:
                log.warning("oidc key skipped", kid=jwk.get("kid"), error=str(exc))
        self._keys = keys
        self._fetched_at = self._monotonic()
        self.refreshes += 1
        log.info("oidc keys fetched", issuer=self.issuer, kids=sorted(str(k) for k in keys))

    async def _key(self, kid: str | None, *, after_failure: bool = False) -> tuple[jwt.PyJWK | None, bool]:
        """The key for `kid` and whether the keys were fetched just now."""
        async with self._lock:
            now = self._monotonic()
            never = self._fetched_at is None
            age = 0.0 if self._fetched_at is None else now - self._fetched_at
            may_refetch = never or age >= self.min_refresh_seconds
            wanted = after_failure or kid not in self._keys
            if never or age > self.cache_seconds or (wanted and may_refetch):
                await self._fetch_keys()
                return self._keys.get(kid), True
            return self._keys.get(kid), False

    # --- tokens -------------------------------------------------------------------------------
    async def verify(self, token: str) -> Identity:
        try:
            return await self._verify(token)
        except _Refused as refused:
            log.warning("oidc token refused", reason=refused.reason, **refused.log_fields)
            raise Unauthorized(f"invalid token: {refused.reason}") from None

    async def _verify(self, token: str) -> Identity:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise _Refused("not a well-formed signed JWT") from None
        alg, kid = header.get("alg"), header.get("kid")
        if not isinstance(alg, str) or alg.lower() == "none":
            raise _Refused("unsigned tokens (alg none) are not accepted")
        if alg.upper().startswith("HS"):
            raise _Refused(
                f"symmetric {alg[:5]} tokens are not accepted from the identity provider "
                f"(accepted: {', '.join(self.algorithms)})"
            )
        if alg not in self.algorithms:
            raise _Refused(f"signature algorithm not accepted (accepted: {', '.join(self.algorithms)})", alg=alg[:20])
        if kid is not None and not isinstance(kid, str):
            raise _Refused("malformed key id (kid)")
        key, fresh = await self._key(kid)
        if key is None:
            why = "keys refreshed" if fresh else f"keys refreshed less than {self.min_refresh_seconds:g} s ago"
            raise _Refused(
                f"signed with a key the identity provider does not publish (unknown key id; {why})",
                kid=(kid or "")[:100],
            )
        try:
            claims = self._decode(token, key, alg)
        except jwt.InvalidSignatureError:
            # The provider may have rotated the key under the same kid: look again, once.
            again, fresh = await self._key(kid, after_failure=True)
            if not fresh or again is None:
                raise _Refused(
                    "signature does not verify with the identity provider's key", kid=(kid or "")[:100]
                ) from None
            try:
                claims = self._decode(token, again, alg)
            except jwt.InvalidSignatureError:
                raise _Refused(
                    "signature does not verify with the identity provider's key", kid=(kid or "")[:100]
                ) from None
        return self._identity(claims)

    def _decode(self, token: str, key: jwt.PyJWK, alg: str) -> dict[str, Any]:
        if key.algorithm_name != alg:
            raise _Refused(
                "token algorithm does not match its key's algorithm", alg=alg[:20], key_alg=key.algorithm_name
            )
        try:
            return jwt.decode(
                token,
                key.key,
                algorithms=[alg],
                audience=self.audience,
                issuer=self.issuer,
                leeway=self.leeway,
                options={"require": ["exp", "iss", "aud"]},
            )
        except jwt.InvalidSignatureError:
            raise
        except jwt.ExpiredSignatureError:
            raise _Refused("token expired") from None
        except jwt.ImmatureSignatureError:
            raise _Refused("token not valid yet (nbf or iat in the future, beyond the allowed clock skew)") from None
        except jwt.InvalidAudienceError:
            raise _Refused("token audience (aud) does not include this platform's OIDC_AUDIENCE") from None
        except jwt.InvalidIssuerError:
            raise _Refused("token issuer (iss) is not the configured OIDC_ISSUER") from None
        except jwt.MissingRequiredClaimError as exc:
            raise _Refused(f"token lacks the '{exc.claim}' claim") from None
        except jwt.PyJWTError as exc:
            raise _Refused("malformed token claims", error=type(exc).__name__) from None

    def _identity(self, claims: Mapping[str, Any]) -> Identity:
        subject = claim_at(claims, self.subject_claim)
        if not isinstance(subject, str) or not subject.strip() or len(subject) > MAX_SUBJECT_LENGTH:
            raise _Refused(
                f"the subject claim '{self.subject_claim}' (OIDC_SUBJECT_CLAIM) is missing, not a "
                f"string or longer than {MAX_SUBJECT_LENGTH} characters"
            )
        email = claim_at(claims, self.email_claim)
        email = email.strip() if isinstance(email, str) and email.strip() else None
        name = claim_at(claims, self.name_claim)
        name = name.strip() if isinstance(name, str) and name.strip() else None
        verified = bool(email) and _is_true(claim_at(claims, self.email_verified_claim))
        return Identity(
            issuer=self.issuer,
            subject=subject,
            email=email,
            email_verified=verified,
            name=name,
            roles=self._roles(claim_at(claims, self.roles_claim)),
        )

    def _roles(self, value: Any) -> frozenset[str]:
        if isinstance(value, str):
            groups = value.replace(",", " ").split()
        elif isinstance(value, list):
            groups = [g for g in value if isinstance(g, str)]
        else:
            groups = []
        roles: set[str] = set()
        for group in groups:
            roles |= self.role_map.get(group, frozenset())
        return frozenset(roles)
