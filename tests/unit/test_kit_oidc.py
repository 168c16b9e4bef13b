"""The kit's OpenID Connect verifier over an in-memory identity provider (httpx.MockTransport).

The real provider is exercised in tests/integration/security/test_oidc.py; here the cases that are
awkward to make with it: a new key id (rotation by kid), the refetch rate limit, EC keys, nested role
claims, algorithm pinning per key, settings that must be refused.
"""

from __future__ import annotations

import json
import time
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm
from pydantic import ValidationError

from mentorship_kit.oidc import OidcVerifier, claim_at, parse_algorithms, parse_role_map
from mentorship_kit.problems import Problem, Unauthorized
from mentorship_kit.settings import ServiceSettings

ISSUER = "https://idp.example.com/realms/company"
AUDIENCE = "mentorship-api"


class FakeProvider:
    """Discovery and JWKS, counting fetches; keys can be swapped to simulate rotation."""

    def __init__(self) -> None:
        self.keys: dict[str, Any] = {}
        self.published: list[str] = []
        self.jwks_fetches = 0
        self.down = False

    def add_rsa(self, kid: str, *, publish: bool = True) -> Any:
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.keys[kid] = key
        if publish:
            self.published.append(kid)
        return key

    def add_ec(self, kid: str) -> Any:
        key = ec.generate_private_key(ec.SECP256R1())
        self.keys[kid] = key
        self.published.append(kid)
        return key

    def jwk(self, kid: str) -> dict[str, Any]:
        key = self.keys[kid]
        if isinstance(key, rsa.RSAPrivateKey):
            jwk = json.loads(RSAAlgorithm.to_jwk(key.public_key()))
        else:
            jwk = json.loads(ECAlgorithm.to_jwk(key.public_key()))
        return {**jwk, "kid": kid, "use": "sig"}

    def handler(self, request: httpx.Request) -> httpx.Response:
        if self.down:
            return httpx.Response(503)
        if request.url.path.endswith("/.well-known/openid-configuration"):
            return httpx.Response(200, json={"issuer": ISSUER, "jwks_uri": f"{ISSUER}/certs"})
        if request.url.path.endswith("/certs"):
            self.jwks_fetches += 1
            return httpx.Response(200, json={"keys": [self.jwk(k) for k in self.published]})
        return httpx.Response(404)

    def token(self, kid: str, alg: str = "RS256", **claims: Any) -> str:
        now = int(time.time())
        body = {
            "iss": ISSUER,
            "aud": AUDIENCE,
            "sub": "00u-alice",
            "iat": now,
            "exp": now + 300,
            "email": "alice@example.com",
            "email_verified": True,
            **claims,
        }
        return jwt.encode(body, self.keys[kid], algorithm=alg, headers={"kid": kid})


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def settings(**overrides: Any) -> ServiceSettings:
    base: dict[str, Any] = dict(
        oidc_issuer=ISSUER,
        oidc_audience=AUDIENCE,
        oidc_roles_claim="realm_access.roles",
        oidc_role_map="mentorship-admins=admin,engineering=mentee,engineering=mentor",
        oidc_jwks_min_refresh_seconds=30,
    )
    base.update(overrides)
    return ServiceSettings(**base)


def verifier(provider: FakeProvider, clock: Clock | None = None, **overrides: Any) -> OidcVerifier:
    return OidcVerifier(
        settings(**overrides), transport=httpx.MockTransport(provider.handler), monotonic=clock or Clock()
    )


async def refused(v: OidcVerifier, token: str) -> str:
    with pytest.raises(Unauthorized) as caught:
        await v.verify(token)
    return str(caught.value.detail)


async def test_a_valid_token_becomes_an_identity_with_mapped_roles() -> None:
    idp = FakeProvider()
    idp.add_rsa("k1")
    identity = await verifier(idp).verify(
        idp.token("k1", name="Alice", realm_access={"roles": ["engineering", "mentorship-admins", "unmapped"]})
    )
    assert identity.subject == "00u-alice" and identity.email == "alice@example.com" and identity.email_verified
    assert identity.name == "Alice" and identity.roles == {"admin", "mentee", "mentor"}


async def test_email_verified_only_when_the_provider_says_so() -> None:
    idp = FakeProvider()
    idp.add_rsa("k1")
    v = verifier(idp)
    assert not (await v.verify(idp.token("k1", email_verified=False))).email_verified
    assert not (await v.verify(idp.token("k1", email_verified=None))).email_verified
    assert (await v.verify(idp.token("k1", email_verified="true"))).email_verified  # Cognito's strings


async def test_a_new_key_id_is_fetched_once_then_rate_limited() -> None:
    idp = FakeProvider()
    idp.add_rsa("k1")
    clock = Clock()
    v = verifier(idp, clock)
    await v.verify(idp.token("k1"))
    assert idp.jwks_fetches == 1
    idp.add_rsa("k2")  # rotation: the provider publishes a second key and signs with it
    clock.now += 31
    assert (await v.verify(idp.token("k2"))).subject == "00u-alice"
    assert idp.jwks_fetches == 2
    # forged kids do not make us hammer the provider
    idp.add_rsa("forged", publish=False)
    for _ in range(5):
        reason = await refused(v, idp.token("forged"))
        assert "unknown key id" in reason
    assert idp.jwks_fetches == 2
    clock.now += 31
    assert "unknown key id; keys refreshed)" in await refused(v, idp.token("forged"))
    assert idp.jwks_fetches == 3


async def test_cached_keys_expire() -> None:
    idp = FakeProvider()
    idp.add_rsa("k1")
    clock = Clock()
    v = verifier(idp, clock, oidc_jwks_cache_seconds=600)
    await v.verify(idp.token("k1"))
    clock.now += 601
    await v.verify(idp.token("k1"))
    assert idp.jwks_fetches == 2


async def test_ec_keys_and_algorithm_pinned_per_key() -> None:
    idp = FakeProvider()
    idp.add_ec("ec1")
    idp.add_rsa("rsa1")
    v = verifier(idp)
    assert (await v.verify(idp.token("ec1", alg="ES256"))).subject == "00u-alice"
    # an RSA key used with PS256 (allowed nowhere here) and an RSA key named by an ES256 token
    assert "not accepted" in await refused(v, idp.token("rsa1", alg="PS256"))
    forged = jwt.encode({"sub": "x"}, idp.keys["ec1"], algorithm="ES256", headers={"kid": "rsa1"})
    assert "does not match its key" in await refused(v, forged)


@pytest.mark.parametrize(
    ("claims", "reason"),
    [
        # times as offsets from when the test runs (parameters are made at collection, minutes earlier)
        ({"exp": -120}, "token expired"),
        ({"nbf": +120}, "not valid yet"),
        ({"aud": "another-app"}, "audience"),
        ({"iss": "https://idp.example.com/realms/other"}, "issuer"),
        ({"sub": None}, "subject claim"),
    ],
)
async def test_claims_are_checked(claims: dict[str, Any], reason: str) -> None:
    idp = FakeProvider()
    idp.add_rsa("k1")
    now = int(time.time())
    claims = {k: now + v if k in ("exp", "nbf") else v for k, v in claims.items()}
    token = idp.token("k1", **{k: v for k, v in claims.items() if v is not None})
    if claims.get("sub", "") is None:
        token = jwt.encode(
            {"iss": ISSUER, "aud": AUDIENCE, "exp": int(time.time()) + 60},
            idp.keys["k1"],
            algorithm="RS256",
            headers={"kid": "k1"},
        )
    detail = await refused(verifier(idp), token)
    assert reason in detail and token not in detail


async def test_leeway_absorbs_small_skew() -> None:
    idp = FakeProvider()
    idp.add_rsa("k1")
    assert await verifier(idp).verify(idp.token("k1", exp=int(time.time()) - 10))


async def test_a_provider_that_cannot_be_reached_is_a_503_not_a_401() -> None:
    idp = FakeProvider()
    idp.add_rsa("k1")
    idp.down = True
    with pytest.raises(Problem) as caught:
        await verifier(idp).verify(idp.token("k1"))
    assert caught.value.status == 503


def test_settings_refuse_symmetric_and_none_algorithms_and_need_an_audience() -> None:
    for bad in ("HS256", "RS256,none", "none", ""):
        with pytest.raises(ValueError, match="OIDC_ALGORITHMS"):
            parse_algorithms(bad)
    with pytest.raises(ValidationError):
        settings(oidc_algorithms="RS256,HS256")
    with pytest.raises(ValidationError, match="OIDC_AUDIENCE"):
        settings(oidc_audience="")
    with pytest.raises(ValidationError, match="OIDC_ROLE_MAP"):
        settings(oidc_role_map="admins=superuser")


def test_role_map_and_claim_paths() -> None:
    assert parse_role_map("a=admin, b=mentee,b=mentor") == {"a": {"admin"}, "b": {"mentee", "mentor"}}
    claims = {"realm_access": {"roles": ["x"]}, "https://example.com/roles": ["y"]}
    assert claim_at(claims, "realm_access.roles") == ["x"]
    assert claim_at(claims, "https://example.com/roles") == ["y"]
    assert claim_at(claims, "missing.path") is None
