"""Settings from environment variables; each service subclasses `ServiceSettings`."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class ServiceSettings(BaseSettings):
    """Variables every service reads (documented in the README)."""

    model_config = SettingsConfigDict(env_file=None, extra="ignore", case_sensitive=False)

    service_name: str = Field(default="service", description="Name used in logs, metrics, event source")
    kafka_bootstrap_servers: str = "127.0.0.1:9092"
    kafka_topic_prefix: str = Field(default="", description="Prefix for every topic and consumer group")
    kafka_topic_partitions: int = Field(default=3, ge=1)
    mongodb_uri: str = "mongodb://127.0.0.1:27017/"
    mongodb_database: str = ""
    http_host: str = "127.0.0.1"
    http_port: int = 8000
    jwt_secret: str = Field(default="dev-secret-change-me-please-32-bytes!", min_length=16)
    jwt_issuer: str = "mentorship-platform"
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

    @property
    def database_name(self) -> str:
        return self.mongodb_database or f"mentorship_{self.service_name}"
