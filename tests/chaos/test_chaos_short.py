"""The chaos run, short: 75 s of load with a fixed seed, two replicas of every service, replicas,
the broker and the store killed, poison planted. It starts a Kafka and a store of its own (it
kills them), never the suite's shared pair."""

from __future__ import annotations

from pathlib import Path

import pytest

from mentorship_ops.chaos import print_outcome, run_chaos

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(1500)]

SEED = 11
DURATION = 75.0
# "inflight": the replica computing a cohort run, serving a publish or an accept, killed mid-way
# (cohort runs are leased and taken over, publishes resumed, leaked claims reconciled).
FAULTS = ("replica", "broker", "store", "poison", "inflight")


async def test_short_chaos_run_loses_nothing_and_sends_nothing_twice(tmp_path: Path) -> None:
    outcome = await run_chaos(
        duration=DURATION, seed=SEED, state_dir=tmp_path, faults=FAULTS, workers=2, clock_every=12.0
    )
    print_outcome(outcome)  # shown when it fails: the table and every violation
    f = outcome.findings
    assert outcome.kills, "the run killed nothing: it proves nothing"
    assert f.figures.get("events", 0) > 0 and outcome.requests > 0
    assert dict(f.duplicates) == {}, f.details
    assert dict(f.lost) == {}, f.details
    assert dict(f.other) == {}, f.details
    assert outcome.drain_seconds is not None and not outcome.problems, outcome.problems
    assert f.figures["dead letters found"] == f.figures["dead letters planted"] > 0
