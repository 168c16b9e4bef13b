"""Events of the profile service (topic `profile.events`, key = profile id), and the profile
state (compacted topic `profile.state`, key = profile id).

Personal data travels only on `profile.state`: `ProfileState` is a person's whole current profile,
published after every change, and an erase publishes a tombstone (a record with a null value) that
compaction turns into the removal of every earlier value of that person. The events on
`profile.events` carry ids and non-personal facts from version 2 on (`ProfileRegisteredV2`,
`ProfileUpdatedV2`); version 1 records, which carried the whole profile, are read as version 2
through upcasters that drop the personal fields. ProfileErased carries only the id: it tells every
reader to forget that person. See docs/decisions/personal-data-in-events.md.
"""

from __future__ import annotations

import re
from datetime import date
from enum import StrEnum
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, available_timezones

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints, field_validator

from .envelope import EventData
from .reasons import ReasonCode, reason_fields
from .registry import event, register_upcaster
from .text import NAME_MAX, SINGLE_LINE, Id, Key, Name, Text
from .topics import Topic

ShortText = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200), SINGLE_LINE]
LongText = Annotated[str, StringConstraints(strip_whitespace=True, max_length=2000)]
_TAG = re.compile(r"[^a-z0-9+#.]+")


def normalise_tag(value: str) -> str:
    """'  Public Speaking ' -> 'public-speaking': one spelling per skill across the platform."""
    tag = _TAG.sub("-", value.strip().lower()).strip("-")
    if not tag:
        raise ValueError("a tag needs at least one letter or digit")
    if len(tag) > 60:
        raise ValueError("a tag is at most 60 characters")
    return tag


def validate_time_zone(value: str) -> str:
    if value not in _zones():
        raise ValueError(f"{value!r} is not an IANA time zone name (e.g. 'Europe/Berlin')")
    ZoneInfo(value)
    return value


_ZONES: set[str] = set()


def _zones() -> set[str]:
    if not _ZONES:
        _ZONES.update(available_timezones())
    return _ZONES


Tag = Annotated[str, StringConstraints(max_length=NAME_MAX), AfterValidator(normalise_tag)]
# Longest IANA name today is 32 characters; the cap refuses a long value before any lookup.
TimeZoneName = Annotated[str, StringConstraints(max_length=64), AfterValidator(validate_time_zone)]
HHMM = Annotated[str, StringConstraints(max_length=5, pattern=r"^([01]\d|2[0-3]):[0-5]\d$|^24:00$")]


class Role(StrEnum):
    MENTEE = "mentee"
    MENTOR = "mentor"


class Seniority(StrEnum):
    """An ordered scale; `rank` gives the order."""

    INTERN = "intern"
    JUNIOR = "junior"
    MID = "mid"
    SENIOR = "senior"
    STAFF = "staff"
    PRINCIPAL = "principal"
    DIRECTOR = "director"
    EXECUTIVE = "executive"

    @property
    def rank(self) -> int:
        return list(Seniority).index(self)


class ValueModel(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class Skill(ValueModel):
    name: Tag
    proficiency: int = Field(default=3, ge=1, le=5, description="1 = beginner ... 5 = expert")


class Goal(ValueModel):
    goal_id: Annotated[str, StringConstraints(min_length=1, max_length=64), SINGLE_LINE]
    title: ShortText
    description: LongText = ""
    target_date: date | None = None
    skills: list[Tag] = Field(default_factory=list, max_length=20)
    priority: int = Field(default=2, ge=1, le=3, description="1 = high, 3 = low")


class AvailabilityWindow(ValueModel):
    """A weekly window in the person's own time zone; weekday 0 = Monday."""

    weekday: int = Field(ge=0, le=6)
    start: HHMM
    end: HHMM

    @property
    def start_minute(self) -> int:
        h, m = self.start.split(":")
        return int(h) * 60 + int(m)

    @property
    def end_minute(self) -> int:
        h, m = self.end.split(":")
        return int(h) * 60 + int(m)


class MentoringPreferences(ValueModel):
    topics: list[Tag] = Field(default_factory=list, max_length=30)
    meeting_format: Literal["video", "in_person", "chat", "any"] = "any"


class QuietHours(ValueModel):
    """Local-time window during which non-urgent messages wait; may wrap midnight."""

    start: HHMM
    end: HHMM


class NotificationPreferences(ValueModel):
    channels: dict[Literal["email", "in_app", "webhook"], bool] = Field(
        default_factory=lambda: {"email": True, "in_app": True}  # type: ignore[arg-type]
    )
    # category name -> enabled; a missing category is enabled
    # keys become field names in the stores: a safe pattern only (no `$`, no `.`)
    categories: dict[Key, bool] = Field(default_factory=dict, max_length=20)
    quiet_hours: QuietHours | None = None


class ProfileSnapshot(ValueModel):
    """Everything other services may need to know about a person (personal data)."""

    profile_id: Annotated[str, StringConstraints(min_length=1, max_length=64), SINGLE_LINE]
    display_name: ShortText
    email: Annotated[str, StringConstraints(min_length=3, max_length=254), SINGLE_LINE]
    roles: list[Role] = Field(min_length=1, max_length=2)
    job_title: Name | None = None
    department: Name | None = None
    manager_id: Annotated[str, StringConstraints(max_length=64), SINGLE_LINE] | None = None
    seniority: Seniority = Seniority.MID
    years_experience: int = Field(default=0, ge=0, le=70)
    skills: list[Skill] = Field(default_factory=list, max_length=50)
    development_areas: list[Tag] = Field(default_factory=list, max_length=30)
    goals: list[Goal] = Field(default_factory=list, max_length=20)
    languages: list[Annotated[str, StringConstraints(max_length=64), SINGLE_LINE]] = Field(
        default_factory=lambda: ["en"], max_length=20
    )
    time_zone: TimeZoneName = "UTC"
    availability: list[AvailabilityWindow] = Field(default_factory=list, max_length=50)
    mentor_capacity: int | None = Field(default=None, ge=0, le=50)
    mentoring_preferences: MentoringPreferences = Field(default_factory=MentoringPreferences)
    notification_preferences: NotificationPreferences = Field(default_factory=NotificationPreferences)
    active: bool = True
    external_id: Annotated[str, StringConstraints(min_length=1, max_length=128), SINGLE_LINE] | None = Field(
        default=None,
        description="the person's id in the company directory or identity provider (SCIM externalId, "
        "OIDC subject); unique when set",
    )

    @field_validator("languages")
    @classmethod
    def _lower_languages(cls, value: list[str]) -> list[str]:
        return [v.strip().lower() for v in value if v.strip()]


@event("mentorship.profile.profile_registered", topic=Topic.PROFILE, subject="profile_id", personal_data=("profile",))
class ProfileRegistered(EventData):
    """A person joined the platform (version 1, no longer written: read as ProfileRegisteredV2)."""

    profile_id: Id
    profile: ProfileSnapshot


@event(
    "mentorship.profile.profile_updated",
    topic=Topic.PROFILE,
    subject="profile_id",
    personal_data=("changes", "profile"),
)
class ProfileUpdated(EventData):
    """Some profile fields changed (version 1, no longer written: read as ProfileUpdatedV2)."""

    profile_id: Id
    changed_fields: list[Name] = Field(max_length=100)
    changes: dict[Key, Any] = Field(max_length=100)
    profile: ProfileSnapshot


class ProfileFacts(ValueModel):
    """The non-personal facts of a profile: what matching ranks on and what reports count.

    No name, email, job title, department, manager, goals, directory id or notification
    preferences: those travel only on `profile.state` (`ProfileState`)."""

    roles: list[Role] = Field(min_length=1, max_length=2)
    seniority: Seniority = Seniority.MID
    years_experience: int = Field(default=0, ge=0, le=70)
    skills: list[Skill] = Field(default_factory=list, max_length=50)
    development_areas: list[Tag] = Field(default_factory=list, max_length=30)
    languages: list[Annotated[str, StringConstraints(max_length=64), SINGLE_LINE]] = Field(
        default_factory=lambda: ["en"], max_length=20
    )
    time_zone: TimeZoneName = "UTC"
    availability: list[AvailabilityWindow] = Field(default_factory=list, max_length=50)
    mentor_capacity: int | None = Field(default=None, ge=0, le=50)
    mentoring_preferences: MentoringPreferences = Field(default_factory=MentoringPreferences)
    active: bool = True

    @classmethod
    def of(cls, profile: ProfileSnapshot) -> ProfileFacts:
        return cls.model_validate(profile_facts(profile.model_dump(mode="json")))


def profile_facts(profile: dict[str, Any]) -> dict[str, Any]:
    """The non-personal fields of a profile (as plain data)."""
    return {name: profile[name] for name in ProfileFacts.model_fields if name in profile}


@event("mentorship.profile.v2.profile_registered", topic=Topic.PROFILE, subject="profile_id", version=2)
class ProfileRegisteredV2(EventData):
    """A person joined the platform; carries their non-personal facts (names, emails: `profile.state`)."""

    profile_id: Id
    facts: ProfileFacts


@event("mentorship.profile.v2.profile_updated", topic=Topic.PROFILE, subject="profile_id", version=2)
class ProfileUpdatedV2(EventData):
    """Some profile fields changed; `changed_fields` names them, `facts` holds the non-personal result."""

    profile_id: Id
    changed_fields: list[Name] = Field(max_length=100)
    facts: ProfileFacts


def _registered_v1_to_v2(data: dict[str, Any]) -> dict[str, Any]:
    """v1 -> v2: the profile's personal fields are dropped, the non-personal facts kept."""
    return {"profile_id": data["profile_id"], "facts": profile_facts(data.get("profile") or {})}


def _updated_v1_to_v2(data: dict[str, Any]) -> dict[str, Any]:
    """v1 -> v2: `changes` (values, possibly personal) and the profile's personal fields are dropped."""
    return {
        "profile_id": data["profile_id"],
        "changed_fields": list(data.get("changed_fields") or []),
        "facts": profile_facts(data.get("profile") or {}),
    }


register_upcaster(ProfileRegistered.event_type, ProfileRegisteredV2.event_type, _registered_v1_to_v2)
register_upcaster(ProfileUpdated.event_type, ProfileUpdatedV2.event_type, _updated_v1_to_v2)


@event(
    "mentorship.profile.profile_state",
    topic=Topic.PROFILE_STATE,
    subject="profile_id",
    personal_data=("profile",),
    protection={
        "profile": "on the compacted `profile.state` only (min.compaction.lag.ms 1 h, delete.retention.ms 1 day): "
        "an erase publishes a tombstone (null value) for the key, and compaction removes every earlier value; "
        "readers delete the person on the tombstone; dead letters of this topic carry no value",
    },
)
class ProfileState(EventData):
    """A person's whole current profile, after every change (compacted `profile.state`, key = profile id).

    Read it like a table: the latest value per key is the person's profile; a tombstone (a record
    with a null value) means the person was erased: delete what you hold about them. Compaction
    keeps the latest value of every live person, so a new subscriber or a rebuild reads everyone."""

    profile_id: Id
    version: int = Field(ge=1, description="the profile's version: a higher one replaces a lower one")
    profile: ProfileSnapshot


@event("mentorship.profile.profile_role_added", topic=Topic.PROFILE, subject="profile_id")
class ProfileRoleAdded(EventData):
    """A person took on a role (a mentee becoming a mentor pays it forward)."""

    profile_id: Id
    role: Role
    roles: list[Role] = Field(max_length=10)
    mentor_capacity: int | None = None


@event("mentorship.profile.profile_role_removed", topic=Topic.PROFILE, subject="profile_id")
class ProfileRoleRemoved(EventData):
    """A person gave up a role."""

    profile_id: Id
    role: Role
    roles: list[Role] = Field(max_length=10)


@event(
    "mentorship.profile.profile_deactivated",
    topic=Topic.PROFILE,
    subject="profile_id",
    personal_data=("reason",),
    protection={"reason": "kept as a code in v2 (`reason_code`, `has_reason`); the text stays in profile"},
)
class ProfileDeactivated(EventData):
    """A person is inactive: not matchable, not notified except for account matters."""

    profile_id: Id
    reason: Text | None = None


@event("mentorship.profile.v2.profile_deactivated", topic=Topic.PROFILE, subject="profile_id", version=2)
class ProfileDeactivatedV2(EventData):
    """A person is inactive: not matchable, not notified except for account matters; a reason someone
    wrote (`has_reason`) stays in the profile service."""

    profile_id: Id
    reason_code: ReasonCode = "other"
    has_reason: bool = False


def _deactivated_v1_to_v2(data: dict[str, Any]) -> dict[str, Any]:
    """v1 -> v2: the reason's words are dropped, its code and whether there were words kept."""
    return {"profile_id": data["profile_id"], **reason_fields(data.get("reason"))}


register_upcaster(ProfileDeactivated.event_type, ProfileDeactivatedV2.event_type, _deactivated_v1_to_v2)


@event("mentorship.profile.profile_reactivated", topic=Topic.PROFILE, subject="profile_id")
class ProfileReactivated(EventData):
    """A deactivated person is active again."""

    profile_id: Id


@event("mentorship.profile.profile_erased", topic=Topic.PROFILE, subject="profile_id")
class ProfileErased(EventData):
    """Right to be forgotten: every reader deletes what it holds about this person."""

    profile_id: Id
