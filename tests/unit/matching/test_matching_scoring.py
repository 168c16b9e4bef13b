"""Pure scoring and cohort matching: hard constraints hold on random instances (property test),
the vectorised score equals the explained one, and the flow is optimal on what it is given."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError
from scipy.optimize import linear_sum_assignment

from matching_service.cohort import Candidates, CohortInputError, greedy, match_cohort, quality, solve_flow
from matching_service.domain import Constraints, ProgramSpec, Weights
from matching_service.scoring import MentorIndex, Person, availability_slots, explain, tz_distance_hours, violations

SKILLS = [f"s{i}" for i in range(12)]
OFFSETS = [-600, -300, 0, 60, 330, 540, 780]  # minutes


@st.composite
def people(draw, prefix: str, mentor: bool, n_min: int, n_max: int):
    n = draw(st.integers(n_min, n_max))
    out = []
    for i in range(n):
        pid = f"{prefix}{i}"
        skills = draw(st.dictionaries(st.sampled_from(SKILLS), st.integers(1, 5), max_size=6))
        need_keys = draw(st.lists(st.sampled_from(SKILLS), max_size=5, unique=True))
        slots = draw(st.lists(st.integers(0, 167), max_size=12, unique=True))
        out.append(
            Person(
                profile_id=pid,
                skills=skills,
                needs={k: draw(st.sampled_from([0.4, 0.7, 1.0])) for k in need_keys},
                seniority=draw(st.integers(0, 7)),
                languages=frozenset(draw(st.sets(st.sampled_from(["en", "de", "fr"]), min_size=1))),
                offset_minutes=draw(st.sampled_from(OFFSETS)),
                slots=tuple(sorted(slots)),
                meeting=draw(st.integers(0, 3)),
                manager_id=None,
                roles=frozenset({"mentor"} if mentor else {"mentee"})
                | (frozenset({"mentor"}) if draw(st.booleans()) and not mentor else frozenset()),
                active=draw(st.booleans()) if mentor else True,
                capacity=draw(st.integers(0, 3)),
            )
        )
    return out


@st.composite
def instances(draw):
    mentees = draw(people("e", False, 1, 12))
    mentors = draw(people("r", True, 1, 8))
    # some mentees are also mentors (self), some mentors manage mentees and vice versa
    if draw(st.booleans()):
        mentors.append(
            Person(
                mentees[0].profile_id,
                {"s0": 5},
                {},
                7,
                frozenset({"en"}),
                0,
                (),
                0,
                None,
                frozenset({"mentor", "mentee"}),
                True,
                2,
            )
        )
    managed = []
    for m in mentees:
        boss = draw(st.one_of(st.none(), st.sampled_from([r.profile_id for r in mentors])))
        managed.append(Person(**{**m.__dict__, "manager_id": boss}))
    excluded = {
        m.profile_id: set(draw(st.lists(st.sampled_from([r.profile_id for r in mentors]), max_size=2))) for m in managed
    }
    constraints = Constraints(
        max_tz_distance_hours=draw(st.one_of(st.none(), st.sampled_from([0, 3, 6, 12]))),
        ideal_seniority_gap=draw(st.integers(0, 4)),
    )
    weights = Weights(
        skills=draw(st.floats(0, 1)),
        availability=draw(st.floats(0, 1)),
        seniority=0.1,
        language=draw(st.floats(0, 1)),
        meeting=draw(st.floats(0, 1)),
    )
    return managed, mentors, excluded, constraints, weights


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(instances(), st.integers(1, 6))
def test_hard_constraints_hold_on_random_instances(instance, k):
    mentees, mentors, excluded, constraints, weights = instance
    index = MentorIndex.build(mentors)
    free = np.array([m.capacity for m in index.mentors], dtype=np.int64)
    result = match_cohort(mentees, index, weights, constraints, free_slots=free, k=k, excluded=excluded)
    load = np.zeros(len(index), dtype=np.int64)
    for mentee, j in zip(mentees, result.assignment, strict=True):
        if j < 0:
            continue
        mentor = index.mentors[j]
        load[j] += 1
        # every hard constraint, checked by the scalar rules, independent of the vectorised path
        assert violations(mentee, mentor, constraints, excluded=frozenset(excluded[mentee.profile_id])) == []
        assert mentor.profile_id != mentee.profile_id
        assert mentee.manager_id != mentor.profile_id and mentor.manager_id != mentee.profile_id
        assert mentor.active and "mentor" in mentor.roles
        if constraints.max_tz_distance_hours is not None:
            assert tz_distance_hours(mentee.offset_minutes, mentor.offset_minutes) <= constraints.max_tz_distance_hours
    assert (load <= free).all()
    q = result.quality
    assert q.matched + q.unmatched == len(mentees)
    assert 0 <= q.bound_ratio <= 1 + 1e-9 and 0 <= q.top5_share <= 1
    assert all(0 <= s <= 1 for s in result.scores)


@settings(max_examples=60, deadline=None)
@given(instances())
def test_vectorised_scores_equal_the_explained_scores(instance):
    mentees, mentors, _, constraints, weights = instance
    index = MentorIndex.build(mentors)
    block = index.score_block(mentees, weights, constraints)
    for i, mentee in enumerate(mentees):
        for j, mentor in enumerate(index.mentors):
            if block[i, j] >= 0:
                assert abs(block[i, j] - explain(mentee, mentor, weights, constraints)["score"]) < 1e-4
        np.testing.assert_allclose(index.score_one(mentee, weights, constraints), block[i], atol=1e-5)


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 25), st.integers(1, 10), st.integers(0, 2**31 - 1))
def test_flow_is_optimal_like_the_dense_assignment(n, m, seed):
    rng = np.random.default_rng(seed)
    scores = rng.random((n, m)).astype(np.float32)
    scores[rng.random((n, m)) < 0.3] = -1
    free = rng.integers(0, 3, m)
    cand = Candidates(np.tile(np.arange(m), (n, 1)), scores)
    order = np.argsort(-scores, axis=1, kind="stable")
    cand = Candidates(np.take_along_axis(cand.cols, order, 1), np.take_along_axis(scores, order, 1))
    assignment, assigned = solve_flow(cand, free)
    got = quality(cand, assignment, assigned, free).total_score
    slots = np.repeat(np.arange(m), free)
    if len(slots):
        dense = np.maximum(scores[:, slots], 0).astype(np.float64)
        r, c = linear_sum_assignment(-dense)
        best = dense[r, c].sum()
    else:
        best = 0.0
    assert got == pytest.approx(best, abs=1e-4)
    g, g_scores = greedy(cand, free)
    assert quality(cand, g, g_scores, free).total_score <= got + 1e-4
    assert (np.bincount(assignment[assignment >= 0], minlength=m) <= free).all()


def test_pins_are_honoured_and_ineligible_pins_refused():
    mentors = [
        Person(f"r{i}", {"s0": 5 - i}, {}, 5, frozenset({"en"}), 0, (), 0, None, frozenset({"mentor"}), True, 1)
        for i in range(2)
    ]
    mentees = [
        Person(f"e{i}", {}, {"s0": 1.0}, 2, frozenset({"en"}), 0, (), 0, None, frozenset({"mentee"})) for i in range(2)
    ]
    index = MentorIndex.build(mentors)
    free = np.array([1, 1])
    result = match_cohort(mentees, index, Weights(), Constraints(), free_slots=free, pins=[("e1", "r0")])
    assert [index.ids[j] for j in result.assignment] == ["r1", "r0"]
    result = match_cohort(
        mentees, index, Weights(), Constraints(), free_slots=free, forbids=[("e0", "r0"), ("e1", "r0")]
    )
    assert sorted(int(j) for j in result.assignment) == [-1, 1]
    with pytest.raises(CohortInputError):
        match_cohort(mentees, index, Weights(), Constraints(), free_slots=free, pins=[("e0", "e1")])


def test_explanation_and_time_zones():
    berlin = Person.from_profile(
        {
            "profile_id": "a",
            "time_zone": "Europe/Berlin",
            "roles": ["mentee"],
            "development_areas": ["python"],
            "goals": [{"skills": ["go"], "priority": 3}],
            "availability": [{"weekday": 0, "start": "09:00", "end": "11:00"}],
        },
        datetime(2026, 1, 5, tzinfo=UTC),
    )
    nyc = Person.from_profile(
        {
            "profile_id": "b",
            "time_zone": "America/New_York",
            "roles": ["mentor"],
            "skills": [{"name": "python", "proficiency": 5}],
            "seniority": "staff",
            "availability": [{"weekday": 0, "start": "03:00", "end": "05:00"}],
        },
        datetime(2026, 1, 5, tzinfo=UTC),
    )
    assert berlin.slots == nyc.slots == (8, 9)  # Monday 08:00-10:00 UTC for both
    assert berlin.needs == {"python": 1.0, "go": 0.4}
    assert float(tz_distance_hours(berlin.offset_minutes, nyc.offset_minutes)) == 6.0
    out = explain(berlin, nyc, Weights(), Constraints())
    assert out["breakdown"]["availability"]["value"] == 1.0
    assert out["breakdown"]["skills"]["value"] == pytest.approx(1.0 / 1.4, abs=1e-3)
    assert violations(berlin, nyc, Constraints(max_tz_distance_hours=5)) == ["time zones are more than 5 h apart"]
    assert float(tz_distance_hours(-600, 720)) == 2.0  # across the date line
    assert availability_slots([{"weekday": 6, "start": "23:00", "end": "24:00"}], -60) == [0]  # wraps the week


def test_invalid_configuration_is_refused():
    with pytest.raises(ValidationError):
        Weights(skills=0, availability=0, seniority=0, language=0, meeting=0)
    with pytest.raises(ValidationError):
        Weights(skills=float("nan"))
    with pytest.raises(ValidationError):
        Constraints(max_tz_distance_hours=13)
    with pytest.raises(ValidationError):
        ProgramSpec(name="x", starts_on="2026-02-01", ends_on="2026-01-01")
