"""The one envelope every event travels in (CloudEvents 1.0 attribute names)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any, ClassVar, Generic, Literal, TypeVar

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator

SPEC_VERSION: Literal["1.0"] = "1.0"
CONTENT_TYPE = "application/cloudevents+json"


class EventData(BaseModel):
    """Base of every event payload.

    Readers are tolerant: unknown fields are ignored, so a producer can add optional
    fields without breaking anyone. Class variables are filled by the `@event` decorator.
    """

    model_config = ConfigDict(extra="ignore", frozen=True)

    event_type: ClassVar[str]
    event_version: ClassVar[int]
    topic: ClassVar[str]
    subject_field: ClassVar[str]
    personal_data: ClassVar[tuple[str, ...]]
    protection: ClassVar[dict[str, str]]
    summary: ClassVar[str]

    @property
    def subject(self) -> str:
        return str(getattr(self, self.subject_field))

    @classmethod
    def dataschema(cls) -> str:
        return f"urn:mentorship:events:{cls.event_type}:v{cls.event_version}"


DataT = TypeVar("DataT", bound=EventData)


def utc_now() -> datetime:
    return datetime.now(UTC)


class Envelope(BaseModel, Generic[DataT]):
    """CloudEvents-shaped envelope: `subject` is the aggregate id and the Kafka key."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    specversion: Literal["1.0"] = SPEC_VERSION
    id: str = Field(default_factory=lambda: str(uuid.uuid4()), min_length=1, max_length=128)
    type: str = Field(min_length=1, max_length=200)
    source: str = Field(min_length=1, max_length=200)
    subject: str = Field(min_length=1, max_length=200)
    time: AwareDatetime = Field(default_factory=utc_now)
    datacontenttype: Literal["application/json"] = "application/json"
    dataschema: str = Field(max_length=300)
    dataversion: int = Field(ge=1)
    correlationid: str = Field(min_length=1, max_length=128)
    causationid: str | None = Field(default=None, max_length=128)
    data: DataT

    @field_validator("time")
    @classmethod
    def _to_utc(cls, value: datetime) -> datetime:
        return value.astimezone(UTC)

    @classmethod
    def wrap(
        cls,
        data: EventData,
        *,
        source: str,
        correlation_id: str | None = None,
        causation_id: str | None = None,
        time: datetime | None = None,
        event_id: str | None = None,
    ) -> Envelope[Any]:
        """Put a payload into an envelope; a new event starts its own correlation unless told."""
        eid = event_id or str(uuid.uuid4())
        model: Any = Envelope[type(data)]  # type: ignore[misc]  # parametrised at run time
        return model(  # type: ignore[no-any-return]
            id=eid,
            type=data.event_type,
            source=source,
            subject=data.subject,
            time=time or utc_now(),
            dataschema=data.dataschema(),
            dataversion=data.event_version,
            correlationid=correlation_id or eid,
            causationid=causation_id,
            data=data,
        )

    def caused(self, data: EventData, *, source: str, time: datetime | None = None) -> Envelope[Any]:
        """A follow-up event: same correlation, caused by this one."""
        return Envelope.wrap(data, source=source, correlation_id=self.correlationid, causation_id=self.id, time=time)
