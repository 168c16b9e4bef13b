"""Every profile as scoring features, kept in memory and rebuilt when the read model moved."""

from __future__ import annotations

import asyncio

from mentorship_kit.clock import Clock

from ..scoring import MentorIndex, Person
from .ports import ProfileReader


class ProfileCache:
    """Every profile as scoring features, and the active mentors as matrices, rebuilt when the
    read model's version moved. Suggestions then read no profile from the store per call.

    The first build waits; later rebuilds run in the background while calls keep using the
    previous build (a bounded staleness: a read model is eventually consistent anyway). A
    full read is slow on FerretDB (measured ~20 s for 15k profiles: it has no index use), so
    no request should wait for one once the service is warm."""

    def __init__(self, profiles: ProfileReader, clock: Clock, default_capacity: int) -> None:
        self.profiles = profiles
        self.clock = clock
        self.default_capacity = default_capacity
        self._version = -1
        self._index: MentorIndex | None = None
        self._people: dict[str, Person] = {}
        self._lock = asyncio.Lock()
        self._refresh: asyncio.Task[None] | None = None

    async def get(self) -> tuple[MentorIndex, dict[str, Person]]:
        version = await self.profiles.version()
        if self._index is None:
            async with self._lock:
                if self._index is None:
                    await self._rebuild(version)
        elif version != self._version and (self._refresh is None or self._refresh.done()):
            self._refresh = asyncio.create_task(self._rebuild_locked(version))
        assert self._index is not None
        return self._index, self._people

    async def fresh(self) -> tuple[MentorIndex, dict[str, Person]]:
        """Wait for a build of the current version (cohort runs, tests)."""
        version = await self.profiles.version()
        if self._index is None or version != self._version:
            await self._rebuild_locked(version)
        assert self._index is not None
        return self._index, self._people

    async def _rebuild_locked(self, version: int) -> None:
        async with self._lock:
            if version != self._version or self._index is None:
                await self._rebuild(version)

    async def _rebuild(self, version: int) -> None:
        docs = await self.profiles.all_live()
        now = self.clock.now()
        people = {p["profile_id"]: Person.from_profile(p, now, self.default_capacity) for p in docs}
        self._index = await asyncio.to_thread(MentorIndex.build, list(people.values()))
        self._people = people
        self._version = version
