"""Everything the scheduling service process is made of, gathered in one place.

Stores, the use cases, indexes, outbox collections, produced topics, consumers, timers and the
background job that keeps reminders planned.
"""

from __future__ import annotations

from mentorship_contracts import Topic
from mentorship_kit.runtime import ServiceRuntime

from .adapters.read_models import MENTORSHIPS, MentorshipReadModel, ProfileReadModel, read_model_indexes
from .adapters.sessions import SESSIONS, SessionStore, session_indexes
from .application import CHECK_IN, INACTIVE, REMINDER, SchedulingUseCases
from .entrypoints.consumers import register_consumers
from .settings import Settings


def bootstrap(settings: Settings | None = None) -> tuple[ServiceRuntime, SchedulingUseCases]:
    settings = settings or Settings()
    runtime = ServiceRuntime(settings)
    scheduling = SchedulingUseCases(
        runtime.context(),
        settings=settings,
        mentorships=MentorshipReadModel(runtime.db),
        profiles=ProfileReadModel(runtime.db),
        sessions=SessionStore(runtime.db),
    )
    runtime.indexes(*read_model_indexes(), *session_indexes())
    runtime.outbox_collection(SESSIONS)
    runtime.outbox_collection(MENTORSHIPS)  # milestone events
    runtime.produces(Topic.SCHEDULING)
    register_consumers(runtime, scheduling)
    runtime.timer(REMINDER, scheduling.on_reminder)
    runtime.timer(CHECK_IN, scheduling.on_check_in)
    runtime.timer(INACTIVE, scheduling.on_inactive)
    runtime.background(scheduling.keep_reminders_planned)
    return runtime, scheduling
