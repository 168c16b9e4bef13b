"""The async Mongo client (PyMongo's AsyncMongoClient) and index creation at start-up.

Only what FerretDB 1.24 supports is used (no transactions, change streams, TTL, $lookup).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from pymongo import AsyncMongoClient, IndexModel, monitoring
from pymongo.asynchronous.database import AsyncDatabase


def connect(
    uri: str, *, app_name: str, listeners: Sequence[monitoring._EventListener] = ()
) -> AsyncMongoClient[dict[str, Any]]:
    """`listeners`: PyMongo command listeners (the tracing kit's store spans)."""
    return AsyncMongoClient(
        uri, appname=app_name, tz_aware=True, serverSelectionTimeoutMS=5000, event_listeners=list(listeners)
    )


@dataclass(frozen=True)
class Indexes:
    """Index declarations of one collection, created (idempotently) when the service starts."""

    collection: str
    models: Sequence[IndexModel] = field(default_factory=tuple)


async def ensure_indexes(db: AsyncDatabase[dict[str, Any]], declarations: Sequence[Indexes]) -> None:
    for decl in declarations:
        if decl.models:
            # Create only the missing ones: FerretDB 1.24 drops the connection when asked to
            # create a compound index that already exists (i.e. on every restart).
            existing = set(await db[decl.collection].index_information())
            missing = [m for m in decl.models if m.document["name"] not in existing]
            if missing:
                await db[decl.collection].create_indexes(missing)


async def ping(client: AsyncMongoClient[dict[str, Any]]) -> None:
    await client.admin.command("ping")
