"""Request bodies of the HTTP API. Every string and list has a maximum length; ids, names and
goal titles are single-line (no control characters); free text keeps line breaks only."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator

from mentorship_contracts.matching import Agreement, Cadence

from ..domain import free_text, single_line

MAX_ID = 64
MAX_TEXT = 2000

Id = Annotated[str, Field(min_length=1, max_length=MAX_ID), AfterValidator(single_line)]
Line = Annotated[str, Field(min_length=1, max_length=200), AfterValidator(single_line)]


Text = Annotated[str, Field(max_length=MAX_TEXT), AfterValidator(free_text)]
LongText = Annotated[str, Field(max_length=4000), AfterValidator(free_text)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class NewRequest(Strict):
    mentor_id: Id
    message: Text = ""
    program_id: Id | None = None
    mentee_id: Id | None = Field(default=None, description="admins only: on behalf of")


class AgreementTerms(BaseModel):
    """What the mentor proposes when accepting (unknown fields ignored, as the event's reader does)."""

    model_config = ConfigDict(extra="ignore")

    goals: list[Line] = Field(default_factory=list, max_length=20, description="goal titles")
    goal_ids: list[Id] = Field(default_factory=list, max_length=20)
    expectations: LongText = ""
    cadence: Cadence = "biweekly"
    planned_end: date | None = None

    def to_agreement(self) -> Agreement:
        return Agreement(**self.model_dump())


class Acceptance(Strict):
    agreement: AgreementTerms | None = None


class RevisionProposal(Strict):
    """A revised agreement (the same limits as the one given on accept); a planned end left out
    keeps the current one."""

    agreement: AgreementTerms


class Reason(Strict):
    reason: Text = Field(min_length=1)

    @field_validator("reason")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("give a reason")
        return value.strip()


class Ending(Reason):
    not_a_good_fit: bool = False


class Enrollment(Strict):
    profile_id: Id
    role: Literal["mentee", "mentor"]


class Pair(Strict):
    mentee_id: Id
    mentor_id: Id


class RunRequest(Strict):
    k: int | None = Field(default=None, ge=1, le=500, description="candidates per mentee")
    pins: list[Pair] = Field(default_factory=list, max_length=10_000)
    forbids: list[Pair] = Field(default_factory=list, max_length=10_000)


class NewIntroduction(Strict):
    contact_id: Id
    message: Text = ""
