"""The inner loop of lexical search, compiled (numba): read postings, sum, pick, re-score.

:meth:`chatbot.postings.Postings.top` plans which postings a query reads; this module does
the per-posting work. In numpy the same steps (a gather, a sort to sum by response, a
partition, a sparse row gather for the exact cosines) cost about 4 ms a context at 1M
responses, most of it in temporaries and call overhead (docs/performance.md). Here they are
loops over the memory-mapped arrays. Partial sums go into an open-addressing hash table
sized to the postings read (tens of thousands), which stays in cache where an array with a
slot per response (8 MB at 1M) would miss it on nearly every posting.

Example:
    >>> ids, cos = top_candidates(
    ...     np.array([0, 2, 1, 2], np.int32), np.array([0.9, 0.5, 0.8, 0.4], np.float32),
    ...     np.array([0, 2]), np.array([2, 2]), np.array([1.0, 0.5], np.float32),
    ...     np.array([0, 1]), 2, 0.0, 2,
    ...     np.array([0, 1, 2, 4]), np.array([0, 1, 0, 1], np.int32),
    ...     np.array([1.0, 1.0, 0.6, 0.8], np.float32), 2)
    >>> sorted(zip(ids.tolist(), cos.round(2).tolist()))
    [(0, 1.0), (2, 1.0)]
"""

from __future__ import annotations

import numba
import numpy as np

_EMPTY = -1
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)  # Fibonacci hashing: spreads consecutive ids
_ROUNDING = 1e-5  # above any float32 rounding of a cosine (a sum of terms below 1)


@numba.njit(cache=True, nogil=True)
def top_candidates(
    ids: np.ndarray,
    weights: np.ndarray,
    starts: np.ndarray,
    lengths: np.ndarray,
    q: np.ndarray,
    words: np.ndarray,
    wanted: int,
    slack: float,
    keep: int,
    row_indptr: np.ndarray,
    row_indices: np.ndarray,
    row_data: np.ndarray,
    n_words: int,
) -> tuple[np.ndarray, np.ndarray]:  # pragma: no cover - compiled; tested through Postings
    """The responses of highest partial sum that can be among the ``wanted`` best, at most
    ``keep`` of them, and their exact cosines (any order).

    A response's exact cosine is at least its partial sum and at most that plus ``slack``
    (what the unread postings can add), so one whose partial sum is more than ``slack``
    below the ``wanted``-th best can never reach the ``wanted`` best and is not re-scored:
    with nothing cut (``slack`` 0) only the ``wanted`` best (and ties) are.

    Args:
        ids, weights: the postings (response id and weight, heaviest first per word).
        starts, lengths: for each query word, where its postings start and how many to read.
        q: the query's word weights (an L2-normalised row); ``words``: their columns.
        wanted: responses the caller will keep.
        slack: the most the unread postings can add to any response's partial sum.
        keep: the most candidates to re-score.
        row_indptr, row_indices, row_data: the responses' TF-IDF rows (CSR).
        n_words: the width of those rows.
    """
    total = 0
    for t in range(len(starts)):
        total += lengths[t]
    bits = 1
    while (1 << bits) < 2 * total:
        bits += 1
    mask = (1 << bits) - 1
    shift = np.uint64(64 - bits)
    slot_id = np.full(1 << bits, _EMPTY, dtype=np.int32)
    slot_sum = np.zeros(1 << bits, dtype=np.float32)
    found = np.empty(total, dtype=np.int32)  # slots in first-seen order
    n_found = 0
    for t in range(len(starts)):
        weight = q[t]
        for p in range(starts[t], starts[t] + lengths[t]):
            r = ids[p]
            h = np.int64((np.uint64(r) * _GOLDEN) >> shift)
            while slot_id[h] != _EMPTY and slot_id[h] != r:
                h = (h + 1) & mask
            if slot_id[h] == _EMPTY:
                slot_id[h] = r
                found[n_found] = h
                n_found += 1
            slot_sum[h] += weight * weights[p]
    sums = np.empty(n_found, dtype=np.float32)
    for i in range(n_found):
        sums[i] = slot_sum[found[i]]
    floor = -np.inf  # candidates are the partial sums from here up (or the keep best)
    if n_found > wanted > 0:
        # Less a little more than the slack: the sums are float32, rounded in another order
        # than the cosines computed from the rows.
        floor = -np.partition(-sums, wanted - 1)[wanted - 1] - slack - _ROUNDING
        reachable = 0
        for i in range(n_found):
            reachable += sums[i] >= floor
        if reachable <= keep:
            keep = reachable  # every reachable one: the floor picks them, no second partition
        else:
            floor = -np.inf
    chosen = np.empty(min(keep, n_found), dtype=np.int64)
    if np.isfinite(floor) or n_found <= keep:
        m = 0
        for i in range(n_found):
            if sums[i] >= floor:
                chosen[m] = slot_id[found[i]]
                m += 1
    else:  # the keep best: above the keep-th best sum, then ties up to keep
        threshold = -np.partition(-sums, keep - 1)[keep - 1]
        m = 0
        for i in range(n_found):
            if sums[i] > threshold:
                chosen[m] = slot_id[found[i]]
                m += 1
        for i in range(n_found):
            if m == keep:
                break
            if sums[i] == threshold:
                chosen[m] = slot_id[found[i]]
                m += 1
    dense_query = np.zeros(n_words, dtype=np.float32)
    for t in range(len(words)):
        dense_query[words[t]] = q[t]
    cosines = np.empty(len(chosen), dtype=np.float32)
    for i in range(len(chosen)):
        cosines[i] = _row_dot(row_indptr, row_indices, row_data, chosen[i], dense_query)
    return chosen, cosines


@numba.njit(cache=True, nogil=True)
def owned_cosines(
    row_indptr: np.ndarray,
    row_indices: np.ndarray,
    row_data: np.ndarray,
    ids: np.ndarray,
    owner: np.ndarray,
    query_indptr: np.ndarray,
    query_indices: np.ndarray,
    query_data: np.ndarray,
    n_words: int,
) -> np.ndarray:  # pragma: no cover - compiled; tested through chatbot.scoring
    """The TF-IDF cosine of each response ``ids[i]`` with query row ``owner[i]``: the rows'
    and the queries' CSR arrays in, one float32 per pair out (:func:`_row_dot`, as
    :func:`top_candidates` re-scores)."""
    out = np.empty(len(ids), dtype=np.float32)
    dense = np.zeros(n_words, dtype=np.float32)  # the current query, spread out
    current = -1
    for j in np.argsort(owner, kind="mergesort"):
        o = owner[j]
        if o != current:
            if current >= 0:
                for p in range(query_indptr[current], query_indptr[current + 1]):
                    dense[query_indices[p]] = 0.0
            for p in range(query_indptr[o], query_indptr[o + 1]):
                dense[query_indices[p]] = query_data[p]
            current = o
        out[j] = _row_dot(row_indptr, row_indices, row_data, ids[j], dense)
    return out


@numba.njit(cache=True, nogil=True)
def _row_dot(
    row_indptr: np.ndarray, row_indices: np.ndarray, row_data: np.ndarray, r: int, dense: np.ndarray
) -> np.float32:  # pragma: no cover - compiled
    """Row ``r`` of a CSR matrix times a dense query, summed in row order in float32: the one
    cosine both kernels compute, so that theirs agree to the bit (the fusion mixes them)."""
    s = np.float32(0.0)
    for p in range(row_indptr[r], row_indptr[r + 1]):
        s += dense[row_indices[p]] * row_data[p]
    return s
