from pydantic import Field, SecretStr

from mentorship_kit.settings import ServiceSettings


class Settings(ServiceSettings):
    service_name: str = "profile"
    http_port: int = 8001
    profile_import_max_bytes: int = Field(
        default=50 * 1024 * 1024, ge=1024, description="Largest bulk import file accepted (bytes)"
    )
    profile_import_batch_size: int = Field(
        default=1000, ge=1, le=5000, description="Rows per batch read/write (and per progress line)"
    )
    scim_token: SecretStr | None = Field(
        default=None,
        min_length=32,
        description="Bearer token of the directory's SCIM client; unset = SCIM off (/scim/v2 answers 404)",
    )

    def body_limits(self) -> dict[tuple[str, str], int]:
        # The bulk import streams a file far larger than any JSON body (HTTP_MAX_BODY_BYTES).
        return {("POST", "/profiles/import"): self.profile_import_max_bytes}
