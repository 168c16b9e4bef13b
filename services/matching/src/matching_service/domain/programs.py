"""Program configuration: weights, hard constraints, matching mode (pure, no I/O)."""

from __future__ import annotations

import math
from datetime import date, timedelta
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from mentorship_contracts.matching import Cadence

from .text import single_line


class Weights(BaseModel):
    """Relative importance of each criterion; normalised to sum to 1 when scoring."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    skills: float = Field(default=0.5, ge=0, le=100)
    availability: float = Field(default=0.2, ge=0, le=100)
    seniority: float = Field(default=0.15, ge=0, le=100)
    language: float = Field(default=0.1, ge=0, le=100)
    meeting: float = Field(default=0.05, ge=0, le=100)

    @model_validator(mode="after")
    def _some_weight(self) -> Weights:
        values = list(self.model_dump().values())
        if not all(math.isfinite(v) for v in values):
            raise ValueError("weights must be finite numbers")
        if sum(values) <= 0:
            raise ValueError("at least one weight must be positive")
        return self

    def normalised(self) -> dict[str, float]:
        values = self.model_dump()
        total = sum(values.values())
        return {k: v / total for k, v in values.items()}


class Constraints(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    max_tz_distance_hours: float | None = Field(default=None, ge=0, le=12)
    forbid_repeat_partners: bool = True
    ideal_seniority_gap: int = Field(default=2, ge=0, le=7)


class MatchingMode(StrEnum):
    SELF_SELECT = "self-select"
    ADMIN_APPROVED = "admin-approved"
    AUTOMATIC = "automatic"


class ProgramSpec(BaseModel):
    """What an admin writes to create or replace a program."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200)
    starts_on: date
    ends_on: date
    mode: MatchingMode = MatchingMode.SELF_SELECT
    weights: Weights = Field(default_factory=Weights)
    constraints: Constraints = Field(default_factory=Constraints)
    cadence: Cadence = "biweekly"
    duration_weeks: int = Field(default=12, ge=1, le=156)

    @field_validator("name")
    @classmethod
    def _strip(cls, value: str) -> str:
        value = single_line(value).strip()
        if not value:
            raise ValueError("name must not be blank")
        return value

    @model_validator(mode="after")
    def _dates(self) -> ProgramSpec:
        if self.ends_on < self.starts_on:
            raise ValueError("ends_on must not be before starts_on")
        return self


def planned_end(start: date, duration_weeks: int) -> date:
    return start + timedelta(weeks=duration_weeks)


class ProgramStatus(StrEnum):
    """Where a program stands on its calendar (derived from its dates, never stored)."""

    UPCOMING = "upcoming"
    RUNNING = "running"
    ENDED = "ended"


def program_status(program: dict[str, str], today: date) -> ProgramStatus:
    """`starts_on` and `ends_on` as stored (ISO dates); a program runs on both days."""
    if date.fromisoformat(program["starts_on"]) > today:
        return ProgramStatus.UPCOMING
    if date.fromisoformat(program["ends_on"]) < today:
        return ProgramStatus.ENDED
    return ProgramStatus.RUNNING
