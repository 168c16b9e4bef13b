"""Every profile as scoring features, and the active mentors as matrices, kept in memory: built
once at start-up (the service is not ready before), then following each change in place."""

from __future__ import annotations

import asyncio
import gc
import time
from collections import deque
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import structlog

from mentorship_kit.clock import Clock

from ..scoring import MentorIndex, Person
from .ports import ProfileChanges

log = structlog.get_logger()


class ProfileCache:
    """Suggestions read no profile from the store per call, and no call waits for a build.

    At start-up `run` (a background job) reads every live profile once and builds the mentor
    index; until then the service's /ready says "building". Afterwards it polls the read
    model's change counter (one small read) and, when it moved, reads only the documents
    changed since (`seq`), applying each to the people and the index in place: a new,
    changed, deactivated or erased mentor shows up or disappears within about a poll
    interval, in every replica (each reads the shared read model, whichever replica's
    consumer wrote it).

    A change number is written a moment after it is taken (see the read model), so each poll
    looks back to the counter seen `settle_seconds` ago; documents already applied at their
    number are skipped by id and number, and only the others are fetched."""

    def __init__(
        self,
        profiles: ProfileChanges,
        clock: Clock,
        default_capacity: int,
        *,
        poll_seconds: float = 0.5,
        settle_seconds: float = 5.0,
    ) -> None:
        self.profiles = profiles
        self.clock = clock
        self.default_capacity = default_capacity
        self.poll_seconds = poll_seconds
        self.settle_seconds = settle_seconds
        self._index: MentorIndex | None = None
        self._people: dict[str, Person] = {}
        self._applied: dict[str, int] = {}  # profile id -> change number applied
        self._counter = 0  # the read model's change counter at the last catch-up
        self._marks: deque[tuple[float, int]] = deque()  # (monotonic time, counter) when it moved
        self._moved_at = 0.0  # monotonic time the counter was last seen moving
        self._lock = asyncio.Lock()
        self.problem: str | None = None

    @property
    def ready(self) -> bool:
        return self._index is not None

    def readiness(self) -> str:
        """For /ready: "ok" once the index is built."""
        if self._index is not None:
            return "ok"
        return f"building the mentor index ({self.problem})" if self.problem else "building the mentor index"

    async def run(self) -> None:
        """Background job: build, then follow the changes for as long as the service runs."""
        while True:
            try:
                await self.catch_up()
                self.problem = None
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the store is away: keep the last index, try again
                self.problem = repr(exc)[:200]
                log.warning("mentor index catch-up failed", error=self.problem)
            await asyncio.sleep(self.poll_seconds)

    async def get(self) -> tuple[MentorIndex, dict[str, Person]]:
        """The index and people, with every change the read model holds: one read of the change
        counter, and when it moved (the poll had not seen it yet) the few changed documents.
        Built here only when no background job runs (a use case constructed on its own)."""
        if self._index is None or await self.profiles.version() != self._counter:
            await self.catch_up()
        assert self._index is not None
        return self._index, self._people

    async def fresh(self) -> tuple[MentorIndex, dict[str, Person]]:
        """Catch up with every change made so far first (tests, callers that must see a write)."""
        await self.catch_up()
        assert self._index is not None
        return self._index, self._people

    async def catch_up(self) -> None:
        async with self._lock:
            counter = await self.profiles.version()
            if self._index is None or counter < self._counter:  # first build, or the read model was reset
                await self._build(counter)
                return
            if counter == self._counter and not self._settling():
                return
            changed = await self.profiles.changed_since(self._watermark())
            stale = [pid for pid, seq in changed if self._applied.get(pid, -1) < seq]
            if stale:
                self._apply(await self.profiles.documents(stale), self.clock.now())
            if counter != self._counter:
                self._counter = counter
                self._moved_at = time.monotonic()
                self._marks.append((self._moved_at, counter))

    def _settling(self) -> bool:
        """The counter moved lately: a change numbered then may still be landing (look again)."""
        return self._moved_at > time.monotonic() - self.settle_seconds

    def _watermark(self) -> int:
        """The counter seen at least `settle_seconds` ago, else the oldest one seen (the build's:
        it was read before the full read, which takes longer than a write takes to land)."""
        cutoff = time.monotonic() - self.settle_seconds
        while len(self._marks) > 1 and self._marks[1][0] <= cutoff:
            self._marks.popleft()
        return self._marks[0][1] if self._marks else 0

    def _apply(self, docs: Sequence[dict[str, Any]], now: datetime) -> None:
        assert self._index is not None
        for doc in docs:
            pid, seq = str(doc["_id"]), int(doc.get("seq", 0))
            if self._applied.get(pid, -1) >= seq:
                continue
            self._applied[pid] = seq
            if doc.get("erased") or "profile" not in doc:
                self._people.pop(pid, None)
                self._index.remove(pid)
                continue
            person = Person.from_profile(doc["profile"], now, self.default_capacity)
            self._people[pid] = person
            self._index.upsert(person)

    async def _build(self, counter: int) -> None:
        started = time.monotonic()
        docs = await self.profiles.live_with_seq()
        applied = {str(d["_id"]): int(d.get("seq", 0)) for d in docs}
        people, index = await asyncio.to_thread(self._features, docs, self.clock.now())
        del docs
        # The build left a heap of young objects: collect now, before ready, rather than in
        # the first requests (a full collection of it takes long on a loaded machine).
        gc.collect()
        self._people, self._index, self._applied = people, index, applied
        self._counter = counter
        self._marks = deque([(started, counter)])
        self._moved_at = started  # a full read takes longer than a write takes to land
        log.info("mentor index built", profiles=len(people), mentors=len(index), seconds=time.monotonic() - started)

    def _features(self, docs: Sequence[dict[str, Any]], now: datetime) -> tuple[dict[str, Person], MentorIndex]:
        people = {str(d["_id"]): Person.from_profile(d["profile"], now, self.default_capacity) for d in docs}
        return people, MentorIndex.build(list(people.values()))
