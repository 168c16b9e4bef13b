from pydantic import Field

from mentorship_kit.settings import ServiceSettings


class Settings(ServiceSettings):
    service_name: str = "scheduling"
    http_port: int = 8003
    reminder_offsets_minutes: list[int] = Field(
        default=[1440, 60], description="Reminders before a session, in minutes (JSON list)"
    )
    reminder_reconcile_seconds: float = Field(
        default=300.0, gt=0, description="How often upcoming sessions are checked for missing reminders"
    )
    reconcile_lease_seconds: float = Field(
        default=60.0, gt=0, description="Lease of the reminder reconciler: one replica at a time runs it"
    )
    timer_revive_backoff_seconds: float = Field(
        default=60.0,
        gt=0,
        description="A timer given up after its attempts is revived by the reconciler after this, doubled per revival",
    )
    timer_max_revivals: int = Field(
        default=3, ge=0, le=20, description="Revivals of one failed timer before it waits for an operator's re-drive"
    )
    check_in_grace_days: float = Field(default=3.0, ge=0, description="Grace after the cadence before CheckInOverdue")
    inactive_after_cadences: float = Field(
        default=3.0, gt=1, description="Silence, in cadence lengths, after which a mentorship is inactive"
    )
    session_min_minutes: int = Field(default=15, ge=5, le=480)
    session_max_minutes: int = Field(default=240, ge=5, le=480)
    series_max_occurrences: int = Field(default=52, ge=1, le=200)
    slot_step_minutes: int = Field(default=30, ge=5, le=240)
    slot_horizon_weeks: int = Field(default=4, ge=1, le=12, description="How far ahead slot proposals look")
    public_base_url: str = Field(default="", description="Base URL for calendar feed links (default: request URL)")
