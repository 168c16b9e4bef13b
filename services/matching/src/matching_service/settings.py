from pydantic import Field

from mentorship_kit.settings import ServiceSettings


class Settings(ServiceSettings):
    service_name: str = "matching"
    http_port: int = 8002
    request_expiry_hours: float = Field(default=168.0, gt=0, description="An unanswered request expires after this")
    default_mentor_capacity: int = Field(
        default=2, ge=0, le=50, description="Capacity of a mentor whose profile gives none"
    )
    suggestion_hold_minutes: float = Field(
        default=30.0, ge=0, description="How long a shown suggestion counts against the mentor's free slots"
    )
    profile_index_poll_seconds: float = Field(
        default=0.5,
        gt=0,
        le=60,
        description="How often the in-memory mentor index looks for profile changes (a read of one counter)",
    )
    suggestion_max_k: int = Field(default=20, ge=1, le=100)
    cohort_candidates_k: int = Field(
        default=10,
        ge=1,
        le=500,
        description="Candidates per mentee in cohort runs (each mentor gets 5x as many mentees)",
    )
