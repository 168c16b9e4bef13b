"""Whole-cohort matching (pure): top-K candidates per mentee, then a min-cost flow.

Objective (declared): maximise the sum of pair scores over matched pairs, subject to mentor
free slots, the hard constraints, pinned pairs (forced) and forbidden pairs (never). Every
mentee has an arc to an "unmatched" node at cost 0, so the flow is always feasible and a
mentee stays unmatched only when no eligible slot is worth it to the total.

The network: each mentee supplies one unit; mentee -> mentor arcs (capacity 1, cost
-score scaled to integers) for its K best eligible mentors; mentee -> unmatched (cost 0);
mentor -> sink (capacity = free slots); unmatched -> sink. OR-Tools' SimpleMinCostFlow solves it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np
from ortools.graph.python import min_cost_flow

from . import kernels
from .domain import Constraints, Weights
from .scoring import AVAILABILITY_TARGET_HOURS, MentorIndex, Person

SCALE = 1_000_000  # scores to integer costs: 1e-6 resolution
TOP_SHARE_K = 5


class CohortInputError(ValueError):
    def __init__(self, message: str, pairs: Sequence[tuple[str, str]] = ()) -> None:
        super().__init__(message)
        self.pairs = list(pairs)


@dataclass
class Candidates:
    """Each mentee's K best eligible mentors (rows), plus each mentor's L best eligible mentees
    (so a mentor outside every mentee's top K, with free slots, still gets arcs)."""

    cols: np.ndarray  # (N, K) mentor positions, -1 = none
    scores: np.ndarray  # (N, K) float32, descending per row
    mentor_rows: np.ndarray | None = None  # (M, L) mentee rows, -1 = none
    mentor_scores: np.ndarray | None = None  # (M, L)

    def arcs(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Unique eligible (mentee row, mentor position, score) arcs of both views."""
        n, k = self.cols.shape
        valid = (self.cols >= 0) & (self.scores >= 0)
        rows = np.repeat(np.arange(n, dtype=np.int64), k).reshape(n, k)[valid]
        cols = self.cols[valid]
        vals = self.scores[valid]
        if self.mentor_rows is not None and self.mentor_scores is not None and self.mentor_rows.size:
            m, l_ = self.mentor_rows.shape
            extra = (self.mentor_rows >= 0) & (self.mentor_scores >= 0)
            rows = np.concatenate([rows, self.mentor_rows[extra]])
            cols = np.concatenate([cols, np.repeat(np.arange(m, dtype=np.int64), l_).reshape(m, l_)[extra]])
            vals = np.concatenate([vals, self.mentor_scores[extra]])
            width = int(cols.max()) + 1 if cols.size else 1
            _, first = np.unique(rows * width + cols, return_index=True)
            rows, cols, vals = rows[first], cols[first], vals[first]
        return rows, cols, vals


@dataclass
class Quality:
    total_score: float
    bound_ratio: float
    p10_score: float
    matched: int
    unmatched: int
    top5_share: float
    blocking_pair_mentees: int

    def as_dict(self) -> dict[str, Any]:
        return {k: (round(v, 6) if isinstance(v, float) else v) for k, v in self.__dict__.items()}


@dataclass
class CohortResult:
    assignment: np.ndarray  # (N,) mentor position or -1
    scores: np.ndarray  # (N,) score of the assigned pair (0 when unmatched)
    quality: Quality
    candidates: Candidates


def generate_candidates(
    mentees: Sequence[Person],
    index: MentorIndex,
    weights: Weights,
    constraints: Constraints,
    *,
    k: int,
    mentor_k: int | None = None,
    free_slots: np.ndarray | None = None,
    excluded: Mapping[str, Iterable[str]] | None = None,
    progress: Callable[[float], None] = lambda _: None,
    block_cells: int = 4_000_000,
    workers: int = 2,
) -> Candidates:
    """Each mentee's K best eligible mentors and each mentor's L best eligible mentees (L
    defaults to 5 K: capacity is scarce at popular mentors, and the mentor view is what lets the
    flow reach mentors outside every top K).

    Every pair is scored (no pair is skipped, so the candidates are exactly those of sorting
    every score), by the compiled kernel (`kernels`) that streams each mentee's row past the
    thresholds instead of materialising score blocks. Rows are handed out in chunks of about
    `block_cells` pairs to `workers` threads, each with its own mentor buffers, merged at the end."""
    n, m = len(mentees), len(index)
    k = min(k, max(1, m))
    l_ = min(mentor_k or 5 * k, max(1, n))
    if m == 0 or n == 0:
        return Candidates(
            np.full((n, k), -1, dtype=np.int64),
            np.full((n, k), -1.0, dtype=np.float32),
            np.full((m, l_), -1, dtype=np.int64),
            np.full((m, l_), -1.0, dtype=np.float32),
        )
    w = weights.normalised()
    needs, slots = index.mentee_matrices(mentees)
    needs.data *= np.float32(w["skills"])
    table, attr_of, lang_table, lang_of = index.attribute_tables(mentees, w, constraints, free_slots)
    ex_ptr, ex_idx = _exclusions(mentees, index, excluded)
    slots_t = np.ascontiguousarray(index.slots_t, dtype=np.uint8)
    skills_t = np.ascontiguousarray(index.skills_t, dtype=np.float32)
    has_slots = index.slot_counts > 0
    need_ptr, need_col = needs.indptr.astype(np.int64), needs.indices.astype(np.int64)
    need_val = needs.data.astype(np.float32)
    slot_ptr, slot_idx = slots.indptr.astype(np.int64), slots.indices.astype(np.int64)
    top_vals = np.full((n, k), -1.0, dtype=np.float32)
    top_cols = np.full((n, k), -1, dtype=np.int64)
    workers = max(1, min(workers, n))
    buffer_keys = np.zeros((workers, m, 2 * l_), dtype=np.int64)
    buffer_counts = np.zeros((workers, m), dtype=np.int64)
    floors = np.zeros((workers, m), dtype=np.float32)
    chunk = max(16, block_cells // max(1, m))
    starts = iter(range(0, n, chunk))
    lock = threading.Lock()
    done = [0]

    def work(slot: int) -> None:
        while True:
            with lock:
                start = next(starts, None)
            if start is None:
                return
            stop = min(n, start + chunk)
            kernels.stream_candidates(
                start,
                stop,
                skills_t,
                slots_t,
                has_slots,
                need_ptr,
                need_col,
                need_val,
                slot_ptr,
                slot_idx,
                table,
                attr_of,
                lang_table,
                lang_of,
                ex_ptr,
                ex_idx,
                np.float32(w["availability"] / AVAILABILITY_TARGET_HOURS),
                np.float32(AVAILABILITY_TARGET_HOURS),
                np.float32(0.5 * w["availability"]),
                top_vals,
                top_cols,
                buffer_keys[slot],
                buffer_counts[slot],
                floors[slot],
            )
            with lock:
                done[0] += stop - start
                progress(min(1.0, done[0] / n))

    with ThreadPoolExecutor(max_workers=workers) as pool:
        for future in [pool.submit(work, slot) for slot in range(workers)]:
            future.result()
    best_vals, best_rows = kernels.merge_mentor_buffers(buffer_keys, buffer_counts, l_)
    return Candidates(top_cols, top_vals, best_rows, best_vals)


def _exclusions(
    mentees: Sequence[Person], index: MentorIndex, excluded: Mapping[str, Iterable[str]] | None
) -> tuple[np.ndarray, np.ndarray]:
    """Per mentee, the mentor positions it may never have (itself, its manager, its direct
    reports, excluded pairs), as CSR arrays."""
    ptr = np.zeros(len(mentees) + 1, dtype=np.int64)
    idx: list[int] = []
    for i, p in enumerate(mentees):
        for other in (p.profile_id, p.manager_id, *((excluded or {}).get(p.profile_id, ()))):
            if other is not None and (j := index.position.get(other)) is not None:
                idx.append(j)
        idx.extend(index.reports_of.get(p.profile_id, ()))
        ptr[i + 1] = len(idx)
    return ptr, np.array(idx, dtype=np.int64)


def solve_flow(
    cand: Candidates,
    free_slots: np.ndarray,
    *,
    skip_rows: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Optimal assignment over the candidate arcs: (N,) mentor position or -1, and its scores.
    Rows in `skip_rows` (pinned mentees) take no part."""
    n = cand.cols.shape[0]
    m = len(free_slots)
    assignment = np.full(n, -1, dtype=np.int64)
    assigned = np.zeros(n, dtype=np.float64)
    rows, heads, scores = cand.arcs()
    if skip_rows is not None and skip_rows.any():
        keep = ~skip_rows[rows]
        rows, heads, scores = rows[keep], heads[keep], scores[keep]
    if n == 0 or m == 0 or rows.size == 0:
        return assignment, assigned
    # Nodes: mentees 0..n-1, mentors n..n+m-1, unmatched n+m, sink n+m+1.
    unmatched, sink = n + m, n + m + 1
    costs = -np.rint(scores.astype(np.float64) * SCALE).astype(np.int64)
    tails = np.concatenate([rows, np.arange(n, dtype=np.int64), np.arange(n, n + m, dtype=np.int64), [unmatched]])
    head_all = np.concatenate(
        [heads + n, np.full(n, unmatched, dtype=np.int64), np.full(m, sink, dtype=np.int64), [sink]]
    )
    caps = np.concatenate(
        [
            np.ones(len(rows), dtype=np.int64),
            np.ones(n, dtype=np.int64),
            np.maximum(free_slots, 0).astype(np.int64),
            [n],
        ]
    )
    cost_all = np.concatenate([costs, np.zeros(n + m + 1, dtype=np.int64)])
    flow = min_cost_flow.SimpleMinCostFlow()
    flow.add_arcs_with_capacity_and_unit_cost(tails, head_all, caps, cost_all)
    supplies = np.zeros(n + m + 2, dtype=np.int64)
    supplies[:n] = 1
    supplies[sink] = -n
    flow.set_nodes_supplies(np.arange(n + m + 2, dtype=np.int64), supplies)
    status = flow.solve()
    if status != flow.OPTIMAL:
        raise RuntimeError(f"min-cost flow did not solve: status {status}")
    used = flow.flows(np.arange(len(rows), dtype=np.int64)) > 0
    assignment[rows[used]] = heads[used]
    assigned[rows[used]] = scores[used]
    return assignment, assigned


def greedy(cand: Candidates, free_slots: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Baseline: best arcs first, while the mentee is free and the mentor has a slot."""
    n = cand.cols.shape[0]
    rows, cols, scores = cand.arcs()
    order = np.argsort(-scores, kind="stable")
    left = np.maximum(free_slots, 0).astype(np.int64).tolist()
    assign = [-1] * n
    assigned = [0.0] * n
    for i, j, s in zip(rows[order].tolist(), cols[order].tolist(), scores[order].tolist(), strict=True):
        if assign[i] < 0 and left[j] > 0:
            assign[i], assigned[i] = j, s
            left[j] -= 1
    return np.array(assign, dtype=np.int64), np.array(assigned, dtype=np.float64)


def quality(
    cand: Candidates,
    assignment: np.ndarray,
    scores: np.ndarray,
    free_slots: np.ndarray,
    *,
    best_bound: np.ndarray | None = None,
) -> Quality:
    """The report of a proposal. Blocking pairs are looked for among each mentee's K candidates."""
    n = len(assignment)
    matched = assignment >= 0
    total = float(scores[matched].sum())
    # Best bound: each mentee with their best eligible mentor, capacities relaxed.
    bound_rows = (
        best_bound if best_bound is not None else np.maximum(cand.scores[:, 0], 0) if cand.scores.size else np.zeros(n)
    )
    bound = float(np.sum(bound_rows))
    in_top = (cand.cols[:, :TOP_SHARE_K] == assignment[:, None]).any(axis=1) & matched
    # Blocking pairs: mentee i prefers candidate j to what they have, and j has a free slot
    # or holds a mentee it scores lower.
    m = len(free_slots)
    load = np.bincount(assignment[matched], minlength=m) if m else np.zeros(0, dtype=np.int64)
    floor = np.full(m, np.inf)
    if matched.any():
        np.minimum.at(floor, assignment[matched], scores[matched])
    floor[load < np.maximum(free_slots, 0)] = -np.inf
    current = np.where(matched, scores, -np.inf)
    valid = (cand.cols >= 0) & (cand.scores >= 0)
    if m == 0:
        blocking = np.zeros_like(valid)
    else:
        safe_cols = np.where(valid, cand.cols, 0)
        blocking = valid & (cand.scores > current[:, None] + 1e-9) & (cand.scores > floor[safe_cols] + 1e-9)
    return Quality(
        total_score=total,
        bound_ratio=min(1.0, total / bound) if bound > 0 else 1.0,  # float32 rounding can pass 1
        p10_score=float(np.percentile(scores[matched], 10)) if matched.any() else 0.0,
        matched=int(matched.sum()),
        unmatched=int(n - matched.sum()),
        top5_share=float(in_top.sum() / n) if n else 0.0,
        blocking_pair_mentees=int(blocking.any(axis=1).sum()),
    )


def match_cohort(
    mentees: Sequence[Person],
    index: MentorIndex,
    weights: Weights,
    constraints: Constraints,
    *,
    free_slots: np.ndarray,
    k: int = 10,
    excluded: Mapping[str, Iterable[str]] | None = None,
    pins: Sequence[tuple[str, str]] = (),
    forbids: Sequence[tuple[str, str]] = (),
    progress: Callable[[float], None] = lambda _: None,
) -> CohortResult:
    """The whole run: candidates (90 % of the progress), pins, flow, quality."""
    blocked: dict[str, set[str]] = {p: set(v) for p, v in (excluded or {}).items()}
    for mentee_id, mentor_id in forbids:
        blocked.setdefault(mentee_id, set()).add(mentor_id)
    cand = generate_candidates(
        mentees,
        index,
        weights,
        constraints,
        k=k,
        free_slots=free_slots,
        excluded=blocked,
        progress=lambda f: progress(0.9 * f),
    )
    row_of = {p.profile_id: i for i, p in enumerate(mentees)}
    free = np.maximum(free_slots, 0).astype(np.int64).copy()
    pinned = np.full(len(mentees), -1, dtype=np.int64)
    pinned_score = np.zeros(len(mentees), dtype=np.float32)
    bad: list[tuple[str, str]] = []
    for mentee_id, mentor_id in pins:
        i, j = row_of.get(mentee_id), index.position.get(mentor_id)
        if i is None or j is None or pinned[i] >= 0:
            bad.append((mentee_id, mentor_id))
            continue
        s = index.score_block([mentees[i]], weights, constraints, free_slots=free, excluded=blocked)[0, j]
        if s < 0:
            bad.append((mentee_id, mentor_id))
            continue
        pinned[i], pinned_score[i] = j, s
        free[j] -= 1
    if bad:
        raise CohortInputError("pinned pairs must be enrolled, eligible and unique per mentee", bad)
    open_rows = pinned < 0
    assignment, assigned = solve_flow(cand, free, skip_rows=~open_rows)
    assignment[~open_rows] = pinned[~open_rows]
    assigned[~open_rows] = pinned_score[~open_rows]
    bound = np.maximum(np.maximum(cand.scores[:, 0], 0), pinned_score) if cand.scores.size else None
    q = quality(cand, assignment, assigned, free_slots, best_bound=bound)
    progress(1.0)
    return CohortResult(assignment, assigned, q, cand)
