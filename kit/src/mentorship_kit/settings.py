"""Settings from environment variables; each service subclasses `ServiceSettings`."""

from __future__ import annotations

import os
from typing import Any, Literal

from pydantic import Field, SecretStr, model_validator
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

# Published in this repository: fine on loopback, refused on any other interface unless allowed.
DEV_JWT_SECRET = "dev-secret-change-me-please-32-bytes!"  # noqa: S105 (published on purpose; refused off loopback)
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")


KafkaSecurityProtocol = Literal["PLAINTEXT", "SSL", "SASL_SSL", "SASL_PLAINTEXT"]
KafkaSaslMechanism = Literal["SCRAM-SHA-256", "SCRAM-SHA-512", "PLAIN"]


class KafkaClientSettings(BaseSettings):
    """How every Kafka client connects (services, dead-letter producer, admin client, operator CLI).

    Read on its own by the operator CLI (`KafkaClientSettings()` from the environment), and part of
    every service's settings. `mentorship_kit.messaging.kafka_client_options` turns it into client
    arguments, `faststream_security` into the FastStream broker's security object.
    """

    model_config = SettingsConfigDict(env_file=None, extra="ignore", case_sensitive=False)

    kafka_security_protocol: KafkaSecurityProtocol = "PLAINTEXT"
    kafka_sasl_mechanism: KafkaSaslMechanism = "SCRAM-SHA-512"
    kafka_sasl_username: str = ""
    kafka_sasl_password: SecretStr = SecretStr("")
    kafka_ssl_ca_file: str = Field(default="", description="CA bundle (PEM) to verify the brokers; system CAs if empty")
    kafka_ssl_cert_file: str = Field(default="", description="client certificate chain (PEM), for mutual TLS")
    kafka_ssl_key_file: str = Field(default="", description="private key (PEM) of the client certificate")

    @model_validator(mode="after")
    def _consistent_kafka_security(self) -> KafkaClientSettings:
        if self.kafka_security_protocol.startswith("SASL_") and not (
            self.kafka_sasl_username and self.kafka_sasl_password.get_secret_value()
        ):
            raise ValueError(
                f"KAFKA_SECURITY_PROTOCOL={self.kafka_security_protocol} needs "
                "KAFKA_SASL_USERNAME and KAFKA_SASL_PASSWORD"
            )
        if bool(self.kafka_ssl_cert_file) != bool(self.kafka_ssl_key_file):
            raise ValueError("KAFKA_SSL_CERT_FILE and KAFKA_SSL_KEY_FILE go together (mutual TLS)")
        return self

    @property
    def kafka_uses_tls(self) -> bool:
        return self.kafka_security_protocol in ("SSL", "SASL_SSL")


class ServiceStoreUriSource(PydanticBaseSettingsSource):
    """`<SERVICE>_MONGODB_URI` (PROFILE_MONGODB_URI, ...): the service's own store, ahead of the
    shared MONGODB_URI, so one environment can give each service its own MongoDB. The service is
    named by SERVICE_NAME, else by its settings' default `service_name`."""

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False  # unused: __call__ reads the one variable

    def __call__(self) -> dict[str, Any]:
        service = os.environ.get("SERVICE_NAME") or self.settings_cls.model_fields["service_name"].default
        uri = os.environ.get(f"{str(service).upper()}_MONGODB_URI", "")
        return {"mongodb_uri": uri} if uri else {}


class ServiceSettings(KafkaClientSettings):
    """Variables every service reads (documented in the README)."""

    model_config = SettingsConfigDict(env_file=None, extra="ignore", case_sensitive=False)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # Arguments first, then <SERVICE>_MONGODB_URI, then the plain variables (MONGODB_URI).
        return (init_settings, ServiceStoreUriSource(settings_cls), env_settings, dotenv_settings, file_secret_settings)

    service_name: str = Field(default="service", description="Name used in logs, metrics, event source")
    kafka_bootstrap_servers: str = "127.0.0.1:9092"
    kafka_topic_prefix: str = Field(default="", description="Prefix for every topic and consumer group")
    kafka_topic_partitions: int = Field(default=3, ge=1)
    kafka_replication_factor: int = Field(default=1, ge=1, description="Replicas of the topics a service creates")
    kafka_create_topics: bool = Field(
        default=True, description="Create missing topics at start; false: only check they exist (not ready if not)"
    )
    kafka_state_topic_configs: str = Field(
        default="",
        description="Overrides of the state topics' configs when a service creates them, comma separated "
        "name=value, e.g. 'segment.ms=200,min.compaction.lag.ms=0' (tests force compaction with these)",
    )
    mongodb_uri: str = Field(
        default="mongodb://127.0.0.1:27017/",
        description="The store; <SERVICE>_MONGODB_URI (e.g. PROFILE_MONGODB_URI) overrides it for one service",
    )
    mongodb_database: str = ""
    http_host: str = "127.0.0.1"
    http_port: int = 8000
    # HS256 needs a key at least as long as its hash (RFC 7518 3.2): 32 bytes
    jwt_secret: str = Field(default=DEV_JWT_SECRET, min_length=32)
    allow_dev_jwt_secret: bool = Field(
        default=False, description="Accept the published development JWT secret on a non-loopback interface"
    )
    jwt_issuer: str = "mentorship-platform"
    jwt_leeway_seconds: float = Field(
        default=30.0, ge=0, le=300, description="Clock skew allowed when checking a token's exp, nbf and iat"
    )
    # Company sign-on (OpenID Connect); see mentorship_kit.oidc and the README's "Company sign-on".
    oidc_issuer: str = Field(
        default="",
        description="Issuer URL of the company identity provider; discovery at "
        "<issuer>/.well-known/openid-configuration. Empty: no OIDC",
    )
    oidc_audience: str = Field(default="", description="Audience (aud) tokens must carry, e.g. the API's client id")
    oidc_algorithms: str = Field(default="RS256,ES256", description="Signature algorithms accepted (asymmetric only)")
    oidc_leeway_seconds: float = Field(default=30.0, ge=0, le=300, description="Clock skew allowed on exp/nbf/iat")
    oidc_subject_claim: str = Field(default="sub", description="Claim naming the person (the profile's external_id)")
    oidc_email_claim: str = "email"
    oidc_email_verified_claim: str = "email_verified"
    oidc_name_claim: str = Field(default="name", description="Claim with the display name used on first sign-in")
    oidc_roles_claim: str = Field(
        default="", description="Claim with groups or roles; dotted path for nested claims, e.g. realm_access.roles"
    )
    oidc_role_map: str = Field(
        default="",
        description="IdP group or role = platform role, comma separated, e.g. "
        "mentorship-admins=admin,engineering=mentee",
    )
    oidc_ca_file: str = Field(
        default="", description="CA bundle (PEM) to verify the identity provider; system CAs if empty"
    )
    oidc_jwks_cache_seconds: float = Field(default=3600.0, ge=1, description="Keys are fetched again after this")
    oidc_jwks_min_refresh_seconds: float = Field(
        default=30.0,
        ge=0,
        description="At most one key refetch per this many seconds when a token names an "
        "unknown key id or does not verify (rotation without hammering the IdP)",
    )
    allow_dev_tokens: bool = Field(
        default=False, description="With OIDC_ISSUER set, also accept the development HS256 tokens (JWT_SECRET)"
    )
    http_max_body_bytes: int = Field(
        default=1024 * 1024,
        ge=1024,
        description="Largest request body accepted (413 above it), unless a route has its own cap (see `body_limits`)",
    )
    event_max_bytes: int = Field(
        default=900 * 1024,
        ge=1024,
        description="Largest event (JSON envelope) a use case may write; below "
        "Kafka's default message.max.bytes of 1 MiB, with room for "
        "the record's key and headers",
    )
    log_level: str = "INFO"
    consumer_max_attempts: int = Field(default=4, ge=1, le=50)
    consumer_retry_backoff_ms: int = Field(default=200, ge=0)
    consumer_retry_backoff_max_ms: int = Field(default=5000, ge=0)
    outbox_poll_interval_ms: int = Field(default=500, ge=10)
    outbox_lease_seconds: float = Field(default=30.0, gt=0)
    timer_poll_interval_ms: int = Field(default=500, ge=10)
    timer_lease_seconds: float = Field(default=30.0, gt=0)
    dev_clock_enabled: bool = Field(
        default=False, description="Expose POST /_dev/clock to move this process's clock (tests, demo)"
    )
    dev_clock_offset_seconds: float = Field(
        default=0.0,
        ge=0,
        description="With DEV_CLOCK_ENABLED: start this process's clock this far ahead (a replica restarted "
        "mid-run joins the others' moved clock at once)",
    )

    @model_validator(mode="after")
    def _safe_oidc_algorithms(self) -> ServiceSettings:
        from .oidc import parse_algorithms, parse_role_map  # the list's rules live with the verifier

        parse_algorithms(self.oidc_algorithms)
        parse_role_map(self.oidc_role_map)
        if self.oidc_issuer and not self.oidc_audience:
            raise ValueError(
                "OIDC_ISSUER needs OIDC_AUDIENCE: tokens issued for other applications of the "
                "same identity provider must not be accepted"
            )
        return self

    @model_validator(mode="after")
    def _valid_state_topic_configs(self) -> ServiceSettings:
        from .messaging import parse_topic_configs

        parse_topic_configs(self.kafka_state_topic_configs)
        return self

    def check_secrets(self) -> None:
        if self.jwt_secret == DEV_JWT_SECRET and self.http_host not in LOOPBACK_HOSTS and not self.allow_dev_jwt_secret:
            raise RuntimeError(
                f"JWT_SECRET is the published development secret while listening on {self.http_host}: "
                "set JWT_SECRET (or ALLOW_DEV_JWT_SECRET=true for a throwaway local setup)"
            )

    def body_limits(self) -> dict[tuple[str, str], int]:
        """Routes with a larger body cap than `http_max_body_bytes`: {(method, path): bytes}."""
        return {}

    @property
    def database_name(self) -> str:
        return self.mongodb_database or f"mentorship_{self.service_name}"
