"""An inverted index of the responses' TF-IDF rows: lexical top-N without a repository-wide row.

The lexical part of the hybrid score is the cosine of L2-normalised TF-IDF rows,
``Σ_t q_t · w_{t,r}`` over the words ``t`` a query and a response share. Multiplying the query
with every response row touches every response that shares any word, common ones included
(at 1M responses a real context met 843k of them: 382 ms). Here each word's postings
(response ids and weights) are stored heaviest first ("impact order"), and a query reads a
:data:`BUDGET` of postings shared among its words by squared weight, at most
``max_postings`` per word: all of a rare word's, the heaviest of a common word's; a word in
at most :data:`FULL_READ_SHARE` of the responses is read whole. The partial sums pick the
candidates that can still reach the best ``n`` (at most ``rescore``), whose exact cosines are
then computed from their rows; the best ``n`` are returned. This module plans what a query
reads; the reading, summing and re-scoring is a compiled loop (:mod:`chatbot.postings_kernel`).

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
from typing import Literal

import numpy as np
import scipy.sparse as sp

from chatbot.postings_kernel import top_candidates

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
# A word in at most this share of the responses (idf of ln 64 and more: an informative word)
# is read whole, whatever its share of the budget. A long response spreads its weight over
# many words, so it sits below the heaviest postings of each: at 1M responses, contexts of
# 40+ words missed 0.15 of their exact lexical top-10 on the shares alone.
FULL_READ_SHARE = 1 / 64
# The most postings read whole (the rarest words first): bounds what a very long context
# costs. At 1M, 200 contexts: uncapped 0.990 of the exact lexical top-10, p99 14-17 ms, worst
# 20-32 ms; capped at 65,536, 0.985, p99 6.1 ms, worst 6.5 ms.
FULL_READ_MAX = 65_536
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
        # Plain ndarray views of the mapped pages: a np.memmap costs a Python-level
        # __getitem__ and __array_wrap__ on every index and every array made from it.
        mode: Literal["r"] | None = "r" if mmap else None
        return cls(
            **{name: np.asarray(np.load(folder / f, mmap_mode=mode)) for name, f in FILES.items()}
        )

    def top(
        self,
        query: sp.csr_matrix,
        rows: sp.csr_matrix,
        n: int,
        max_postings: int = MAX_POSTINGS,
        rescore: int | None = None,
        budget: int | None = BUDGET,
        full_read_share: float = FULL_READ_SHARE,
    ) -> tuple[np.ndarray, np.ndarray]:
        """The ``n`` responses of highest TF-IDF cosine with one query, best first.

        Args:
            query: ``(1, words)`` L2-normalised TF-IDF row.
            rows: the responses' TF-IDF rows, for the exact cosines of the candidates.
            n: responses wanted (fewer come back when fewer share a word with the query).
            max_postings: postings read per query word.
            rescore: the most candidates re-scored exactly; default ``RESCORE_FACTOR × n``.
                Only those whose partial sum plus what the unread postings could add
                reaches the ``n``-th best partial sum are.
            budget: postings read in all, shared by squared query weight (at least
                ``MIN_SHARE`` a word); ``None`` reads ``max_postings`` of every word.
            full_read_share: with a budget, words in at most this share of the responses
                are read whole (past ``max_postings`` too), the rarest first, up to
                :data:`FULL_READ_MAX` postings.

        Returns:
            ``(ids, cosines)``: int64 and float32 arrays, highest cosine first (ties by id).
        """
        words, q = query.indices, query.data.astype(np.float32)
        if len(words) and (words.max() >= self.n_words):
            raise ValueError(f"query has word {words.max()}, postings know {self.n_words}")
        starts = self.indptr[words]
        df = self.indptr[words + 1] - starts  # responses holding each word
        lengths = np.minimum(df, max_postings)
        if budget is not None:
            share = np.ceil(budget * q.astype(np.float64) ** 2).astype(np.int64)
            lengths = np.minimum(lengths, np.maximum(share, MIN_SHARE))
            lengths = np.where(_read_whole(df, full_read_share * rows.shape[0]), df, lengths)
        if int(lengths.sum()) == 0:
            return np.zeros(0, np.int64), np.zeros(0, np.float32)
        cut = lengths < df  # the first unread posting is the heaviest unread one
        slack = float(q[cut] @ self.weights[starts[cut] + lengths[cut]]) if cut.any() else 0.0
        candidates, cosines = top_candidates(
            self.ids,
            self.weights,
            np.asarray(starts, dtype=np.int64),  # no copy: indptr is int64
            np.asarray(lengths, dtype=np.int64),
            q,
            words.astype(np.int64),
            n,
            slack,
            rescore if rescore is not None else RESCORE_FACTOR * n,
            rows.indptr,
            rows.indices,
            rows.data,
            rows.shape[1],
        )
        order = _best_first(candidates, cosines, n)
        return candidates[order], cosines[order]


def _best_first(ids: np.ndarray, cosines: np.ndarray, n: int) -> np.ndarray:
    """Positions of the ``n`` highest ``cosines``, highest first, ties by id: the first ``n``
    of a lexsort of all, from a partition and a sort of those at or above the ``n``-th
    (re-scoring leaves thousands of candidates; a lexsort of them all cost 0.75 ms).

    Example:
        >>> _best_first(np.array([5, 3, 9, 1]), np.array([0.2, 0.7, 0.7, 0.1]), 2).tolist()
        [1, 2]
    """
    if len(ids) > n > 0:
        nth = cosines[np.argpartition(-cosines, n - 1)[n - 1]]
        at_least = np.flatnonzero(cosines >= nth)
        return at_least[np.lexsort((ids[at_least], -cosines[at_least]))][:n]
    return np.lexsort((ids, -cosines))[:n]


def _read_whole(df: np.ndarray, max_df: float) -> np.ndarray:
    """Which query words are read whole: those in at most ``max_df`` responses, the rarest
    first while they add up to at most :data:`FULL_READ_MAX` postings.

    Example:
        >>> _read_whole(np.array([10, 70_000, 40_000, 30_000]), 50_000).tolist()
        [True, False, False, True]
    """
    rare = np.flatnonzero(df <= max_df)
    rare = rare[np.argsort(df[rare], kind="stable")]
    whole = np.zeros(len(df), dtype=bool)
    whole[rare[np.cumsum(df[rare]) <= FULL_READ_MAX]] = True
    return whole
