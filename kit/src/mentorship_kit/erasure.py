"""Erasure of events still in an outbox: when a person is erased while events about them wait to
be published, their personal fields (each event type names them: `personal_data`) are emptied
before they leave, so nothing published after the erase carries the person's free text.

The events keep their ids: a consumer that got the original already (published, not yet removed
from the outbox) drops the rewritten copy as a duplicate.
"""

from __future__ import annotations

import json
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
    entries = doc[OUTBOX]
    events: list[OutboxItem] = [
        Tombstone(entry["topic"], entry["key"], entry["time"], entry["id"])
        if entry.get("type") == TOMBSTONE
        else decode(entry["body"])
        for entry in entries
    ]
    # An old version waiting in the outbox was read as the newest (its text dropped by the upcaster):
    # it must be written back too, or the stored old body would be published with its text.
    upcast = any(
        not isinstance(e, Tombstone) and _stored_type(entry) != e.type for entry, e in zip(entries, events, strict=True)
    )
    scrubbed: list[OutboxItem] = [e if isinstance(e, Tombstone) else without_personal_data(e, keep) for e in events]
    return scrubbed if upcast or any(a is not b for a, b in zip(events, scrubbed, strict=True)) else None


def _stored_type(entry: dict[str, Any]) -> Any:
    body = entry["body"]
    return (body if isinstance(body, dict) else json.loads(body)).get("type")
