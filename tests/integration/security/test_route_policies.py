"""Every route of every service declares who may call it (`x-policy` in its OpenAPI document), and
keeps to it when called by each kind of caller.

The four services run as processes; a small world of real resources is made through their APIs
(profiles, a mentorship, a session, a milestone, an introduction, a program and a dry run, a
webhook endpoint, an inbox item, a delivery) and fills every path parameter. Then every operation
is called as: nobody (no token), a stranger, the other participant, the person (or the acting
participant), and an admin:

- no token: 401 unless the route is ANONYMOUS;
- a stranger: 403 or 404 on PERSON, PARTICIPANT and ADMIN routes;
- anyone not an admin: 403 on ADMIN routes;
- the callers the policy allows are never answered 401 or 403 (a 404, 409 or 422 is fine: the
  walk checks who may call, not what the call does), and nobody gets a 5xx.

A route that narrows PARTICIPANT to one participant says so (`x-policy-actor`), and one that
leaves admins out says that (`x-policy-admins: false`); the walk holds them to it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from mentorship_kit.policy import Policy
from tests.support.processes import token

from .platform_world import ADMIN, SERVICES, Platform, World, build_world, shared_platform

pytestmark = pytest.mark.integration

METHODS = ("get", "post", "put", "patch", "delete")
ALLOWED = "allowed"  # any answer but 401/403 (and no 5xx)
DENIED = "denied"  # 403 or 404
NOT_ADMIN = "not admin"  # 403
NO_TOKEN = "no token"  # 401


@pytest.fixture(scope="session")
async def platform_for_policies(infra, tmp_path_factory) -> AsyncIterator[Platform]:
    async with shared_platform(infra, tmp_path_factory.mktemp("logs")) as platform:
        yield platform


@pytest.fixture(scope="module")
async def world(platform_for_policies) -> tuple[Platform, World]:
    return platform_for_policies, await build_world(platform_for_policies)


@dataclass(frozen=True)
class Operation:
    service: str
    method: str
    path: str
    spec: dict[str, Any]

    @property
    def name(self) -> str:
        return f"{self.service} {self.method.upper()} {self.path}"

    @property
    def policy(self) -> Policy | None:
        value = self.spec.get("x-policy")
        return Policy(value) if value else None


def operations(spec: dict[str, Any], service: str) -> list[Operation]:
    found = [
        Operation(service, method, path, op)
        for path, item in spec["paths"].items()
        for method, op in item.items()
        if method in METHODS
    ]
    # Deleting comes last, so that the resources the other routes need are still there.
    return sorted(found, key=lambda o: o.method == "delete")


@dataclass
class Call:
    path: str
    json: Any = None
    params: dict[str, Any] = field(default_factory=dict)
    content: bytes | None = None
    headers: dict[str, str] = field(default_factory=dict)
    person: str = ""  # PERSON: the person the route names; PARTICIPANT: the acting participant
    participants: dict[str, str] = field(default_factory=dict)  # role in the resource -> profile id


def request_for(op: Operation, w: World) -> Call:
    """Path parameters from the world's real resources, a valid body, and who the route is about."""
    by_name = {"mentee_id": w.mentee, "mentor_id": w.mentor, "role": "mentee", **w.ids}
    profile_id = w.mentee
    if op.service == "profile":
        by_name["role"] = "mentor"  # giving up a role one does not have: harmless
        for action in ("deactivate", "reactivate", "verify"):
            if op.path.endswith(f"/{action}") or op.path.endswith(f"/{action}-email"):
                profile_id = w.spare[action]
        if op.method == "delete" and op.path == "/profiles/{profile_id}":
            profile_id = w.spare["erase"]
    by_name["profile_id"] = profile_id
    path = op.path
    for param in [p for p in op.spec.get("parameters", []) if p["in"] == "path"]:
        name = param["name"]
        assert name in by_name, f"{op.name}: no real value for the path parameter {name!r}; add one to the world"
        path = path.replace("{" + name + "}", by_name[name])
    call = Call(path, person=profile_id)
    body = BODIES.get((op.service, op.method, op.path))
    if callable(body):
        body = body(w)
    if isinstance(body, bytes):
        call.content, call.headers = body, {"content-type": "application/x-ndjson"}
    else:
        call.json = body
    if "requestBody" in op.spec and body is None and op.spec["requestBody"].get("required"):
        raise AssertionError(f"{op.name}: give the walk a valid body (BODIES)")
    if op.service == "matching" and op.method == "get" and op.path == "/mentorships":
        call.params = {"profile_id": w.mentee}
    if "/introductions/" in op.path:
        call.participants = {"mentor": w.mentor, "mentee": w.mentee, "contact": w.contact}
    else:
        call.participants = {"mentor": w.mentor, "mentee": w.mentee}
    return call


def _session_start(w: World) -> dict[str, Any]:
    return {"start": w.at(5).isoformat(), "duration_minutes": 30}


BODIES: dict[tuple[str, str, str], Any] = {
    ("profile", "post", "/profiles"): lambda w: {
        "display_name": "New",
        "email": f"new-{w.mentee}@example.org",
        "roles": ["mentee"],
    },
    ("profile", "patch", "/profiles/{profile_id}"): {"job_title": "Analyst"},
    ("profile", "post", "/profiles/{profile_id}/roles"): {"role": "mentee"},
    ("profile", "post", "/profiles/{profile_id}/deactivate"): {"reason": "leave"},
    ("profile", "post", "/profiles/import"): lambda w: (
        b'{"email": "imported-' + w.mentee.encode() + b'@example.org", "display_name": "Imp", "roles": ["mentee"]}\n'
    ),
    ("matching", "post", "/mentorships"): lambda w: {"mentor_id": w.contact, "message": "hi"},
    ("matching", "post", "/mentorships/{mentorship_id}/decline"): {"reason": "busy"},
    ("matching", "post", "/mentorships/{mentorship_id}/end"): {"reason": "done"},
    ("matching", "post", "/mentorships/{mentorship_id}/revisions"): {"agreement": {"cadence": "weekly"}},
    ("matching", "post", "/mentorships/{mentorship_id}/introductions"): lambda w: {"contact_id": w.stranger},
    ("matching", "post", "/programs"): lambda w: {
        "name": "Another",
        "starts_on": w.at(1).date().isoformat(),
        "ends_on": w.at(60).date().isoformat(),
    },
    ("matching", "put", "/programs/{program_id}"): lambda w: {
        "name": "Renamed",
        "starts_on": w.at(1).date().isoformat(),
        "ends_on": w.at(60).date().isoformat(),
    },
    ("matching", "post", "/programs/{program_id}/enrollments"): lambda w: {"profile_id": w.mentee, "role": "mentee"},
    ("matching", "post", "/programs/{program_id}/runs"): {},
    ("scheduling", "post", "/mentorships/{mentorship_id}/sessions"): _session_start,
    ("scheduling", "post", "/mentorships/{mentorship_id}/series"): lambda w: {
        "first_start": w.at(6).isoformat(),
        "duration_minutes": 30,
        "count": 2,
    },
    ("scheduling", "post", "/sessions/{session_id}/reschedule"): _session_start,
    ("scheduling", "post", "/sessions/{session_id}/cancel"): {"reason": "ill"},
    ("scheduling", "post", "/sessions/{session_id}/complete"): {"notes": "good"},
    ("scheduling", "post", "/sessions/{session_id}/no-show"): lambda w: {"absent_ids": [w.mentor]},
    ("scheduling", "post", "/sessions/{session_id}/feedback"): {"rating": 4},
    ("scheduling", "post", "/mentorships/{mentorship_id}/milestones"): {"title": "Second talk"},
    ("notification", "post", "/webhooks"): {"url": "http://127.0.0.1:9/hook", "event_types": ["*"]},
    **{(s, "post", "/_dev/clock"): {"advance_seconds": 0} for s in SERVICES},
}


def expectations(op: Operation, call: Call, w: World) -> list[tuple[str, str | None, str]]:
    """(caller, profile id or None for no token / "admin", expected) for each kind of caller."""
    policy = op.policy
    assert policy is not None
    actor = op.spec.get("x-policy-actor")
    admins_may = op.spec.get("x-policy-admins", True)
    person = call.person
    if policy is Policy.PARTICIPANT:
        person = call.participants.get(actor, "") if actor else w.mentee
        assert person, f"{op.name}: x-policy-actor {actor!r} is not a participant the walk knows"
    other = next(pid for pid in (*call.participants.values(), w.mentor) if pid != person)

    def for_(caller: str) -> str:
        if policy is Policy.ANONYMOUS:
            return ALLOWED
        if caller == "anonymous":
            return NO_TOKEN
        if caller == "admin":
            return ALLOWED if admins_may else NOT_ADMIN
        if policy is Policy.ADMIN:
            return NOT_ADMIN
        if policy is Policy.AUTHENTICATED:
            return ALLOWED
        if caller == "person":
            return ALLOWED
        if caller == "other" and policy is Policy.PARTICIPANT and not actor:
            return ALLOWED
        return DENIED

    return [
        ("anonymous", None, for_("anonymous")),
        ("stranger", w.stranger, for_("stranger")),
        ("other participant", other, for_("other")),
        ("person", person, for_("person")),
        ("admin", "admin", for_("admin")),
    ]


def headers_of(who: str | None) -> dict[str, str]:
    if who is None:
        return {}
    if who == "admin":
        return dict(ADMIN)
    return token(who, "mentee", "mentor")


def broken(expected: str, status: int) -> bool:
    if status >= 500:
        return True
    if expected == ALLOWED:
        return status in (401, 403)
    if expected == DENIED:
        return status not in (403, 404)
    if expected == NOT_ADMIN:
        return status != 403
    return status != 401


@pytest.mark.parametrize("service", SERVICES)
async def test_every_route_declares_a_policy(world, service):
    platform, _ = world
    spec = await platform.openapi(service)
    ops = operations(spec, service)
    assert len(ops) >= 4  # at least the operations routes
    missing = [op.name for op in ops if op.policy is None]
    assert not missing, f"routes without x-policy (declare openapi_extra=policy(Policy.X)): {missing}"
    unknown = [op.name for op in ops if op.spec.get("x-policy") not in {p.value for p in Policy}]
    assert not unknown


@pytest.mark.parametrize("service", SERVICES)
async def test_every_route_answers_each_kind_of_caller_as_its_policy_says(world, service):
    platform, w = world
    ops = operations(await platform.openapi(service), service)
    undeclared = [op.name for op in ops if op.policy is None]
    assert not undeclared, f"cannot walk routes without x-policy: {undeclared}"
    failures: list[str] = []
    calls = 0
    for op in ops:
        call = request_for(op, w)
        for caller, who, expected in expectations(op, call, w):
            r = await platform.call(
                service,
                op.method.upper(),
                call.path,
                json=call.json,
                params=call.params,
                content=call.content,
                headers={**call.headers, **headers_of(who)},
            )
            calls += 1
            if broken(expected, r.status_code):
                failures.append(
                    f"{op.name} [{op.policy}] as {caller}: expected {expected}, got {r.status_code} {r.text[:160]}"
                )
    print(f"{service}: {len(ops)} routes, {calls} calls")
    assert not failures, "\n".join(failures)


@pytest.mark.parametrize("service", SERVICES)
async def test_the_dev_clock_needs_an_admin_token(platform_for_policies, service):
    """Issue 11: with the dev clock on (as in `make run`), `POST /_dev/clock` answered 200 without any
    token, so anyone could move time and expire every open request."""
    platform = platform_for_policies
    still = {"advance_seconds": 0}
    r = await platform.call(service, "POST", "/_dev/clock", json=still)
    assert r.status_code == 401 and r.headers["content-type"].startswith("application/problem+json"), r.text
    r = await platform.call(service, "POST", "/_dev/clock", json=still, headers=token("someone", "mentee", "mentor"))
    assert r.status_code == 403, r.text
    r = await platform.call(service, "POST", "/_dev/clock", json=still, headers=dict(ADMIN))
    assert r.status_code == 200 and "now" in r.json(), r.text
