"""Schemathesis against all four OpenAPI documents, as an admin (issue 11, item 6).

Every operation gets a bounded number of generated requests (valid by its schema; about half of
them with path parameters taken from real resources, so that calls get past "not found" and into
the use cases). Nothing may answer 5xx or drop the connection, no answer may break the response
schema the route declares, and every service is still ready afterwards.
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
    @hypothesis.given(case=operation.as_strategy(), use_real_ids=st.booleans())
    def run(case: Any, use_real_ids: bool) -> None:
        if time.monotonic() > deadline:
            return
        if use_real_ids and case.path_parameters:
            case.path_parameters = {k: ids.get(k, v) for k, v in case.path_parameters.items()}
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
