"""Baselines for the 1-in-10 ranking task: TF-IDF cosine (Lowe et al., 2015) and random.

Each returns a score matrix ``(n_rows, n_candidates)`` with the true response in column 0, as
the metrics in :mod:`training.metrics` expect.

Example:
    >>> baseline_scores("tfidf", rows).shape  # doctest: +SKIP
    (100, 10)
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from sklearn.feature_extraction.text import TfidfVectorizer

from training.sources.udc_csv import EvalRow


def candidate_count(rows: Sequence[EvalRow]) -> int:
    """The number of candidates per row, which must be the same for every row."""
    counts = {len(row.candidates) for row in rows}
    if len(counts) != 1:
        raise ValueError(f"rows must share one candidate count, found {sorted(counts) or 'none'}")
    return counts.pop()


def tfidf_scores(rows: Sequence[EvalRow]) -> np.ndarray:
    """Cosine similarity between TF-IDF vectors of each context and each of its candidates.

    The vectoriser is fitted on the rows' own texts (contexts and all candidates). Tokens are
    split on whitespace only, since the texts are already normalised.

    Args:
        rows: the evaluation rows.

    Returns:
        ``(len(rows), n_candidates)`` float scores.

    Example:
        >>> tfidf_scores(rows).argmax(axis=1)  # doctest: +SKIP
        array([0, 3, ...])
    """
    m = candidate_count(rows)
    contexts = [row.context for row in rows]
    candidates = [text for row in rows for text in row.candidates]
    vectorizer = TfidfVectorizer(token_pattern=r"\S+", lowercase=False)
    vectorizer.fit(contexts + candidates)
    # Rows are L2-normalised, so the dot product is the cosine.
    c = vectorizer.transform(contexts)[np.repeat(np.arange(len(rows)), m)]
    r = vectorizer.transform(candidates)
    return np.asarray(c.multiply(r).sum(axis=1)).reshape(len(rows), m)


def random_scores(rows: Sequence[EvalRow], seed: int = 0) -> np.ndarray:
    """Uniform random scores: the chance level (R10@1 about 0.1).

    Example:
        >>> random_scores(rows, seed=1).shape  # doctest: +SKIP
        (100, 10)
    """
    return np.random.default_rng(seed).random((len(rows), candidate_count(rows)))


BASELINES = ("tfidf", "random")


def baseline_scores(name: str, rows: Sequence[EvalRow], seed: int = 0) -> np.ndarray:
    """The score matrix of the baseline called ``name`` (one of :data:`BASELINES`).

    Example:
        >>> baseline_scores("random", rows, seed=3).shape  # doctest: +SKIP
        (100, 10)
    """
    if name == "tfidf":
        return tfidf_scores(rows)
    if name == "random":
        return random_scores(rows, seed)
    raise ValueError(f"unknown baseline {name!r}; choose from {BASELINES}")
