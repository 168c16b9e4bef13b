"""Notification's HTTP routes over the use cases on in-memory ports (no lifespan: nothing starts).
They check that every route reaches what it needs on the application object."""

from __future__ import annotations

import httpx

from mentorship_kit.runtime import create_app
from notification_service.entrypoints.http import routers
from notification_service.settings import Settings
from tests.support.processes import JWT_SECRET, token
from tests.unit.kit_fakes import runtime_without_store
from tests.unit.notification.test_notification_use_cases import known, milestone, snapshot, world


async def test_inbox_log_contacts_and_endpoints_through_the_routes():
    w = world(webhook_allow_loopback=True)
    await known(w, snapshot("ada", "Ada"), snapshot("grace", "Grace"))
    await w.notifications.handle(milestone())
    runtime = runtime_without_store(Settings(jwt_secret=JWT_SECRET))
    app = create_app(runtime, title="notification", routers=routers)
    app.state.notifications = w.notifications
    ada, admin = token("ada"), token("root", "admin")
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://n") as http:
            inbox = await http.get("/people/ada/inbox", headers=ada)
            assert inbox.status_code == 200, inbox.text
            assert inbox.json()["unread_count"] == 1 and inbox.json()["items"][0]["title"]
            assert (await http.post("/people/ada/inbox/read-all", headers=ada)).json()["marked"] == 1
            assert (await http.get("/people/ada/inbox/unread-count", headers=ada)).json() == {"unread_count": 0}
            log = await http.get("/deliveries", params={"recipient_id": "ada"}, headers=admin)
            assert log.status_code == 200, log.text
            assert {d["channel"] for d in log.json()} == {"email", "in_app"}
            one = log.json()[0]["delivery_id"]
            assert (await http.get(f"/deliveries/{one}", headers=admin)).json()["state"] == "delivered"
            assert (await http.get("/contacts/grace", headers=admin)).json()["display_name"] == "Grace"
            created = await http.post(
                "/webhooks", headers=admin, json={"url": "http://127.0.0.1:9/hook", "event_types": ["*"]}
            )
            assert created.status_code == 201, created.text
            assert [e["url"] for e in (await http.get("/webhooks", headers=admin)).json()] == [
                "http://127.0.0.1:9/hook"
            ]
            assert (await http.get("/deliveries", headers=ada)).status_code == 403
    finally:
        await runtime.client.close()
