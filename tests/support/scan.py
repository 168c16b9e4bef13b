"""Reading a service's whole database as an attacker with a copy of it would: every string of every
document of every collection. The erasure tests use it to prove nothing of a person is left."""

from __future__ import annotations

from typing import Any

from mentorship_kit.outbox import PENDING


def strings(value: Any) -> list[str]:
    """Every string in a document, keys included, nested lists and objects too."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for k, v in value.items() for s in (str(k), *strings(v))]
    if isinstance(value, list | tuple):
        return [s for v in value for s in strings(v)]
    return []


async def dump(db: Any) -> dict[str, list[dict[str, Any]]]:
    """Every document of every collection, in a stable order (to compare a database before and after)."""
    names = sorted(await db.list_collection_names())
    return {name: await db[name].find({}).sort("_id", 1).to_list(None) for name in names}


async def found_in(db: Any, needles: tuple[str, ...]) -> list[tuple[str, str]]:
    """(collection, text) of every stored string that contains one of `needles`."""
    return [
        (name, text[:200])
        for name, docs in (await dump(db)).items()
        for doc in docs
        for text in strings(doc)
        if any(needle in text for needle in needles)
    ]


async def outboxes_drained(db: Any) -> bool:
    """Every outbox published (the relay removes published events from the documents)."""
    for name in await db.list_collection_names():
        if await db[name].find_one({PENDING: True}, {"_id": 1}):
            return False
    return True
