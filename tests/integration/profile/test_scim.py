"""SCIM 2.0 provisioning (issue 13): the profile service as its own process on the real broker and store,
checked by a SCIM compliance checker (scim2-tester) and by hand-written calls of the mapping."""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from scim2_client import BaseSyncSCIMClient
from scim2_tester import Status, check_server

from mentorship_contracts.profile import ProfileDeactivated, ProfileErased, ProfileReactivated, ProfileRegistered, \
    ProfileUpdated
from tests.support.processes import token

from .test_profile_api import events_of, settled

pytestmark = pytest.mark.integration

SCIM_TOKEN = "scim-token-for-the-suite-0123456789abcdef"
SCIM = {"Authorization": f"Bearer {SCIM_TOKEN}", "Content-Type": "application/scim+json"}
USER = "urn:ietf:params:scim:schemas:core:2.0:User"
ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
PATCH_OP = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
ERROR = "urn:ietf:params:scim:api:messages:2.0:Error"
FAILED = {Status.ERROR, Status.CRITICAL}


class HttpxSCIMClient(BaseSyncSCIMClient):
    """scim2-client's network engine, on httpx (its own engine needs the `httpx2` fork)."""

    def __init__(self, client: httpx.Client, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.client = client

    def _stays_under_base_url(self, endpoint: str) -> bool:
        base = self.client.base_url
        url = self.client.build_request("GET", endpoint).url
        return (url.scheme, url.netloc) == (base.scheme, base.netloc) and url.raw_path.startswith(base.raw_path)

    def _parse_json(self, response: Any) -> Any:
        return response.json()

    def request(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        return self.client.request(method, url, **kwargs)


def scim_client(svc) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=f"{svc.url}/scim/v2", headers=SCIM, timeout=15)


def user_body(user_name: str, **extra: Any) -> dict[str, Any]:
    return {"schemas": [USER], "userName": user_name, "displayName": "Grace Hopper",
            "emails": [{"value": user_name, "type": "work", "primary": True}], **extra}


def assert_scim_error(r: httpx.Response, status: int, scim_type: str | None = None) -> dict[str, Any]:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/scim+json"), r.headers
    body = r.json()
    assert body["schemas"] == [ERROR] and body["status"] == str(status), body
    if scim_type:
        assert body.get("scimType") == scim_type, body
    return body


def start_with_scim(spawn):
    return spawn("profile", scim_token=SCIM_TOKEN)


async def test_the_scim_compliance_checker_finds_no_failure(spawn):
    svc = start_with_scim(spawn)

    def run() -> list[Any]:
        with httpx.Client(base_url=f"{svc.url}/scim/v2", headers={"Authorization": f"Bearer {SCIM_TOKEN}"},
                          timeout=30) as http:
            return check_server(HttpxSCIMClient(http))

    results = await asyncio.to_thread(run)
    print(f"\nscim2-tester: {len(results)} checks, {dict(Counter(r.status.name for r in results))}")
    for r in results:
        if r.status is not Status.SUCCESS:
            print(f"  {r.status.name:9} {r.resource_type or '-':5} {r.title}: {r.reason}")
    failed = [f"{r.title} ({r.resource_type}): {r.reason}" for r in results if r.status in FAILED]
    assert not failed, "\n".join(failed)
    titles = {r.title for r in results if r.status is Status.SUCCESS}
    # the checker reached the Users endpoints, not only discovery
    assert {"object_creation", "object_query", "object_replacement", "object_deletion"} <= titles, titles
    assert urlsplit(svc.url).hostname
