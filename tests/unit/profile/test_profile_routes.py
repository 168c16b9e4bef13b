"""Profile's HTTP routes over the use cases on an in-memory repository (no lifespan: nothing
starts). They check that every route reaches what it needs on the application objects."""

from __future__ import annotations

import json

import httpx

from mentorship_kit.runtime import create_app
from profile_service.application import ProfileUseCases
from profile_service.entrypoints.http import router
from profile_service.importing import ProfileImportUseCases
from profile_service.settings import Settings
from tests.support.processes import JWT_SECRET, token
from tests.unit.kit_fakes import FakeContext, runtime_without_store
from tests.unit.profile.fakes import FakeProfileRepository


async def test_register_read_change_search_and_import_through_the_routes():
    settings = Settings(jwt_secret=JWT_SECRET)
    fake, repo = FakeContext("profile"), FakeProfileRepository()
    runtime = runtime_without_store(settings)
    app = create_app(runtime, title="profile", routers=[router])
    app.state.profiles = ProfileUseCases(fake.ctx, settings=settings, profiles=repo)
    app.state.bulk_import = ProfileImportUseCases(fake.ctx, settings=settings, profiles=repo)
    ada, admin = token("ada"), token("hr", "admin")
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://p") as http:
            created = await http.post(
                "/profiles",
                headers=ada,
                json={"profile_id": "ignored", "display_name": "Ada", "email": "ada@example.org", "roles": ["mentee"]},
            )
            assert created.status_code == 201, created.text
            assert created.json()["profile_id"] == "ada" and created.headers["etag"] == '"1"'
            changed = await http.patch(
                "/profiles/ada", headers={**ada, "if-match": '"1"'}, json={"job_title": "Engineer"}
            )
            assert changed.status_code == 200 and changed.json()["version"] == 2
            assert (await http.get("/profiles/ada", headers=ada)).json()["job_title"] == "Engineer"
            found = await http.get("/profiles", params={"role": "mentee"}, headers=admin)
            assert [p["profile_id"] for p in found.json()["items"]] == ["ada"]
            rows = json.dumps(
                {"email": "grace@example.org", "display_name": "Grace", "roles": ["mentor"], "mentor_capacity": 2}
            )
            imported = await http.post(
                "/profiles/import", headers={**admin, "content-type": "application/x-ndjson"}, content=rows + "\n"
            )
            summary = json.loads(imported.text.strip().splitlines()[-1])
            assert summary["type"] == "summary" and summary["created"] == 1, imported.text
            assert (await http.get("/profiles/ada", headers=token("eve"))).status_code == 403
    finally:
        await runtime.client.close()
    assert len(repo.outbox) == 3
