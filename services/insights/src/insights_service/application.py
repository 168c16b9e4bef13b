"""Use cases of the insights service: fold events into the read models, answer the reports.

Only ids, roles, skill tags, states, times, ratings and counts are kept: no names, emails,
goal titles, messages, notes, comments or reasons (see `adapters.read_models`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any

from mentorship_contracts import Envelope
from mentorship_contracts.matching import (
    CohortMatchPublished,
    MentorshipAgreementRevisedV2,
    MentorshipCompleted,
    MentorshipEndedV2,
    MentorshipRequestAccepted,
    MentorshipRequestDeclinedV2,
    MentorshipRequestedV2,
    MentorshipRequestExpired,
    MentorshipRequestWithdrawn,
    MentorshipStartedV2,
    ProgramCreated,
    ProgramParticipantEnrolled,
    ProgramParticipantWithdrawn,
)
from mentorship_contracts.notification import NotificationFailed
from mentorship_contracts.profile import ProfileSnapshot
from mentorship_contracts.scheduling import (
    CheckInOverdue,
    MentorshipInactive,
    MilestoneReachedV2,
    SessionCancelledV2,
    SessionCompletedV2,
    SessionFeedbackSubmittedV2,
    SessionNoShow,
    SessionRescheduled,
    SessionScheduledV2,
)
from mentorship_kit.problems import NotFound
from mentorship_kit.usecase import UseCaseContext

from .adapters.read_models import InsightsStore, field_key
from .domain import (
    DIRECT,
    ERASED,
    Pair,
    Rules,
    attention_list,
    health_report,
    mentor_load,
    pair_row,
    program_row,
    supply_gap,
)
from .settings import Settings

Show = Callable[[str | None], str | None]
OVERALL = {"program_id": "overall", "name": "All mentorships"}


class InsightsUseCases:
    def __init__(self, ctx: UseCaseContext, *, settings: Settings, store: InsightsStore) -> None:
        self.clock = ctx.clock
        self.settings = settings
        self.store = store
        self.rules = Rules(
            unanswered_request_days=settings.insights_unanswered_request_days,
            low_rating_below=settings.insights_low_rating_below,
            inactive_after_cadences=settings.insights_inactive_after_cadences,
            series_weeks=settings.insights_series_weeks,
        )

    # --- profile events ------------------------------------------------------------------------
    async def profile_snapshot(self, profile: ProfileSnapshot, at: datetime) -> None:
        await self.store.person(profile, at)

    async def profile_changed(self, profile_id: str, at: datetime, changes: dict[str, Any]) -> None:
        await self.store.person_patch(profile_id, at, changes)

    async def profile_erased(self, profile_id: str, at: datetime) -> None:
        await self.store.erase_person(profile_id, at)

    # --- matching events -----------------------------------------------------------------------
    async def _mentorship(self, event: Envelope[Any], facts: dict[str, Any], **extra: Any) -> None:
        d = event.data
        program_id = d.program_id or DIRECT
        await self.store.pair_facts(
            d.mentorship_id,
            {"program_id": program_id, "mentee_id": d.mentee_id, "mentor_id": d.mentor_id, **facts},
            **extra,
        )
        await self.store.program_seen(program_id, event.time)
        await self.store.event_ref(event.id, mentorship_id=d.mentorship_id)

    async def requested(self, event: Envelope[MentorshipRequestedV2]) -> None:
        await self._mentorship(
            event, {"origin": "request", "requested_at": event.time, "expires_at": event.data.expires_at}
        )

    async def accepted(self, event: Envelope[MentorshipRequestAccepted]) -> None:
        await self._mentorship(event, {"accepted_at": event.time})

    async def declined(self, event: Envelope[MentorshipRequestDeclinedV2]) -> None:
        await self._mentorship(event, {"declined_at": event.time, "declined_automatically": event.data.automatic})

    async def expired(self, event: Envelope[MentorshipRequestExpired]) -> None:
        await self._mentorship(event, {"expired_at": event.time})

    async def withdrawn(self, event: Envelope[MentorshipRequestWithdrawn]) -> None:
        await self._mentorship(event, {"withdrawn_at": event.time})

    async def started(self, event: Envelope[MentorshipStartedV2]) -> None:
        # Only the cadence and the planned end of the agreement: goals and expectations are personal text.
        a = event.data.agreement
        await self._mentorship(
            event,
            {
                "started_at": event.data.started_at,
                "cadence": a.cadence,
                "planned_end": a.planned_end.isoformat() if a.planned_end else None,
                "origin": event.data.origin,
            },
        )

    async def agreement_revised(self, event: Envelope[MentorshipAgreementRevisedV2]) -> None:
        """The pair agreed on a new cadence (and planned end): reports measure against it from now on."""
        a = event.data.agreement
        await self._mentorship(
            event, {"cadence": a.cadence, "planned_end": a.planned_end.isoformat() if a.planned_end else None}
        )

    async def completed(self, event: Envelope[MentorshipCompleted]) -> None:
        await self._mentorship(event, {"completed_at": event.data.completed_at})

    async def ended(self, event: Envelope[MentorshipEndedV2]) -> None:
        await self._mentorship(
            event, {"ended_at": event.data.ended_at, "ended_not_a_good_fit": event.data.not_a_good_fit}
        )

    async def cohort_published(self, event: Envelope[CohortMatchPublished]) -> None:
        d = event.data
        await self.store.program_seen(d.program_id, event.time, name=d.program_name, run_id=d.run_id)
        await self.store.event_ref(event.id, program_id=d.program_id)

    async def program_created(self, event: Envelope[ProgramCreated]) -> None:
        d = event.data
        created = {"created_name": d.name, "mode": d.mode, "created_at": d.created_at}
        await self.store.program_seen(d.program_id, event.time, created=created)
        await self.store.event_ref(event.id, program_id=d.program_id)

    async def _enrolment(self, event: Envelope[Any], facts: dict[str, Any]) -> None:
        d = event.data
        await self.store.enrolment_facts(
            d.enrolment_id, {"program_id": d.program_id, "profile_id": d.profile_id, "role": d.role, **facts}
        )
        await self.store.program_seen(d.program_id, event.time)
        await self.store.event_ref(event.id, program_id=d.program_id)

    async def participant_enrolled(self, event: Envelope[ProgramParticipantEnrolled]) -> None:
        await self._enrolment(event, {"enrolled_at": event.data.enrolled_at})

    async def participant_withdrawn(self, event: Envelope[ProgramParticipantWithdrawn]) -> None:
        await self._enrolment(event, {"enrolled_at": event.data.enrolled_at, "withdrawn_at": event.data.withdrawn_at})

    # --- scheduling events ---------------------------------------------------------------------
    async def _scheduling(self, event: Envelope[Any], facts: dict[str, Any], **extra: Any) -> None:
        d = event.data
        await self.store.pair_facts(
            d.mentorship_id, {"mentee_id": d.mentee_id, "mentor_id": d.mentor_id, **facts}, **extra
        )
        await self.store.event_ref(event.id, mentorship_id=d.mentorship_id)

    @staticmethod
    def _session(event: Envelope[Any]) -> str:
        return f"sessions.{field_key(event.data.session_id)}"

    async def session_scheduled(self, event: Envelope[SessionScheduledV2] | Envelope[SessionRescheduled]) -> None:
        key = self._session(event)
        await self._scheduling(event, {f"{key}.starts.s{event.data.sequence}": event.data.start})

    async def session_cancelled(self, event: Envelope[SessionCancelledV2]) -> None:
        await self._scheduling(event, {f"{self._session(event)}.cancelled_at": event.time})

    async def session_completed(self, event: Envelope[SessionCompletedV2]) -> None:
        key = self._session(event)
        await self._scheduling(
            event, {f"{key}.completed_at": event.data.completed_at, f"{key}.held_start": event.data.start}
        )

    async def session_no_show(self, event: Envelope[SessionNoShow]) -> None:
        await self._scheduling(event, {f"{self._session(event)}.no_show_at": event.time})

    async def feedback(self, event: Envelope[SessionFeedbackSubmittedV2]) -> None:
        d = event.data
        key = f"ratings.{field_key(d.session_id)}_{d.author_role}"
        await self.store.pair_facts(
            d.mentorship_id, {key: {"rating": d.rating, "at": event.time, "not_a_good_fit": d.not_a_good_fit}}
        )
        await self.store.event_ref(event.id, mentorship_id=d.mentorship_id)

    async def milestone(self, event: Envelope[MilestoneReachedV2]) -> None:
        await self._scheduling(event, {f"milestones.{field_key(event.data.milestone_id)}": event.data.reached_at})

    async def check_in_overdue(self, event: Envelope[CheckInOverdue]) -> None:
        await self._scheduling(event, {}, latest={"overdue_since": event.data.due_since})

    async def inactive(self, event: Envelope[MentorshipInactive]) -> None:
        await self._scheduling(event, {}, latest={"inactive_since": event.data.inactive_since})

    async def scheduling_ref(self, event: Envelope[Any]) -> None:
        """An event kept only so that a failed notification about it counts against its program."""
        await self.store.event_ref(event.id, mentorship_id=event.data.mentorship_id)

    # --- notification events -------------------------------------------------------------------
    async def notification_failed(self, event: Envelope[NotificationFailed]) -> None:
        d = event.data  # not the reason: it may quote an address
        await self.store.failure(
            d.delivery_id,
            {
                "failed_at": d.failed_at,
                "channel": d.channel,
                "category": d.category,
                "source_event_id": d.source_event_id,
                "source_event_type": d.source_event_type,
            },
        )

    # --- reports -------------------------------------------------------------------------------
    async def _program(self, program_id: str) -> dict[str, Any]:
        doc = await self.store.program(program_id)
        if doc is None:
            raise NotFound("program", program_id)
        # the name of the latest published cohort run, else the one it was created with
        name = doc.get("name") or doc.get("created_name")
        name = name or ("Direct requests (no program)" if program_id == DIRECT else None)
        return {"program_id": program_id, "name": name}

    async def _shower(self, pairs: list[Pair], others: Iterable[str] = ()) -> Show:
        ids = {i for p in pairs for i in (p.mentee_id, p.mentor_id) if i} | set(others)
        erased = await self.store.erased_ids(ids)

        def show(profile_id: str | None) -> str | None:
            return ERASED if profile_id in erased else profile_id

        return show

    async def health(self, program_id: str) -> dict[str, Any]:
        program = await self._program(program_id)
        pairs = await self.store.program_pairs(program_id)
        failures = await self.store.failures_of(program_id, [p.mentorship_id for p in pairs])
        enrolments = await self.store.program_enrolments(program_id)
        return health_report(program, pairs, failures, self.clock.now(), self.rules, enrolments)

    async def overall(self) -> dict[str, Any]:
        pairs = await self.store.all_pairs()
        failures = await self.store.all_failures()
        enrolments = await self.store.all_enrolments()
        report = health_report(OVERALL, pairs, failures, self.clock.now(), self.rules, enrolments)
        report["programs"] = len(await self.store.all_programs())
        return report

    async def attention(self, program_id: str) -> dict[str, Any]:
        await self._program(program_id)
        pairs = await self.store.program_pairs(program_id)
        now = self.clock.now()
        items = attention_list(pairs, now, self.rules, await self._shower(pairs))
        return {"program_id": program_id, "as_of": now.isoformat(), "pairs": items}

    async def mentor_load(self, program_id: str) -> dict[str, Any]:
        await self._program(program_id)
        pairs = await self.store.program_pairs(program_id)
        now = self.clock.now()
        enrolled = {
            e.profile_id
            for e in await self.store.program_enrolments(program_id)
            if e.role == "mentor" and e.enrolled_by(now)
        }
        mentor_ids = {p.mentor_id for p in pairs if p.mentor_id} | enrolled
        all_pairs = await self.store.mentor_pairs(mentor_ids)
        people = await self.store.people_by_id(mentor_ids)
        rows = mentor_load(pairs, all_pairs, people, now, await self._shower(pairs, enrolled), enrolled)
        return {"program_id": program_id, "as_of": now.isoformat(), "mentors": rows}

    async def supply_gap(self, limit: int) -> dict[str, Any]:
        report = supply_gap(await self.store.live_people(), limit)
        return {"as_of": self.clock.now().isoformat(), **report}

    async def pair_rows(self, program_id: str) -> list[dict[str, Any]]:
        await self._program(program_id)
        pairs = sorted(await self.store.program_pairs(program_id), key=lambda p: p.mentorship_id)
        show = await self._shower(pairs)
        now = self.clock.now()
        return [pair_row(p, now, self.rules, show) for p in pairs]

    async def program_rows(self) -> list[dict[str, Any]]:
        rows = []
        for doc in await self.store.all_programs():
            rows.append(program_row(await self.health(doc["_id"])))
        return rows
