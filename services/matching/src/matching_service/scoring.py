"""Explainable pair scoring and hard constraints, vectorised with numpy (pure, no I/O).

A score in [0, 1] is the weighted mean of five criteria, each in [0, 1]:

- skills: how much of the mentee's needs (development areas weight 1, goal skills weighted by
  goal priority) the mentor's skills cover, each covered need counted by proficiency / 5;
- availability: shared weekly hours (both calendars turned into UTC hour-of-week slots),
  full marks at `AVAILABILITY_TARGET_HOURS`; unknown availability on either side counts 0.5;
- seniority: 1 when the mentor is ahead by the ideal gap, falling by 1/3 per level away;
- language: 1 when they share a language;
- meeting: 1 when the meeting formats are compatible ("any" fits everything).

Hard constraints (never violated): not oneself, not one's manager or direct report, not an
excluded pair (previous partner when repeats are forbidden, or a pair that was not a good
fit), time-zone distance at most the maximum when set, and the mentor is active, has the
mentor role and a free slot (the index only holds active mentors; free slots are passed in).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
from scipy import sparse

from .domain import Constraints, Weights

CRITERIA = ("skills", "availability", "seniority", "language", "meeting")
GOAL_PRIORITY_WEIGHT = {1: 1.0, 2: 0.7, 3: 0.4}
AVAILABILITY_TARGET_HOURS = 2.0
SENIORITY_LEVELS = 8  # Seniority enum size
SENIORITY_SPAN = 3.0  # levels away from the ideal gap at which the criterion reaches 0
HOURS_PER_WEEK = 168
MEETING_CODES = {"any": 0, "video": 1, "in_person": 2, "chat": 3}
SENIORITY_RANK = {
    name: i
    for i, name in enumerate(("intern", "junior", "mid", "senior", "staff", "principal", "director", "executive"))
}
INELIGIBLE = np.float32(-1.0)


@lru_cache(maxsize=1024)
def _utc_offset_minutes(zone: str, day: str) -> int:
    moment = datetime.fromisoformat(day).replace(tzinfo=UTC)
    offset = moment.astimezone(ZoneInfo(zone)).utcoffset()
    return int(offset.total_seconds() // 60) if offset else 0


def utc_offset_minutes(zone: str, at: datetime) -> int:
    """Offset of an IANA zone at a moment (daily resolution is enough for matching)."""
    try:
        return _utc_offset_minutes(zone, at.astimezone(UTC).date().isoformat())
    except Exception:  # an unknown zone in old data counts as UTC
        return 0


def tz_distance_hours(a_minutes: float | np.ndarray, b_minutes: float | np.ndarray) -> Any:
    """Hours between two UTC offsets on the 24-hour circle (UTC-10 and UTC+12 are 2 h apart)."""
    d = np.abs(np.asarray(a_minutes, dtype=np.float32) - np.asarray(b_minutes, dtype=np.float32)) / 60.0
    return np.minimum(d, 24.0 - d)


def availability_slots(windows: Iterable[Mapping[str, Any]], offset_minutes: int) -> list[int]:
    """UTC hour-of-week slots covered by at least half an hour of the local weekly windows."""
    covered = np.zeros(HOURS_PER_WEEK * 2, dtype=bool)  # half-hour slots
    for w in windows:
        start = _minute(w["start"])
        end = _minute(w["end"])
        if end <= start:
            continue
        base = int(w["weekday"]) * 1440 - offset_minutes
        for half in range(start // 30, (end + 29) // 30):
            lo, hi = max(start, half * 30), min(end, half * 30 + 30)
            if hi - lo >= 15:
                covered[((base + half * 30) // 30) % (HOURS_PER_WEEK * 2)] = True
    hours = covered.reshape(HOURS_PER_WEEK, 2).any(axis=1)
    return [int(h) for h in np.flatnonzero(hours)]


def _minute(hhmm: str) -> int:
    h, m = hhmm.split(":")
    return int(h) * 60 + int(m)


@dataclass(frozen=True)
class Person:
    """What scoring needs of a profile, derived once from the read model's snapshot."""

    profile_id: str
    skills: Mapping[str, int]  # name -> proficiency 1..5
    needs: Mapping[str, float]  # name -> weight (development areas and goal skills)
    seniority: int
    languages: frozenset[str]
    offset_minutes: int
    slots: tuple[int, ...]
    meeting: int
    manager_id: str | None
    roles: frozenset[str] = frozenset()
    active: bool = True
    capacity: int = 0

    @classmethod
    def from_profile(cls, profile: Mapping[str, Any], at: datetime, default_capacity: int = 2) -> Person:
        needs: dict[str, float] = {}
        for area in profile.get("development_areas") or []:
            needs[area] = max(needs.get(area, 0.0), 1.0)
        for goal in profile.get("goals") or []:
            weight = GOAL_PRIORITY_WEIGHT.get(int(goal.get("priority", 2)), 0.7)
            for skill in goal.get("skills") or []:
                needs[skill] = max(needs.get(skill, 0.0), weight)
        offset = utc_offset_minutes(profile.get("time_zone") or "UTC", at)
        capacity = profile.get("mentor_capacity")
        return cls(
            profile_id=profile["profile_id"],
            skills={s["name"]: int(s.get("proficiency", 3)) for s in profile.get("skills") or []},
            needs=needs,
            seniority=SENIORITY_RANK.get(profile.get("seniority") or "mid", 2),
            languages=frozenset(profile.get("languages") or ["en"]),
            offset_minutes=offset,
            slots=tuple(availability_slots(profile.get("availability") or [], offset)),
            meeting=MEETING_CODES.get((profile.get("mentoring_preferences") or {}).get("meeting_format", "any"), 0),
            manager_id=profile.get("manager_id"),
            roles=frozenset(profile.get("roles") or []),
            active=bool(profile.get("active", True)),
            capacity=default_capacity if capacity is None else int(capacity),
        )

    @property
    def is_available_mentor(self) -> bool:
        return self.active and "mentor" in self.roles


VACANT = Person(
    profile_id="",
    skills={},
    needs={},
    seniority=0,
    languages=frozenset(),
    offset_minutes=0,
    slots=(),
    meeting=0,
    manager_id=None,
    active=False,
)


# --- scalar scoring: the explanation the API returns ------------------------------------------


def seniority_score(mentee_rank: int, mentor_rank: int, ideal_gap: int) -> float:
    return max(0.0, 1.0 - abs((mentor_rank - mentee_rank) - ideal_gap) / SENIORITY_SPAN)


def criteria(mentee: Person, mentor: Person, constraints: Constraints) -> dict[str, float]:
    total_need = sum(mentee.needs.values())
    covered = sum(w * mentor.skills.get(s, 0) / 5.0 for s, w in mentee.needs.items())
    skills = covered / total_need if total_need > 0 else 0.0
    if mentee.slots and mentor.slots:
        shared = len(set(mentee.slots) & set(mentor.slots))
        availability = min(shared, AVAILABILITY_TARGET_HOURS) / AVAILABILITY_TARGET_HOURS
    else:
        availability = 0.5
    meeting = 1.0 if (mentee.meeting == 0 or mentor.meeting == 0 or mentee.meeting == mentor.meeting) else 0.0
    return {
        "skills": skills,
        "availability": availability,
        "seniority": seniority_score(mentee.seniority, mentor.seniority, constraints.ideal_seniority_gap),
        "language": 1.0 if mentee.languages & mentor.languages else 0.0,
        "meeting": meeting,
    }


def violations(
    mentee: Person,
    mentor: Person,
    constraints: Constraints,
    *,
    excluded: frozenset[str] = frozenset(),
    free_slots: int | None = None,
) -> list[str]:
    """Every hard constraint the pair breaks (empty = eligible), as readable reasons."""
    found = []
    if mentee.profile_id == mentor.profile_id:
        found.append("a person cannot mentor themselves")
    if mentee.manager_id == mentor.profile_id or mentor.manager_id == mentee.profile_id:
        found.append("a manager and their direct report cannot be paired")
    if mentor.profile_id in excluded:
        found.append("this pair is excluded (previous partner or not a good fit)")
    if (
        constraints.max_tz_distance_hours is not None
        and float(tz_distance_hours(mentee.offset_minutes, mentor.offset_minutes)) > constraints.max_tz_distance_hours
    ):
        found.append(f"time zones are more than {constraints.max_tz_distance_hours:g} h apart")
    if not mentor.active:
        found.append("the mentor is not active")
    if "mentor" not in mentor.roles:
        found.append("the person is not a mentor")
    if free_slots is not None and free_slots <= 0:
        found.append("the mentor has no free capacity")
    return found


def explain(mentee: Person, mentor: Person, weights: Weights, constraints: Constraints) -> dict[str, Any]:
    """Score with its per-criterion breakdown (value, weight, contribution) and readable reasons."""
    values = criteria(mentee, mentor, constraints)
    w = weights.normalised()
    breakdown = {
        c: {"value": round(values[c], 4), "weight": round(w[c], 4), "contribution": round(values[c] * w[c], 4)}
        for c in CRITERIA
    }
    score = sum(values[c] * w[c] for c in CRITERIA)
    reasons = []
    shared_skills = sorted(s for s in mentee.needs if s in mentor.skills)
    if shared_skills:
        reasons.append("covers " + ", ".join(shared_skills[:5]))
    if mentee.slots and mentor.slots:
        reasons.append(f"{len(set(mentee.slots) & set(mentor.slots))} shared hours a week")
    gap = mentor.seniority - mentee.seniority
    reasons.append(f"{gap:+d} seniority levels (ideal {constraints.ideal_seniority_gap:+d})")
    common = sorted(mentee.languages & mentor.languages)
    reasons.append(("speaks " + ", ".join(common)) if common else "no shared language")
    return {"score": round(min(1.0, max(0.0, score)), 6), "breakdown": breakdown, "reasons": reasons}


# --- vectorised scoring over many mentors ---------------------------------------------------


@dataclass
class MentorIndex:
    """Mentors as matrices: one row per mentor, built once, scored against many mentees."""

    mentors: list[Person]
    ids: list[str]
    position: dict[str, int]
    skill_columns: dict[str, int]
    skills_t: np.ndarray  # (S, M) float32: proficiency / 5
    slots_t: np.ndarray  # (168, M) float32 0/1
    slot_counts: np.ndarray  # (M,)
    seniority: np.ndarray  # (M,) int
    offsets: np.ndarray  # (M,) float32 minutes
    language_masks: np.ndarray  # (M,) int64 bit set
    language_bits: dict[str, int]
    meeting: np.ndarray  # (M,) int
    reports_of: dict[str, list[int]]  # manager id -> positions of mentors reporting to them
    capacity: np.ndarray  # (M,) int
    # Vacant columns (a mentor removed in place, or room to grow) score -1; None = no vacancy yet.
    alive: np.ndarray | None = None  # (M,) bool
    _vacant: list[int] = field(default_factory=list)
    _tables: dict[tuple[str, int], np.ndarray] = field(default_factory=dict)

    @classmethod
    def build(cls, mentors: Sequence[Person]) -> MentorIndex:
        mentors = [m for m in mentors if m.is_available_mentor]
        ids = [m.profile_id for m in mentors]
        columns: dict[str, int] = {}
        for m in mentors:
            for s in m.skills:
                columns.setdefault(s, len(columns))
        n = len(mentors)
        skills_t = np.zeros((max(1, len(columns)), n), dtype=np.float32)
        slots_t = np.zeros((HOURS_PER_WEEK, n), dtype=np.float32)
        bits: dict[str, int] = {}
        masks = np.zeros(n, dtype=np.int64)
        reports: dict[str, list[int]] = {}
        for j, m in enumerate(mentors):
            for s, p in m.skills.items():
                skills_t[columns[s], j] = p / 5.0
            if m.slots:
                slots_t[list(m.slots), j] = 1.0
            for lang in m.languages:
                if lang not in bits and len(bits) < 62:
                    bits[lang] = len(bits)
                if lang in bits:
                    masks[j] |= np.int64(1) << np.int64(bits[lang])
            if m.manager_id:
                reports.setdefault(m.manager_id, []).append(j)
        return cls(
            mentors=list(mentors),
            ids=ids,
            position={pid: j for j, pid in enumerate(ids)},
            skill_columns=columns,
            skills_t=skills_t,
            slots_t=slots_t,
            slot_counts=slots_t.sum(axis=0),
            seniority=np.array([m.seniority for m in mentors], dtype=np.int64),
            offsets=np.array([m.offset_minutes for m in mentors], dtype=np.float32),
            language_masks=masks,
            language_bits=bits,
            meeting=np.array([m.meeting for m in mentors], dtype=np.int64),
            reports_of=reports,
            capacity=np.array([m.capacity for m in mentors], dtype=np.int64),
        )

    def __len__(self) -> int:
        return len(self.ids)

    # --- in-place changes (the suggestion index follows profile changes without a rebuild) ---

    def upsert(self, mentor: Person) -> None:
        """Add or change one mentor in place; one who is no longer an available mentor leaves."""
        if not mentor.is_available_mentor:
            self.remove(mentor.profile_id)
            return
        j = self.position.get(mentor.profile_id)
        if j is None:
            if not self._vacant:
                self._grow()
            j = self._vacant.pop()
        else:
            self._clear(j)
        for skill, level in mentor.skills.items():
            row = self.skill_columns.get(skill)
            if row is None:
                row = self.skill_columns[skill] = len(self.skill_columns)
                if row >= self.skills_t.shape[0]:
                    grown = np.zeros((2 * self.skills_t.shape[0], self.skills_t.shape[1]), dtype=np.float32)
                    grown[: self.skills_t.shape[0]] = self.skills_t
                    self.skills_t = grown
            self.skills_t[row, j] = level / 5.0
        if mentor.slots:
            self.slots_t[list(mentor.slots), j] = 1.0
        self.slot_counts[j] = len(mentor.slots)
        mask = 0
        for lang in mentor.languages:
            if lang not in self.language_bits and len(self.language_bits) < 62:
                self.language_bits[lang] = len(self.language_bits)
            if lang in self.language_bits:
                mask |= 1 << self.language_bits[lang]
        self.language_masks[j] = mask
        self.seniority[j] = mentor.seniority
        self.offsets[j] = mentor.offset_minutes
        self.meeting[j] = mentor.meeting
        self.capacity[j] = mentor.capacity
        if mentor.manager_id:
            self.reports_of.setdefault(mentor.manager_id, []).append(j)
        self.mentors[j] = mentor
        self.ids[j] = mentor.profile_id
        self.position[mentor.profile_id] = j
        if self.alive is None:
            self.alive = np.ones(len(self), dtype=bool)
        self.alive[j] = True
        self._tables.clear()

    def remove(self, profile_id: str) -> None:
        """Take a mentor out in place (their column becomes vacant and scores -1)."""
        j = self.position.pop(profile_id, None)
        if j is None:
            return
        self._clear(j)
        if self.alive is None:
            self.alive = np.ones(len(self), dtype=bool)
        self.alive[j] = False
        self.ids[j] = ""
        self.mentors[j] = VACANT
        self.capacity[j] = 0
        self._vacant.append(j)
        self._tables.clear()

    def _clear(self, j: int) -> None:
        self.skills_t[:, j] = 0.0
        self.slots_t[:, j] = 0.0
        self.slot_counts[j] = 0
        self.language_masks[j] = 0
        manager = self.mentors[j].manager_id
        if manager and j in self.reports_of.get(manager, ()):
            self.reports_of[manager].remove(j)
            if not self.reports_of[manager]:
                del self.reports_of[manager]

    def _grow(self) -> None:
        """Room for more mentors: double the columns; the new ones are vacant."""
        n = len(self)
        extra = max(16, n)

        def wider(a: np.ndarray) -> np.ndarray:
            grown = np.zeros((*a.shape[:-1], n + extra), dtype=a.dtype)
            grown[..., :n] = a
            return grown

        self.skills_t, self.slots_t = wider(self.skills_t), wider(self.slots_t)
        self.slot_counts, self.seniority, self.offsets = (
            wider(self.slot_counts),
            wider(self.seniority),
            wider(self.offsets),
        )
        self.language_masks, self.meeting, self.capacity = (
            wider(self.language_masks),
            wider(self.meeting),
            wider(self.capacity),
        )
        self.alive = np.concatenate(
            [np.ones(n, dtype=bool) if self.alive is None else self.alive, np.zeros(extra, bool)]
        )
        self.ids.extend([""] * extra)
        self.mentors.extend([VACANT] * extra)
        self._vacant.extend(range(n + extra - 1, n - 1, -1))  # fill the lowest first
        self._tables.clear()

    def _seniority_table(self, ideal_gap: int) -> np.ndarray:
        """(levels, M): the seniority criterion for a mentee of each level, precomputed."""
        key = ("seniority", ideal_gap)
        if key not in self._tables:
            ranks = np.arange(SENIORITY_LEVELS)[:, None]
            gap = self.seniority[None, :] - ranks
            self._tables[key] = np.clip(1.0 - np.abs(gap - ideal_gap) / SENIORITY_SPAN, 0.0, 1.0).astype(np.float32)
        return self._tables[key]

    def _meeting_table(self) -> np.ndarray:
        key = ("meeting", 0)
        if key not in self._tables:
            codes = np.arange(len(MEETING_CODES))[:, None]
            ok = (codes == 0) | (self.meeting[None, :] == 0) | (codes == self.meeting[None, :])
            self._tables[key] = ok.astype(np.float32)
        return self._tables[key]

    def mentee_matrices(self, mentees: Sequence[Person]) -> tuple[sparse.csr_matrix, sparse.csr_matrix]:
        """Sparse need weights (normalised per mentee) and sparse availability slots."""
        rows, cols, vals = [], [], []
        srows: list[int] = []
        scols: list[int] = []
        for i, p in enumerate(mentees):
            total = sum(p.needs.values())
            for s, w in p.needs.items():
                col = self.skill_columns.get(s)
                if col is not None and total > 0:
                    rows.append(i)
                    cols.append(col)
                    vals.append(w / total)
            srows.extend([i] * len(p.slots))
            scols.extend(p.slots)
        needs = sparse.csr_matrix(
            (np.array(vals, dtype=np.float32), (rows, cols)), shape=(len(mentees), self.skills_t.shape[0])
        )
        slots = sparse.csr_matrix(
            (np.ones(len(srows), dtype=np.float32), (srows, scols)), shape=(len(mentees), HOURS_PER_WEEK)
        )
        return needs, slots

    def score_block(
        self,
        mentees: Sequence[Person],
        weights: Weights,
        constraints: Constraints,
        *,
        free_slots: np.ndarray | None = None,
        excluded: Mapping[str, Iterable[str]] | None = None,
    ) -> np.ndarray:
        """(B, M) float32 scores; ineligible pairs hold -1.

        Skills and availability are sparse products; every criterion that depends on a few
        mentee attributes only (seniority, meeting format, languages, time zone) comes from a
        small table with one row per distinct attribute combination in the block, so the
        whole block costs two products, one gather and a handful of passes."""
        w = weights.normalised()
        needs, slots = self.mentee_matrices(mentees)
        b, m = len(mentees), len(self)
        needs.data *= np.float32(w["skills"])
        out = np.asarray(needs @ self.skills_t, dtype=np.float32)
        overlap = np.asarray(slots @ self.slots_t, dtype=np.float32)
        np.minimum(overlap, np.float32(AVAILABILITY_TARGET_HOURS), out=overlap)
        overlap *= np.float32(w["availability"] / AVAILABILITY_TARGET_HOURS)
        # unknown availability on either side counts 0.5 (the compiled cohort kernel adds the same)
        half = np.float32(0.5 * w["availability"])
        unknown_rows = np.array([not p.slots for p in mentees], dtype=bool)
        unknown_cols = self.slot_counts == 0
        overlap[:, unknown_cols] = half
        overlap[unknown_rows] = half
        out += overlap
        del overlap
        table, inverse, lang_table, lang_inverse = self.attribute_tables(mentees, w, constraints, free_slots)
        out += table[inverse]
        out += lang_table[lang_inverse]
        np.clip(out, -1.0, 1.0, out=out)  # penalties (<= -1) become exactly -1
        for i, p in enumerate(mentees):
            j = self.position.get(p.profile_id)
            if j is not None:
                out[i, j] = INELIGIBLE
            if p.manager_id and (j := self.position.get(p.manager_id)) is not None:
                out[i, j] = INELIGIBLE
            for j in self.reports_of.get(p.profile_id, ()):
                out[i, j] = INELIGIBLE
            if excluded:
                for other in excluded.get(p.profile_id, ()):
                    if (j := self.position.get(other)) is not None:
                        out[i, j] = INELIGIBLE
        assert out.shape == (b, m)
        return out

    def attribute_tables(
        self, mentees: Sequence[Person], w: Mapping[str, float], constraints: Constraints, free_slots: np.ndarray | None
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Two small tables with one row per distinct attribute combination in the block:
        (seniority, meeting, offset) -> seniority and meeting contributions, -1000 where the time
        zones are too far apart or the mentor has no free slot; languages -> language contribution."""
        keys = np.array([(p.seniority, p.meeting, p.offset_minutes) for p in mentees], dtype=np.int64).reshape(
            len(mentees), 3
        )
        uniq, inverse = np.unique(keys, axis=0, return_inverse=True)
        table = self._seniority_table(constraints.ideal_seniority_gap)[uniq[:, 0]] * np.float32(w["seniority"])
        table += self._meeting_table()[uniq[:, 1]] * np.float32(w["meeting"])
        penalty = np.float32(-1000.0)
        if constraints.max_tz_distance_hours is not None:
            far = tz_distance_hours(uniq[:, 2:3].astype(np.float32), self.offsets[None, :])
            table[far > constraints.max_tz_distance_hours] += penalty
        if free_slots is not None:
            table[:, free_slots <= 0] += penalty
        if self.alive is not None:
            table[:, ~self.alive] += penalty
        masks = np.array([self._language_mask(p.languages) for p in mentees], dtype=np.int64)
        lang_uniq, lang_inverse = np.unique(masks, return_inverse=True)
        lang_table = ((lang_uniq[:, None] & self.language_masks[None, :]) != 0).astype(np.float32)
        lang_table *= np.float32(w["language"])
        return (table.astype(np.float32, copy=False), inverse.reshape(-1), lang_table, lang_inverse.reshape(-1))

    def score_one(
        self,
        mentee: Person,
        weights: Weights,
        constraints: Constraints,
        *,
        excluded: Iterable[str] = (),
    ) -> np.ndarray:
        """(M,) scores of one mentee (the suggestion path): dense gathers instead of sparse
        products, the same numbers as `score_block`."""
        w = weights.normalised()
        n = len(self)
        total = sum(mentee.needs.values())
        cols = [
            (self.skill_columns[s], v / total) for s, v in mentee.needs.items() if s in self.skill_columns and total > 0
        ]
        if cols:
            rows = np.array([c for c, _ in cols])
            need = np.array([v for _, v in cols], dtype=np.float32)
            out = need @ self.skills_t[rows]
            out *= w["skills"]
        else:
            out = np.zeros(n, dtype=np.float32)
        if mentee.slots:
            overlap = self.slots_t[list(mentee.slots)].sum(axis=0)
            np.minimum(overlap, AVAILABILITY_TARGET_HOURS, out=overlap)
            overlap *= w["availability"] / AVAILABILITY_TARGET_HOURS
            overlap[self.slot_counts == 0] = 0.5 * w["availability"]
        else:
            overlap = np.full(n, 0.5 * w["availability"], dtype=np.float32)
        out += overlap
        out += self._seniority_table(constraints.ideal_seniority_gap)[mentee.seniority] * w["seniority"]
        out += ((self._language_mask(mentee.languages) & self.language_masks) != 0) * np.float32(w["language"])
        out += self._meeting_table()[mentee.meeting] * w["meeting"]
        np.clip(out, 0.0, 1.0, out=out)
        if constraints.max_tz_distance_hours is not None:
            out[tz_distance_hours(mentee.offset_minutes, self.offsets) > constraints.max_tz_distance_hours] = INELIGIBLE
        for other in (mentee.profile_id, mentee.manager_id, *excluded):
            if other is not None and (j := self.position.get(other)) is not None:
                out[j] = INELIGIBLE
        for j in self.reports_of.get(mentee.profile_id, ()):
            out[j] = INELIGIBLE
        if self.alive is not None:
            out[~self.alive] = INELIGIBLE
        scores: np.ndarray = out.astype(np.float32, copy=False)
        return scores

    def _language_mask(self, languages: Iterable[str]) -> int:
        mask = 0
        for lang in languages:
            bit = self.language_bits.get(lang)
            if bit is not None:
                mask |= 1 << bit
        return mask


def top_k(scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Per row, the k best eligible columns in descending score order (-1 where fewer)."""
    b, m = scores.shape
    k = min(k, m)
    if k == 0:
        return np.full((b, 0), -1, dtype=np.int64), np.zeros((b, 0), dtype=np.float32)
    part = np.argpartition(-scores, k - 1, axis=1)[:, :k] if k < m else np.tile(np.arange(m), (b, 1))
    vals = np.take_along_axis(scores, part, axis=1)
    order = np.argsort(-vals, axis=1, kind="stable")
    cols = np.take_along_axis(part, order, axis=1)
    vals = np.take_along_axis(vals, order, axis=1)
    cols = np.where(vals < 0, -1, cols)
    return cols.astype(np.int64), vals


def finite_or_zero(x: float) -> float:
    return x if math.isfinite(x) else 0.0
