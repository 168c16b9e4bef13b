"""Programs and enrollments (admins run programs; people enroll themselves or are enrolled)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from mentorship_contracts.matching import ProgramCreated, ProgramParticipantEnrolled, ProgramParticipantWithdrawn
from mentorship_kit.auth import Principal
from mentorship_kit.problems import NotFound, Unprocessable
from mentorship_kit.usecase import UseCaseContext

from ..domain import MatchingMode, ProgramSpec, ProgramStatus, program_status
from .ports import ProfileReader, ProgramStore
from .shared import new_id, page, present_program


def to_millis(t: datetime) -> datetime:
    """The store keeps milliseconds."""
    return t.replace(microsecond=t.microsecond // 1000 * 1000)


@dataclass(frozen=True)
class ProgramQuery:
    """Filters and a page of `GET /programs` (validated and capped by the HTTP layer)."""

    status: ProgramStatus | None = None
    name_contains: str | None = None
    mode: MatchingMode | None = None
    offset: int = 0
    limit: int = 50


class ProgramUseCases:
    def __init__(self, ctx: UseCaseContext, *, programs: ProgramStore, profiles: ProfileReader) -> None:
        self.ctx = ctx
        self.programs = programs
        self.profiles = profiles

    async def create_program(self, principal: Principal, spec: ProgramSpec) -> dict[str, Any]:
        principal.require_admin()
        program_id = new_id()
        now = self.ctx.clock.now()
        created = self.ctx.events.new(
            ProgramCreated(
                program_id=program_id,
                name=spec.name,
                mode=spec.mode.value,
                starts_on=spec.starts_on,
                ends_on=spec.ends_on,
                created_at=now,
            )
        )
        await self.programs.insert_program(
            {
                "_id": program_id,
                **spec.model_dump(mode="json"),
                "version": 1,
                "created_by": principal.subject,
                "created_at": now,
            },
            [created],
        )
        self.ctx.events_written()
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

    async def list_programs(self, principal: Principal, query: ProgramQuery) -> dict[str, Any]:
        """Admins only: programs newest first, filtered; `status` is derived from today's date."""
        principal.require_admin()
        today = self.ctx.clock.now().date()
        bounds: dict[str, date | None] = {
            "starts_after": None,
            "starts_before": None,
            "ends_after": None,
            "ends_before": None,
        }
        if query.status == ProgramStatus.UPCOMING:
            bounds["starts_after"] = today
        elif query.status == ProgramStatus.RUNNING:
            bounds.update(starts_before=today, ends_after=today)
        elif query.status == ProgramStatus.ENDED:
            bounds["ends_before"] = today
        found, total = await self.programs.list_programs(
            name_contains=query.name_contains,
            mode=query.mode.value if query.mode else None,
            offset=query.offset,
            limit=query.limit,
            **bounds,
        )
        items = [{**present_program(doc), "status": program_status(doc, today)} for doc in found]
        return page(items, total, query.offset, query.limit)

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
        latest = await self.programs.latest_enrolment(program_id, role, profile_id)
        if latest is not None and latest["withdrawn_at"] is None:
            return {"program_id": program_id, "profile_id": profile_id, "role": role}  # enrolled already
        spell = latest["spell"] + 1 if latest is not None else 1
        enrolment_id = f"{program_id}:{role}:{profile_id}#{spell}"
        now = to_millis(self.ctx.clock.now())  # as stored: the withdrawal repeats it from the store
        enrolled = self.ctx.events.new(
            ProgramParticipantEnrolled(
                program_id=program_id, profile_id=profile_id, role=role, enrolment_id=enrolment_id, enrolled_at=now
            )
        )
        doc = {
            "_id": enrolment_id,
            "program_id": program_id,
            "profile_id": profile_id,
            "role": role,
            "spell": spell,
            "enrolled_at": now,
        }
        # a concurrent enrolment of the same person may win the spell: then they are enrolled all the same
        if await self.programs.insert_enrolment(doc, [enrolled]):
            self.ctx.events_written()
            await self.programs.update_program(program_id, {})  # a new version: older dry runs are stale
        return {"program_id": program_id, "profile_id": profile_id, "role": role}

    async def unenroll(self, principal: Principal, program_id: str, profile_id: str, role: str) -> None:
        principal.require_self_or_admin(profile_id)
        latest = await self.programs.latest_enrolment(program_id, role, profile_id)
        if latest is None or latest["withdrawn_at"] is not None:
            raise NotFound("enrollment", f"{program_id}:{role}:{profile_id}")
        now = self.ctx.clock.now()
        withdrawn = self.ctx.events.new(
            ProgramParticipantWithdrawn(
                program_id=program_id,
                profile_id=profile_id,
                role=role,
                enrolment_id=latest["_id"],
                enrolled_at=latest["enrolled_at"],
                withdrawn_at=now,
            )
        )
        doc = {
            "_id": latest["_id"],
            "program_id": program_id,
            "profile_id": profile_id,
            "role": role,
            "enrolled_at": latest["enrolled_at"],
            "withdrawn_at": now,
        }
        if not await self.programs.insert_withdrawal(doc, [withdrawn]):
            raise NotFound("enrollment", f"{program_id}:{role}:{profile_id}")  # withdrawn concurrently
        self.ctx.events_written()
        await self.programs.update_program(program_id, {})
