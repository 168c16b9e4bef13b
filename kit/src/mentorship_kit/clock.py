"""Time source: the system clock, shiftable in tests and demos (never by sleeping)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta


class Clock:
    """UTC clock with an offset; the offset stays zero unless dev clock control is enabled."""

    def __init__(self) -> None:
        self._offset = timedelta(0)

    def now(self) -> datetime:
        return datetime.now(UTC) + self._offset

    def advance(self, delta: timedelta) -> datetime:
        if delta < timedelta(0):
            raise ValueError("the clock only moves forward")
        self._offset += delta
        return self.now()

    def set(self, moment: datetime) -> datetime:
        if moment.tzinfo is None:
            raise ValueError("a time zone-aware time is required")
        return self.advance(moment - self.now()) if moment > self.now() else self.now()

    @property
    def offset(self) -> timedelta:
        return self._offset
