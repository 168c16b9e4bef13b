"""A participant never learns the other party's rating from /progress (issue 11).

On main a single rating showed as `average_rating` to both participants: the mentee read the
mentor's exact score. Now a participant sees only the ratings they gave; an admin sees all.
"""

from __future__ import annotations

from datetime import timedelta

import httpx
import pytest

from tests.support.processes import token

from .scheduling_support import ADMIN, future_start, known, mentorship

pytestmark = pytest.mark.integration


async def test_progress_shows_a_participant_only_their_own_ratings(spawn, infra, prefix):
    svc = spawn("scheduling", dev_clock_enabled="true")
    await mentorship(infra, prefix, "mp", "mentor-p", "mentee-p")
    mentor, mentee = token("mentor-p", "mentor"), token("mentee-p", "mentee")
    start = future_start(days=2, hour=10)
    async with httpx.AsyncClient(base_url=svc.url, timeout=20) as http:
        await known(http, svc.url, "mp")
        r = await http.post(
            "/mentorships/mp/sessions", headers=mentee, json={"start": start.isoformat(), "duration_minutes": 30}
        )
        assert r.status_code == 201, r.text
        sid = r.json()["session_id"]
        moved = await http.post(
            "/_dev/clock", headers=ADMIN, json={"set_to": (start + timedelta(minutes=40)).isoformat()}
        )
        assert moved.status_code == 200, moved.text
        assert (await http.post(f"/sessions/{sid}/complete", headers=mentor, json={"notes": "n"})).status_code == 200
        r = await http.post(f"/sessions/{sid}/feedback", headers=mentor, json={"rating": 2, "comment": "meh"})
        assert r.status_code == 201, r.text

        seen = (await http.get("/mentorships/mp/progress", headers=mentee)).json()
        assert (seen["average_rating"], seen["ratings"], seen["ratings_of"]) == (None, 0, "caller")  # main: 2.0

        r = await http.post(f"/sessions/{sid}/feedback", headers=mentee, json={"rating": 5})
        assert r.status_code == 201, r.text
        seen = (await http.get("/mentorships/mp/progress", headers=mentee)).json()
        assert (seen["average_rating"], seen["ratings"]) == (5.0, 1)  # main: 3.5, i.e. the mentor gave 2
        seen = (await http.get("/mentorships/mp/progress", headers=mentor)).json()
        assert (seen["average_rating"], seen["ratings"]) == (2.0, 1)
        seen = (await http.get("/mentorships/mp/progress", headers=ADMIN)).json()
        assert (seen["average_rating"], seen["ratings"], seen["ratings_of"]) == (3.5, 2, "both")

        # The dev clock moves only for an admin.
        assert (await http.post("/_dev/clock", json={"advance_seconds": 1})).status_code == 401
        assert (await http.post("/_dev/clock", headers=mentee, json={"advance_seconds": 1})).status_code == 403
