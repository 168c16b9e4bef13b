"""An accepted agreement revision tells the participant who proposed it (the one who accepted knows)."""

from __future__ import annotations

from datetime import UTC, date, datetime

from mentorship_contracts.matching import Agreement, AgreementFacts, MentorshipAgreementRevisedV2
from notification_service.domain import Category, recipients, rule_for
from notification_service.templates import Renderer

REVISED = MentorshipAgreementRevisedV2(
    mentorship_id="m1",
    mentee_id="ada",
    mentor_id="grace",
    agreement=AgreementFacts.of(
        Agreement(cadence="weekly", planned_end=date(2031, 9, 1), expectations="calls on Mondays")
    ),
    proposed_by="ada",
    accepted_by="grace",
    revised_at=datetime(2031, 3, 3, 8, 0, tzinfo=UTC),
)


def test_the_proposer_hears_that_the_other_accepted():
    rule = rule_for(REVISED)
    assert rule is not None and rule.category == Category.REQUESTS
    assert recipients(rule, REVISED) == [("ada", "proposer")]


def test_the_revision_renders_as_email_and_in_app():
    rule = rule_for(REVISED)
    assert rule is not None
    out = Renderer().render(
        rule.template, me="Ada", time_zone="Europe/Berlin", audience="proposer", event=REVISED, names={"grace": "Grace"}
    )
    assert out.subject == "Grace accepted your revised agreement"
    assert "cadence weekly, planned end 2031-09-01" in out.text and "<b>Grace</b>" in out.html
    assert "calls on Mondays" not in out.text  # free text stays out of messages
    title, text = Renderer().render_in_app(
        rule.template, recipient_id="ada", time_zone="UTC", audience="proposer", event=REVISED
    )
    assert "accepted your revised agreement" in title and "cadence weekly" in text
