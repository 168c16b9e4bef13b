"""The insights report computations (pure): states from facts, health figures, attention, load, gap."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from insights_service.domain import (
    Enrolment,
    Failure,
    Health,
    Pair,
    Person,
    Rating,
    Rules,
    Session,
    attention_reasons,
    health_report,
    mentor_load,
    pair_row,
    supply_gap,
    week_windows,
)

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)  # a Wednesday
RULES = Rules()


def ago(days: float) -> datetime:
    return NOW - timedelta(days=days)


def held(sid: str, days_ago: float) -> Session:
    return Session(sid, start=ago(days_ago), completed_at=ago(days_ago) + timedelta(hours=1))


def pair(mid: str, **kw) -> Pair:
    base = {"mentorship_id": mid, "program_id": "p1", "mentee_id": f"{mid}-mentee", "mentor_id": "mentor-a"}
    base.update(kw)
    return Pair(**base)


def figures(pairs: list[Pair], failures: list[Failure] | None = None) -> dict[str, dict]:
    return {k: v.as_dict() for k, v in Health(pairs, failures or [], NOW, RULES).figures().items()}


def show(x: str | None) -> str | None:
    return x


def test_state_follows_from_the_facts_whatever_order_they_arrived_in() -> None:
    p = pair("m", requested_at=ago(10), accepted_at=ago(9), started_at=ago(9), ended_at=ago(1))
    assert p.state_at(ago(11)) is None
    assert p.state_at(ago(9.5)) == "requested"
    assert p.state_at(ago(5)) == "active"
    assert p.state_at(NOW) == "ended"
    assert pair("d", requested_at=ago(3), declined_at=ago(2)).state_at(NOW) == "declined"
    assert pair("w", requested_at=ago(3), withdrawn_at=ago(2)).state_at(NOW) == "withdrawn"


def test_week_windows_are_the_last_iso_weeks_current_one_last() -> None:
    windows = week_windows(NOW, 8)
    assert len(windows) == 8
    assert windows[-1][0] == datetime(2026, 11, 23, tzinfo=UTC)  # Monday of NOW's week
    assert windows[0][0] == datetime(2026, 10, 5, tzinfo=UTC)
    assert all(e - s == timedelta(weeks=1) for s, e in windows)


def test_request_figures_pending_ages_acceptance_rate_and_time_to_accept() -> None:
    pairs = [
        pair("a", requested_at=ago(10), accepted_at=ago(8), started_at=ago(8)),  # 48 h to accept
        pair("b", requested_at=ago(6), accepted_at=ago(5.5), started_at=ago(5.5)),  # 12 h
        pair("c", requested_at=ago(6), declined_at=ago(5)),
        pair("d", requested_at=ago(20), expired_at=ago(6)),
        pair("e", requested_at=ago(3)),
        pair("f", requested_at=ago(1)),
        pair("g", requested_at=ago(2), withdrawn_at=ago(1)),  # not an answer
    ]
    f = figures(pairs)
    assert f["requests_pending"]["value"] == 2
    assert f["pending_oldest_hours"]["value"] == 72.0
    assert f["pending_median_hours"]["value"] == 48.0
    assert f["acceptance_rate"]["value"] == 0.5  # 2 accepted of 4 answered
    assert f["median_hours_to_accept"]["value"] == 30.0
    assert f["enrolled_mentees"]["value"] == 7 and f["enrolled_mentors"]["value"] == 1
    assert f["matched_mentees"]["value"] == 2 and f["unmatched_mentees"]["value"] == 5
    # The weekly series: one value per week; the last week holds what happened in it.
    assert len(f["requests_pending"]["weekly"]) == 8
    assert f["requests_pending"]["weekly"][-1] == 2
    assert f["acceptance_rate"]["weekly"][-1] is None  # nothing answered since Monday
    assert f["acceptance_rate"]["weekly"][-2] == 0.5  # all four answers fell in the week before


def test_pair_counts_sessions_against_cadence_ratings_milestones_failures() -> None:
    weekly = pair(
        "a",
        origin="cohort",
        cadence="weekly",
        started_at=ago(30),
        sessions=(
            held("s1", 28),
            held("s2", 21),
            held("s3", 14),
            held("s4", 7),
            Session("s5", start=ago(3), cancelled_at=ago(4)),
        ),
        ratings=(Rating(5, ago(27)), Rating(4, ago(20))),
        milestones=(ago(10),),
    )
    silent = pair(
        "b",
        origin="cohort",
        cadence="biweekly",
        started_at=ago(30),
        mentee_id="b-mentee",
        ratings=(Rating(2, ago(25), not_a_good_fit=True),),
    )
    done = pair("c", origin="cohort", cadence="monthly", started_at=ago(60), completed_at=ago(2))
    gone = pair("d", origin="cohort", started_at=ago(60), ended_at=ago(40), ended_not_a_good_fit=True)
    failures = [Failure("f1", ago(1)), Failure("f2", ago(100))]
    f = figures([weekly, silent, done, gone], failures)
    assert (f["active_pairs"]["value"], f["completed_pairs"]["value"], f["ended_pairs"]["value"]) == (2, 1, 1)
    assert f["sessions_held"]["value"] == 4
    assert f["average_session_rating"]["value"] == round((5 + 4 + 2) / 3, 3)
    assert f["milestones_reached"]["value"] == 1
    assert f["notification_failures"]["value"] == 2
    assert f["notification_failures"]["weekly"][-1] == 1  # only the recent one is in the series
    # silent: 30 days without a session on a biweekly cadence: overdue; inactive after 3 x 14 = 42 days: not yet
    assert f["pairs_overdue"]["value"] == 1 and f["pairs_inactive"]["value"] == 0
    # Pair-days in programs: a 30, b 30, c 58, d 20 -> 138; held 4; planned 30/7 + 30/14 + 58/30 + 20/14
    per_month, planned, attainment = Health([weekly, silent, done, gone], [], NOW, RULES).session_rates(
        datetime.min.replace(tzinfo=UTC), NOW
    )
    assert round(per_month, 3) == round(4 / 138 * 30, 3)
    assert round(planned, 3) == round((30 / 7 + 30 / 14 + 58 / 30 + 20 / 14) / 138 * 30, 3)
    assert round(attainment, 3) == round(4 / (30 / 7 + 30 / 14 + 58 / 30 + 20 / 14), 3)


def test_a_signal_from_scheduling_counts_until_a_session_answers_it() -> None:
    p = pair(
        "a",
        origin="cohort",
        cadence="monthly",
        started_at=ago(20),
        inactive_since=ago(2),
        overdue_since=ago(5),
        sessions=(held("s1", 10),),
    )
    # Silence 10 days < monthly: not overdue by the clock; the overdue signal (5 days ago) came after the
    # last session's completion (10 days ago): it stands. Inactive likewise.
    assert p.overdue_at(NOW) and p.inactive_at(NOW, RULES)
    answered = pair(
        "b", origin="cohort", cadence="monthly", started_at=ago(20), overdue_since=ago(15), sessions=(held("s1", 10),)
    )
    assert not answered.overdue_at(NOW)


def test_attention_lists_each_reason() -> None:
    p = pair(
        "a",
        origin="cohort",
        cadence="weekly",
        started_at=ago(40),
        sessions=(held("s1", 30),),
        ratings=(Rating(2, ago(30)), Rating(3, ago(30))),
    )
    codes = [r["code"] for r in attention_reasons(p, NOW, RULES)]
    assert codes == ["no_session_within_cadence", "inactive", "low_rating"]
    flagged = pair(
        "b", origin="cohort", cadence="monthly", started_at=ago(5), ratings=(Rating(4, ago(1), not_a_good_fit=True),)
    )
    assert [r["code"] for r in attention_reasons(flagged, NOW, RULES)] == ["not_a_good_fit"]
    waiting = pair("c", requested_at=ago(8))
    assert [r["code"] for r in attention_reasons(waiting, NOW, RULES)] == ["request_unanswered"]
    assert attention_reasons(pair("d", requested_at=ago(6)), NOW, RULES) == []
    fine = pair(
        "e",
        origin="cohort",
        cadence="weekly",
        started_at=ago(20),
        sessions=(held("s1", 3),),
        ratings=(Rating(4, ago(3)),),
    )
    assert attention_reasons(fine, NOW, RULES) == []
    # A finished pair needs no attention, whatever happened in it.
    assert (
        attention_reasons(pair("f", started_at=ago(90), ended_at=ago(1), ended_not_a_good_fit=True), NOW, RULES) == []
    )


def test_mentor_load_counts_active_pairs_everywhere_against_capacity() -> None:
    here = [pair("a", started_at=ago(5), mentor_id="m1"), pair("b", requested_at=ago(1), mentor_id="m2")]
    elsewhere = [
        pair("c", program_id="p2", started_at=ago(5), mentor_id="m1"),
        pair("d", program_id="p2", started_at=ago(5), ended_at=ago(1), mentor_id="m1"),
    ]
    people = {"m1": Person("m1", ("mentor",), mentor_capacity=2), "m2": Person("m2", ("mentor",), mentor_capacity=None)}
    rows = mentor_load(here, here + elsewhere, people, NOW, show)
    assert rows[0] == {
        "mentor_id": "m1",
        "active_in_program": 1,
        "active_total": 2,
        "pending_requests": 0,
        "capacity": 2,
        "load": 1.0,
        "at_capacity": True,
    }
    assert rows[1]["mentor_id"] == "m2" and rows[1]["pending_requests"] == 1 and rows[1]["load"] is None


def test_supply_gap_lists_skills_sought_that_no_mentor_offers() -> None:
    people = [
        Person("e1", ("mentee",), skills_sought=("rust", "public-speaking")),
        Person("e2", ("mentee",), skills_sought=("rust", "python")),
        Person("e3", ("mentee",), active=False, skills_sought=("cobol",)),
        Person("m1", ("mentor",), skills_offered=("python",)),
        Person("m2", ("mentor",), active=False, skills_offered=("rust",)),  # inactive mentors offer nothing
    ]
    gap = supply_gap(people, 10)
    assert gap["skills"] == [
        {"skill": "rust", "mentees_seeking": 2, "mentors_offering": 0},
        {"skill": "public-speaking", "mentees_seeking": 1, "mentors_offering": 0},
    ]
    assert supply_gap(people, 1)["skills"][0]["skill"] == "rust"


def test_health_report_shape_and_pair_row() -> None:
    p = pair(
        "a",
        requested_at=ago(3),
        accepted_at=ago(2),
        started_at=ago(2),
        cadence="weekly",
        sessions=(held("s1", 1),),
        ratings=(Rating(4, ago(1)),),
    )
    report = health_report({"program_id": "p1", "name": "Spring"}, [p], [], NOW, RULES)
    assert report["program_id"] == "p1" and len(report["weeks"]) == 8
    assert all(set(v) == {"value", "weekly"} and len(v["weekly"]) == 8 for v in report["figures"].values())
    row = pair_row(p, NOW, RULES, lambda x: "erased" if x == "a-mentee" else x)
    assert row["mentee_id"] == "erased" and row["state"] == "active" and row["sessions_held"] == 1
    assert row["average_rating"] == 4.0 and row["attention"] == ""


def test_event_ids_become_safe_field_names_and_the_latest_reschedule_wins() -> None:
    from insights_service.adapters.read_models import field_key, to_session

    assert field_key("s-1_A") == "s-1_A"
    assert all(c not in field_key(raw) for raw in ("a.b", "$where", "x" * 500) for c in ".$")
    assert field_key("a.b") == field_key("a.b") != field_key("a.c")
    moved = to_session("s", {"starts": {"s0": ago(3), "s2": ago(1), "s1": ago(2)}})
    assert moved.start == ago(1) and not moved.held
    done = to_session("s", {"starts": {"s0": ago(3)}, "held_start": ago(4), "completed_at": ago(4)})
    assert done.held and done.held_at == ago(4)


def test_enrolled_people_count_from_enrolments_and_pairs_and_unmatched_are_those_without_a_start() -> None:
    enrolments = [
        Enrolment("a#1", "a", "mentee", enrolled_at=ago(20)),
        Enrolment("b#1", "b", "mentee", enrolled_at=ago(20), withdrawn_at=ago(10)),
        Enrolment("b#2", "b", "mentee", enrolled_at=ago(3)),
        Enrolment("c#1", "c", "mentee", enrolled_at=ago(20), withdrawn_at=ago(2)),
        Enrolment("d#1", "d", "mentee", withdrawn_at=ago(2)),  # the withdrawal came first: not enrolled
        Enrolment("m#1", "m", "mentor", enrolled_at=ago(20)),
        Enrolment("n#1", "n", "mentor", enrolled_at=ago(1)),
    ]
    pairs = [
        pair("x", mentee_id="a", mentor_id="m", started_at=ago(15), origin="cohort"),
        pair("y", mentee_id="direct-asker", mentor_id="m", requested_at=ago(4)),  # never enrolled: counts
    ]
    health = Health(pairs, [], NOW, RULES, enrolments)
    assert health.enrolled_ids("mentee", NOW) == {"a", "b", "direct-asker"}
    assert health.enrolled_ids("mentee", ago(5)) == {"a", "c"}
    assert health.enrolled_ids("mentee", ago(12)) == {"a", "b", "c"}
    assert health.enrolled("mentor", NOW) == 2 and health.enrolled("mentor", ago(5)) == 1
    assert health.matched_mentees(NOW) == 1
    assert health.unmatched_mentees(NOW) == 2  # b and the pending asker
    f = {k: v.as_dict() for k, v in health.figures().items()}
    assert f["enrolled_mentees"]["value"] == 3 and f["unmatched_mentees"]["value"] == 2
    report = health_report({"program_id": "p1"}, pairs, [], NOW, RULES, enrolments)
    assert report["figures"]["enrolled_mentors"]["value"] == 2


def test_mentor_load_lists_enrolled_mentors_without_pairs() -> None:
    people = {"new": Person("new", roles=("mentor",), mentor_capacity=3)}
    rows = mentor_load([pair("x", started_at=ago(3))], [pair("x", started_at=ago(3))], people, NOW, show, ["new"])
    by_id = {r["mentor_id"]: r for r in rows}
    assert set(by_id) == {"mentor-a", "new"}
    assert by_id["new"]["active_total"] == 0 and by_id["new"]["capacity"] == 3 and by_id["new"]["load"] == 0.0
