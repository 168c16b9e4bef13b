"""Erasure of events still in an outbox: when a person is erased while events about them wait to
be published, their personal fields (each event type names them: `personal_data`) are emptied
before they leave, so nothing published after the erase carries the person's free text.

The events keep their ids: a consumer that got the original already (published, not yet removed
from the outbox) drops the rewritten copy as a duplicate.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from pydantic import BaseModel

from mentorship_contracts import Envelope, decode

from .outbox import OUTBOX, PENDING, TOMBSTONE, OutboxItem, Tombstone


def _blank(value: Any, keep: Collection[str]) -> Any:
    """A personal value without its text: strings empty (unless a neutral text of the platform's),
    lists of text empty, models with their texts emptied (ids, numbers and dates stay)."""
    if isinstance(value, str):
        return value if value in keep else ""
    if isinstance(value, BaseModel):
        changes: dict[str, Any] = {}
        for name, field in type(value).model_fields.items():
            inner = getattr(value, name)
            if field.annotation is str and isinstance(inner, str):  # free text (not a Literal code)
                changes[name] = _blank(inner, keep)
            elif (
                isinstance(inner, list)
                and inner
                and not name.endswith("_ids")
                and all(isinstance(i, str) for i in inner)
            ):  # texts such as goal titles (not ids)
                changes[name] = []
        return value.model_copy(update=changes) if changes else value
    return value


def without_personal_data(envelope: Envelope[Any], keep: Collection[str] = ()) -> Envelope[Any]:
    """The same event (same id) with its personal fields emptied; the same object when none held text."""
    data = envelope.data
    changes = {}
    for name in type(data).personal_data:
        value = getattr(data, name, None)
        blank = _blank(value, keep)
        if blank != value:
            changes[name] = blank
    if not changes:
        return envelope
    return envelope.model_copy(update={"data": data.model_copy(update=changes)})


def scrubbed_pending(doc: dict[str, Any], keep: Collection[str] = ()) -> list[OutboxItem] | None:
    """A document's unpublished events without personal data, or None when none carried any
    (then nothing needs writing). Use with `outbox.with_replaced_events`; tombstones stay as they are."""
    if not doc.get(PENDING) or not doc.get(OUTBOX):
        return None
    events: list[OutboxItem] = [
        Tombstone(entry["topic"], entry["key"], entry["time"], entry["id"])
        if entry.get("type") == TOMBSTONE
        else decode(entry["body"])
        for entry in doc[OUTBOX]
    ]
    scrubbed: list[OutboxItem] = [e if isinstance(e, Tombstone) else without_personal_data(e, keep) for e in events]
    return scrubbed if any(a is not b for a, b in zip(events, scrubbed, strict=True)) else None
