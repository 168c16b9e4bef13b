"""Use cases of the scheduling service, one module per capability.

`SchedulingUseCases` is the one application object the HTTP routes, consumers and timers use;
it is the sum of the capabilities below, which share one constructor (`base.SchedulingBase`):

- `sessions`: book one or a series, move, cancel
- `outcomes`: complete, no-show, feedback
- `slots`: free times both participants share
- `milestones`: milestones and progress figures
- `calendars`: iCalendar of a session and a personal feed
- `timers`: reminders, overdue check-ins, inactive mentorships
- `reactions`: matching's and profile's events
- `erasure`: forgetting a person on `ProfileErased`
"""

from __future__ import annotations

from .calendars import CalendarUseCases
from .erasure import Forgetting
from .milestones import MilestoneUseCases
from .outcomes import SessionOutcomes
from .reactions import EventReactions
from .slots import SlotUseCases
from .timers import CHECK_IN, INACTIVE, REMINDER


class SchedulingUseCases(
    EventReactions, Forgetting, SessionOutcomes, SlotUseCases, MilestoneUseCases, CalendarUseCases
):
    """All of scheduling's use cases: `SchedulingUseCases(ctx, settings=..., mentorships=...,
    profiles=..., sessions=...)`."""


__all__ = ["CHECK_IN", "INACTIVE", "REMINDER", "SchedulingUseCases"]
