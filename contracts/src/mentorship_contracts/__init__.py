"""Public event contracts of the mentorship platform."""

from . import matching, notification, profile, scheduling
from .envelope import CONTENT_TYPE, SPEC_VERSION, Envelope, EventData, utc_now
from .registry import (
    InvalidEvent,
    UnknownEventType,
    all_models,
    as_newest,
    decode,
    encode,
    event,
    model_for,
    register_upcaster,
)
from .topics import DEAD_LETTER_SUFFIX, STATE_SUFFIX, Topic, dead_letter_topic, is_state_topic

__all__ = [
    "CONTENT_TYPE",
    "DEAD_LETTER_SUFFIX",
    "SPEC_VERSION",
    "STATE_SUFFIX",
    "Envelope",
    "EventData",
    "InvalidEvent",
    "Topic",
    "UnknownEventType",
    "all_models",
    "as_newest",
    "dead_letter_topic",
    "decode",
    "encode",
    "event",
    "is_state_topic",
    "matching",
    "model_for",
    "notification",
    "profile",
    "register_upcaster",
    "scheduling",
    "utc_now",
]
