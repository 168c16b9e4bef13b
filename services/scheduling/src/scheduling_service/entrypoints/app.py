"""Wiring of the scheduling service process."""

from __future__ import annotations

from fastapi import FastAPI

from mentorship_contracts import Topic
from mentorship_kit.runtime import ServiceRuntime, create_app

from ..adapters.read_models import MENTORSHIPS, MentorshipReadModel, ProfileReadModel, read_model_indexes
from ..adapters.sessions import SESSIONS, SessionStore, session_indexes
from ..application import CHECK_IN, INACTIVE, REMINDER, Scheduling
from ..settings import Settings
from .consumers import register_consumers
from .http import router


def create(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()
    runtime = ServiceRuntime(settings)
    scheduling = Scheduling(runtime, settings, MentorshipReadModel(runtime.db), ProfileReadModel(runtime.db),
                            SessionStore(runtime.db))
    runtime.indexes(*read_model_indexes(), *session_indexes())
    runtime.outbox_collection(SESSIONS)
    runtime.outbox_collection(MENTORSHIPS)
    runtime.produces(Topic.SCHEDULING)
    runtime.timer(REMINDER, scheduling.on_reminder)
    runtime.timer(CHECK_IN, scheduling.on_check_in)
    runtime.timer(INACTIVE, scheduling.on_inactive)
    runtime.background(scheduling.keep_reminders_planned)
    register_consumers(runtime, scheduling)
    app = create_app(runtime, title="Scheduling service",
                     description="Sessions across time zones, recurring check-ins, reminders, feedback, milestones.",
                     routers=[router])
    app.state.scheduling = scheduling
    return app
