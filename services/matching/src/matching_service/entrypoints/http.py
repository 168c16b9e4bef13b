"""HTTP API of the matching service (thin: validate, call a use case, answer)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Header, Path, Query, Request, Response, status

from mentorship_contracts.text import SINGLE_LINE_PATTERN
from mentorship_kit.auth import CurrentPrincipal
from mentorship_kit.policy import Policy, policy
from mentorship_kit.problems import NotFound

from ..application import ProgramQuery
from ..bootstrap import Matching as MatchingUseCases
from ..domain import MatchingMode, ProgramSpec, ProgramStatus
from .bodies import (
    Acceptance,
    Ending,
    Enrollment,
    NewIntroduction,
    NewRequest,
    Reason,
    RevisionProposal,
    RunRequest,
)


def service(request: Request) -> MatchingUseCases:
    return request.app.state.matching  # type: ignore[no-any-return]


Matching = Annotated[MatchingUseCases, Depends(service)]
ADMIN = policy(Policy.ADMIN)
PERSON = policy(Policy.PERSON)
CorrelationId = Annotated[str | None, Header(alias="x-correlation-id", max_length=128)]
# Path and query parameters are bounded like bodies (issue 11): ids are one line of at most 64.
PathId = Annotated[str, Path(min_length=1, max_length=64, pattern=SINGLE_LINE_PATTERN)]
QueryId = Annotated[str, Query(min_length=1, max_length=64, pattern=SINGLE_LINE_PATTERN)]
DEFAULT_LIMIT = 50
Offset = Annotated[int, Query(ge=0, le=100_000, description="items to skip")]
Limit = Annotated[int, Query(ge=1, le=100, description="items per page (at most 100)")]


read_models = APIRouter(tags=["read models"])


@read_models.get("/read-models/profiles/{profile_id}", summary="Matching's copy of a profile", openapi_extra=PERSON)
async def read_profile(profile_id: PathId, principal: CurrentPrincipal, request: Request) -> dict[str, Any]:
    principal.require_self_or_admin(profile_id)
    doc = await request.app.state.profiles.get(profile_id)
    if doc is None:
        raise NotFound("profile", profile_id)
    return {"profile_id": doc["_id"], "as_of": doc["as_of"], "profile": doc["profile"]}


suggestions = APIRouter(tags=["suggestions"])


@suggestions.get(
    "/suggestions/{mentee_id}", summary="Top-K mentors for a mentee, with scores and reasons", openapi_extra=PERSON
)
async def suggest(
    mentee_id: PathId,
    principal: CurrentPrincipal,
    matching: Matching,
    k: Annotated[int, Query(ge=1, le=100)] = 5,
    program_id: Annotated[str | None, Query(min_length=1, max_length=64, pattern=SINGLE_LINE_PATTERN)] = None,
) -> dict[str, Any]:
    principal.require_self_or_admin(mentee_id)
    return await matching.suggestions.suggestions(mentee_id, min(k, matching.settings.suggestion_max_k), program_id)


@suggestions.get(
    "/scores/{mentee_id}/{mentor_id}",
    summary="Score, breakdown and hard-constraint check of a pair",
    openapi_extra=policy(Policy.PERSON, note="the mentee the path names"),
)
async def score_pair(
    mentee_id: PathId,
    mentor_id: PathId,
    principal: CurrentPrincipal,
    matching: Matching,
    program_id: Annotated[str | None, Query(min_length=1, max_length=64, pattern=SINGLE_LINE_PATTERN)] = None,
) -> dict[str, Any]:
    principal.require_self_or_admin(mentee_id)
    return await matching.suggestions.explain_pair(mentee_id, mentor_id, program_id)


mentorships = APIRouter(prefix="/mentorships", tags=["mentorships"])


@mentorships.post(
    "",
    status_code=status.HTTP_201_CREATED,
    summary="Request a mentor",
    openapi_extra=policy(Policy.AUTHENTICATED, note="a mentee asks for themselves; an admin may name the mentee"),
)
async def request_mentor(
    body: NewRequest, principal: CurrentPrincipal, matching: Matching, correlation_id: CorrelationId = None
) -> dict[str, Any]:
    return (
        await matching.lifecycle.request(
            principal, body.mentor_id, body.message, body.program_id, body.mentee_id, correlation_id
        )
    ).as_dict()


@mentorships.get(
    "",
    summary="Mentorships and requests of a person",
    openapi_extra=policy(Policy.PERSON, note="the person named by profile_id"),
)
async def list_mentorships(
    principal: CurrentPrincipal, matching: Matching, profile_id: QueryId
) -> list[dict[str, Any]]:
    return [m.as_dict() for m in await matching.lifecycle.list_for(principal, profile_id)]


@mentorships.get(
    "/review", summary="Mentorships flagged as not a good fit by session feedback (admin)", openapi_extra=ADMIN
)
async def review_queue(principal: CurrentPrincipal, matching: Matching) -> list[dict[str, Any]]:
    return await matching.reviews.review_queue(principal)


@mentorships.get(
    "/{mentorship_id}",
    summary="A request or mentorship",
    openapi_extra=policy(Policy.PARTICIPANT, note="review flags: admins only"),
)
async def get_mentorship(mentorship_id: PathId, principal: CurrentPrincipal, matching: Matching) -> dict[str, Any]:
    return (await matching.lifecycle.get(principal, mentorship_id)).as_dict()


@mentorships.post(
    "/{mentorship_id}/accept",
    summary="The mentor accepts (with the agreement)",
    openapi_extra=policy(Policy.PARTICIPANT, actor="mentor"),
)
async def accept(
    mentorship_id: PathId,
    principal: CurrentPrincipal,
    matching: Matching,
    body: Acceptance | None = None,
    correlation_id: CorrelationId = None,
) -> dict[str, Any]:
    return (
        await matching.lifecycle.accept(
            principal, mentorship_id, body.agreement.to_agreement() if body and body.agreement else None, correlation_id
        )
    ).as_dict()


@mentorships.post(
    "/{mentorship_id}/decline",
    summary="The mentor (or an admin) declines with a reason",
    openapi_extra=policy(Policy.PARTICIPANT, actor="mentor"),
)
async def decline(
    mentorship_id: PathId,
    body: Reason,
    principal: CurrentPrincipal,
    matching: Matching,
    correlation_id: CorrelationId = None,
) -> dict[str, Any]:
    return (await matching.lifecycle.decline(principal, mentorship_id, body.reason, correlation_id)).as_dict()


@mentorships.post(
    "/{mentorship_id}/withdraw",
    summary="The mentee withdraws the request",
    openapi_extra=policy(Policy.PARTICIPANT, actor="mentee"),
)
async def withdraw(
    mentorship_id: PathId, principal: CurrentPrincipal, matching: Matching, correlation_id: CorrelationId = None
) -> dict[str, Any]:
    return (await matching.lifecycle.withdraw(principal, mentorship_id, correlation_id)).as_dict()


@mentorships.post(
    "/{mentorship_id}/approve", summary="An admin approves an accepted request (two-sided mode)", openapi_extra=ADMIN
)
async def approve(
    mentorship_id: PathId, principal: CurrentPrincipal, matching: Matching, correlation_id: CorrelationId = None
) -> dict[str, Any]:
    return (await matching.lifecycle.approve(principal, mentorship_id, correlation_id)).as_dict()


@mentorships.post(
    "/{mentorship_id}/complete", summary="Complete a mentorship as planned", openapi_extra=policy(Policy.PARTICIPANT)
)
async def complete(
    mentorship_id: PathId, principal: CurrentPrincipal, matching: Matching, correlation_id: CorrelationId = None
) -> dict[str, Any]:
    return (await matching.lifecycle.complete(principal, mentorship_id, correlation_id)).as_dict()


@mentorships.post(
    "/{mentorship_id}/end",
    summary="End early with a reason (or as not a good fit)",
    openapi_extra=policy(Policy.PARTICIPANT),
)
async def end(
    mentorship_id: PathId,
    body: Ending,
    principal: CurrentPrincipal,
    matching: Matching,
    correlation_id: CorrelationId = None,
) -> dict[str, Any]:
    return (
        await matching.lifecycle.end(principal, mentorship_id, body.reason, body.not_a_good_fit, correlation_id)
    ).as_dict()


# Agreement revisions: the two participants only (admins are not a party to the agreement).
REVISION_POLICY = policy(
    Policy.PARTICIPANT, note="the mentee or the mentor; answering from the wrong side is 409", admins=False
)


@mentorships.post(
    "/{mentorship_id}/revisions",
    status_code=status.HTTP_201_CREATED,
    summary="A participant proposes a revised agreement (one open proposal at a time)",
    openapi_extra=REVISION_POLICY,
)
async def propose_revision(
    mentorship_id: PathId,
    body: RevisionProposal,
    principal: CurrentPrincipal,
    matching: Matching,
    correlation_id: CorrelationId = None,
) -> dict[str, Any]:
    return (
        await matching.revisions.propose(principal, mentorship_id, body.agreement.to_agreement(), correlation_id)
    ).as_dict()


@mentorships.post(
    "/{mentorship_id}/revisions/accept",
    summary="The other participant accepts the open revision: the agreement changes",
    openapi_extra=REVISION_POLICY,
)
async def accept_revision(
    mentorship_id: PathId, principal: CurrentPrincipal, matching: Matching, correlation_id: CorrelationId = None
) -> dict[str, Any]:
    return (await matching.revisions.accept(principal, mentorship_id, correlation_id)).as_dict()


@mentorships.post(
    "/{mentorship_id}/revisions/decline",
    summary="The other participant declines the open revision",
    openapi_extra=REVISION_POLICY,
)
async def decline_revision(
    mentorship_id: PathId, principal: CurrentPrincipal, matching: Matching, correlation_id: CorrelationId = None
) -> dict[str, Any]:
    return (await matching.revisions.decline(principal, mentorship_id, correlation_id)).as_dict()


@mentorships.post(
    "/{mentorship_id}/revisions/withdraw",
    summary="The proposer withdraws the open revision",
    openapi_extra=REVISION_POLICY,
)
async def withdraw_revision(
    mentorship_id: PathId, principal: CurrentPrincipal, matching: Matching, correlation_id: CorrelationId = None
) -> dict[str, Any]:
    return (await matching.revisions.withdraw(principal, mentorship_id, correlation_id)).as_dict()


@mentorships.post(
    "/{mentorship_id}/introductions",
    status_code=status.HTTP_201_CREATED,
    summary="The mentor introduces their mentee to another member",
    openapi_extra=policy(Policy.PARTICIPANT, actor="mentor"),
)
async def introduce(
    mentorship_id: PathId,
    body: NewIntroduction,
    principal: CurrentPrincipal,
    matching: Matching,
    correlation_id: CorrelationId = None,
) -> dict[str, Any]:
    return await matching.introductions.introduce(
        principal, mentorship_id, body.contact_id, body.message, correlation_id
    )


introductions = APIRouter(prefix="/introductions", tags=["introductions"])


@introductions.get(
    "/{introduction_id}",
    summary="An introduction",
    openapi_extra=policy(Policy.PARTICIPANT, note="the mentee, the mentor or the contact"),
)
async def get_introduction(introduction_id: PathId, principal: CurrentPrincipal, matching: Matching) -> dict[str, Any]:
    return await matching.introductions.get_introduction(principal, introduction_id)


@introductions.post(
    "/{introduction_id}/accept",
    summary="The introduced person accepts",
    openapi_extra=policy(Policy.PARTICIPANT, actor="contact"),
)
async def accept_introduction(
    introduction_id: PathId, principal: CurrentPrincipal, matching: Matching, correlation_id: CorrelationId = None
) -> dict[str, Any]:
    return await matching.introductions.answer_introduction(principal, introduction_id, True, correlation_id)


@introductions.post(
    "/{introduction_id}/decline",
    summary="The introduced person declines",
    openapi_extra=policy(Policy.PARTICIPANT, actor="contact"),
)
async def decline_introduction(
    introduction_id: PathId, principal: CurrentPrincipal, matching: Matching, correlation_id: CorrelationId = None
) -> dict[str, Any]:
    return await matching.introductions.answer_introduction(principal, introduction_id, False, correlation_id)


people = APIRouter(prefix="/people", tags=["introductions"])
INTRODUCTION_ROLES = {"introducer": "introduced_by", "contact": "contact", "mentee": "mentee"}


@people.get(
    "/{profile_id}/introductions",
    summary="Introductions a person made, received or was introduced in, newest first",
    openapi_extra=policy(Policy.PERSON, note="the person the path names, or an admin"),
)
async def introductions_of(
    profile_id: PathId,
    principal: CurrentPrincipal,
    matching: Matching,
    role: Annotated[
        Literal["introducer", "contact", "mentee"] | None,
        Query(description="only those the person made (introducer), received (contact) or was introduced in"),
    ] = None,
    state: Annotated[Literal["pending", "accepted", "declined"] | None, Query()] = None,
    offset: Offset = 0,
    limit: Limit = DEFAULT_LIMIT,
) -> dict[str, Any]:
    return await matching.introductions.introductions_of(
        principal, profile_id, as_=INTRODUCTION_ROLES[role] if role else None, state=state, offset=offset, limit=limit
    )


programs = APIRouter(prefix="/programs", tags=["programs"])


@programs.post("", status_code=status.HTTP_201_CREATED, summary="Create a program (admin)", openapi_extra=ADMIN)
async def create_program(body: ProgramSpec, principal: CurrentPrincipal, matching: Matching) -> dict[str, Any]:
    return await matching.programs.create_program(principal, body)


@programs.get(
    "",
    summary="Programs, newest first, filtered and paged (admin)",
    openapi_extra=policy(Policy.ADMIN, note="status is derived from the program's dates and today"),
)
async def list_programs(
    principal: CurrentPrincipal,
    matching: Matching,
    status_: Annotated[ProgramStatus | None, Query(alias="status", description="upcoming, running or ended")] = None,
    name_contains: Annotated[
        str | None,
        Query(
            min_length=1, max_length=200, pattern=SINGLE_LINE_PATTERN, description="case-insensitive part of the name"
        ),
    ] = None,
    mode: Annotated[MatchingMode | None, Query()] = None,
    offset: Offset = 0,
    limit: Limit = DEFAULT_LIMIT,
) -> dict[str, Any]:
    query = ProgramQuery(status=status_, name_contains=name_contains, mode=mode, offset=offset, limit=limit)
    return await matching.programs.list_programs(principal, query)


@programs.get("/{program_id}", summary="A program", openapi_extra=ADMIN)
async def get_program(program_id: PathId, principal: CurrentPrincipal, matching: Matching) -> dict[str, Any]:
    return await matching.programs.get_program(principal, program_id)


@programs.put("/{program_id}", summary="Replace a program's settings (admin)", openapi_extra=ADMIN)
async def update_program(
    program_id: PathId, body: ProgramSpec, principal: CurrentPrincipal, matching: Matching
) -> dict[str, Any]:
    return await matching.programs.update_program(principal, program_id, body)


@programs.post(
    "/{program_id}/enrollments",
    status_code=status.HTTP_201_CREATED,
    summary="Enroll a person",
    openapi_extra=policy(Policy.PERSON, note="the person named in the body, where the program allows self-enrolment"),
)
async def enroll(
    program_id: PathId, body: Enrollment, principal: CurrentPrincipal, matching: Matching
) -> dict[str, Any]:
    return await matching.programs.enroll(principal, program_id, body.profile_id, body.role)


@programs.delete(
    "/{program_id}/enrollments/{role}/{profile_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Withdraw an enrollment",
    openapi_extra=PERSON,
)
async def unenroll(
    program_id: PathId,
    role: Literal["mentee", "mentor"],
    profile_id: PathId,
    principal: CurrentPrincipal,
    matching: Matching,
) -> Response:
    await matching.programs.unenroll(principal, program_id, profile_id, role)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@programs.post(
    "/{program_id}/runs",
    status_code=status.HTTP_202_ACCEPTED,
    summary="Start a cohort dry run (admin); poll it for progress and the quality report",
    openapi_extra=ADMIN,
)
async def start_run(
    program_id: PathId, principal: CurrentPrincipal, matching: Matching, body: RunRequest | None = None
) -> dict[str, Any]:
    body = body or RunRequest()
    return await matching.cohorts.start_run(
        principal,
        program_id,
        k=body.k,
        pins=[(p.mentee_id, p.mentor_id) for p in body.pins],
        forbids=[(p.mentee_id, p.mentor_id) for p in body.forbids],
    )


@programs.get(
    "/{program_id}/runs",
    summary="A program's cohort runs, newest first, without their pair lists (admin)",
    openapi_extra=ADMIN,
)
async def list_runs(
    program_id: PathId,
    principal: CurrentPrincipal,
    matching: Matching,
    offset: Offset = 0,
    limit: Limit = DEFAULT_LIMIT,
) -> dict[str, Any]:
    return await matching.cohorts.list_runs(principal, program_id, offset=offset, limit=limit)


@programs.get(
    "/{program_id}/runs/{run_id}", summary="A cohort run: status, progress, proposal, quality", openapi_extra=ADMIN
)
async def get_run(
    program_id: PathId, run_id: PathId, principal: CurrentPrincipal, matching: Matching
) -> dict[str, Any]:
    return await matching.cohorts.get_run(principal, program_id, run_id)


@programs.post(
    "/{program_id}/runs/{run_id}/publish", summary="Publish a dry run: all its mentorships start", openapi_extra=ADMIN
)
async def publish(
    program_id: PathId,
    run_id: PathId,
    principal: CurrentPrincipal,
    matching: Matching,
    correlation_id: CorrelationId = None,
) -> dict[str, Any]:
    return await matching.cohorts.publish(principal, program_id, run_id, correlation_id)


routers = [read_models, suggestions, mentorships, introductions, people, programs]
