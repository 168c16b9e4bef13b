"""What scheduling's bootstrap gathers, checked without a broker or a store (nothing connects
before `runtime.start()`)."""

from __future__ import annotations

from scheduling_service.application import CHECK_IN, INACTIVE, REMINDER
from scheduling_service.bootstrap import bootstrap
from scheduling_service.settings import Settings


async def test_consumers_timers_and_the_reminder_job_are_registered():
    runtime, scheduling = bootstrap(Settings(kafka_topic_prefix="unit."))
    try:
        assert {c.name for c in runtime.consumers} == {"mentorships", "profile-state", "profiles"}
        assert runtime.context().timers is scheduling.ctx.timers
        timers = runtime._timer_handlers
        assert set(timers) == {REMINDER, CHECK_IN, INACTIVE}
        assert timers[REMINDER] == scheduling.on_reminder
        assert runtime._background == [scheduling.keep_reminders_planned]
    finally:
        await runtime.client.close()
