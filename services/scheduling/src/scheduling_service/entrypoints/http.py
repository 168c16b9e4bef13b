"""HTTP API of the scheduling service: thin routes over the use cases in application.py."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query, Request, Response
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StringConstraints

from mentorship_contracts.profile import TimeZoneName
from mentorship_contracts.text import ID_MAX, SINGLE_LINE, SINGLE_LINE_PATTERN, Id, Line
from mentorship_kit.auth import CurrentPrincipal
from mentorship_kit.policy import Policy, policy

from ..application import SchedulingUseCases

router = APIRouter(tags=["scheduling"])
ICS = "text/calendar; charset=utf-8"

# Path parameters are bounded like bodies (issue 11). Mentorship ids come from matching's events (one line,
# as long as an event id may be); sessions, milestones and feed tokens are minted here (letters, digits, _ -).
MentorshipId = Annotated[str, Path(min_length=1, max_length=ID_MAX, pattern=SINGLE_LINE_PATTERN)]
MINTED_PATTERN = r"^[A-Za-z0-9_-]+$"
SessionId = Annotated[str, Path(min_length=1, max_length=64, pattern=MINTED_PATTERN)]
MilestoneId = Annotated[str, Path(min_length=1, max_length=64, pattern=MINTED_PATTERN)]
FeedToken = Annotated[str, Path(min_length=1, max_length=128, pattern=MINTED_PATTERN)]


def use_cases(request: Request) -> SchedulingUseCases:
    found: SchedulingUseCases = request.app.state.scheduling
    return found


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class NewSession(Strict):
    start: AwareDatetime
    duration_minutes: int = Field(ge=5, le=480)
    location: Line | None = Field(default=None, description="room or video link (one line)")
    agenda: str = Field(default="", max_length=4000)


class NewSeries(Strict):
    first_start: AwareDatetime
    duration_minutes: int = Field(ge=5, le=480)
    cadence: Literal["weekly", "biweekly", "monthly"] | None = Field(
        default=None, description="default: the mentorship's agreed cadence"
    )
    count: int | None = Field(default=None, ge=1, le=200)
    until: AwareDatetime | None = None
    time_zone: TimeZoneName | None = Field(
        default=None, description="IANA zone whose wall time the series keeps (default: the caller's profile zone)"
    )
    location: Line | None = None
    agenda: str = Field(default="", max_length=4000)


class Reschedule(Strict):
    start: AwareDatetime
    duration_minutes: int | None = Field(default=None, ge=5, le=480)
    location: Line | None = None
    scope: Literal["this", "following"] = "this"
    expected_sequence: int | None = Field(default=None, ge=0)


class Cancel(Strict):
    reason: str = Field(default="", max_length=2000)
    scope: Literal["this", "following"] = "this"


class Complete(Strict):
    notes: str = Field(default="", max_length=8000, description="shared notes of the session")


class NoShow(Strict):
    absent_ids: list[Id] = Field(min_length=1, max_length=2)


class Feedback(Strict):
    rating: int = Field(ge=1, le=5)
    comment: str = Field(default="", max_length=4000)
    not_a_good_fit: bool = False


class NewMilestone(Strict):
    title: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200), SINGLE_LINE]
    goal_id: Annotated[str, StringConstraints(max_length=64), SINGLE_LINE] | None = None


def view(s: dict[str, Any]) -> dict[str, Any]:
    keys = (
        "mentorship_id",
        "mentor_id",
        "mentee_id",
        "start",
        "end",
        "duration_minutes",
        "location",
        "agenda",
        "status",
        "sequence",
        "ical_uid",
        "series_id",
        "series_index",
        "scheduled_by",
        "notes",
        "cancel_reason",
        "absent_ids",
    )
    return {
        "session_id": s["_id"],
        **{k: s.get(k) for k in keys},
        "feedback_from": sorted((s.get("feedback") or {}).keys()),
    }


@router.get(
    "/mentorships/{mentorship_id}",
    summary="The mentorship as scheduling knows it",
    openapi_extra=policy(Policy.PARTICIPANT),
)
async def get_mentorship(mentorship_id: MentorshipId, principal: CurrentPrincipal, request: Request) -> dict[str, Any]:
    m = await use_cases(request).mentorship_for(principal, mentorship_id, active=False)
    milestones = sorted(
        ({"milestone_id": k, **v} for k, v in (m.get("milestones") or {}).items()), key=lambda x: x.get("order", 0)
    )
    return {
        "mentorship_id": m["_id"],
        "status": m.get("status"),
        "mentor_id": m["mentor_id"],
        "mentee_id": m["mentee_id"],
        "cadence": m.get("cadence"),
        "planned_end": m.get("planned_end"),
        "started_at": m.get("started_at"),
        "last_session_at": m.get("last_session_at"),
        "milestones": milestones,
    }


@router.get(
    "/mentorships/{mentorship_id}/slots",
    summary="Next free slots in both participants' availability",
    openapi_extra=policy(Policy.PARTICIPANT),
)
async def propose_slots(
    mentorship_id: MentorshipId,
    principal: CurrentPrincipal,
    request: Request,
    count: Annotated[int, Query(ge=1, le=50)] = 5,
    duration_minutes: Annotated[int, Query(ge=5, le=480)] = 60,
    start_from: Annotated[AwareDatetime | None, Query(alias="from")] = None,
    weeks: Annotated[int | None, Query(ge=1, le=12)] = None,
) -> dict[str, Any]:
    return await use_cases(request).propose_slots(
        principal, mentorship_id, count=count, duration=duration_minutes, start_from=start_from, weeks=weeks
    )


@router.post(
    "/mentorships/{mentorship_id}/sessions",
    status_code=201,
    summary="Book a session",
    openapi_extra=policy(Policy.PARTICIPANT),
)
async def schedule(
    mentorship_id: MentorshipId, body: NewSession, principal: CurrentPrincipal, request: Request
) -> dict[str, Any]:
    s = await use_cases(request).schedule(
        principal,
        mentorship_id,
        start=body.start,
        duration=body.duration_minutes,
        location=body.location,
        agenda=body.agenda,
    )
    return view(s)


@router.get(
    "/mentorships/{mentorship_id}/sessions",
    summary="Sessions of a mentorship",
    openapi_extra=policy(Policy.PARTICIPANT),
)
async def list_sessions(
    mentorship_id: MentorshipId, principal: CurrentPrincipal, request: Request
) -> list[dict[str, Any]]:
    uc = use_cases(request)
    await uc.mentorship_for(principal, mentorship_id, active=False)
    return [view(s) for s in await uc.store.of_mentorship(mentorship_id)]


@router.post(
    "/mentorships/{mentorship_id}/series",
    status_code=201,
    summary="Book a recurring series",
    openapi_extra=policy(Policy.PARTICIPANT),
)
async def create_series(
    mentorship_id: MentorshipId, body: NewSeries, principal: CurrentPrincipal, request: Request
) -> dict[str, Any]:
    docs = await use_cases(request).create_series(
        principal,
        mentorship_id,
        first_start=body.first_start,
        duration=body.duration_minutes,
        cadence=body.cadence,
        count=body.count,
        until=body.until,
        time_zone=body.time_zone,
        location=body.location,
        agenda=body.agenda,
    )
    return {"series_id": docs[0]["series_id"], "sessions": [view(d) for d in docs]}


@router.get("/sessions/{session_id}", summary="One session", openapi_extra=policy(Policy.PARTICIPANT))
async def get_session(session_id: SessionId, principal: CurrentPrincipal, request: Request) -> dict[str, Any]:
    return view(await use_cases(request).session_for(principal, session_id))


@router.post(
    "/sessions/{session_id}/reschedule",
    summary="Move a session (or it and the following ones)",
    openapi_extra=policy(Policy.PARTICIPANT),
)
async def reschedule(
    session_id: SessionId, body: Reschedule, principal: CurrentPrincipal, request: Request
) -> list[dict[str, Any]]:
    done = await use_cases(request).reschedule(
        principal,
        session_id,
        start=body.start,
        duration=body.duration_minutes,
        location=body.location,
        scope=body.scope,
        expected_sequence=body.expected_sequence,
    )
    return [view(s) for s in done]


@router.post(
    "/sessions/{session_id}/cancel",
    summary="Call a session off (or it and the following ones)",
    openapi_extra=policy(Policy.PARTICIPANT),
)
async def cancel(
    session_id: SessionId, body: Cancel, principal: CurrentPrincipal, request: Request
) -> list[dict[str, Any]]:
    done = await use_cases(request).cancel(principal, session_id, reason=body.reason, scope=body.scope)
    return [view(s) for s in done]


@router.post(
    "/sessions/{session_id}/complete",
    summary="Mark a session held, with shared notes",
    openapi_extra=policy(Policy.PARTICIPANT),
)
async def complete(
    session_id: SessionId, body: Complete, principal: CurrentPrincipal, request: Request
) -> dict[str, Any]:
    return view(await use_cases(request).complete(principal, session_id, notes=body.notes))


@router.post(
    "/sessions/{session_id}/no-show", summary="Report who did not turn up", openapi_extra=policy(Policy.PARTICIPANT)
)
async def no_show(session_id: SessionId, body: NoShow, principal: CurrentPrincipal, request: Request) -> dict[str, Any]:
    return view(await use_cases(request).no_show(principal, session_id, absent_ids=body.absent_ids))


@router.post(
    "/sessions/{session_id}/feedback",
    status_code=201,
    summary="Rate a completed session",
    openapi_extra=policy(Policy.PARTICIPANT, "the session's participants only", admins=False),
)
async def feedback(
    session_id: SessionId, body: Feedback, principal: CurrentPrincipal, request: Request
) -> dict[str, Any]:
    return await use_cases(request).feedback(
        principal, session_id, rating=body.rating, comment=body.comment, not_a_good_fit=body.not_a_good_fit
    )


@router.get(
    "/sessions/{session_id}/ical",
    summary="The session as iCalendar (in the caller's zone)",
    response_class=Response,
    openapi_extra=policy(Policy.PARTICIPANT),
)
async def session_ical(session_id: SessionId, principal: CurrentPrincipal, request: Request) -> Response:
    body = await use_cases(request).session_ical(principal, session_id)
    return Response(body, media_type=ICS, headers={"content-disposition": f'attachment; filename="{session_id}.ics"'})


@router.post(
    "/calendar/feed",
    status_code=201,
    summary="A new personal calendar feed URL (replaces the old one)",
    openapi_extra=policy(Policy.AUTHENTICATED, "the caller's own feed"),
)
async def new_feed(principal: CurrentPrincipal, request: Request) -> dict[str, str]:
    uc = use_cases(request)
    token = await uc.new_feed(principal)
    base = uc.settings.public_base_url.rstrip("/") or str(request.base_url).rstrip("/")
    return {"url": f"{base}/calendar/feeds/{token}.ics", "token": token}


@router.get(
    "/calendar/feeds/{token}.ics",
    summary="Personal calendar feed (the token is the credential)",
    response_class=Response,
    openapi_extra=policy(Policy.ANONYMOUS, "the secret token in the path is the credential"),
)
async def feed(token: FeedToken, request: Request) -> Response:
    body = await use_cases(request).feed(token)
    return Response(body, media_type=ICS, headers={"cache-control": "no-store"})


@router.post(
    "/mentorships/{mentorship_id}/milestones",
    status_code=201,
    summary="Add a milestone",
    openapi_extra=policy(Policy.PARTICIPANT),
)
async def add_milestone(
    mentorship_id: MentorshipId, body: NewMilestone, principal: CurrentPrincipal, request: Request
) -> dict[str, Any]:
    return await use_cases(request).add_milestone(principal, mentorship_id, title=body.title, goal_id=body.goal_id)


@router.post(
    "/mentorships/{mentorship_id}/milestones/{milestone_id}/reached",
    summary="Celebrate a milestone",
    openapi_extra=policy(Policy.PARTICIPANT),
)
async def reach_milestone(
    mentorship_id: MentorshipId, milestone_id: MilestoneId, principal: CurrentPrincipal, request: Request
) -> dict[str, Any]:
    return await use_cases(request).reach_milestone(principal, mentorship_id, milestone_id)


@router.get(
    "/mentorships/{mentorship_id}/progress",
    summary="Sessions held vs planned, milestones, rating",
    openapi_extra=policy(Policy.PARTICIPANT, "ratings: a participant sees only their own, an admin all"),
)
async def progress(mentorship_id: MentorshipId, principal: CurrentPrincipal, request: Request) -> dict[str, Any]:
    return await use_cases(request).progress(principal, mentorship_id)


# --- operators: timers given up after their attempts -------------------------------------------
TimerId = Annotated[str, Path(min_length=1, max_length=400, pattern=SINGLE_LINE_PATTERN)]


@router.get(
    "/admin/timers/failed",
    tags=["operations"],
    summary="Timers given up after their attempts (reminders, check-ins), with their last error",
    openapi_extra=policy(Policy.ADMIN),
)
async def failed_timers(
    principal: CurrentPrincipal, request: Request, limit: Annotated[int, Query(ge=1, le=500)] = 100
) -> dict[str, Any]:
    return {"items": await use_cases(request).failed_timers(principal, limit=limit)}


@router.post(
    "/admin/timers/{timer_id}/redrive",
    tags=["operations"],
    summary="Send a failed timer round again (due now, fresh attempts); it still fires at most once",
    openapi_extra=policy(Policy.ADMIN),
)
async def redrive_timer(timer_id: TimerId, principal: CurrentPrincipal, request: Request) -> dict[str, Any]:
    return await use_cases(request).redrive_timer(principal, timer_id)
