"""HTTP API of the insights service: admin-only reports (thin: authorise, call a use case, shape)."""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import Response

from mentorship_kit.auth import CurrentPrincipal
from mentorship_kit.policy import Policy, policy

from ..application import InsightsUseCases
from ..domain import PAIR_COLUMNS, PROGRAM_COLUMNS, csv_safe

router = APIRouter(tags=["insights"])
ADMIN = policy(Policy.ADMIN, note="program managers and operators")
ProgramId = Annotated[
    str,
    Path(
        min_length=1,
        max_length=64,
        pattern=r"^[A-Za-z0-9_.:-]+$",
        description="A program id, or `direct` for mentorships requested outside any program",
    ),
]
CSV = "text/csv; charset=utf-8"


def _insights(request: Request) -> InsightsUseCases:
    return request.app.state.insights  # type: ignore[no-any-return]


def _csv(columns: Sequence[str], rows: list[dict[str, Any]], filename: str) -> Response:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(columns), lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: csv_safe(v) for k, v in row.items()})
    return Response(
        out.getvalue(), media_type=CSV, headers={"content-disposition": f'attachment; filename="{filename}"'}
    )


@router.get(
    "/programs/{program_id}/health",
    openapi_extra=ADMIN,
    summary="Program health: each figure now and as a weekly series",
)
async def program_health(program_id: ProgramId, principal: CurrentPrincipal, request: Request) -> dict[str, Any]:
    principal.require_admin()
    return await _insights(request).health(program_id)


@router.get(
    "/programs/{program_id}/attention", openapi_extra=ADMIN, summary="Pairs that need attention, each with its reasons"
)
async def program_attention(program_id: ProgramId, principal: CurrentPrincipal, request: Request) -> dict[str, Any]:
    principal.require_admin()
    return await _insights(request).attention(program_id)


@router.get(
    "/programs/{program_id}/mentor-load", openapi_extra=ADMIN, summary="Capacity used by each mentor of the program"
)
async def program_mentor_load(program_id: ProgramId, principal: CurrentPrincipal, request: Request) -> dict[str, Any]:
    principal.require_admin()
    return await _insights(request).mentor_load(program_id)


@router.get(
    "/programs/{program_id}/pairs.csv",
    openapi_extra=ADMIN,
    response_class=Response,
    summary="One CSV row per pair of the program",
    responses={200: {"content": {"text/csv": {}}}},
)
async def program_pairs_csv(program_id: ProgramId, principal: CurrentPrincipal, request: Request) -> Response:
    principal.require_admin()
    rows = await _insights(request).pair_rows(program_id)
    return _csv(PAIR_COLUMNS, rows, f"pairs-{program_id}.csv")


@router.get(
    "/programs.csv",
    openapi_extra=ADMIN,
    response_class=Response,
    summary="One CSV row per program (its health figures now)",
    responses={200: {"content": {"text/csv": {}}}},
)
async def programs_csv(principal: CurrentPrincipal, request: Request) -> Response:
    principal.require_admin()
    return _csv(PROGRAM_COLUMNS, await _insights(request).program_rows(), "programs.csv")


@router.get(
    "/insights/supply-gap",
    openapi_extra=ADMIN,
    summary="Skills active mentees seek that no active mentor offers, most sought first",
)
async def supply_gap(
    principal: CurrentPrincipal, request: Request, limit: Annotated[int | None, Query(ge=1, le=500)] = None
) -> dict[str, Any]:
    principal.require_admin()
    insights = _insights(request)
    return await insights.supply_gap(limit or insights.settings.insights_supply_gap_limit)


@router.get("/insights/overall", openapi_extra=ADMIN, summary="Health over every mentorship, in programs and direct")
async def overall(principal: CurrentPrincipal, request: Request) -> dict[str, Any]:
    principal.require_admin()
    return await _insights(request).overall()


routers = [router]
