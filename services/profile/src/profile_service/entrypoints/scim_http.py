"""SCIM 2.0 endpoints under /scim/v2 (thin: authenticate, parse, call provisioning, shape the answer).

Authenticated by the directory's own bearer token (`SCIM_TOKEN`), not by the platform's JWTs; with
no token configured every /scim/v2 path answers 404. Errors are SCIM errors (`application/scim+json`),
never problem+json, so bodies and query parameters are read here rather than by FastAPI's models.

The routes are left out of /openapi.json (`include_in_schema=False`): SCIM describes itself through
its own discovery endpoints, and the platform's policy walk and fuzzing speak JWT, which this
token-based protocol refuses by design. tests/integration/profile/test_scim.py covers its auth.
"""

from __future__ import annotations

import hmac
import json
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Header, Request, Response
from fastapi.responses import JSONResponse

from mentorship_kit.policy import Policy, policy

from ..provisioning import ScimProvisioning
from ..scim import (
    MEDIA_TYPE,
    ScimError,
    etag,
    list_response,
    paging,
    parse_filter,
    project,
    resource_types,
    schemas,
    service_provider_config,
    user_resource,
    user_state_from,
    version_from,
)

PREFIX = "/scim/v2"
SCIM_POLICY = policy(Policy.ADMIN, note="SCIM bearer token")
# Read as given and checked here: a FastAPI validation error would answer problem+json, not SCIM.
CorrelationId = Annotated[str | None, Header(alias="x-correlation-id")]
IfMatch = Annotated[str | None, Header(alias="if-match")]


def authenticate(request: Request) -> None:
    """SCIM off (404) unless SCIM_TOKEN is set; otherwise that exact bearer token (constant time)."""
    configured = request.app.state.runtime.settings.scim_token
    if configured is None:
        raise ScimError(404, "SCIM provisioning is not enabled on this service")
    scheme, _, given = request.headers.get("authorization", "").partition(" ")
    expected = configured.get_secret_value().encode()
    if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), expected):
        raise ScimError(401, "a valid SCIM bearer token is required")


router = APIRouter(prefix=PREFIX, tags=["scim"], include_in_schema=False, dependencies=[Depends(authenticate)])


def provisioning(request: Request) -> ScimProvisioning:
    found: ScimProvisioning = request.app.state.scim
    return found


Provisioning = Annotated[ScimProvisioning, Depends(provisioning)]


def _correlation(given: str | None) -> str | None:
    if given is not None and (len(given) > 128 or not given.isprintable()):
        raise ScimError(400, "x-correlation-id is at most 128 printable characters", "invalidValue")
    return given


def base_url(request: Request) -> str:
    return str(request.base_url).rstrip("/") + PREFIX


def scim_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(body, status_code=status, media_type=MEDIA_TYPE, headers=headers)


def scim_error_response(exc: ScimError) -> JSONResponse:
    headers = {"www-authenticate": 'Bearer realm="scim"'} if exc.status == 401 else None
    return scim_response(exc.body(), exc.status, headers)


async def read_json(request: Request) -> Any:
    raw = await request.body()
    try:
        return json.loads(raw or b"null")
    except (ValueError, UnicodeDecodeError) as exc:
        raise ScimError(400, "the body is not JSON", "invalidSyntax") from exc


def install_scim_errors(app: FastAPI) -> None:
    async def handle(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, ScimError)
        return scim_error_response(exc)

    app.add_exception_handler(ScimError, handle)


# --- discovery ---------------------------------------------------------------------------------------


@router.get("/ServiceProviderConfig", openapi_extra=SCIM_POLICY)
async def get_service_provider_config(request: Request) -> Response:
    return scim_response(service_provider_config(base_url(request)))


def _listed(items: list[dict[str, Any]]) -> dict[str, Any]:
    return list_response(items, len(items), 1)


def _one(items: list[dict[str, Any]], ident: str, what: str) -> dict[str, Any]:
    found = next((i for i in items if i["id"] == ident), None)
    if found is None:
        raise ScimError(404, f"no {what} {ident!r}")
    return found


@router.get("/ResourceTypes", openapi_extra=SCIM_POLICY)
async def get_resource_types(request: Request) -> Response:
    return scim_response(_listed(resource_types(base_url(request))))


@router.get("/ResourceTypes/{ident}", openapi_extra=SCIM_POLICY)
async def get_resource_type(ident: str, request: Request) -> Response:
    return scim_response(_one(resource_types(base_url(request)), ident, "resource type"))


@router.get("/Schemas", openapi_extra=SCIM_POLICY)
async def get_schemas(request: Request) -> Response:
    return scim_response(_listed(schemas(base_url(request))))


@router.get("/Schemas/{ident}", openapi_extra=SCIM_POLICY)
async def get_schema(ident: str, request: Request) -> Response:
    return scim_response(_one(schemas(base_url(request)), ident, "schema"))


# --- Users ---------------------------------------------------------------------------------------------


async def _search(request: Request, scim: ScimProvisioning, params: dict[str, Any]) -> Response:
    lookup = parse_filter(params.get("filter"))
    start_index, count = paging(params.get("startIndex"), params.get("count"))
    total, found = await scim.search(lookup, start_index=start_index, count=count)
    base = base_url(request)
    resources = [
        project(user_resource(s, base), params.get("attributes"), params.get("excludedAttributes")) for s in found
    ]
    return scim_response(list_response(resources, total, start_index))


@router.get("/Users", openapi_extra=SCIM_POLICY)
async def list_users(request: Request, scim: Provisioning) -> Response:
    return await _search(request, scim, dict(request.query_params))


@router.post("/Users/.search", openapi_extra=SCIM_POLICY)
@router.post("/.search", openapi_extra=SCIM_POLICY)  # every resource type: Users are the only one
async def search_users(request: Request, scim: Provisioning) -> Response:
    body = await read_json(request)
    if not isinstance(body, dict):
        raise ScimError(400, "the body must be a SearchRequest object", "invalidSyntax")
    return await _search(request, scim, body)


def _user(request: Request, stored: Any, status: int = 200) -> Response:
    resource = user_resource(stored, base_url(request))
    resource = project(resource, request.query_params.get("attributes"), request.query_params.get("excludedAttributes"))
    headers = {"etag": etag(stored.version)}
    if status == 201:
        headers["location"] = f"{base_url(request)}/Users/{stored.profile.profile_id}"
    return scim_response(resource, status, headers)


@router.post("/Users", openapi_extra=SCIM_POLICY)
async def create_user(request: Request, scim: Provisioning, correlation_id: CorrelationId = None) -> Response:
    state = user_state_from(await read_json(request))
    return _user(request, await scim.create(state, correlation_id=_correlation(correlation_id)), 201)


@router.get("/Users/{profile_id}", openapi_extra=SCIM_POLICY)
async def get_user(profile_id: str, request: Request, scim: Provisioning) -> Response:
    return _user(request, await scim.get(profile_id))


@router.put("/Users/{profile_id}", openapi_extra=SCIM_POLICY)
async def replace_user(
    profile_id: str,
    request: Request,
    scim: Provisioning,
    if_match: IfMatch = None,
    correlation_id: CorrelationId = None,
) -> Response:
    state = user_state_from(await read_json(request))
    stored = await scim.replace(
        profile_id, state, expected_version=version_from(if_match), correlation_id=_correlation(correlation_id)
    )
    return _user(request, stored)


@router.patch("/Users/{profile_id}", openapi_extra=SCIM_POLICY)
async def patch_user(
    profile_id: str,
    request: Request,
    scim: Provisioning,
    if_match: IfMatch = None,
    correlation_id: CorrelationId = None,
) -> Response:
    stored = await scim.patch(
        profile_id,
        await read_json(request),
        expected_version=version_from(if_match),
        correlation_id=_correlation(correlation_id),
    )
    return _user(request, stored)


@router.delete("/Users/{profile_id}", openapi_extra=SCIM_POLICY)
async def delete_user(profile_id: str, scim: Provisioning, correlation_id: CorrelationId = None) -> Response:
    await scim.delete(profile_id, correlation_id=_correlation(correlation_id))
    return Response(status_code=204)


# --- everything else under /scim/v2: 405 on a known endpoint, 404 otherwise (in the SCIM format) -----

_GET_ONLY = ("ServiceProviderConfig", "ResourceTypes", "Schemas")


@router.api_route("/{rest:path}", methods=["GET", "POST", "PUT", "PATCH", "DELETE"], openapi_extra=SCIM_POLICY)
async def elsewhere(rest: str, request: Request) -> Response:
    parts = [p for p in rest.split("/") if p]
    known = (
        (len(parts) in (1, 2) and parts[0] in _GET_ONLY)
        or parts == ["Users"]
        or (len(parts) == 2 and parts[0] == "Users")
    )
    if known:
        raise ScimError(405, f"{request.method} is not supported on /{rest.strip('/')}")
    raise ScimError(404, f"no SCIM endpoint /{rest}")
