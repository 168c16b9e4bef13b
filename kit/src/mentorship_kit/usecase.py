"""What every service's application object is built from: one constructor shape everywhere.

An application object (``ProfileUseCases``, ``MatchingUseCases`` ...) is constructed as
``XUseCases(ctx, settings=..., <stores and ports as keyword arguments>)``: ``ctx`` carries the
clock, the durable timers, the envelope factory and the outbox wake-up; the stores are adapters.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from mentorship_contracts import Envelope, EventData

from .clock import Clock
from .timers import Timers


class EventFactory:
    """Makes the envelopes of one service: its `source`, its clock's time, the correlation."""

    def __init__(self, source: str, clock: Clock) -> None:
        self.source = source
        self.clock = clock

    def new(self, data: EventData, *, correlation_id: str | None = None, time: datetime | None = None) -> Envelope[Any]:
        """An event that starts its own correlation (or joins the one given, e.g. an HTTP request's)."""
        return Envelope.wrap(data, source=self.source, correlation_id=correlation_id, time=time or self.clock.now())

    def caused_by(self, cause: Envelope[Any], data: EventData, *, time: datetime | None = None) -> Envelope[Any]:
        """A follow-up of an event this service handled: same correlation, caused by it."""
        return cause.caused(data, source=self.source, time=time or self.clock.now())

    def many(self, data: list[EventData], *, correlation_id: str | None = None) -> list[Envelope[Any]]:
        """Several events of one use case: the first starts the correlation, the rest share it."""
        envelopes: list[Envelope[Any]] = []
        for item in data:
            env = self.new(item, correlation_id=correlation_id)
            correlation_id = correlation_id or env.correlationid
            envelopes.append(env)
        return envelopes


@dataclass(frozen=True)
class UseCaseContext:
    """The runtime pieces a service's use cases need, and nothing else of the runtime."""

    clock: Clock
    timers: Timers
    events: EventFactory
    events_written: Callable[[], None]
    """Call after a write that queued events in an outbox: the relay publishes them now."""
