"""Programs and enrollments (admins run programs; people enroll themselves or are enrolled)."""

from __future__ import annotations

from typing import Any

from mentorship_kit.auth import Principal
from mentorship_kit.problems import NotFound, Unprocessable
from mentorship_kit.usecase import UseCaseContext

from ..domain import ProgramSpec
from .ports import ProfileReader, ProgramStore
from .shared import new_id, present_program


class ProgramUseCases:
    def __init__(self, ctx: UseCaseContext, *, programs: ProgramStore, profiles: ProfileReader) -> None:
        self.ctx = ctx
        self.programs = programs
        self.profiles = profiles

    async def create_program(self, principal: Principal, spec: ProgramSpec) -> dict[str, Any]:
        principal.require_admin()
        program_id = new_id()
        await self.programs.insert_program({"_id": program_id, **spec.model_dump(mode="json"), "version": 1,
                                            "created_by": principal.subject, "created_at": self.ctx.clock.now()})
        return await self.get_program(principal, program_id)

    async def get_program(self, principal: Principal, program_id: str) -> dict[str, Any]:
        """Admins only: a program's settings and enrollment counts are the program manager's."""
        principal.require_admin()
        program = await self.programs.get_program(program_id)
        if program is None:
            raise NotFound("program", program_id)
        out = present_program(program)
        out["enrolled"] = {role: len(await self.programs.enrolled(program_id, role)) for role in ("mentee", "mentor")}
        return out

    async def update_program(self, principal: Principal, program_id: str, spec: ProgramSpec) -> dict[str, Any]:
        principal.require_admin()
        updated = await self.programs.update_program(program_id, spec.model_dump(mode="json"))
        if updated is None:
            raise NotFound("program", program_id)
        return present_program(updated)

    async def enroll(self, principal: Principal, program_id: str, profile_id: str, role: str) -> dict[str, Any]:
        principal.require_self_or_admin(profile_id)
        if await self.programs.get_program(program_id) is None:
            raise NotFound("program", program_id)
        profile = await self.profiles.profile(profile_id)
        if profile is None:
            raise Unprocessable(f"no profile with id {profile_id!r}", field="profile_id")
        if role not in profile.get("roles", []):
            raise Unprocessable(f"this person does not have the {role} role", field="role")
        if await self.programs.enroll(program_id, profile_id, role, self.ctx.clock.now()):
            await self.programs.update_program(program_id, {})  # a new version: older dry runs are stale
        return {"program_id": program_id, "profile_id": profile_id, "role": role}

    async def unenroll(self, principal: Principal, program_id: str, profile_id: str, role: str) -> None:
        principal.require_self_or_admin(profile_id)
        if not await self.programs.unenroll(program_id, profile_id, role):
            raise NotFound("enrollment", f"{program_id}:{role}:{profile_id}")
        await self.programs.update_program(program_id, {})
