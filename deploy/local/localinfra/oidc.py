"""A local OpenID Connect provider for tests: `no.nav.security:mock-oauth2-server` from Maven Central.

Cache layout (under versions.cache_dir()):

    oidc-<ver>/libs/*.jar   runtime classpath, made by `mvn dependency:copy-dependencies` with oidc-pom.xml

The provider serves any number of issuers on one port: `http://127.0.0.1:<port>/<issuer_id>` with
discovery at `<issuer>/.well-known/openid-configuration`, keys at `<issuer>/jwks` and tokens at
`<issuer>/token` (the `client_credentials` grant with the claims of the config's `tokenCallbacks`,
chosen by the request's `scope`).

Key rotation: mock-oauth2-server holds one signing key per issuer for its lifetime and names it after
the issuer (`kid` = issuer id). `OidcProvider.rotate_key()` restarts it on the same port with a new
RSA key given in the config (`tokenProvider.keyProvider.initialKeys`): the issuer URL stays, the
published JWKS now holds only the new key, tokens signed with the old one no longer verify. A
relying party that caches the JWKS must refetch it when a token's signature does not verify under
the cached key of that `kid` (and when the `kid` is unknown), which is what the kit does.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .common import InfraError, Log, free_ports, log_stderr, marker_ok, rmtree, run
from .processes import spawn, terminate, wait_ready
from .versions import LOCAL_DIR, MARKER, cache_dir

MOCK_OAUTH2_SERVER_VERSION = os.environ.get("INFRA_MOCK_OAUTH2_SERVER_VERSION", "3.0.1")
OIDC_POM_FILE = LOCAL_DIR / "oidc-pom.xml"
MAIN_CLASS = "no.nav.security.mock.oauth2.StandaloneMockOAuth2ServerKt"
OIDC_READY_TIMEOUT = 60.0


def oidc_home() -> Path:
    return cache_dir() / f"oidc-{MOCK_OAUTH2_SERVER_VERSION}"


def _marker() -> dict[str, Any]:
    return {
        "mock_oauth2_server_version": MOCK_OAUTH2_SERVER_VERSION,
        "pom_sha": hashlib.sha256(OIDC_POM_FILE.read_bytes()).hexdigest()[:16],
    }


def oidc_installed() -> bool:
    return marker_ok(oidc_home(), _marker())


def install_oidc(log: Log = log_stderr, force: bool = False) -> Path:
    """Fetch mock-oauth2-server and its runtime dependencies once (Maven), cached across runs."""
    home = oidc_home()
    if not force and oidc_installed():
        return home
    mvn = shutil.which("mvn")
    if not mvn:
        raise InfraError(
            "mvn not found: needed once to fetch mock-oauth2-server from Maven Central (apt-get install maven)"
        )
    cache_dir().mkdir(parents=True, exist_ok=True)
    t0 = time.monotonic()
    log(f"[install] mock-oauth2-server {MOCK_OAUTH2_SERVER_VERSION}: fetching jars with {OIDC_POM_FILE.name} ...")
    tmp = Path(tempfile.mkdtemp(prefix=f".oidc-{MOCK_OAUTH2_SERVER_VERSION}.tmp-", dir=cache_dir()))
    os.chmod(tmp, 0o755)
    try:
        libs = tmp / "libs"
        run(
            [
                mvn,
                "-B",
                "-q",
                "-f",
                str(OIDC_POM_FILE),
                f"-Dmock-oauth2-server.version={MOCK_OAUTH2_SERVER_VERSION}",
                "dependency:copy-dependencies",
                "-DincludeScope=runtime",
                f"-DoutputDirectory={libs}",
            ]
        )
        jars = sorted(p.name for p in libs.glob("*.jar"))
        if f"mock-oauth2-server-{MOCK_OAUTH2_SERVER_VERSION}.jar" not in jars:
            raise InfraError(f"Maven did not produce mock-oauth2-server in {libs}; got: {', '.join(jars)}")
        (tmp / MARKER).write_text(json.dumps({**_marker(), "jars": len(jars), "installed_at": time.time()}))
        rmtree(home)
        os.replace(tmp, home)
    finally:
        rmtree(tmp)
    log(f"[install] mock-oauth2-server: {len(jars)} jars in {home / 'libs'} ({time.monotonic() - t0:.1f}s)")
    return home


def new_rsa_jwk() -> dict[str, Any]:
    """A fresh RSA private key as a JWK (what mock-oauth2-server accepts as its signing key)."""
    from cryptography.hazmat.primitives.asymmetric import rsa
    from jwt.algorithms import RSAAlgorithm

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    jwk: dict[str, Any] = json.loads(RSAAlgorithm.to_jwk(key))
    jwk["use"] = "sig"
    return jwk


@dataclass
class TokenProfile:
    """The claims the provider puts into a token asked for with `scope=<name>`."""

    name: str
    claims: dict[str, Any]


@dataclass
class OidcProvider:
    """One running mock-oauth2-server (see the module doc). `issuer(id)` is an issuer's URL."""

    port: int
    workdir: Path
    issuer_ids: tuple[str, ...] = ("company",)
    token_expiry_seconds: int = 300
    profiles: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)  # issuer -> scope -> claims
    signing_key: dict[str, Any] = field(default_factory=new_rsa_jwk)
    proc: dict[str, Any] | None = None
    restarts: int = 0

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def issuer(self, issuer_id: str = "company") -> str:
        return f"{self.base_url}/{issuer_id}"

    def _config(self) -> dict[str, Any]:
        callbacks = []
        for issuer_id in self.issuer_ids:
            mappings = [
                {"requestParam": "scope", "match": scope, "claims": claims}
                for scope, claims in self.profiles.get(issuer_id, {}).items()
            ]
            callbacks.append(
                {"issuerId": issuer_id, "tokenExpiry": self.token_expiry_seconds, "requestMappings": mappings}
            )
        return {
            "interactiveLogin": False,
            "httpServer": "NettyWrapper",
            "tokenCallbacks": callbacks,
            "tokenProvider": {"keyProvider": {"initialKeys": json.dumps(self.signing_key), "algorithm": "RS256"}},
        }

    def start(self, log: Log = log_stderr) -> OidcProvider:
        from .kafka import java

        home = install_oidc(log)
        self.workdir.mkdir(parents=True, exist_ok=True)
        config = self.workdir / "oidc-config.json"
        config.write_text(json.dumps(self._config(), indent=2))
        env = {
            **os.environ,
            "SERVER_HOSTNAME": "127.0.0.1",
            "SERVER_PORT": str(self.port),
            "JSON_CONFIG_PATH": str(config),
            "LOG_LEVEL": "WARN",
        }
        cmd = [java(), "-Xmx128m", "-XX:TieredStopAtLevel=1", "-cp", str(home / "libs" / "*"), MAIN_CLASS]
        self.proc = spawn("oidc", cmd, self.workdir, self.workdir / f"oidc-{self.restarts}.log", env)
        wait_ready("oidc", self.proc, self._probe, OIDC_READY_TIMEOUT)
        return self

    def _probe(self) -> bool:
        url = f"{self.issuer(self.issuer_ids[0])}/.well-known/openid-configuration"
        with urllib.request.urlopen(url, timeout=2) as answer:  # noqa: S310 - loopback only
            return bool(json.load(answer).get("jwks_uri"))

    def stop(self) -> None:
        if self.proc is not None:
            terminate([self.proc], timeout=10)
            self.proc = None

    def rotate_key(self, log: Log = log_stderr) -> dict[str, Any]:
        """Replace the signing key: same port, same issuers, a new RSA key (see the module doc)."""
        self.stop()
        self.signing_key = new_rsa_jwk()
        self.restarts += 1
        self.start(log)
        return self.signing_key

    def set_claims(self, issuer_id: str, scope: str, claims: dict[str, Any]) -> None:
        """Claims of tokens asked for with this scope; takes effect at the next (re)start."""
        self.profiles.setdefault(issuer_id, {})[scope] = claims

    def token(self, scope: str, issuer_id: str = "company", **extra: str) -> str:
        """An access token from the provider's token endpoint (client_credentials)."""
        body = {
            "grant_type": "client_credentials",
            "client_id": "mentorship-tests",
            "client_secret": "not-checked",
            "scope": scope,
            **extra,
        }
        data = "&".join(f"{k}={urllib.request.quote(v)}" for k, v in body.items()).encode()
        request = urllib.request.Request(  # noqa: S310 - loopback only
            f"{self.issuer(issuer_id)}/token",
            data=data,
            method="POST",
            headers={"content-type": "application/x-www-form-urlencoded"},
        )
        with urllib.request.urlopen(request, timeout=10) as answer:  # noqa: S310 - loopback only
            return str(json.load(answer)["access_token"])


def start_oidc(
    workdir: Path,
    *,
    issuer_ids: tuple[str, ...] = ("company",),
    profiles: dict[str, dict[str, dict[str, Any]]] | None = None,
    log: Log = log_stderr,
) -> OidcProvider:
    port = free_ports(1)[0]
    return OidcProvider(port, workdir, issuer_ids, profiles=profiles or {}).start(log)


def stop_oidc(provider: OidcProvider) -> None:
    provider.stop()
