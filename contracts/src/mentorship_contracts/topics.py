"""Topic names: one topic per producing service's aggregate stream, keyed by aggregate id, and
compacted state topics (`*.state`: the latest value per key, a null value erases the key)."""

from enum import StrEnum


class Topic(StrEnum):
    PROFILE = "profile.events"
    MATCHING = "matching.events"
    SCHEDULING = "scheduling.events"
    NOTIFICATION = "notification.events"
    PROFILE_STATE = "profile.state"


STATE_SUFFIX = ".state"


def is_state_topic(topic: str) -> bool:
    """A compacted topic read like a table (see `mentorship_kit.tables`)."""
    return topic.endswith(STATE_SUFFIX)


DEAD_LETTER_SUFFIX = ".dlt"


def dead_letter_topic(topic: str) -> str:
    return f"{topic}{DEAD_LETTER_SUFFIX}"
