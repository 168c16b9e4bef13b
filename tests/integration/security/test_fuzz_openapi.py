"""Schemathesis against all four OpenAPI documents, as an admin (issue 11, item 6).

Every operation gets a bounded number of generated requests (valid by its schema; about half of
them with path parameters taken from real resources, so that calls get past "not found" and into
the use cases). Nothing may answer 5xx or drop the connection, no answer may break the response
schema the route declares, and every service is still ready afterwards. Some of the generated
requests carry over-long query values (far beyond any declared maximum), and every query and path
parameter of every service is also sent over-long once on its own: each is refused with a 422
naming it, before any use case runs.
"""

from __future__ import annotations

import time
from collections import Counter
from typing import Any

import hypothesis
import pytest
import requests
from hypothesis import HealthCheck, Phase
from hypothesis import strategies as st
from schemathesis import openapi
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance

from .platform_world import ADMIN, SERVICES, Platform, World, build_world, shared_platform

pytestmark = pytest.mark.integration

EXAMPLES_PER_OPERATION = 12
BUDGET_SECONDS = 150.0  # for all four services; a run on a quiet machine takes far less
REQUEST_TIMEOUT = 15.0
OVER_LONG = 5000  # characters: beyond every declared maximum (the longest, a cursor, is a few hundred)


@pytest.fixture(scope="session")
async def platform_for_fuzzing(infra, tmp_path_factory):
    async with shared_platform(infra, tmp_path_factory.mktemp("logs")) as platform:
        yield platform


@pytest.fixture(scope="module")
async def fuzz_world(platform_for_fuzzing) -> tuple[Platform, World]:
    return platform_for_fuzzing, await build_world(platform_for_fuzzing)


def real_ids(w: World) -> dict[str, str]:
    return {"profile_id": w.mentee, "mentee_id": w.mentee, "mentor_id": w.mentor, **w.ids}


def fuzz(
    service: str, spec: dict[str, Any], base_url: str, ids: dict[str, str], deadline: float, statuses: Counter[str]
) -> list[str]:
    failures: list[str] = []
    session = requests.Session()
    for result in openapi.from_dict(spec).get_all_operations():
        failures += fuzz_operation(
            f"{service} {result.ok().label}", result.ok(), base_url, session, ids, deadline, statuses
        )
    return failures


def fuzz_operation(
    name: str,
    operation: Any,
    base_url: str,
    session: requests.Session,
    ids: dict[str, str],
    deadline: float,
    statuses: Counter[str],
) -> list[str]:
    """Every failure kind once (no shrinking: the curl line reproduces it)."""
    failures: dict[str, str] = {}

    @hypothesis.settings(
        max_examples=EXAMPLES_PER_OPERATION,
        deadline=None,
        database=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
        derandomize=True,
    )
    @hypothesis.given(case=operation.as_strategy(), use_real_ids=st.booleans(), over_long=st.integers(0, 3))
    def run(case: Any, use_real_ids: bool, over_long: int) -> None:
        if time.monotonic() > deadline:
            return
        if use_real_ids and case.path_parameters:
            case.path_parameters = {k: ids.get(k, v) for k, v in case.path_parameters.items()}
        if over_long == 0 and case.query:  # a quarter of the requests: every query value over-long
            case.query = {k: "a" * OVER_LONG for k in case.query}
        curl = case.as_curl_command(headers={"Authorization": "<admin>"})
        try:
            response = case.call(base_url=base_url, session=session, headers=dict(ADMIN), timeout=REQUEST_TIMEOUT)
        except requests.RequestException as exc:  # a dropped connection is a failure too
            failures.setdefault(type(exc).__name__, f"{name}: {type(exc).__name__}: {exc}\n  {curl}")
            return
        statuses[f"{response.status_code // 100}xx"] += 1
        try:
            case.validate_response(response, checks=[not_a_server_error, response_schema_conformance])
        except (Exception, BaseExceptionGroup) as exc:  # schemathesis raises a group of failures
            kind = type(exc).__name__ + str(exc).splitlines()[0][:80]
            failures.setdefault(kind, f"{name} -> {response.status_code}: {str(exc)[:600]}\n  {curl}")

    run()
    return list(failures.values())


async def test_fuzzing_every_operation_finds_no_5xx_and_no_schema_violation(fuzz_world):
    platform, w = fuzz_world
    started = time.monotonic()
    deadline = started + BUDGET_SECONDS
    failures: list[str] = []
    statuses: Counter[str] = Counter()
    for service in SERVICES:
        spec = await platform.openapi(service)
        failures += fuzz(service, spec, platform.url(service), real_ids(w), deadline, statuses)
    elapsed = time.monotonic() - started
    print(f"fuzzed four services in {elapsed:.0f} s: {sum(statuses.values())} requests, {dict(statuses)}")
    assert time.monotonic() < deadline, "the budget ran out before every operation was fuzzed"

    for service in SERVICES:  # still healthy
        r = await platform.call(service, "GET", "/ready")
        assert r.status_code == 200, (service, r.text)
    assert elapsed < BUDGET_SECONDS + 60  # bounded: the budget, plus the operation running at its end
    assert not failures, f"{len(failures)} failures:\n" + "\n".join(failures)


def parameters(spec: dict[str, Any], where: str) -> list[tuple[str, str, dict[str, Any], str]]:
    """(method, path, operation, parameter name) for every `where` ("query" or "path") parameter."""
    return [
        (method, path, op, p["name"])
        for path, item in spec["paths"].items()
        for method, op in item.items()
        if isinstance(op, dict)
        for p in op.get("parameters", [])
        if p["in"] == where
    ]


@pytest.mark.parametrize("service", SERVICES)
async def test_an_over_long_query_or_path_parameter_answers_422_naming_it(fuzz_world, service):
    """Every query and path parameter, sent 5,000 characters long on its own (the others real), as an
    admin: a 422 problem that names it. Nothing is read or written with such a value."""
    platform, w = fuzz_world
    spec = await platform.openapi(service)
    ids = real_ids(w)
    failures: list[str] = []
    checked = {"query": 0, "path": 0}
    for where in ("query", "path"):
        for method, template, op, name in parameters(spec, where):
            path = template
            for p in op.get("parameters", []):
                if p["in"] == "path":
                    value = "a" * OVER_LONG if where == "path" and p["name"] == name else ids.get(p["name"], "x")
                    path = path.replace("{" + p["name"] + "}", value)
            params = {
                p["name"]: ids.get(p["name"], "x")
                for p in op.get("parameters", [])
                if p["in"] == "query" and p.get("required")
            }
            if where == "query":
                params[name] = "a" * OVER_LONG
            r = await platform.call(service, method.upper(), path, params=params, headers=dict(ADMIN))
            checked[where] += 1
            fields = {e.get("field") for e in r.json().get("errors", [])} if r.status_code == 422 else set()
            if (
                r.status_code != 422
                or name not in fields
                or not r.headers["content-type"].startswith("application/problem+json")
            ):
                failures.append(f"{method.upper()} {template} {where} {name!r}: {r.status_code} {r.text[:160]}")
    print(f"{service}: {checked['query']} query and {checked['path']} path parameters sent over-long")
    assert checked["query"] >= 1, f"{service} has no query parameter to check"
    assert not failures, "\n".join(failures)
