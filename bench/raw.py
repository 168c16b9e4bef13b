"""Pieces the same-work baselines share: written with the raw clients only (PyMongo async, aiokafka,
aiosmtplib), never with the platform's kit, so that a baseline measures the store, the broker and
the mail server doing the work, not the platform's own way of doing it.

"Same work" means the same durable effects per event as the service must produce: documents
inserted and updated (state change and its pending event in one write, as a transactional outbox
requires), processed-marks, messages sent, events produced with acks=all, and the outbox entry
cleared once its event is on the topic. What a baseline leaves out (leases, read-backs, polling,
HTTP, validation, templates, tracing) is the platform's own overhead, which the ratio shows.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import uuid
from datetime import UTC, datetime
from typing import Any

import aiosmtplib
from aiokafka import AIOKafkaProducer
from pymongo import AsyncMongoClient
from pymongo.asynchronous.database import AsyncDatabase

Document = dict[str, Any]


def store_uri(service: str) -> str:
    """The service's own store (`<SERVICE>_MONGODB_URI`, set by `with_infra.sh --service-stores`),
    else the one store (`MONGODB_URI`): a baseline works on the same store as the service it is
    compared with."""
    return os.environ.get(f"{service.upper()}_MONGODB_URI") or os.environ.get(
        "MONGODB_URI", "mongodb://127.0.0.1:27017/"
    )


def outbox_entry(event_id: str, event_type: str, topic: str, key: str, body: bytes) -> Document:
    """An outbox entry of the same shape and size as the kit's (id, type, topic, key, time, body, headers)."""
    return {
        "id": event_id,
        "type": event_type,
        "topic": topic,
        "key": key,
        "time": datetime.now(UTC),
        "body": body.decode(),
        "headers": {"ce_id": event_id, "ce_type": event_type, "content-type": "application/cloudevents+json"},
    }


def with_outbox(update: Document, entries: list[Document]) -> Document:
    """The update plus its pending events, in the same single-document write."""
    out = {k: dict(v) if isinstance(v, dict) else v for k, v in update.items()}
    out.setdefault("$push", {})["outbox"] = {"$each": entries}
    out.setdefault("$inc", {})["outbox_seq"] = len(entries)
    out.setdefault("$set", {})["outbox_pending"] = True
    return out


CLEARED = {"$set": {"outbox": [], "outbox_pending": False}}


async def copy_indexes(source: AsyncDatabase[Document], target: AsyncDatabase[Document], collection: str) -> int:
    """The secondary indexes `collection` has in `source` (the service's database), created alike in
    `target`: the baseline's writes then maintain as many index entries as the service's."""
    made = 0
    async for index in await source[collection].list_indexes():
        if index["name"] == "_id_":
            continue
        options = {k: v for k, v in index.items() if k not in ("key", "v", "ns")}
        await target[collection].create_index(list(index["key"].items()), **options)
        made += 1
    return made


class SmtpPool:
    """A few open aiosmtplib connections, one message at a time each."""

    def __init__(self, port: int, size: int) -> None:
        self.port, self.size = port, size
        self._idle: asyncio.Queue[aiosmtplib.SMTP] = asyncio.Queue()

    async def start(self) -> SmtpPool:
        for _ in range(self.size):
            client = aiosmtplib.SMTP(hostname="127.0.0.1", port=self.port)
            await client.connect()
            self._idle.put_nowait(client)
        return self

    async def send(self, message: Any, sender: str, to: str) -> None:
        client = await self._idle.get()
        try:
            await client.send_message(message, sender=sender, recipients=[to])
        finally:
            self._idle.put_nowait(client)

    async def close(self) -> None:
        while not self._idle.empty():
            with contextlib.suppress(Exception):
                await self._idle.get_nowait().quit()


async def started_producer(bootstrap: str) -> AIOKafkaProducer:
    """acks=all and idempotence, as the services' relays use; warmed up outside any clock."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=True, linger_ms=5)
    await producer.start()
    return producer


def mongo(uri: str) -> AsyncMongoClient[Document]:
    return AsyncMongoClient(uri, tz_aware=True)


def new_id() -> str:
    return str(uuid.uuid4())
