"""HTTP API of the profile service."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Header, Request, status
from pydantic import Field

from mentorship_contracts.profile import ProfileSnapshot
from mentorship_kit.auth import CurrentPrincipal

from ..application import ProfileService

router = APIRouter(prefix="/profiles", tags=["profiles"])


class NewProfile(ProfileSnapshot):
    """A profile to register; the id is assigned by the service unless an admin imports it."""

    profile_id: str = Field(default_factory=lambda: str(uuid.uuid4()), min_length=1, max_length=64)


def service(request: Request) -> ProfileService:
    return request.app.state.profiles


@router.post("", status_code=status.HTTP_201_CREATED, response_model=ProfileSnapshot,
             summary="Register a profile")
async def register_profile(
    body: NewProfile,
    principal: CurrentPrincipal,
    profiles: Annotated[ProfileService, Depends(service)],
    correlation_id: Annotated[str | None, Header(alias="x-correlation-id")] = None,
) -> ProfileSnapshot:
    if not principal.is_admin:
        # People register themselves: their token's subject is their profile id.
        body = body.model_copy(update={"profile_id": principal.subject})
    return await profiles.register(ProfileSnapshot.model_validate(body.model_dump()), correlation_id)


@router.get("/{profile_id}", response_model=ProfileSnapshot, summary="Read a profile")
async def get_profile(
    profile_id: str, principal: CurrentPrincipal, profiles: Annotated[ProfileService, Depends(service)]
) -> ProfileSnapshot:
    return await profiles.get(profile_id)
