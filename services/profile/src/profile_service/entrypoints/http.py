"""HTTP API of the profile service (thin: parse, authorise, call a use case, shape the answer)."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from typing import Annotated, Any, Literal

import structlog
from fastapi import APIRouter, Body, Depends, Header, Path, Query, Request, Response, status
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, ConfigDict, Field, create_model

from mentorship_contracts.profile import ProfileSnapshot, Role, normalise_tag
from mentorship_contracts.text import SINGLE_LINE_PATTERN
from mentorship_kit.auth import CurrentCaller, CurrentPrincipal, Principal
from mentorship_kit.policy import Policy, policy
from mentorship_kit.problems import Problem, Unprocessable

from ..adapters.repository import SearchFilters, StoredProfile
from ..application import ProfileUseCases
from ..domain import UPDATABLE_FIELDS
from ..import_format import BadImportFile, read_csv, read_jsonl
from ..importing import ImportReport, ProfileImportUseCases

router = APIRouter(prefix="/profiles", tags=["profiles"])
me_router = APIRouter(tags=["profiles"])

CorrelationId = Annotated[str | None, Header(alias="x-correlation-id", max_length=128)]
IfMatch = Annotated[str | None, Header(alias="if-match", description='Version from the ETag, e.g. "3"')]
# Path and query parameters are bounded like bodies (issue 11): a profile id is one line of at most 64.
ProfileId = Annotated[str, Path(min_length=1, max_length=64, pattern=SINGLE_LINE_PATTERN)]


class NewProfile(ProfileSnapshot):
    """A profile to register; the id is assigned by the service unless an admin imports it."""

    profile_id: str = Field(default_factory=lambda: str(uuid.uuid4()), min_length=1, max_length=64)


class ProfileView(ProfileSnapshot):
    version: int = Field(description="Changes with every write; send it back in If-Match to update safely")


def _optional(name: str) -> tuple[Any, Any]:
    info = ProfileSnapshot.model_fields[name]
    # the field's own limits (max_length, patterns, single-line) travel with it into the patch
    annotation: Any = Annotated[(info.annotation, *info.metadata)] if info.metadata else info.annotation
    return (annotation | None, Field(default=None, description=info.description))


ProfilePatch = create_model(  # type: ignore[call-overload]
    "ProfilePatch",
    __config__=ConfigDict(extra="forbid"),
    __doc__="Fields to change; absent fields stay as they are, null clears an optional field. "
    "mentoring_preferences and notification_preferences merge one level deep.",
    **{name: _optional(name) for name in ProfileSnapshot.model_fields if name in UPDATABLE_FIELDS},
)


class RoleToAdd(BaseModel):
    model_config = ConfigDict(extra="forbid")
    role: Role
    mentor_capacity: int | None = Field(default=None, ge=0, le=50, description="Maximum active mentees")


class Deactivation(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: str | None = Field(default=None, max_length=500, description="Shown to readers of the event")


class ProfilePage(BaseModel):
    items: list[ProfileView]
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page; null on the last page")


def service(request: Request) -> ProfileUseCases:
    use_cases: ProfileUseCases = request.app.state.profiles
    return use_cases


Profiles = Annotated[ProfileUseCases, Depends(service)]


def _view(stored: StoredProfile, response: Response) -> ProfileView:
    response.headers["etag"] = f'"{stored.version}"'
    return ProfileView(**stored.profile.model_dump(), version=stored.version)


def _version(if_match: str | None) -> int | None:
    if if_match is None or if_match.strip() == "*":
        return None
    raw = if_match.strip().removeprefix("W/").strip('"')
    if not raw.isdigit():
        raise Unprocessable('If-Match must be a profile version such as "3"', field="if-match")
    return int(raw)


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=ProfileView,
    summary="Register a profile",
    openapi_extra=policy(
        Policy.AUTHENTICATED,
        "a person registers themselves (the token's subject becomes the id, the email is unverified); an admin anyone",
    ),
)
async def register_profile(
    body: NewProfile,
    principal: CurrentPrincipal,
    profiles: Profiles,
    response: Response,
    correlation_id: CorrelationId = None,
) -> ProfileView:
    if not principal.is_admin:
        # People register themselves: their token's subject is their profile id.
        body = body.model_copy(update={"profile_id": principal.subject})
    stored = await profiles.register(
        ProfileSnapshot.model_validate(body.model_dump()), correlation_id, by_admin=principal.is_admin
    )
    response.headers["location"] = f"/profiles/{stored.profile.profile_id}"
    return _view(stored, response)


@me_router.get(
    "/me",
    response_model=ProfileView,
    summary="The caller's own profile; company sign-on's first call",
    openapi_extra=policy(
        Policy.AUTHENTICATED,
        "an OIDC token: links the imported profile with the same "
        "verified email, or creates a mentee profile; idempotent",
    ),
)
async def me(
    caller: CurrentCaller, profiles: Profiles, response: Response, correlation_id: CorrelationId = None
) -> ProfileView:
    if isinstance(caller, Principal):  # a development token: its subject is the profile id
        return _view(await profiles.get(caller.subject), response)
    stored, _created = await profiles.sign_in(caller, correlation_id)
    return _view(stored, response)


@router.get("", response_model=ProfilePage, summary="Search profiles (admin)", openapi_extra=policy(Policy.ADMIN))
async def search_profiles(
    principal: CurrentPrincipal,
    profiles: Profiles,
    role: Role | None = None,
    skill: Annotated[
        str | None, Query(max_length=60, pattern=SINGLE_LINE_PATTERN, description="A skill tag, e.g. 'python'")
    ] = None,
    department: Annotated[
        str | None, Query(max_length=200, pattern=SINGLE_LINE_PATTERN, description="Case-insensitive")
    ] = None,
    time_zone: Annotated[str | None, Query(max_length=64, pattern=SINGLE_LINE_PATTERN, description="IANA name")] = None,
    active: bool | None = None,
    external_id: Annotated[str | None, Query(max_length=128, description="The directory's id (exact)")] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: Annotated[
        str | None,
        Query(min_length=1, max_length=64, pattern=SINGLE_LINE_PATTERN, description="next_cursor of the previous page"),
    ] = None,
) -> ProfilePage:
    principal.require_admin()
    skill_tag = None
    if skill:
        try:
            skill_tag = normalise_tag(skill)
        except ValueError as exc:
            raise Unprocessable(str(exc), field="skill") from exc
    filters = SearchFilters(
        role=role, skill=skill_tag, department=department, time_zone=time_zone, active=active, external_id=external_id
    )
    found = await profiles.search(filters, after=cursor, limit=limit + 1)
    page = found[:limit]
    items = [ProfileView(**s.profile.model_dump(), version=s.version) for s in page]
    return ProfilePage(items=items, next_cursor=page[-1].profile.profile_id if len(found) > limit else None)


@router.get(
    "/{profile_id}",
    response_model=ProfileView,
    summary="Read a profile (self or admin)",
    openapi_extra=policy(Policy.PERSON),
)
async def get_profile(
    profile_id: ProfileId, principal: CurrentPrincipal, profiles: Profiles, response: Response
) -> ProfileView:
    principal.require_self_or_admin(profile_id)
    return _view(await profiles.get(profile_id), response)


@router.patch(
    "/{profile_id}",
    response_model=ProfileView,
    summary="Change some fields (self or admin); emits ProfileUpdated with only the changed fields",
    openapi_extra=policy(Policy.PERSON, "a person's own new email is unverified; an admin's is verified"),
)
async def update_profile(
    profile_id: ProfileId,
    body: ProfilePatch,
    principal: CurrentPrincipal,
    profiles: Profiles,
    response: Response,
    if_match: IfMatch = None,
    correlation_id: CorrelationId = None,
) -> ProfileView:
    principal.require_self_or_admin(profile_id)
    changes = body.model_dump(mode="json", exclude_unset=True)
    stored = await profiles.update(
        profile_id,
        changes,
        expected_version=_version(if_match),
        correlation_id=correlation_id,
        by_admin=principal.is_admin,
    )
    return _view(stored, response)


@router.post(
    "/{profile_id}/roles",
    response_model=ProfileView,
    summary="Take on a role (self or admin)",
    openapi_extra=policy(Policy.PERSON),
)
async def add_role(
    profile_id: ProfileId,
    body: RoleToAdd,
    principal: CurrentPrincipal,
    profiles: Profiles,
    response: Response,
    if_match: IfMatch = None,
    correlation_id: CorrelationId = None,
) -> ProfileView:
    principal.require_self_or_admin(profile_id)
    stored = await profiles.add_role(
        profile_id, body.role, body.mentor_capacity, expected_version=_version(if_match), correlation_id=correlation_id
    )
    return _view(stored, response)


@router.delete(
    "/{profile_id}/roles/{role}",
    response_model=ProfileView,
    summary="Give up a role (self or admin)",
    openapi_extra=policy(Policy.PERSON),
)
async def remove_role(
    profile_id: ProfileId,
    role: Role,
    principal: CurrentPrincipal,
    profiles: Profiles,
    response: Response,
    if_match: IfMatch = None,
    correlation_id: CorrelationId = None,
) -> ProfileView:
    principal.require_self_or_admin(profile_id)
    stored = await profiles.remove_role(
        profile_id, role, expected_version=_version(if_match), correlation_id=correlation_id
    )
    return _view(stored, response)


@router.post(
    "/{profile_id}/deactivate",
    response_model=ProfileView,
    summary="Deactivate (self or admin)",
    openapi_extra=policy(Policy.PERSON, "an admin's deactivation is lifted only by an admin"),
)
async def deactivate_profile(
    profile_id: ProfileId,
    principal: CurrentPrincipal,
    profiles: Profiles,
    response: Response,
    body: Annotated[Deactivation | None, Body()] = None,
    correlation_id: CorrelationId = None,
) -> ProfileView:
    principal.require_self_or_admin(profile_id)
    stored = await profiles.deactivate(
        profile_id, body.reason if body else None, correlation_id=correlation_id, by_admin=principal.is_admin
    )
    return _view(stored, response)


@router.post(
    "/{profile_id}/reactivate",
    response_model=ProfileView,
    summary="Reactivate (self or admin)",
    openapi_extra=policy(Policy.PERSON, "after an admin's deactivation: an admin only (403 to the person)"),
)
async def reactivate_profile(
    profile_id: ProfileId,
    principal: CurrentPrincipal,
    profiles: Profiles,
    response: Response,
    correlation_id: CorrelationId = None,
) -> ProfileView:
    principal.require_self_or_admin(profile_id)
    return _view(
        await profiles.reactivate(profile_id, correlation_id=correlation_id, by_admin=principal.is_admin), response
    )


@router.post(
    "/{profile_id}/verify-email",
    response_model=ProfileView,
    summary="Vouch for the profile's email (admin): the HR import may then merge into it",
    openapi_extra=policy(Policy.ADMIN, "for rows the import held with 'email not verified'"),
)
async def verify_email(
    profile_id: ProfileId, principal: CurrentPrincipal, profiles: Profiles, response: Response
) -> ProfileView:
    principal.require_admin()
    return _view(await profiles.verify_email(profile_id), response)


@router.delete(
    "/{profile_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Erase (right to be forgotten; self or admin); repeating it is harmless",
    openapi_extra=policy(Policy.PERSON),
)
async def erase_profile(
    profile_id: ProfileId, principal: CurrentPrincipal, profiles: Profiles, correlation_id: CorrelationId = None
) -> Response:
    principal.require_self_or_admin(profile_id)
    await profiles.erase(profile_id, correlation_id=correlation_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


JSONL_TYPES = (
    "application/x-ndjson",
    "application/jsonl",
    "application/x-jsonlines",
    "application/json-lines",
    "application/ndjson",
)


def _import_format(request: Request, given: str | None) -> Literal["csv", "jsonl"]:
    if given in ("csv", "jsonl"):
        return given  # type: ignore[return-value]
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type in ("text/csv", "application/csv"):
        return "csv"
    if content_type in JSONL_TYPES:
        return "jsonl"
    raise Problem(
        415, "Unsupported media type", "send text/csv or application/x-ndjson (JSON Lines), or pass ?format=csv|jsonl"
    )


async def _read_body(request: Request, limit: int) -> str:
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise Problem(413, "Content too large", f"an import file is at most {limit} bytes; split it")
        chunks.append(chunk)
    try:
        return b"".join(chunks).decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise Unprocessable(f"the file is not UTF-8 text (byte {exc.start})", field="file") from exc


@router.post(
    "/import",
    summary="Bulk create-or-update keyed by email (admin); streams NDJSON progress, the rejected and held rows",
    response_class=StreamingResponse,
    responses={
        200: {
            "content": {"application/x-ndjson": {}},
            "description": "One JSON object per line: `rejected` rows as found, `held` rows (an "
            "existing profile whose email nobody verified: nothing merged, an admin "
            "decides), `progress` after each batch, and a final `summary` with every "
            "rejection and hold.",
        }
    },
    openapi_extra={
        **policy(Policy.ADMIN, "rows whose profile has an unverified email are held, not merged"),
        "requestBody": {
            "required": True,
            "content": {
                "text/csv": {"schema": {"type": "string"}},
                "application/x-ndjson": {"schema": {"type": "string"}},
            },
        },
    },
)
async def import_profiles(
    request: Request,
    principal: CurrentPrincipal,
    format: Annotated[Literal["csv", "jsonl"] | None, Query()] = None,
    correlation_id: CorrelationId = None,
) -> StreamingResponse:
    principal.require_admin()
    kind = _import_format(request, format)
    settings = request.app.state.runtime.settings
    text = await _read_body(request, settings.profile_import_max_bytes)
    try:
        rows = read_csv(text)[1] if kind == "csv" else read_jsonl(text)
    except BadImportFile as exc:
        raise Unprocessable(str(exc), field="file") from exc
    bulk: ProfileImportUseCases = request.app.state.bulk_import

    async def lines() -> AsyncIterator[bytes]:
        report = ImportReport()
        try:
            async for message in bulk.run(rows, report, correlation_id=correlation_id):
                yield (json.dumps(message) + "\n").encode()
        except Exception as exc:  # the status line has gone out: say so in the stream
            structlog.get_logger().exception("bulk import failed")
            yield (
                json.dumps({"type": "error", "detail": f"import stopped: {type(exc).__name__}", **report.counts()})
                + "\n"
            ).encode()
            return
        rejections = sorted(report.rejections, key=lambda r: r.row)
        holds = sorted(report.holds, key=lambda h: h.row)
        yield (
            json.dumps(
                {
                    "type": "summary",
                    **report.counts(),
                    "rejections": [r.as_dict() for r in rejections],
                    "holds": [h.as_dict() for h in holds],
                }
            )
            + "\n"
        ).encode()

    return StreamingResponse(lines(), media_type="application/x-ndjson")
