"""An inverted index of the responses' TF-IDF rows: lexical top-N without a repository-wide row.

The lexical part of the hybrid score is the cosine of L2-normalised TF-IDF rows,
``Σ_t q_t · w_{t,r}`` over the words ``t`` a query and a response share. Multiplying the query
with every response row touches every response that shares any word, common ones included
(at 1M responses a real context met 843k of them: 382 ms). Here each word's postings
(response ids and weights) are stored heaviest first ("impact order"), and a query reads a
:data:`BUDGET` of postings shared among its words by squared weight, at most
``max_postings`` per word: all of a rare word's, the heaviest of a common word's. The partial
sums pick ``rescore`` candidates, whose exact cosines are then computed from their rows; the
best ``n`` are returned.

What a response can lose: for each word whose postings were cut, at most ``q_t`` times the
weight at the cut. Those words are the common ones, whose idf and so weight is low; the
repository evaluation reports how much of the exact top-10 the served ranking keeps
(``chatbot eval --repository``, "recall@10 of exact").

The arrays are plain ``.npy`` files so that every worker process can memory-map the same pages.

Example:
    >>> import scipy.sparse as sp
    >>> rows = sp.csr_matrix(np.array([[1.0, 0.0], [0.6, 0.8], [0.0, 1.0]], dtype="float32"))
    >>> postings = Postings.from_rows(rows)
    >>> ids, cosines = postings.top(sp.csr_matrix(np.array([[0.0, 1.0]], "float32")), rows, 2)
    >>> ids.tolist(), [round(float(c), 2) for c in cosines]
    ([2, 1], [1.0, 0.8])
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import scipy.sparse as sp

# Postings read per query word. A word in more responses than this is a common one: its
# heaviest postings are read, the rest can add at most q_t x (the weight at the cut) each.
MAX_POSTINGS = 4096
# Postings read per query in all, shared among its words by squared weight (the query row is
# L2-normalised, so the shares add up to one): a long context's many common words get few
# each, its rare words all of theirs. Chosen on the served hybrid's recall@10 of the exact
# ranking at 1M responses and its cost (docs/performance.md): 32,768 with 1,024 re-scored
# kept 0.88 of it (2.8 ms a query), with 4,096 re-scored 0.93 (3.2 ms); 131,072 with 4,096,
# 0.95 (6.9 ms); reading every posting 0.987 (382 ms).
BUDGET = 32_768
# The fewest postings a query word gets from the budget.
MIN_SHARE = 64
# Candidates (by partial sum) whose exact cosine is computed, per response wanted.
RESCORE_FACTOR = 16

FILES = {"indptr": "postings.indptr.npy", "ids": "postings.ids.npy", "weights": "postings.w.npy"}


@dataclass(frozen=True)
class Postings:
    """Each word's responses, heaviest weight first.

    Attributes:
        indptr: ``(words + 1,)`` int64; word ``t``'s postings are ``[indptr[t], indptr[t+1])``.
        ids: ``(nnz,)`` int32 response ids.
        weights: ``(nnz,)`` float32 TF-IDF weights, descending within each word.
    """

    indptr: np.ndarray
    ids: np.ndarray
    weights: np.ndarray

    @classmethod
    def from_rows(cls, rows: sp.csr_matrix) -> Postings:
        """Inverts ``(responses, words)`` TF-IDF rows."""
        by_word = sp.csc_matrix(rows, dtype=np.float32)
        by_word.sum_duplicates()
        word = np.repeat(np.arange(by_word.shape[1]), np.diff(by_word.indptr))
        order = np.lexsort((-by_word.data, word))  # by word, then heaviest first
        return cls(
            by_word.indptr.astype(np.int64),
            by_word.indices[order].astype(np.int32),
            by_word.data[order].astype(np.float32),
        )

    @property
    def n_words(self) -> int:
        return len(self.indptr) - 1

    def save(self, folder: Path) -> list[str]:
        """Writes the three arrays into ``folder``; returns their file names."""
        for name, file in FILES.items():
            np.save(folder / file, getattr(self, name))
        return list(FILES.values())

    @classmethod
    def load(cls, folder: Path, mmap: bool = True) -> Postings:
        if mmap:
            return cls(**{name: np.load(folder / f, mmap_mode="r") for name, f in FILES.items()})
        return cls(**{name: np.load(folder / f) for name, f in FILES.items()})

    def top(
        self,
        query: sp.csr_matrix,
        rows: sp.csr_matrix,
        n: int,
        max_postings: int = MAX_POSTINGS,
        rescore: int | None = None,
        budget: int | None = BUDGET,
    ) -> tuple[np.ndarray, np.ndarray]:
        """The ``n`` responses of highest TF-IDF cosine with one query, best first.

        Args:
            query: ``(1, words)`` L2-normalised TF-IDF row.
            rows: the responses' TF-IDF rows, for the exact cosines of the candidates.
            n: responses wanted (fewer come back when fewer share a word with the query).
            max_postings: postings read per query word.
            rescore: candidates re-scored exactly; default ``RESCORE_FACTOR × n``.
            budget: postings read in all, shared by squared query weight (at least
                ``MIN_SHARE`` a word); ``None`` reads ``max_postings`` of every word.

        Returns:
            ``(ids, cosines)``: int64 and float32 arrays, highest cosine first (ties by id).
        """
        words, q = query.indices, query.data.astype(np.float32)
        if len(words) and (words.max() >= self.n_words):
            raise ValueError(f"query has word {words.max()}, postings know {self.n_words}")
        starts = self.indptr[words]
        lengths = np.minimum(self.indptr[words + 1] - starts, max_postings)
        if budget is not None:
            share = np.ceil(budget * q.astype(np.float64) ** 2).astype(np.int64)
            lengths = np.minimum(lengths, np.maximum(share, MIN_SHARE))
        total = int(lengths.sum())
        if total == 0:
            return np.zeros(0, np.int64), np.zeros(0, np.float32)
        # Positions of the postings to read: each word's run [start, start + length).
        run_starts = np.repeat(starts - np.cumsum(lengths) + lengths, lengths)
        positions = run_starts + np.arange(total)
        ids = self.ids[positions]
        partial = self.weights[positions] * np.repeat(q, lengths)
        candidates, sums = _sum_by_id(ids, partial)
        keep = rescore if rescore is not None else RESCORE_FACTOR * n
        if len(candidates) > keep:
            candidates = candidates[np.argpartition(-sums, keep - 1)[:keep]]
        cosines = np.asarray(rows[candidates] @ query.T.astype(np.float32).toarray()).ravel()
        order = np.lexsort((candidates, -cosines))[:n]
        return candidates[order].astype(np.int64), cosines[order].astype(np.float32)


# Partial sums are packed below the response id into one uint64 and summed after one sort
# (a plain sort is several times faster than the argsort np.unique needs to sum by id).
_FRACTION_BITS = 31


def _sum_by_id(ids: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The distinct ``ids`` (ascending) and the sum of ``values`` (each in [0, 1]) of each,
    to within ``len(ids) × 2^-31``.

    Example:
        >>> found, sums = _sum_by_id(np.array([5, 2, 5]), np.array([0.25, 0.5, 0.5]))
        >>> found.tolist(), sums.tolist()
        ([2, 5], [0.5, 0.75])
    """
    scale = float(1 << _FRACTION_BITS)
    fixed = np.minimum(values * scale, scale - 1).astype(np.uint64)
    packed = np.sort((ids.astype(np.uint64) << np.uint64(32)) | fixed)
    sorted_ids = (packed >> np.uint64(32)).astype(np.int64)
    starts = np.flatnonzero(np.diff(sorted_ids, prepend=-1))
    fractions = (packed & np.uint64((1 << 32) - 1)).astype(np.float64) / scale
    return sorted_ids[starts], np.add.reduceat(fractions, starts)
