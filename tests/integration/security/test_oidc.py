"""Company sign-on against a real OpenID Connect provider started by the harness.

The provider is `no.nav.security:mock-oauth2-server` from Maven Central (deploy/local/localinfra/oidc.py),
one per test session, issuer `http://127.0.0.1:<port>/company`. Tokens come from its token endpoint
(client_credentials; the `scope` picks the person's claims); the bad ones are made here, some with the
provider's own signing key (which the fixture generated and handed to it). The services run as their
own processes on the shared broker and store, pointed at the provider by OIDC_* variables.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import importlib.util
import json
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from jwt.algorithms import RSAAlgorithm

from mentorship_contracts import Topic, decode
from tests.support.kafka import eventually, read_topic
from tests.support.processes import token as dev_token

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[3]
AUDIENCE = "mentorship-api"
ROLE_MAP = "mentorship-admins=admin,engineering=mentee"


def _localinfra_oidc() -> Any:
    """deploy/local/localinfra/oidc.py, imported the way deploy/local/infra.py imports its package."""
    if "localinfra" not in sys.modules:
        init = ROOT / "deploy/local/localinfra/__init__.py"
        spec = importlib.util.spec_from_file_location("localinfra", init, submodule_search_locations=[str(init.parent)])
        assert spec and spec.loader
        module = importlib.util.module_from_spec(spec)
        sys.modules["localinfra"] = module
        spec.loader.exec_module(module)
    import localinfra.oidc  # type: ignore[import-not-found]

    return localinfra.oidc


def person(
    sub: str, email: str, *, verified: bool = True, name: str = "", groups: tuple[str, ...] = (), aud: str = AUDIENCE
) -> dict[str, Any]:
    claims: dict[str, Any] = {
        "sub": sub,
        "aud": [aud],
        "email": email,
        "email_verified": verified,
        "groups": list(groups),
    }
    if name:
        claims["name"] = name
    return claims


PEOPLE = {
    "admin": person("okta|00u-admin", "hr.admin@example.com", name="Hana Admin", groups=("mentorship-admins",)),
    "alice": person("okta|00u-alice", "alice@example.com", name="Alice Imported", groups=("engineering",)),
    "newbie": person("okta|00u-newbie", "newbie@example.com", name="Nora Newbie", groups=("engineering",)),
    "unverified": person("okta|00u-mallory", "bob@example.com", verified=False, name="Not Bob"),
    "other-app": person("okta|00u-alice", "alice@example.com", aud="some-other-application"),
}


@pytest.fixture(scope="session")
def oidc_provider(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    oidc = _localinfra_oidc()
    provider = oidc.start_oidc(tmp_path_factory.mktemp("oidc"), profiles={"company": PEOPLE})
    try:
        yield provider
    finally:
        oidc.stop_oidc(provider)


def oidc_env(provider: Any, **extra: str) -> dict[str, str]:
    return dict(
        oidc_issuer=provider.issuer("company"),
        oidc_audience=AUDIENCE,
        oidc_roles_claim="groups",
        oidc_role_map=ROLE_MAP,
        oidc_jwks_min_refresh_seconds="1",
        **extra,
    )


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def company_claims(provider: Any, sub: str = "okta|00u-alice", **changes: Any) -> dict[str, Any]:
    now = int(time.time())
    claims = {
        "sub": sub,
        "aud": AUDIENCE,
        "iss": provider.issuer("company"),
        "iat": now,
        "nbf": now,
        "exp": now + 300,
        "email": "alice@example.com",
        "email_verified": True,
    }
    claims.update(changes)
    return claims


def signed_with_provider_key(provider: Any, claims: dict[str, Any], kid: str = "company") -> str:
    private = RSAAlgorithm.from_jwk(json.dumps(provider.signing_key))
    return jwt.encode(claims, private, algorithm="RS256", headers={"kid": kid})


def hs256_with_public_key(provider: Any, claims: dict[str, Any]) -> str:
    """The key-confusion forgery: HMAC keyed with the provider's public key (PEM), which anyone has."""
    from cryptography.hazmat.primitives import serialization

    public = RSAAlgorithm.from_jwk(json.dumps(provider.signing_key)).public_key()
    pem = public.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    signing_input = (
        f"{b64(json.dumps({'alg': 'HS256', 'typ': 'JWT', 'kid': 'company'}).encode())}."
        f"{b64(json.dumps(claims).encode())}"
    )
    signature = hmac.new(pem, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{b64(signature)}"


def unsigned(claims: dict[str, Any]) -> str:
    return f"{b64(json.dumps({'alg': 'none', 'typ': 'JWT'}).encode())}.{b64(json.dumps(claims).encode())}."


def assert_refused(answer: httpx.Response, reason: str, token: str, provider: Any) -> None:
    assert answer.status_code == 401, answer.text
    body = answer.json()
    assert reason in body["detail"], body
    text = answer.text
    assert token not in text and all(part not in text for part in token.split(".") if len(part) > 8)  # no echo
    assert provider.signing_key["n"][:40] not in text and "BEGIN" not in text  # no key material
    assert "alice@example.com" not in text  # no claim echo


async def settled_profile_events(infra: Any, prefix: str, want: int) -> list[Any]:
    records = await read_topic(infra.kafka_bootstrap, f"{prefix}{Topic.PROFILE}", want=want, timeout=20)
    return [decode(r.value) for r in records]


async def test_first_sign_in_links_by_verified_email_creates_otherwise_and_maps_roles(
    spawn, infra, prefix, oidc_provider
) -> None:
    profile = spawn("profile", **oidc_env(oidc_provider, allow_dev_tokens="true"))
    matching = spawn("matching", **oidc_env(oidc_provider))
    admin_dev = dev_token("hr-admin", "admin")
    async with httpx.AsyncClient(base_url=profile.url, timeout=15) as http:
        # HR imported Alice (an admin's registration: email verified) and someone with Bob's address.
        imported = await http.post(
            "/profiles",
            headers=admin_dev,
            json={
                "profile_id": "alice-hr-1",
                "display_name": "Alice Liddell",
                "email": "Alice@Example.com",
                "roles": ["mentor"],
                "mentor_capacity": 2,
            },
        )
        assert imported.status_code == 201, imported.text
        bob = await http.post(
            "/profiles",
            headers=admin_dev,
            json={"profile_id": "bob-hr-1", "display_name": "Bob", "email": "bob@example.com", "roles": ["mentee"]},
        )
        assert bob.status_code == 201, bob.text

        alice_token = oidc_provider.token("alice")
        # Another service knows nothing of this person yet: it says what to do.
        async with httpx.AsyncClient(base_url=matching.url, timeout=15) as m:
            before = await m.get("/read-models/profiles/alice-hr-1", headers=bearer(alice_token))
            assert before.status_code == 403 and "GET /me" in before.json()["detail"], before.text

        me = await http.get("/me", headers=bearer(alice_token))
        assert me.status_code == 200, me.text
        assert me.json()["profile_id"] == "alice-hr-1" and me.json()["external_id"] == "okta|00u-alice"
        assert me.json()["roles"] == ["mentor"]  # the imported profile, not a new one
        again = await http.get("/me", headers=bearer(alice_token))
        assert again.json()["profile_id"] == "alice-hr-1" and again.json()["version"] == me.json()["version"]
        own = await http.get("/profiles/alice-hr-1", headers=bearer(alice_token))
        assert own.status_code == 200
        assert (await http.get("/profiles/bob-hr-1", headers=bearer(alice_token))).status_code == 403
        # groups: engineering maps to mentee, not admin
        assert (await http.get("/profiles", headers=bearer(alice_token))).status_code == 403

        # The link travels as ProfileUpdated(changed_fields=[external_id]) and on profile.state;
        # matching's identity map picks it up.
        events = await settled_profile_events(infra, prefix, want=3)
        linked = [e for e in events if e.type.endswith("profile_updated")]
        assert linked and linked[0].data.changed_fields == ["external_id"]
        # the value itself travels on profile.state, with the whole profile
        states = await read_topic(infra.kafka_bootstrap, f"{prefix}{Topic.PROFILE_STATE}", want=10**9, timeout=3)
        alice = [decode(r.value).data.profile for r in states if r.key == b"alice-hr-1" and r.value is not None]
        assert alice[-1].external_id == "okta|00u-alice"
        async with httpx.AsyncClient(base_url=matching.url, timeout=15) as m:

            async def mapped() -> bool:
                answer = await m.get("/read-models/profiles/alice-hr-1", headers=bearer(alice_token))
                return answer.status_code == 200

            await eventually(mapped, timeout=20)

        # Nobody with this email: a new mentee profile from the claims; verified because the IdP says so.
        newbie = await http.get("/me", headers=bearer(oidc_provider.token("newbie")))
        assert newbie.status_code == 200, newbie.text
        created = newbie.json()
        assert created["display_name"] == "Nora Newbie" and created["email"] == "newbie@example.com"
        assert created["roles"] == ["mentee"] and created["external_id"] == "okta|00u-newbie"
        repeat = await http.get("/me", headers=bearer(oidc_provider.token("newbie")))
        assert repeat.json()["profile_id"] == created["profile_id"]

        # An unverified email never links, even to a verified profile with that address.
        sneaky = await http.get("/me", headers=bearer(oidc_provider.token("unverified")))
        assert sneaky.status_code == 409, sneaky.text
        assert "bob-hr-1" not in sneaky.text
        bob_now = await http.get("/profiles/bob-hr-1", headers=admin_dev)
        assert bob_now.json()["external_id"] is None
        assert (
            await http.get("/profiles/bob-hr-1", headers=bearer(oidc_provider.token("unverified")))
        ).status_code == 403

        # A person cannot claim another sign-on by writing external_id themselves.
        hijack = await http.patch(
            "/profiles/" + created["profile_id"],
            headers=bearer(oidc_provider.token("newbie")),
            json={"external_id": "okta|00u-admin"},
        )
        assert hijack.status_code == 403, hijack.text

        # groups: mentorship-admins maps to admin
        admin_token = oidc_provider.token("admin")
        assert (await http.get("/me", headers=bearer(admin_token))).status_code == 200
        search = await http.get("/profiles", headers=bearer(admin_token))
        assert search.status_code == 200, search.text
        assert {p["profile_id"] for p in search.json()["items"]} >= {"alice-hr-1", "bob-hr-1"}


async def test_every_bad_token_is_refused_with_a_reason_and_nothing_leaked(spawn, oidc_provider) -> None:
    # No ALLOW_DEV_TOKENS here: only the company's tokens count.
    matching = spawn("matching", **oidc_env(oidc_provider))
    now = int(time.time())
    other_key = _localinfra_oidc().new_rsa_jwk()
    cases = {
        "expired": (
            signed_with_provider_key(
                oidc_provider, company_claims(oidc_provider, iat=now - 900, nbf=now - 900, exp=now - 600)
            ),
            "token expired",
        ),
        "not yet valid": (
            signed_with_provider_key(oidc_provider, company_claims(oidc_provider, nbf=now + 600)),
            "not valid yet",
        ),
        "wrong audience": (oidc_provider.token("other-app"), "audience"),
        "wrong issuer": (
            signed_with_provider_key(
                oidc_provider, company_claims(oidc_provider, iss="https://login.evil.example/company")
            ),
            "issuer",
        ),
        "alg none": (unsigned(company_claims(oidc_provider)), "alg none"),
        "HS256 with the public key": (hs256_with_public_key(oidc_provider, company_claims(oidc_provider)), "HS256"),
        "unknown key": (
            jwt.encode(
                company_claims(oidc_provider),
                RSAAlgorithm.from_jwk(json.dumps(other_key)),
                algorithm="RS256",
                headers={"kid": "not-a-company-key"},
            ),
            "unknown key id",
        ),
        "not a JWT": ("definitely-not-a-jwt", "well-formed"),
    }
    async with httpx.AsyncClient(base_url=matching.url, timeout=15) as m:
        for name, (bad, reason) in cases.items():
            answer = await m.get("/read-models/profiles/alice-hr-1", headers=bearer(bad))
            try:
                assert_refused(answer, reason, bad, oidc_provider)
            except AssertionError as exc:
                raise AssertionError(f"{name}: {exc}") from exc
        # the development secret's tokens are refused too when OIDC is on and they are not allowed
        dev = await m.get("/read-models/profiles/alice-hr-1", headers=dev_token("alice-hr-1", "admin"))
        assert dev.status_code == 401 and "development HS256" in dev.json()["detail"]


async def test_key_rotation_in_the_middle_without_restarting_the_service(spawn, oidc_provider) -> None:
    profile = spawn("profile", **oidc_env(oidc_provider))
    async with httpx.AsyncClient(base_url=profile.url, timeout=15) as http:
        before = oidc_provider.token("newbie")
        first = await http.get("/me", headers=bearer(before))
        assert first.status_code == 200, first.text

        old_n = oidc_provider.signing_key["n"]
        oidc_provider.rotate_key()  # the provider now publishes and signs with a new key only
        assert oidc_provider.signing_key["n"] != old_n
        published = (await http.get(f"{oidc_provider.issuer('company')}/jwks")).json()["keys"]
        assert [k["n"] for k in published] == [oidc_provider.signing_key["n"]]

        after = oidc_provider.token("newbie")
        assert jwt.get_unverified_header(after)["kid"] == jwt.get_unverified_header(before)["kid"]
        rotated = await http.get("/me", headers=bearer(after))
        assert rotated.status_code == 200, rotated.text  # keys fetched again on the failed check
        assert rotated.json()["profile_id"] == first.json()["profile_id"]

        await asyncio.sleep(1.1)  # past OIDC_JWKS_MIN_REFRESH_SECONDS: the old token gets its one refetch too
        stale = await http.get("/me", headers=bearer(before))
        assert_refused(stale, "signature does not verify", before, oidc_provider)
