from pydantic import Field

from mentorship_kit.settings import ServiceSettings


class Settings(ServiceSettings):
    service_name: str = "insights"
    http_port: int = 8005
    insights_unanswered_request_days: float = Field(
        default=7.0, gt=0, description="A request unanswered for longer needs attention"
    )
    insights_low_rating_below: float = Field(
        default=3.0, ge=1, le=5, description="A pair whose average session rating is below this needs attention"
    )
    insights_inactive_after_cadences: float = Field(
        default=3.0, gt=1, description="Silence, in cadence lengths, after which a pair counts as inactive"
    )
    insights_series_weeks: int = Field(default=8, ge=1, le=52, description="Weeks in each figure's weekly series")
    insights_supply_gap_limit: int = Field(default=20, ge=1, le=500, description="Default number of skills listed")
