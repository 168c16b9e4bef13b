"""Matching killed at the worst moments (a test-only fault hook exits the process there, like a
SIGKILL), then another replica or a retry picks up what it left behind:

- a cohort run killed while computing is taken over by another replica and finishes (or, with its
  attempts used up, is marked failed with the reason), never `running` forever;
- a cohort publish killed half-way is finished by a retry of the same run, or by the claims
  reconciler: every pair starts exactly once, one capacity claim each;
- an accept killed between taking the mentor's slot and writing the accept leaks no slot: the
  claims reconciler releases it after its grace period (and re-takes a claim gone missing).
"""

from __future__ import annotations

import time
import uuid
from collections import Counter
from datetime import timedelta
from typing import Any

import httpx
import pytest

from matching_service.faults import FAULT_EXIT_STATUS
from mentorship_contracts import Envelope, Topic, decode
from mentorship_contracts.matching import CohortMatchPublished, MentorshipStartedV2
from mentorship_contracts.profile import ProfileState
from mentorship_kit.metrics import REGISTRY
from tests.integration.matching.conftest import ADMIN, person, publish
from tests.support.kafka import eventually, read_topic
from tests.support.processes import token

pytestmark = pytest.mark.integration

STARTED = MentorshipStartedV2.event_type
COHORT_PUBLISHED = CohortMatchPublished.event_type


def db_of(mongo: Any, prefix: str) -> Any:
    return mongo[f"{prefix.replace('.', '_').strip('_')}_matching"]


def died(proc: Any, timeout: float = 60) -> int | None:
    deadline = time.monotonic() + timeout
    while proc.proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.1)
    return proc.proc.returncode


async def profiles(infra: Any, prefix: str, mongo: Any, *people: Any) -> None:
    """Publish the profiles on profile.state and wait until matching's read model and capacity documents have them."""
    await publish(
        infra,
        prefix,
        Topic.PROFILE_STATE,
        [Envelope.wrap(ProfileState(profile_id=p.profile_id, version=1, profile=p), source="profile") for p in people],
    )
    db = db_of(mongo, prefix)
    ids = [p.profile_id for p in people]
    mentors = [p.profile_id for p in people if "mentor" in p.roles]

    async def known() -> bool:
        return await db["profiles"].count_documents({"_id": {"$in": ids}}) == len(ids) and await db[
            "mentor_loads"
        ].count_documents({"_id": {"$in": mentors}}) == len(mentors)

    await eventually(known, timeout=90)


async def cohort(http: httpx.AsyncClient, infra: Any, prefix: str, mongo: Any) -> tuple[str, list[Any], list[Any]]:
    """A program with two mentors (two slots each) and three mentees, everyone enrolled."""
    mentors = [person(["mentor"], mentor_capacity=2) for _ in range(2)]
    mentees = [person(["mentee"], seniority="junior", skills=[]) for _ in range(3)]
    await profiles(infra, prefix, mongo, *mentors, *mentees)
    r = await http.post(
        "/programs",
        headers=ADMIN,
        json={
            "name": f"Cohort {uuid.uuid4().hex[:6]}",
            "starts_on": "2026-03-01",
            "ends_on": "2026-08-31",
            "mode": "admin-approved",
            "cadence": "weekly",
            "duration_weeks": 12,
        },
    )
    assert r.status_code == 201, r.text
    program_id = r.json()["program_id"]
    for people, role in ((mentors, "mentor"), (mentees, "mentee")):
        for p in people:
            r = await http.post(
                f"/programs/{program_id}/enrollments", headers=ADMIN, json={"profile_id": p.profile_id, "role": role}
            )
            assert r.status_code == 201, r.text
    return program_id, mentors, mentees


async def run_state(db: Any, run_id: str, *states: str) -> dict[str, Any] | None:
    run = await db["runs"].find_one({"_id": run_id})
    return run if run is not None and run["status"] in states else None


def metric(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


# --- 1. durable cohort runs ----------------------------------------------------------------------
async def test_a_run_whose_replica_dies_while_computing_is_taken_over_and_finishes(
    spawn, start_matching, infra, prefix, mongo
):
    doomed = spawn("matching", fault_exit_at="cohort_run_computed", cohort_run_lease_seconds="2")
    db = db_of(mongo, prefix)
    async with httpx.AsyncClient(base_url=doomed.url, timeout=20) as http:
        program_id, _, mentees = await cohort(http, infra, prefix, mongo)
        r = await http.post(f"/programs/{program_id}/runs", headers=ADMIN, json={})
        assert r.status_code == 202, r.text
        run_id = r.json()["run_id"]
    assert died(doomed) == FAULT_EXIT_STATUS  # killed after computing, before writing the result
    assert (await db["runs"].find_one({"_id": run_id}))["status"] == "running"

    survivor = await start_matching(cohort_run_lease_seconds=2, cohort_run_watch_seconds=0.3)
    run = await eventually(lambda: run_state(db, run_id, "done", "failed"), timeout=120)
    assert run["status"] == "done" and run["attempts"] == 2
    assert run["lease_owner"] == survivor.matching.cohorts.owner
    assert sorted(a["mentee_id"] for a in run["assignments"]) == sorted(m.profile_id for m in mentees)
    r = await survivor.http.post(f"/programs/{program_id}/runs/{run_id}/publish", headers=ADMIN)
    assert r.status_code == 200 and r.json()["status"] == "published", r.text


async def test_a_run_out_of_attempts_is_failed_with_its_reason_and_can_be_run_again(
    start_matching, register, infra, prefix, mongo
):
    svc = await start_matching(cohort_run_max_attempts=2, cohort_run_watch_seconds=3600)
    program_id, _, _ = await cohort(svc.http, infra, prefix, mongo)
    db = db_of(mongo, prefix)
    now = svc.runtime.clock.now()
    lapsed = {"status": "running", "lease_owner": "gone-replica", "lease_until": now - timedelta(seconds=5)}
    program = await svc.matching.store.get_program(program_id)
    base = {"program_id": program_id, "program_version": program["version"], "progress": 0.4, "created_at": now}
    base |= {"created_by": "admin-1", "k": 10, "pins": [], "forbids": []}
    await db["runs"].insert_one({"_id": "r-tired", **base, **lapsed, "attempts": 2})
    await db["runs"].insert_one({"_id": "r-stale", **base, **lapsed, "attempts": 1, "program_version": 0})
    assert await svc.matching.cohorts.take_over_runs() == 2
    tired, stale = await db["runs"].find_one({"_id": "r-tired"}), await db["runs"].find_one({"_id": "r-stale"})
    assert tired["status"] == "failed" and "stopped 2 times" in tired["error"], tired
    assert stale["status"] == "failed" and "changed while the run was computing" in stale["error"], stale
    r = await svc.http.get(f"/programs/{program_id}/runs/r-tired", headers=ADMIN)
    assert r.json()["status"] == "failed" and "start a new run" in r.json()["error"]
    assert await svc.matching.cohorts.take_over_runs() == 0
    r = await svc.http.post(f"/programs/{program_id}/runs", headers=ADMIN, json={})
    assert r.status_code == 202
    assert (await eventually(lambda: run_state(db, r.json()["run_id"], "done"), timeout=90))["attempts"] == 1


# --- 2. publish idempotent and resumable ---------------------------------------------------------
@pytest.mark.parametrize("finished_by", ["retry", "reconciler"])
async def test_a_publish_killed_half_way_is_finished_each_pair_once(
    finished_by, spawn, start_matching, infra, prefix, mongo
):
    doomed = spawn(
        "matching",
        fault_exit_at="cohort_publish_midway",
        cohort_publish_lease_seconds="2",
        claims_reconcile_lease_seconds="2",  # it held the reconciler's lease too: another replica's after this
    )
    db = db_of(mongo, prefix)
    async with httpx.AsyncClient(base_url=doomed.url, timeout=20) as http:
        program_id, mentors, _ = await cohort(http, infra, prefix, mongo)
        r = await http.post(f"/programs/{program_id}/runs", headers=ADMIN, json={})
        run_id = r.json()["run_id"]

        async def done() -> dict[str, Any] | None:
            got = (await http.get(f"/programs/{program_id}/runs/{run_id}", headers=ADMIN)).json()
            return got if got["status"] == "done" else None

        run = await eventually(done, timeout=90)
        assert len(run["assignments"]) == 3
        with pytest.raises(httpx.HTTPError):
            await http.post(f"/programs/{program_id}/runs/{run_id}/publish", headers=ADMIN)
    assert died(doomed) == FAULT_EXIT_STATUS
    # Left behind: the publication claim, every slot, one of the three mentorships, no publication.
    assert await db["mentorship_versions"].count_documents({"run_id": run_id}) == 1
    assert await db["slot_claims"].count_documents({}) == 3
    assert await db["publications"].count_documents({}) == 0

    quick = finished_by == "reconciler"
    survivor = await start_matching(
        cohort_publish_lease_seconds=2,
        claims_reconcile_lease_seconds=2,
        claims_reconcile_seconds=0.3 if quick else 3600,
        claims_grace_seconds=0 if quick else 3600,  # the reconciler leaves a cut-short publish alone this long
    )
    if finished_by == "retry":
        r = await survivor.http.post(f"/programs/{program_id}/runs/{run_id}/publish", headers=ADMIN)
        assert r.status_code == 200 and r.json()["status"] == "published", r.text
    else:
        await eventually(lambda: run_state(db, run_id, "published"), timeout=120)
    again = await survivor.http.post(f"/programs/{program_id}/runs/{run_id}/publish", headers=ADMIN)
    assert again.status_code == 409

    versions = await db["mentorship_versions"].find({"run_id": run_id}).to_list()
    mids = sorted(v["mentorship_id"] for v in versions)
    assert len(mids) == 3 and len(set(mids)) == 3
    claims = await db["slot_claims"].find({}).to_list()
    assert sorted(c["mentorship_id"] for c in claims) == mids  # one claim per mentorship, none leaked
    for mentor in mentors:
        load = await survivor.matching.store.load(mentor.profile_id)
        assert load["free"] >= 0 and load["capacity"] - load["free"] == sum(
            1 for v in versions if v["mentor_id"] == mentor.profile_id
        )

    records = await read_topic(infra.kafka_bootstrap, f"{prefix}{Topic.MATCHING}", want=99, timeout=8)
    events = [decode(r.value) for r in records]
    started_ids = {(e.subject, e.id) for e in events if e.type == STARTED}
    assert sorted(Counter(subject for subject, _ in started_ids).items()) == [(m, 1) for m in mids]
    assert len({e.id for e in events if e.type == COHORT_PUBLISHED}) == 1
    claim = await db["publication_claims"].find_one({"run_id": run_id})
    assert claim["state"] == "published"


# --- 3. capacity claims reconciled against mentorships -------------------------------------------
async def test_an_accept_killed_after_taking_the_slot_leaks_nothing(spawn, start_matching, infra, prefix, mongo):
    doomed = spawn("matching", fault_exit_at="accept_after_slot", claims_reconcile_lease_seconds="2")
    db = db_of(mongo, prefix)
    mentor = person(["mentor"], mentor_capacity=1)
    mentee = person(["mentee"], seniority="junior", skills=[])
    await profiles(infra, prefix, mongo, mentor, mentee)
    async with httpx.AsyncClient(base_url=doomed.url, timeout=20) as http:
        r = await http.post("/mentorships", headers=token(mentee.profile_id), json={"mentor_id": mentor.profile_id})
        assert r.status_code == 201, r.text
        mid = r.json()["mentorship_id"]
        with pytest.raises(httpx.HTTPError):
            await http.post(f"/mentorships/{mid}/accept", headers=token(mentor.profile_id), json={})
    assert died(doomed) == FAULT_EXIT_STATUS
    leaked = await db["slot_claims"].find_one({"mentor_id": mentor.profile_id})
    assert leaked is not None and leaked["mentorship_id"] == mid  # the slot is taken, the accept never written

    before = metric("mentorship_claims_repaired_total", service="matching", kind="orphan_released")
    survivor = await start_matching(
        claims_reconcile_seconds=0.3, claims_grace_seconds=1, claims_reconcile_lease_seconds=2
    )

    async def released() -> bool:
        return await db["slot_claims"].count_documents({"mentor_id": mentor.profile_id}) == 0

    await eventually(released, timeout=60)
    assert metric("mentorship_claims_repaired_total", service="matching", kind="orphan_released") == before + 1
    r = await survivor.http.post(f"/mentorships/{mid}/accept", headers=token(mentor.profile_id), json={})
    assert r.status_code == 200, r.text  # the mentor's one slot is free again
    load = await survivor.matching.store.load(mentor.profile_id)
    assert load["holders"] == [mid] and load["free"] == 0


async def test_the_reconciler_retakes_a_missing_claim_and_drops_a_duplicate(
    start_matching, register, infra, prefix, mongo
):
    svc = await start_matching(claims_reconcile_seconds=3600, claims_grace_seconds=0)
    mentor = person(["mentor"], mentor_capacity=3)
    mentee = person(["mentee"], seniority="junior", skills=[])
    await register(svc, mentor, mentee)
    r = await svc.http.post("/mentorships", headers=token(mentee.profile_id), json={"mentor_id": mentor.profile_id})
    mid = r.json()["mentorship_id"]
    r = await svc.http.post(f"/mentorships/{mid}/accept", headers=token(mentor.profile_id), json={})
    assert r.status_code == 200, r.text
    db = db_of(mongo, prefix)
    assert await svc.matching.claims.reconcile() == {}  # consistent: nothing to repair

    await db["slot_claims"].delete_many({"mentorship_id": mid})  # e.g. a mistaken manual clean-up
    assert await svc.matching.claims.reconcile() == {"missing_retaken": 1}
    assert (await svc.matching.store.load(mentor.profile_id))["holders"] == [mid]

    await svc.matching.store.take_slot(mentor.profile_id, mid)  # a second claim of the same mentorship
    assert (await svc.matching.store.load(mentor.profile_id))["free"] == 1
    assert await svc.matching.claims.reconcile() == {"duplicate_released": 1}
    assert (await svc.matching.store.load(mentor.profile_id))["free"] == 2
