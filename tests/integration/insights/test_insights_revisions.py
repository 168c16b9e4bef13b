"""Insights takes a pair's cadence (and planned end) from a revised agreement, so reports measure
sessions against the cadence the pair agreed on last."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta

import pytest

from mentorship_contracts import Envelope
from mentorship_contracts.matching import Agreement, MentorshipAgreementRevised, MentorshipStarted
from tests.support.kafka import eventually

from .conftest import publish

pytestmark = pytest.mark.integration


async def test_a_revised_agreement_changes_the_pairs_cadence(start_insights, infra, prefix) -> None:
    svc = await start_insights()
    u = uuid.uuid4().hex[:8]
    ids = {"mentorship_id": f"m-{u}", "mentee_id": f"ada-{u}", "mentor_id": f"grace-{u}", "program_id": f"p-{u}"}
    started_at = datetime.now(UTC) - timedelta(days=10)
    revised_at = started_at + timedelta(days=5)
    await publish(
        infra,
        prefix,
        [
            Envelope.wrap(
                MentorshipStarted(**ids, agreement=Agreement(cadence="monthly"), started_at=started_at),
                source="matching",
                time=started_at,
            ),
            Envelope.wrap(
                MentorshipAgreementRevised(
                    **ids,
                    agreement=Agreement(cadence="weekly", planned_end=date(2031, 9, 1), expectations="private"),
                    proposed_by=ids["mentee_id"],
                    accepted_by=ids["mentor_id"],
                    revised_at=revised_at,
                ),
                source="matching",
                time=revised_at,
            ),
        ],
    )
    pairs = svc.runtime.db["pairs"]

    async def revised() -> dict | None:
        doc = await pairs.find_one({"_id": ids["mentorship_id"]})
        return doc if doc and doc.get("cadence") == "weekly" else None

    doc = await eventually(revised, timeout=30)
    assert doc["planned_end"] == "2031-09-01" and doc["started_at"] is not None
    assert "private" not in str(doc)  # free text of the agreement is not kept
