"""Pure report computations over what the insights read models keep (no I/O).

A pair is one mentorship from its request (or cohort start) to its end, kept as facts with
times: the state at any moment follows from which facts happened by then. That makes the read
model order-tolerant (each event only sets its own facts) and lets every figure be computed
"as of" a week's end for the weekly series.
"""

from __future__ import annotations

import statistics
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

CADENCE_DAYS = {"weekly": 7, "biweekly": 14, "monthly": 30}
DEFAULT_CADENCE = "biweekly"
DIRECT = "direct"
"""The pseudo-program of mentorships requested outside any program."""
ERASED = "erased"
"""What reports show in place of an erased person's id."""
MONTH_DAYS = 30.0
NEVER = datetime.max.replace(tzinfo=UTC)
BEGINNING = datetime.min.replace(tzinfo=UTC)

STARTED_STATES = ("active", "completed", "ended")


@dataclass(frozen=True)
class Rules:
    """Thresholds of the reports (settings)."""

    unanswered_request_days: float = 7.0
    low_rating_below: float = 3.0
    inactive_after_cadences: float = 3.0
    series_weeks: int = 8


@dataclass(frozen=True)
class Session:
    session_id: str
    start: datetime | None = None
    completed_at: datetime | None = None
    cancelled_at: datetime | None = None
    no_show_at: datetime | None = None

    @property
    def held(self) -> bool:
        return self.completed_at is not None

    @property
    def held_at(self) -> datetime | None:
        """When it took place (its start); a completion report without a start counts at completion."""
        if self.completed_at is None:
            return None
        return self.start or self.completed_at


@dataclass(frozen=True)
class Rating:
    rating: int
    at: datetime
    not_a_good_fit: bool = False


@dataclass(frozen=True)
class Pair:
    mentorship_id: str
    program_id: str | None
    mentee_id: str | None
    mentor_id: str | None
    origin: str = "request"
    cadence: str = DEFAULT_CADENCE
    requested_at: datetime | None = None
    expires_at: datetime | None = None
    accepted_at: datetime | None = None
    declined_at: datetime | None = None
    expired_at: datetime | None = None
    withdrawn_at: datetime | None = None
    started_at: datetime | None = None
    completed_at: datetime | None = None
    ended_at: datetime | None = None
    ended_not_a_good_fit: bool = False
    overdue_since: datetime | None = None
    inactive_since: datetime | None = None
    sessions: tuple[Session, ...] = ()
    ratings: tuple[Rating, ...] = ()
    milestones: tuple[datetime, ...] = ()

    @property
    def is_request(self) -> bool:
        return self.requested_at is not None

    @property
    def first_seen(self) -> datetime | None:
        times = [t for t in (self.requested_at, self.accepted_at, self.started_at) if t is not None]
        return min(times) if times else None

    def state_at(self, t: datetime) -> str | None:
        """The lifecycle state at `t` (None: the pair did not exist yet)."""

        def by(x: datetime | None) -> bool:
            return x is not None and x <= t

        if by(self.ended_at):
            return "ended"
        if by(self.completed_at):
            return "completed"
        if by(self.started_at):
            return "active"
        for name, when in (
            ("declined", self.declined_at),
            ("expired", self.expired_at),
            ("withdrawn", self.withdrawn_at),
        ):
            if by(when):
                return name
        if by(self.accepted_at):
            return "accepted"
        if by(self.requested_at):
            return "requested"
        return None

    @property
    def answered_at(self) -> datetime | None:
        """When the request got its answer (accepted, declined or expired); withdrawals are no answer."""
        times = [t for t in (self.accepted_at, self.declined_at, self.expired_at) if t is not None]
        if self.accepted_at is None and self.started_at is not None and self.requested_at is not None:
            times.append(self.started_at)  # started without a separate accept event
        return min(times) if times else None

    @property
    def accepted_time(self) -> datetime | None:
        return self.accepted_at or (self.started_at if self.requested_at is not None else None)

    @property
    def cadence_days(self) -> float:
        return float(CADENCE_DAYS.get(self.cadence, CADENCE_DAYS[DEFAULT_CADENCE]))

    def finished_at(self) -> datetime | None:
        times = [t for t in (self.completed_at, self.ended_at) if t is not None]
        return min(times) if times else None

    def held_sessions(self, start: datetime = BEGINNING, end: datetime = NEVER) -> list[Session]:
        return [s for s in self.sessions if s.held_at is not None and start <= s.held_at < end]

    def last_session_before(self, t: datetime) -> datetime | None:
        times = [s.held_at for s in self.sessions if s.held_at is not None and s.held_at <= t]
        return max(times) if times else None

    def silence_at(self, t: datetime) -> timedelta | None:
        """How long without a session at `t` (since the last one or the start); None if not active."""
        if self.state_at(t) != "active":
            return None
        anchor = self.last_session_before(t) or self.started_at
        return t - anchor if anchor else None

    def _signal_standing(self, since: datetime | None, t: datetime) -> bool:
        if since is None or since > t:
            return False
        # A session completed after the signal answers it.
        return not any(s.completed_at is not None and since <= s.completed_at <= t for s in self.sessions)

    def overdue_at(self, t: datetime) -> bool:
        silence = self.silence_at(t)
        if silence is None:
            return False
        return silence > timedelta(days=self.cadence_days) or self._signal_standing(self.overdue_since, t)

    def inactive_at(self, t: datetime, rules: Rules) -> bool:
        silence = self.silence_at(t)
        if silence is None:
            return False
        return silence > timedelta(days=self.cadence_days * rules.inactive_after_cadences) or self._signal_standing(
            self.inactive_since, t
        )

    def active_days_in(self, start: datetime, end: datetime) -> float:
        """Days the pair was active inside [start, end)."""
        if self.started_at is None:
            return 0.0
        lo = max(start, self.started_at)
        hi = min(end, self.finished_at() or NEVER)
        return max((hi - lo).total_seconds() / 86400, 0.0)

    def ratings_in(self, start: datetime = BEGINNING, end: datetime = NEVER) -> list[int]:
        return [r.rating for r in self.ratings if start <= r.at < end]

    def average_rating(self) -> float | None:
        values = [r.rating for r in self.ratings]
        return statistics.fmean(values) if values else None

    @property
    def not_a_good_fit(self) -> bool:
        return self.ended_not_a_good_fit or any(r.not_a_good_fit for r in self.ratings)


@dataclass(frozen=True)
class Person:
    profile_id: str
    roles: tuple[str, ...] = ()
    active: bool = True
    mentor_capacity: int | None = None
    skills_offered: tuple[str, ...] = ()
    skills_sought: tuple[str, ...] = ()


@dataclass(frozen=True)
class Enrolment:
    """One enrolment of a person in a program, from ProgramParticipantEnrolled to (maybe)
    ProgramParticipantWithdrawn; either may arrive first (then the other time is unknown)."""

    enrolment_id: str
    profile_id: str
    role: str
    enrolled_at: datetime | None = None
    withdrawn_at: datetime | None = None

    def enrolled_by(self, t: datetime) -> bool:
        if self.enrolled_at is None or self.enrolled_at > t:
            return False
        return self.withdrawn_at is None or self.withdrawn_at > t


@dataclass(frozen=True)
class Failure:
    delivery_id: str
    failed_at: datetime
    channel: str = ""
    category: str = ""


# --- helpers ---------------------------------------------------------------------------------


def _round(value: float | None, digits: int = 3) -> float | None:
    return None if value is None else round(value, digits)


def _median(values: Sequence[float]) -> float | None:
    return statistics.median(values) if values else None


def _hours(delta: timedelta) -> float:
    return delta.total_seconds() / 3600


def week_windows(now: datetime, weeks: int) -> list[tuple[datetime, datetime]]:
    """The last `weeks` ISO weeks (Monday 00:00 UTC), the current partial week last."""
    today = now.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    monday = today - timedelta(days=today.weekday())
    starts = [monday - timedelta(weeks=weeks - 1 - i) for i in range(weeks)]
    return [(s, s + timedelta(weeks=1)) for s in starts]


# --- program health --------------------------------------------------------------------------


@dataclass(frozen=True)
class Figure:
    value: float | int | None
    weekly: list[float | int | None] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"value": self.value, "weekly": self.weekly}


class Health:
    """Every health figure of a set of pairs, as a number now and a weekly series."""

    def __init__(
        self,
        pairs: Sequence[Pair],
        failures: Sequence[Failure],
        now: datetime,
        rules: Rules,
        enrolments: Sequence[Enrolment] = (),
    ) -> None:
        self.pairs = list(pairs)
        self.failures = list(failures)
        self.now = now
        self.rules = rules
        self.enrolments = list(enrolments)

    # Stocks: the value at a moment. Flows: over a window [start, end).
    def enrolled_ids(self, role: str, t: datetime) -> set[str]:
        """Enrolled at `t`, and everyone who took part in the program's mentorships by then
        (requests included: a direct request names no enrolment)."""
        ids = {e.profile_id for e in self.enrolments if e.role == role and e.enrolled_by(t)}
        ids |= {getattr(p, f"{role}_id") for p in self.pairs if p.first_seen is not None and p.first_seen <= t}
        return ids - {None}

    def enrolled(self, role: str, t: datetime) -> int:
        return len(self.enrolled_ids(role, t))

    def matched_ids(self, t: datetime) -> set[str]:
        return {p.mentee_id for p in self.pairs if p.state_at(t) in STARTED_STATES and p.mentee_id}

    def matched_mentees(self, t: datetime) -> int:
        return len(self.matched_ids(t))

    def unmatched_mentees(self, t: datetime) -> int:
        """Enrolled mentees without a started mentorship (a pending request does not match)."""
        return len(self.enrolled_ids("mentee", t) - self.matched_ids(t))

    def pending_ages(self, t: datetime) -> list[float]:
        return [
            _hours(t - p.requested_at)
            for p in self.pairs
            if p.requested_at is not None and p.state_at(t) == "requested"
        ]

    def count_state(self, state: str, t: datetime) -> int:
        return sum(1 for p in self.pairs if p.state_at(t) == state)

    def acceptance_rate(self, start: datetime, end: datetime) -> float | None:
        answered = [
            p
            for p in self.pairs
            if p.is_request and p.answered_at is not None and start <= p.answered_at < end and p.answered_at <= self.now
        ]
        if not answered:
            return None
        accepted = [p for p in answered if p.accepted_time is not None and p.accepted_time == p.answered_at]
        return len(accepted) / len(answered)

    def median_hours_to_accept(self, start: datetime, end: datetime) -> float | None:
        waits = [
            _hours(p.accepted_time - p.requested_at)
            for p in self.pairs
            if p.requested_at is not None
            and p.accepted_time is not None
            and start <= p.accepted_time < end
            and p.accepted_time <= self.now
        ]
        return _median(waits)

    def sessions_held(self, start: datetime, end: datetime) -> int:
        return sum(len(p.held_sessions(start, min(end, self.now + timedelta(microseconds=1)))) for p in self.pairs)

    def session_rates(self, start: datetime, end: datetime) -> tuple[float | None, float | None, float | None]:
        """(held per pair per month, planned per pair per month by cadence, held / planned) in a window."""
        end = min(end, self.now)
        pair_days = 0.0
        planned = 0.0
        held = 0
        for p in self.pairs:
            days = p.active_days_in(start, end)
            if days <= 0:
                continue
            pair_days += days
            planned += days / p.cadence_days
            held += len(p.held_sessions(start, end))
        if pair_days <= 0:
            return None, None, None
        per_month = held / pair_days * MONTH_DAYS
        planned_per_month = planned / pair_days * MONTH_DAYS
        return per_month, planned_per_month, (held / planned if planned else None)

    def overdue(self, t: datetime) -> int:
        return sum(1 for p in self.pairs if p.overdue_at(t))

    def inactive(self, t: datetime) -> int:
        return sum(1 for p in self.pairs if p.inactive_at(t, self.rules))

    def average_rating(self, start: datetime, end: datetime) -> float | None:
        values = [r for p in self.pairs for r in p.ratings_in(start, end)]
        return statistics.fmean(values) if values else None

    def milestones(self, start: datetime, end: datetime) -> int:
        return sum(1 for p in self.pairs for m in p.milestones if start <= m < end)

    def failures_in(self, start: datetime, end: datetime) -> int:
        return sum(1 for f in self.failures if start <= f.failed_at < end)

    def figures(self) -> dict[str, Figure]:
        now = self.now
        windows = week_windows(now, self.rules.series_weeks)
        ends = [min(e, now) for _, e in windows]
        everything = (BEGINNING, now + timedelta(microseconds=1))

        def stock(fn: Callable[[datetime], float | None], digits: int = 3) -> Figure:
            def r(v: float | None) -> float | None:
                return _round(v, digits) if isinstance(v, float) else v

            return Figure(r(fn(now)), [r(fn(t)) for t in ends])

        def flow(fn: Callable[[datetime, datetime], float | None]) -> Figure:
            def r(v: float | None) -> float | None:
                return _round(v) if isinstance(v, float) else v

            return Figure(r(fn(*everything)), [r(fn(s, e)) for s, e in windows])

        def oldest(t: datetime) -> float | None:
            ages = self.pending_ages(t)
            return max(ages) if ages else None

        rates = {w: self.session_rates(*w) for w in [everything, *windows]}

        def rate(i: int) -> Figure:
            return Figure(_round(rates[everything][i]), [_round(rates[w][i]) for w in windows])

        return {
            "enrolled_mentees": stock(lambda t: self.enrolled("mentee", t)),
            "enrolled_mentors": stock(lambda t: self.enrolled("mentor", t)),
            "matched_mentees": stock(self.matched_mentees),
            "unmatched_mentees": stock(self.unmatched_mentees),
            "requests_pending": stock(lambda t: len(self.pending_ages(t))),
            "pending_oldest_hours": stock(oldest, 1),
            "pending_median_hours": stock(lambda t: _median(self.pending_ages(t)), 1),
            "acceptance_rate": flow(self.acceptance_rate),
            "median_hours_to_accept": flow(self.median_hours_to_accept),
            "active_pairs": stock(lambda t: self.count_state("active", t)),
            "completed_pairs": stock(lambda t: self.count_state("completed", t)),
            "ended_pairs": stock(lambda t: self.count_state("ended", t)),
            "sessions_held": flow(self.sessions_held),
            "sessions_per_pair_per_month": rate(0),
            "planned_sessions_per_pair_per_month": rate(1),
            "cadence_attainment": rate(2),
            "pairs_overdue": stock(self.overdue),
            "pairs_inactive": stock(self.inactive),
            "average_session_rating": flow(self.average_rating),
            "milestones_reached": flow(self.milestones),
            "notification_failures": flow(self.failures_in),
        }


def health_report(
    program: dict[str, Any],
    pairs: Sequence[Pair],
    failures: Sequence[Failure],
    now: datetime,
    rules: Rules,
    enrolments: Sequence[Enrolment] = (),
) -> dict[str, Any]:
    health = Health(pairs, failures, now, rules, enrolments)
    windows = week_windows(now, rules.series_weeks)
    return {
        "program_id": program["program_id"],
        "name": program.get("name"),
        "as_of": now.isoformat(),
        "weeks": [s.date().isoformat() for s, _ in windows],
        "figures": {name: fig.as_dict() for name, fig in health.figures().items()},
    }


# --- attention -------------------------------------------------------------------------------


def attention_reasons(p: Pair, now: datetime, rules: Rules) -> list[dict[str, Any]]:
    """Why a pair needs a program manager's attention (empty: it does not)."""
    reasons: list[dict[str, Any]] = []
    state = p.state_at(now)
    if state == "requested" and p.requested_at is not None:
        waited = now - p.requested_at
        if waited > timedelta(days=rules.unanswered_request_days):
            reasons.append(
                {
                    "code": "request_unanswered",
                    "days": round(waited.total_seconds() / 86400, 1),
                    "detail": f"request unanswered for more than {rules.unanswered_request_days:g} days",
                }
            )
    if state != "active":
        return reasons
    silence = p.silence_at(now)
    if p.overdue_at(now) and silence is not None:
        last = p.last_session_before(now)
        reasons.append(
            {
                "code": "no_session_within_cadence",
                "cadence": p.cadence,
                "days_without_session": round(silence.total_seconds() / 86400, 1),
                "last_session_at": last.isoformat() if last else None,
                "detail": f"no session for {silence.days} days with a {p.cadence} cadence",
            }
        )
    if p.inactive_at(now, rules):
        reasons.append({"code": "inactive", "detail": "a long silence: the mentorship looks inactive"})
    avg = p.average_rating()
    if avg is not None and avg < rules.low_rating_below:
        reasons.append(
            {
                "code": "low_rating",
                "average_rating": round(avg, 2),
                "ratings": len(p.ratings),
                "detail": f"average session rating {avg:.1f} is below {rules.low_rating_below:g}",
            }
        )
    if p.not_a_good_fit:
        reasons.append({"code": "not_a_good_fit", "detail": "a participant flagged the pairing as not a good fit"})
    return reasons


def attention_list(
    pairs: Iterable[Pair], now: datetime, rules: Rules, show: Callable[[str | None], str | None]
) -> list[dict[str, Any]]:
    found = [(p, attention_reasons(p, now, rules)) for p in pairs]
    found.sort(key=lambda pr: (-len(pr[1]), pr[0].mentorship_id))
    return [
        {
            "mentorship_id": p.mentorship_id,
            "program_id": p.program_id,
            "mentee_id": show(p.mentee_id),
            "mentor_id": show(p.mentor_id),
            "state": p.state_at(now),
            "reasons": reasons,
        }
        for p, reasons in found
        if reasons
    ]


# --- mentor load -----------------------------------------------------------------------------


def mentor_load(
    program_pairs: Sequence[Pair],
    all_pairs: Sequence[Pair],
    people: dict[str, Person],
    now: datetime,
    show: Callable[[str | None], str | None],
    enrolled_mentors: Iterable[str] = (),
) -> list[dict[str, Any]]:
    """Capacity used by each mentor of the program: in its mentorships or enrolled now (capacity
    is platform-wide, so is the load)."""
    mentors = sorted({p.mentor_id for p in program_pairs if p.mentor_id} | set(enrolled_mentors))
    active_all = Counter(p.mentor_id for p in all_pairs if p.state_at(now) == "active")
    pending_all = Counter(p.mentor_id for p in all_pairs if p.state_at(now) == "requested")
    active_here = Counter(p.mentor_id for p in program_pairs if p.state_at(now) == "active")
    loads: list[tuple[float, int, str]] = []
    for mentor in mentors:
        person = people.get(mentor)
        capacity = person.mentor_capacity if person else None
        used = active_all[mentor]
        loads.append((used / capacity if capacity else -1.0, used, mentor))
    loads.sort(key=lambda x: (-x[0], -x[1], x[2]))  # fullest first; unknown capacity last
    rows = []
    for _, used, mentor in loads:
        person = people.get(mentor)
        capacity = person.mentor_capacity if person else None
        rows.append(
            {
                "mentor_id": show(mentor),
                "active_in_program": active_here[mentor],
                "active_total": used,
                "pending_requests": pending_all[mentor],
                "capacity": capacity,
                "load": round(used / capacity, 3) if capacity else None,
                "at_capacity": bool(capacity is not None and used >= capacity),
            }
        )
    return rows


# --- supply gap ------------------------------------------------------------------------------


def supply_gap(people: Iterable[Person], limit: int) -> dict[str, Any]:
    """Skills active mentees seek that no active mentor offers, most sought first."""
    live = [p for p in people if p.active]
    mentees = [p for p in live if "mentee" in p.roles]
    mentors = [p for p in live if "mentor" in p.roles]
    offered = {s for m in mentors for s in m.skills_offered}
    sought = Counter(s for m in mentees for s in set(m.skills_sought))
    gap = sorted(((skill, n) for skill, n in sought.items() if skill not in offered), key=lambda x: (-x[1], x[0]))
    return {
        "mentees_considered": len(mentees),
        "mentors_considered": len(mentors),
        "skills": [{"skill": skill, "mentees_seeking": n, "mentors_offering": 0} for skill, n in gap[:limit]],
    }


# --- CSV rows --------------------------------------------------------------------------------

PAIR_COLUMNS = [
    "mentorship_id",
    "program_id",
    "mentee_id",
    "mentor_id",
    "state",
    "origin",
    "cadence",
    "requested_at",
    "accepted_at",
    "started_at",
    "finished_at",
    "sessions_held",
    "last_session_at",
    "average_rating",
    "ratings",
    "milestones_reached",
    "not_a_good_fit",
    "attention",
]


def _iso(t: datetime | None) -> str:
    return t.isoformat() if t else ""


def pair_row(p: Pair, now: datetime, rules: Rules, show: Callable[[str | None], str | None]) -> dict[str, Any]:
    avg = p.average_rating()
    return {
        "mentorship_id": p.mentorship_id,
        "program_id": p.program_id or "",
        "mentee_id": show(p.mentee_id) or "",
        "mentor_id": show(p.mentor_id) or "",
        "state": p.state_at(now) or "",
        "origin": p.origin,
        "cadence": p.cadence if p.started_at else "",
        "requested_at": _iso(p.requested_at),
        "accepted_at": _iso(p.accepted_time),
        "started_at": _iso(p.started_at),
        "finished_at": _iso(p.finished_at()),
        "sessions_held": len(p.held_sessions()),
        "last_session_at": _iso(p.last_session_before(now)),
        "average_rating": "" if avg is None else round(avg, 2),
        "ratings": len(p.ratings),
        "milestones_reached": len(p.milestones),
        "not_a_good_fit": str(p.not_a_good_fit).lower(),
        "attention": ";".join(r["code"] for r in attention_reasons(p, now, rules)),
    }


PROGRAM_FIGURES = [
    "enrolled_mentees",
    "enrolled_mentors",
    "matched_mentees",
    "unmatched_mentees",
    "requests_pending",
    "pending_oldest_hours",
    "acceptance_rate",
    "median_hours_to_accept",
    "active_pairs",
    "completed_pairs",
    "ended_pairs",
    "sessions_held",
    "sessions_per_pair_per_month",
    "planned_sessions_per_pair_per_month",
    "cadence_attainment",
    "pairs_overdue",
    "pairs_inactive",
    "average_session_rating",
    "milestones_reached",
    "notification_failures",
]
PROGRAM_COLUMNS = ["program_id", "name", *PROGRAM_FIGURES]


def program_row(report: dict[str, Any]) -> dict[str, Any]:
    row: dict[str, Any] = {"program_id": report["program_id"], "name": report.get("name") or ""}
    for name in PROGRAM_FIGURES:
        value = report["figures"][name]["value"]
        row[name] = "" if value is None else value
    return row


def csv_safe(value: Any) -> Any:
    """Keep a spreadsheet from running a cell as a formula (ids and names come from events)."""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value
