"""Topic names: one topic per producing service's aggregate stream, keyed by aggregate id."""

from enum import StrEnum


class Topic(StrEnum):
    PROFILE = "profile.events"
    MATCHING = "matching.events"
    SCHEDULING = "scheduling.events"
    NOTIFICATION = "notification.events"


DEAD_LETTER_SUFFIX = ".dlt"


def dead_letter_topic(topic: str) -> str:
    return f"{topic}{DEAD_LETTER_SUFFIX}"
