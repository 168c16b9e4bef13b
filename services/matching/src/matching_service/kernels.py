"""Compiled per-pair scoring for cohort runs (numba, no I/O).

The numpy path (`MentorIndex.score_block`) materialises a (B, M) score matrix per block and then
partially sorts it twice (per mentee, per mentor): at 50k x 15k that is 750 M cells written and
read several times. Here each mentee's row is computed into a small buffer, in the same float32
operations and order as `score_block` (so the candidates are the same numbers), and only the
pairs that can still enter the mentee's K best or the mentor's L best are kept:

- the mentee's floor starts at a lower bound of its K-th best score (split the row into K
  segments: each segment's maximum is a distinct score, so the smallest of those K maxima is at
  most the K-th best);
- each mentor's floor is its L-th best so far;
- a pair at or above a floor goes into a buffer twice the kept size; a full buffer is cut back
  to its best half by a quickselect, which raises the floor.

Entries are int64 keys: the score's float32 bits (monotonic for scores >= 0) above the
complemented index, so one integer comparison orders by score and breaks ties by the lower
index. The result therefore does not depend on how rows were split between threads.

The functions release the GIL: a cohort run calls `stream_candidates` on row ranges from a few
threads, each thread with its own mentor buffers, merged by `merge_mentor_buffers`.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numba import njit

INDEX_MASK = np.int64(0xFFFFFFFF)


@njit(cache=True, nogil=True, inline="always")
def _key(bits: Any, index: Any) -> Any:
    return (np.int64(bits) << 32) | (INDEX_MASK - index)


@njit(cache=True, nogil=True, inline="always")
def _index(key: Any) -> Any:
    return INDEX_MASK - (key & INDEX_MASK)


@njit(cache=True, nogil=True)
def _keep_best(keys: np.ndarray, n: int, keep: int) -> Any:
    """Reorder keys[:n] so that keys[:keep] are the largest (quickselect); returns the smallest
    of those (the new floor)."""
    lo, hi = 0, n - 1
    target = keep - 1
    while lo < hi:
        pivot = keys[(lo + hi) // 2]
        i, j = lo, hi
        while i <= j:
            while keys[i] > pivot:
                i += 1
            while keys[j] < pivot:
                j -= 1
            if i <= j:
                keys[i], keys[j] = keys[j], keys[i]
                i += 1
                j -= 1
        if target <= j:
            hi = j
        elif target >= i:
            lo = i
        else:
            break
    worst = keys[0]
    for a in range(1, keep):
        worst = min(worst, keys[a])
    return worst


@njit(cache=True, nogil=True, fastmath=True)
def _segment_floor(row: np.ndarray, parts: int) -> Any:
    """A lower bound of the row's `parts`-th largest value: the smallest of `parts` segment maxima."""
    m = row.shape[0]
    floor = np.float32(np.inf)
    for g in range(parts):
        lo, hi = g * m // parts, (g + 1) * m // parts
        best = np.float32(-np.inf)
        for j in range(lo, hi):
            best = max(best, row[j])
        floor = min(floor, best)
    return floor


@njit(cache=True, nogil=True)
def stream_candidates(
    start: int,
    stop: int,
    skills_t: np.ndarray,  # (S, M) float32, proficiency / 5
    slots_t: np.ndarray,  # (168, M) uint8 0/1 (a quarter of the memory traffic of float32)
    mentor_has_slots: np.ndarray,  # (M,) bool
    need_ptr: np.ndarray,  # (N+1,) CSR of the mentees' need weights (already times the skills weight)
    need_col: np.ndarray,
    need_val: np.ndarray,  # float32
    slot_ptr: np.ndarray,  # (N+1,) CSR of the mentees' UTC hour slots
    slot_idx: np.ndarray,
    attr_table: np.ndarray,  # (U, M) float32 seniority + meeting (+ -1000 penalties)
    attr_of: np.ndarray,  # (N,) row of attr_table per mentee
    lang_table: np.ndarray,  # (UL, M) float32
    lang_of: np.ndarray,  # (N,)
    ex_ptr: np.ndarray,  # (N+1,) CSR of mentor positions each mentee may not have
    ex_idx: np.ndarray,
    avail_coef: Any,  # availability weight / target hours
    avail_target: Any,
    half: Any,  # score of unknown availability (0.5 x weight)
    top_vals: np.ndarray,  # (N, K) float32 out: best first, -1 = none
    top_cols: np.ndarray,  # (N, K) int64 out: mentor positions, -1 = none
    mentor_keys: np.ndarray,  # (M, 2L) int64 in/out: this thread's buffers per mentor
    mentor_count: np.ndarray,  # (M,) int64 in/out: entries used in each buffer
    mentor_floor: np.ndarray,  # (M,) float32 in/out: a pair must reach it to be buffered
) -> None:
    m = skills_t.shape[1]
    k = top_vals.shape[1]
    mentor_cap = mentor_keys.shape[1]
    mentor_keep = mentor_cap // 2
    row = np.empty(m, dtype=np.float32)
    bits = row.view(np.int32)
    overlap = np.empty(m, dtype=np.float32)
    keys = np.empty(2 * k, dtype=np.int64)
    selected = np.empty(m + 1, dtype=np.int64)
    convert_bits = np.empty(1, dtype=np.int32)  # a key's score bits back to the float32 score
    convert_value = convert_bits.view(np.float32)
    for i in range(start, stop):
        row[:] = 0.0
        for q in range(need_ptr[i], need_ptr[i + 1]):
            c = need_col[q]
            v = need_val[q]
            for j in range(m):
                row[j] += v * skills_t[c, j]
        if slot_ptr[i + 1] > slot_ptr[i]:
            overlap[:] = 0.0
            for q in range(slot_ptr[i], slot_ptr[i + 1]):
                s = slot_idx[q]
                for j in range(m):
                    overlap[j] += slots_t[s, j]
            for j in range(m):
                if mentor_has_slots[j]:
                    row[j] += min(overlap[j], avail_target) * avail_coef
                else:
                    row[j] += half
        else:
            for j in range(m):
                row[j] += half
        a = attr_of[i]
        b = lang_of[i]
        for j in range(m):
            x = row[j] + attr_table[a, j]
            x += lang_table[b, j]
            row[j] = min(max(x, np.float32(-1.0)), np.float32(1.0))
        for q in range(ex_ptr[i], ex_ptr[i + 1]):
            row[ex_idx[q]] = -1.0
        floor = max(np.float32(0.0), _segment_floor(row, k)) if m >= 4 * k else np.float32(0.0)
        # Branch-free first pass (scores come in random order: a branch per pair mispredicts);
        # ineligible pairs (-1) are below both floors, which are >= 0.
        picked = 0
        for j in range(m):
            x = row[j]
            selected[picked] = j
            picked += int((x >= floor) | (x >= mentor_floor[j]))
        used = 0
        for p in range(picked):
            j = selected[p]
            x = row[j]
            if x >= floor:
                if used == 2 * k:
                    worst = _keep_best(keys, used, k)
                    used = k
                    floor = max(floor, row[_index(worst)])
                if x >= floor:
                    keys[used] = _key(bits[j], j)
                    used += 1
            if x >= mentor_floor[j]:
                n = mentor_count[j]
                if n == mentor_cap:
                    worst = _keep_best(mentor_keys[j], n, mentor_keep)
                    n = mentor_keep
                    convert_bits[0] = np.int32(worst >> 32)
                    mentor_floor[j] = max(mentor_floor[j], convert_value[0])
                if x >= mentor_floor[j]:
                    mentor_keys[j, n] = _key(bits[j], i)
                    n += 1
                mentor_count[j] = n
        if used > k:
            _keep_best(keys, used, k)
            used = k
        best = np.sort(keys[:used])[::-1]
        for a in range(k):
            if a < used:
                j = _index(best[a])
                top_vals[i, a] = row[j]
                top_cols[i, a] = j
            else:
                top_vals[i, a] = -1.0
                top_cols[i, a] = -1


@njit(cache=True, nogil=True)
def merge_mentor_buffers(
    keys: np.ndarray,  # (W, M, 2L) int64: every thread's buffers
    counts: np.ndarray,  # (W, M) int64
    keep: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Each mentor's `keep` best mentees over all threads' buffers, best first (-1 = none)."""
    w, m, cap = keys.shape
    out_vals = np.full((m, keep), -1.0, dtype=np.float32)
    out_rows = np.full((m, keep), -1, dtype=np.int64)
    tmp = np.empty(w * cap, dtype=np.int64)
    convert_bits = np.empty(1, dtype=np.int32)
    convert_value = convert_bits.view(np.float32)
    for j in range(m):
        n = 0
        for t in range(w):
            for a in range(counts[t, j]):
                tmp[n] = keys[t, j, a]
                n += 1
        if n > keep:
            _keep_best(tmp, n, keep)
            n = keep
        best = np.sort(tmp[:n])[::-1]
        for a in range(n):
            convert_bits[0] = np.int32(best[a] >> 32)
            out_vals[j, a] = convert_value[0]
            out_rows[j, a] = _index(best[a])
    return out_vals, out_rows
