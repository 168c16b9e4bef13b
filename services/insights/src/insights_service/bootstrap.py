"""Everything the insights process is made of, gathered in one place."""

from __future__ import annotations

from mentorship_kit.runtime import ServiceRuntime

from .adapters.read_models import INDEXES, InsightsStore
from .application import InsightsUseCases
from .entrypoints.consumers import register_consumers
from .settings import Settings


def bootstrap(settings: Settings | None = None) -> tuple[ServiceRuntime, InsightsUseCases]:
    """The runtime (indexes, consumers on all four topics) and the use cases.

    Insights publishes nothing: no outbox, no timers; its read models are rebuilt by replaying
    the topics (`mentorship replay insights --rebuild`)."""
    settings = settings or Settings()
    runtime = ServiceRuntime(settings)
    store = InsightsStore(runtime.db)
    insights = InsightsUseCases(runtime.context(), settings=settings, store=store)
    runtime.indexes(*INDEXES)
    register_consumers(runtime, insights)
    return runtime, insights
