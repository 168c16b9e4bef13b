"""HTTP API of the matching service."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from mentorship_kit.auth import CurrentPrincipal
from mentorship_kit.problems import NotFound

router = APIRouter(tags=["read models"])


@router.get("/read-models/profiles/{profile_id}", summary="Matching's copy of a profile (admin)")
async def read_profile(profile_id: str, principal: CurrentPrincipal, request: Request) -> dict[str, Any]:
    principal.require_self_or_admin(profile_id)
    doc = await request.app.state.profiles.get(profile_id)
    if doc is None:
        raise NotFound("profile", profile_id)
    return {"profile_id": doc["_id"], "as_of": doc["as_of"], "profile": doc["profile"]}
