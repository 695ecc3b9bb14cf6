"""Baselines for the 1-in-10 ranking task: TF-IDF cosine (Lowe et al., 2015) and random.

Each returns a score matrix ``(n_rows, n_candidates)`` with the true response in column 0, as
the metrics in :mod:`training.metrics` expect.

Example:
    >>> rows = [EvalRow("wifi __eou__", "wifi card __eou__", ("sound __eou__", "ok __eou__"))]
    >>> baseline_scores("tfidf", rows).argmax(axis=1).tolist()  # the true response wins
    [0]
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from training.sources.udc_csv import EvalRow

# scikit-learn (and chatbot.scoring, which needs it) is imported where the scores are made:
# the CLI reads BASELINES to build its parser, and `chatbot serve`'s supervising process,
# which builds that parser too, should not hold scikit-learn, scipy and pandas.


def tfidf_scores(rows: Sequence[EvalRow]) -> np.ndarray:
    """Cosine similarity between TF-IDF vectors of each context and each of its candidates.

    The vectoriser is fitted on the rows' own texts (contexts and all candidates). Tokens are
    split on whitespace only, since the texts are already normalised.

    Args:
        rows: the evaluation rows.

    Returns:
        ``(len(rows), n_candidates)`` float scores.

    """
    from sklearn.feature_extraction.text import TfidfVectorizer

    from chatbot.lexical import rowwise_dot
    from chatbot.scoring import candidate_count

    m = candidate_count([row.candidates for row in rows])
    contexts = [row.context for row in rows]
    candidates = [text for row in rows for text in row.candidates]
    vectorizer = TfidfVectorizer(token_pattern=r"\S+", lowercase=False)
    vectorizer.fit(contexts + candidates)
    # Rows are L2-normalised, so the dot product is the cosine.
    c = vectorizer.transform(contexts)[np.repeat(np.arange(len(rows)), m)]
    r = vectorizer.transform(candidates)
    return rowwise_dot(c, r).reshape(len(rows), m)


def random_scores(rows: Sequence[EvalRow], seed: int = 0) -> np.ndarray:
    """Uniform random scores: the chance level (R10@1 about 0.1)."""
    from chatbot.scoring import candidate_count

    shape = (len(rows), candidate_count([row.candidates for row in rows]))
    return np.random.default_rng(seed).random(shape)


BASELINES = ("tfidf", "random")


def baseline_scores(name: str, rows: Sequence[EvalRow], seed: int = 0) -> np.ndarray:
    """The score matrix of the baseline called ``name`` (one of :data:`BASELINES`)."""
    if name == "tfidf":
        return tfidf_scores(rows)
    if name == "random":
        return random_scores(rows, seed)
    raise ValueError(f"unknown baseline {name!r}; choose from {BASELINES}")
