from typing import Literal

from pydantic import Field, SecretStr, field_validator

from mentorship_kit.settings import ServiceSettings


class Settings(ServiceSettings):
    service_name: str = "notification"
    http_port: int = 8004

    # --- email over SMTP -------------------------------------------------------------------
    smtp_host: str = "127.0.0.1"
    smtp_port: int = Field(default=25, ge=1, le=65535)
    smtp_starttls: Literal["auto", "always", "never"] = Field(
        default="auto",
        description="STARTTLS: `auto` upgrades when the server offers it, `always` refuses a "
        "server that does not, `never` stays in plain text (true/false also read)",
    )
    smtp_ca_file: str | None = Field(
        default=None, description="PEM file of the CAs that sign the SMTP server's certificate (default: the system's)"
    )
    smtp_implicit_tls: bool = Field(default=False, description="TLS from the first byte (port 465)")
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    smtp_from: str = "Mentorship <no-reply@mentorship.local>"
    smtp_timeout_seconds: float = Field(default=20.0, gt=0)
    smtp_pool_size: int = Field(default=2, ge=1, le=32, description="Open SMTP connections reused")
    message_id_domain: str = Field(
        default="mentorship.local", description="Right side of the stable Message-ID of every email"
    )

    @field_validator("smtp_starttls", mode="before")
    @classmethod
    def _starttls_from_bool(cls, value: object) -> object:
        # The setting used to be a boolean: true meant "always", false meant "never".
        if isinstance(value, bool):
            return "always" if value else "never"
        if isinstance(value, str) and value.strip().lower() in ("true", "1", "yes", "on", "false", "0", "no", "off"):
            return "always" if value.strip().lower() in ("true", "1", "yes", "on") else "never"
        return value.strip().lower() if isinstance(value, str) else value

    app_url: str = Field(
        default="http://localhost:8080",
        max_length=500,
        description="Base URL of the web app: messages link to it for what people wrote (request messages, "
        "reasons, agendas, introductions), which the owning service shows to those allowed",
    )

    # --- delivery --------------------------------------------------------------------------
    delivery_lease_seconds: float = Field(
        default=60.0,
        gt=0,
        description="How long a sender owns a delivery; must exceed the SMTP and webhook timeouts",
    )
    delivery_max_attempts: int = Field(default=5, ge=1, le=20)
    delivery_retry_base_seconds: float = Field(default=30.0, gt=0)
    delivery_retry_max_seconds: float = Field(default=3600.0, gt=0)
    delivery_recovery_interval_seconds: float = Field(
        default=5.0, gt=0, description="How often deliveries abandoned by a crashed sender are looked for"
    )
    contact_wait_seconds: float = Field(
        default=600.0,
        ge=0,
        description="How long a message for a person not yet in the contact book is held before it fails "
        "as 'unknown recipient' (0: fail at once)",
    )
    contact_recheck_seconds: float = Field(
        default=60.0,
        gt=0,
        description="How often a held message re-checks the contact book meanwhile",
    )
    urgent_reminder_minutes: int = Field(
        default=120, ge=0, description="A reminder for a session starting within this many minutes is urgent"
    )

    # --- webhooks --------------------------------------------------------------------------
    webhook_timeout_seconds: float = Field(default=10.0, gt=0)
    webhook_disable_after_failures: int = Field(default=5, ge=1, le=100)
    webhook_allow_loopback: bool = Field(default=False, description="Allow 127.0.0.0/8 and ::1 (local use, tests)")
    webhook_allow_private: bool = Field(default=False, description="Allow RFC 1918 / ULA addresses")

    # --- fault injection (tests only) ------------------------------------------------------
    fault_exit_after_email_sent: bool = Field(
        default=False,
        description="TEST ONLY: the process exits right after an SMTP send, before recording it",
    )
