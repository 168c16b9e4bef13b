"""What people write stays in scheduling: after a session with an agenda, held with notes, rated
with comments, a milestone reached and a session cancelled with a reason, the scheduling topic
(read from the start, raw bytes) holds none of the words; the events say that text exists and the
API shows it to the participants (docs/decisions/personal-data-in-events.md)."""

from __future__ import annotations

from datetime import timedelta

import httpx
import pytest

from mentorship_contracts import Topic, decode
from tests.support.kafka import eventually, read_topic
from tests.support.processes import token
from tests.support.scan import outboxes_drained

from .scheduling_support import ADMIN, db_name, future_start, known, mentorship, person

pytestmark = pytest.mark.integration

WORDS = {
    "goal": "Xanthe gets promoted",
    "agenda": "Xanthe's salary talk",
    "notes": "Xanthe spoke about her anxiety",
    "mentor_comment": "Xanthe was late",
    "mentee_comment": "Xanthe loved it",
    "milestone": "Xanthe gave a keynote",
    "cancel": "Xanthe is in hospital",
}


async def test_the_topic_carries_flags_and_codes_and_the_api_the_text(spawn, infra, prefix, mongo):
    svc = spawn("scheduling", dev_clock_enabled="true")
    db = mongo[db_name(prefix)]
    for pid in ("mo", "xa"):
        await person(infra, prefix, pid, "Europe/Berlin", [(d, "08:00", "18:00") for d in range(5)])
    await mentorship(infra, prefix, "m-xa", "mo", "xa", goals=(WORDS["goal"],))
    me, as_mo = token("xa"), token("mo")
    held_start = future_start(days=2, hour=10)
    async with httpx.AsyncClient(base_url=svc.url, timeout=20) as http:
        await known(http, svc.url, "m-xa")
        r = await http.post(
            "/mentorships/m-xa/sessions",
            headers=me,
            json={"start": held_start.isoformat(), "duration_minutes": 60, "agenda": WORDS["agenda"]},
        )
        assert r.status_code == 201, r.text
        held_id = r.json()["session_id"]
        r = await http.post(
            "/mentorships/m-xa/sessions",
            headers=me,
            json={"start": (held_start + timedelta(days=7)).isoformat(), "duration_minutes": 60},
        )
        assert r.status_code == 201, r.text
        cancelled_id = r.json()["session_id"]
        r = await http.post(f"/sessions/{cancelled_id}/cancel", headers=as_mo, json={"reason": WORDS["cancel"]})
        assert r.status_code == 200, r.text
        r = await http.post(
            "/_dev/clock", headers=ADMIN, json={"set_to": (held_start + timedelta(hours=2)).isoformat()}
        )
        assert r.status_code == 200, r.text
        r = await http.post(f"/sessions/{held_id}/complete", headers=as_mo, json={"notes": WORDS["notes"]})
        assert r.status_code == 200, r.text
        for who, comment in ((as_mo, WORDS["mentor_comment"]), (me, WORDS["mentee_comment"])):
            r = await http.post(f"/sessions/{held_id}/feedback", headers=who, json={"rating": 4, "comment": comment})
            assert r.status_code == 201, r.text
        r = await http.post("/mentorships/m-xa/milestones", headers=me, json={"title": WORDS["milestone"]})
        assert r.status_code == 201, r.text
        milestone_id = r.json()["milestone_id"]
        r = await http.post(f"/mentorships/m-xa/milestones/{milestone_id}/reached", headers=me)
        assert r.status_code == 200, r.text
        await eventually(lambda: outboxes_drained(db), timeout=60)

        records = await read_topic(infra.kafka_bootstrap, f"{prefix}{Topic.SCHEDULING}", want=7, timeout=30)
        raw = b"".join(rec.value for rec in records)
        assert [w for w in WORDS.values() if w.encode() in raw] == []
        assert b"Xanthe" not in raw
        by_kind: dict[str, list[object]] = {}
        for e in (decode(rec.value) for rec in records):
            by_kind.setdefault(e.type.rsplit(".", 1)[1], []).append(e.data)
        assert [d.has_agenda for d in by_kind["session_scheduled"]] == [True, False]  # type: ignore[attr-defined]
        [cancelled] = by_kind["session_cancelled"]
        assert (cancelled.reason_code, cancelled.has_reason) == ("other", True)  # type: ignore[attr-defined]
        assert [d.has_notes for d in by_kind["session_completed"]] == [True]  # type: ignore[attr-defined]
        assert sorted(d.has_comment for d in by_kind["session_feedback_submitted"]) == [True, True]  # type: ignore[attr-defined]
        [reached] = by_kind["milestone_reached"]
        assert reached.milestone_id == milestone_id  # type: ignore[attr-defined]

        # the text stays readable where it was written, for the participants
        shown = (await http.get(f"/sessions/{held_id}", headers=me)).json()
        assert shown["agenda"] == WORDS["agenda"] and shown["notes"] == WORDS["notes"]
        shown = (await http.get(f"/sessions/{cancelled_id}", headers=me)).json()
        assert shown["cancel_reason"] == WORDS["cancel"]
        progress = (await http.get("/mentorships/m-xa", headers=me)).json()
        assert WORDS["milestone"] in [m["title"] for m in progress["milestones"]]
