"""Bulk import use case: create-or-update profiles keyed by email, batch by batch.

Per batch: one read of the existing profiles by email, one unordered insert of the new ones and
one unordered bulk of conditional updates; each document carries its own outbox events. A row
that changes nothing writes nothing and emits nothing, so re-running a file is a no-op.
Progress is yielded after every batch; rejected rows as they are found.

Email ownership: a row whose email belongs to a profile nobody verified (a person registered it
themselves) is held, not merged: anyone can type a colleague's address, and merging HR's name,
title, department and manager into such a profile would hand them the colleague's identity. The
row is reported (`{"type": "held", "row": n, "held": "email not verified", "profile_id": ...}`)
for an admin to decide: erase the squatter, or vouch for the address
(`POST /profiles/{id}/verify-email`) and run the import again. Profiles the import creates are
verified (HR is the source of the address).
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterable, Iterator
from dataclasses import dataclass, field
from itertools import islice
from typing import Any

from mentorship_contracts.profile import ProfileSnapshot
from mentorship_kit.usecase import UseCaseContext

from . import domain
from .adapters.repository import NewProfile, PlannedUpdate, ProfileRepository
from .import_format import ImportRow, Rejection
from .settings import Settings

DEFAULT_BATCH_SIZE = 1000
EMAIL_NOT_VERIFIED = "email not verified"


@dataclass(frozen=True)
class Held:
    """A row not merged until an admin decides (see the module's note on email ownership)."""

    row: int
    profile_id: str
    reason: str
    line: int | None = None

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"row": self.row, "profile_id": self.profile_id, "held": self.reason}
        if self.line is not None:
            out["line"] = self.line
        return out


@dataclass
class ImportReport:
    rows: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    rejections: list[Rejection] = field(default_factory=list)
    holds: list[Held] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        return {
            "rows": self.rows,
            "created": self.created,
            "updated": self.updated,
            "unchanged": self.unchanged,
            "rejected": len(self.rejections),
            "held": len(self.holds),
        }


def _batches(rows: Iterable[ImportRow], size: int) -> Iterator[list[ImportRow]]:
    it = iter(rows)
    while batch := list(islice(it, size)):
        yield batch


class ProfileImportUseCases:
    """HR onboarding: create-or-update many profiles from one file."""

    def __init__(self, ctx: UseCaseContext, *, settings: Settings, profiles: ProfileRepository) -> None:
        self.ctx = ctx
        self.profiles = profiles
        self.batch_size = settings.profile_import_batch_size

    async def run(
        self, rows: Iterable[ImportRow], report: ImportReport, *, correlation_id: str | None = None
    ) -> AsyncIterator[dict[str, Any]]:
        """Yields progress messages: {"type": "rejected", ...} and {"type": "progress", ...}."""
        correlation_id = correlation_id or str(uuid.uuid4())  # one import = one correlation
        first_row_of_email: dict[str, int] = {}
        first_row_of_external_id: dict[str, int] = {}
        for batch in _batches(rows, self.batch_size):
            before, held_before = len(report.rejections), len(report.holds)
            await self._batch(batch, report, first_row_of_email, first_row_of_external_id, correlation_id)
            for rejection in sorted(report.rejections[before:], key=lambda r: r.row):
                yield {"type": "rejected", **rejection.as_dict()}
            for held in sorted(report.holds[held_before:], key=lambda h: h.row):
                yield {"type": "held", **held.as_dict()}
            yield {"type": "progress", **report.counts()}

    async def _batch(
        self,
        batch: list[ImportRow],
        report: ImportReport,
        first_row_of_email: dict[str, int],
        first_row_of_external_id: dict[str, int],
        correlation_id: str,
    ) -> None:
        report.rows += len(batch)
        candidates: list[tuple[ImportRow, str, dict[str, Any]]] = []
        for row in batch:
            if row.rejection or row.data is None:
                report.rejections.append(row.rejection or row.reject("row", "empty"))
                continue
            email = row.data.get("email")
            if not isinstance(email, str) or not email.strip():
                report.rejections.append(row.reject("email", "required"))
                continue
            key = domain.email_key(email)
            if key in first_row_of_email:
                report.rejections.append(row.reject("email", f"same email as row {first_row_of_email[key]}"))
                continue
            first_row_of_email[key] = row.row
            candidates.append((row, key, row.data))

        existing = await self.profiles.by_email_keys([key for _, key, _ in candidates])
        # external ids are unique too: one read for the batch says whose they already are
        external_owners = await self.profiles.external_id_owners(
            [data["external_id"] for _, _, data in candidates if isinstance(data.get("external_id"), str)]
        )
        wanted_ids = [
            str(data["profile_id"]) for _, key, data in candidates if key not in existing and data.get("profile_id")
        ]
        ids_taken = await self.profiles.ids_in_use(wanted_ids)

        new_rows: list[ImportRow] = []
        new_profiles: list[NewProfile] = []
        update_rows: list[ImportRow] = []
        updates: list[PlannedUpdate] = []
        for row, key, data in candidates:
            given_id = data.get("profile_id")
            try:
                if key in existing:
                    stored = existing[key]
                    if given_id is not None and given_id != stored.profile.profile_id:
                        raise domain.ProfileRuleViolation("profile_id", "this email belongs to another profile id")
                    if not stored.email_verified:
                        report.holds.append(Held(row.row, stored.profile.profile_id, EMAIL_NOT_VERIFIED, row.line))
                        continue
                    changes = {k: v for k, v in data.items() if k != "profile_id"}
                    change = domain.update(stored.profile, changes, allowed=domain.IMPORTABLE_FIELDS, by_admin=True)
                    self._external_id_is_free(change.profile, external_owners, first_row_of_external_id, row)
                    if not change.changed:
                        report.unchanged += 1
                        continue
                    update_rows.append(row)
                    events = self.ctx.events.many(
                        domain.with_state(change, stored.version + 1), correlation_id=correlation_id
                    )
                    updates.append(
                        PlannedUpdate(
                            stored.profile.profile_id, stored.version, change.profile, change.changed_fields, events
                        )
                    )
                else:
                    if given_id is not None and str(given_id) in ids_taken:
                        raise domain.ProfileRuleViolation("profile_id", "already used by another profile")
                    profile = domain.validate({**data, "profile_id": str(given_id or uuid.uuid4())})
                    self._external_id_is_free(profile, external_owners, first_row_of_external_id, row)
                    event = domain.register(profile)
                    new_rows.append(row)
                    events = self.ctx.events.many([event, domain.state(profile, 1)], correlation_id=correlation_id)
                    new_profiles.append(NewProfile(profile, events, email_verified=True))  # HR is the source
            except domain.ProfileRuleViolation as exc:
                report.rejections.append(row.reject(exc.field, exc.message))

        refused = await self.profiles.add_many(new_profiles)  # (a clash found only now: a concurrent writer)
        for i in sorted(refused):
            report.rejections.append(new_rows[i].reject("email", "registered concurrently by someone else"))
        report.created += len(new_profiles) - len(refused)
        missed = await self.profiles.save_many(updates)
        for i in sorted(missed):
            report.rejections.append(
                update_rows[i].reject(
                    "email", "the profile changed during the import, or the email is taken; run the import again"
                )
            )
        report.updated += len(updates) - len(missed)
        if len(new_profiles) > len(refused) or len(updates) > len(missed):
            self.ctx.events_written()

    @staticmethod
    def _external_id_is_free(
        profile: ProfileSnapshot, owners: dict[str, str], first_row: dict[str, int], row: ImportRow
    ) -> None:
        """An external id belongs to one profile: not another one's, not given twice in the file."""
        external_id = profile.external_id
        if external_id is None:
            return
        if owners.get(external_id, profile.profile_id) != profile.profile_id:
            raise domain.ProfileRuleViolation("external_id", "already used by another profile")
        if first_row.setdefault(external_id, row.row) != row.row:
            raise domain.ProfileRuleViolation("external_id", f"same external_id as row {first_row[external_id]}")
