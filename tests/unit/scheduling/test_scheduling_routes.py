"""Scheduling's HTTP routes over the use cases on in-memory stores (no lifespan: nothing starts).
They check that every route reaches what it needs on the application object."""

from __future__ import annotations

from datetime import timedelta

import httpx

from mentorship_kit.runtime import create_app
from scheduling_service.entrypoints.http import router
from scheduling_service.settings import Settings
from tests.support.processes import JWT_SECRET, token
from tests.unit.kit_fakes import runtime_without_store
from tests.unit.scheduling.test_scheduling_use_cases import NOW, world  # noqa: F401 - the fixture


async def test_book_list_read_and_feed_through_the_routes(world):  # noqa: F811
    runtime = runtime_without_store(Settings(jwt_secret=JWT_SECRET))
    app = create_app(runtime, title="scheduling", routers=[router])
    app.state.scheduling = world.scheduling
    ada = token("ada")
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://scheduling") as http:
            start = (NOW + timedelta(days=2)).isoformat()
            booked = await http.post(
                "/mentorships/m1/sessions", headers=ada, json={"start": start, "duration_minutes": 45}
            )
            assert booked.status_code == 201, booked.text
            listed = await http.get("/mentorships/m1/sessions", headers=ada)
            assert listed.status_code == 200, listed.text
            assert [s["session_id"] for s in listed.json()] == [booked.json()["session_id"]]
            assert (await http.get(f"/sessions/{booked.json()['session_id']}", headers=ada)).status_code == 200
            assert (await http.get("/mentorships/m1", headers=ada)).status_code == 200
            assert (await http.get("/mentorships/m1/progress", headers=ada)).json()["sessions"]["scheduled"] == 1
            feed = await http.post("/calendar/feed", headers=ada)
            assert feed.status_code == 201, feed.text
            assert (await http.get("/mentorships/m1/sessions", headers=token("eve"))).status_code == 403
    finally:
        await runtime.client.close()
