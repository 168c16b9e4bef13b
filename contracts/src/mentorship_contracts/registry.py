"""Registry from event type string to payload model, plus (de)serialisation and upcasting."""

from __future__ import annotations

import builtins
import json
from collections.abc import Callable, Mapping
from typing import Any

from pydantic import ValidationError

from .envelope import Envelope, EventData

_MODELS: dict[str, type[EventData]] = {}
# type -> (new type, function turning the old payload dict into the new one)
_UPCASTERS: dict[str, tuple[str, Callable[[dict[str, Any]], dict[str, Any]]]] = {}


class UnknownEventType(LookupError):
    """The type is not in this reader's registry (tolerant readers skip these)."""


class InvalidEvent(ValueError):
    """The bytes are not a valid event: not JSON, not an envelope, or data off its schema."""


def event(
    type: str,
    *,
    topic: str,
    subject: str,
    version: int = 1,
    personal_data: tuple[str, ...] = (),
    protection: Mapping[str, str] | None = None,
    summary: str = "",
) -> Callable[[type[EventData]], type[EventData]]:
    """Register a payload model under its type string.

    `subject` names the field holding the aggregate id (the Kafka key); `personal_data`
    lists fields that carry personal data, so the catalog can say which events carry it;
    `protection` says, per personal field, how it is protected (see `protection_of`).
    """
    unknown = set(protection or {}) - set(personal_data)
    if unknown:
        raise ValueError(f"{type}: protection given for fields not listed as personal data: {sorted(unknown)}")

    def register(cls: builtins.type[EventData]) -> builtins.type[EventData]:  # `type` is a parameter here
        if type in _MODELS and _MODELS[type] is not cls:
            raise ValueError(f"event type {type!r} registered twice")
        if subject not in cls.model_fields:
            raise ValueError(f"{cls.__name__}: subject field {subject!r} is not a field")
        cls.event_type = type
        cls.event_version = version
        cls.topic = topic
        cls.subject_field = subject
        cls.personal_data = personal_data
        cls.protection = dict(protection or {})
        cls.summary = summary or _first_sentence(cls.__doc__ or "")
        _MODELS[type] = cls
        return cls

    return register


def _first_sentence(doc: str) -> str:
    """The docstring's first sentence (over line breaks), for the catalog's one-line summary."""
    paragraph = " ".join(line.strip() for line in doc.strip().split("\n\n")[0].splitlines())
    head, dot, _ = paragraph.partition(". ")
    return head + "." if dot else paragraph


def register_upcaster(old_type: str, new_type: str, upcast: Callable[[dict[str, Any]], dict[str, Any]]) -> None:
    """Old events on a topic are read as the new version: payload dict in, payload dict out."""
    _UPCASTERS[old_type] = (new_type, upcast)


def upcast_target(type_: str) -> str | None:
    """The newer type an old event type is read as (None: it is the newest)."""
    _load_all()
    found = _UPCASTERS.get(type_)
    return found[0] if found else None


def superseded_by_upcast(type_: str) -> list[str]:
    """The older types read as this one."""
    _load_all()
    return sorted(old for old, (new, _) in _UPCASTERS.items() if new == type_)


def protection_of(model: type[EventData]) -> dict[str, str]:
    """Per personal field, how it is protected: what the model says, else, for a field that a newer
    version no longer carries, "dropped in vN"; else "not protected" (the catalog shows it)."""
    out: dict[str, str] = {}
    newer = upcast_target(model.event_type)
    for field in model.personal_data:
        if field in model.protection:
            out[field] = model.protection[field]
        elif newer is not None and field not in model_for(newer).model_fields:
            target = model_for(newer)
            out[field] = (
                f"dropped in v{target.event_version} (`{newer}`); the upcaster removes it from old records on read"
            )
        else:
            out[field] = "not protected: travels in the event"
    return out


def model_for(type_: str) -> type[EventData]:
    try:
        return _MODELS[type_]
    except KeyError:
        raise UnknownEventType(type_) from None


def all_models() -> dict[str, type[EventData]]:
    _load_all()
    return dict(sorted(_MODELS.items()))


def encode(envelope: Envelope[Any]) -> bytes:
    return envelope.model_dump_json().encode()


def decode(raw: bytes | str | dict[str, Any]) -> Envelope[Any]:
    """Bytes to a typed envelope; old versions are upcast to the newest known model."""
    _load_all()
    try:
        doc = raw if isinstance(raw, dict) else json.loads(raw)
    except (TypeError, ValueError) as exc:  # also an empty (tombstone) record value
        raise InvalidEvent(f"not JSON: {exc}") from exc
    if not isinstance(doc, dict) or not isinstance(doc.get("type"), str):
        raise InvalidEvent("not an event envelope: no string 'type'")
    seen = set()
    while doc["type"] in _UPCASTERS and doc["type"] not in seen:
        seen.add(doc["type"])
        new_type, upcast = _UPCASTERS[doc["type"]]
        new_model = model_for(new_type)
        try:
            data = upcast(dict(doc.get("data") or {}))
        except Exception as exc:  # an old event the upcaster cannot read is invalid, not a crash
            raise InvalidEvent(f"{doc['type']}: cannot upcast to {new_type}: {exc!r}") from exc
        doc = {
            **doc,
            "type": new_type,
            "dataversion": new_model.event_version,
            "dataschema": new_model.dataschema(),
            "data": data,
        }
    model = model_for(doc["type"])
    try:
        return Envelope[model].model_validate(doc)  # type: ignore[valid-type]
    except ValidationError as exc:
        raise InvalidEvent(f"{doc['type']}: {_describe(exc)}") from exc


def as_newest(envelope: Envelope[Any]) -> Envelope[Any]:
    """The envelope as its newest version (an old one upcast, as `decode` reads it from a topic):
    for use cases that are also called with envelopes that did not come through `decode`."""
    if envelope.type not in _UPCASTERS:
        return envelope
    return decode(envelope.model_dump(mode="json"))


def _describe(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors()[:5]:
        loc = ".".join(str(p) for p in err["loc"])
        parts.append(f"{loc}: {err['msg']}")
    return "; ".join(parts)


def _load_all() -> None:
    # Importing the modules runs their @event decorators.
    from . import matching, notification, profile, scheduling  # noqa: F401
