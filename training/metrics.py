"""Ranking metrics over score matrices: column 0 holds the true response's score.

Ties count against the true response: its rank is 1 + the number of distractors scoring at
least as high, so a model that scores every candidate the same gets no credit.

Example:
    >>> import numpy as np
    >>> recall_at_k(np.array([[0.9, 0.1, 0.5], [0.2, 0.3, 0.1]]), 1)
    0.5
"""

from __future__ import annotations

import numpy as np


def true_ranks(scores: np.ndarray) -> np.ndarray:
    """The rank (1 = best) of the true response in each row.

    Args:
        scores: ``(n_rows, n_candidates)``, the true response in column 0.

    Returns:
        ``(n_rows,)`` integer ranks in ``1..n_candidates``.

    Example:
        >>> true_ranks(np.array([[0.5, 0.5, 0.1]])).tolist()
        [2]
    """
    scores = np.asarray(scores)
    if scores.ndim != 2 or scores.shape[0] == 0 or scores.shape[1] < 2:
        raise ValueError(
            f"expected scores of shape (n_rows>0, n_candidates>=2), got {scores.shape}"
        )
    if not np.isfinite(scores).all():
        # NaN compares False with everything, which would silently rank it first.
        raise ValueError("scores contain NaN or infinity")
    return 1 + np.sum(scores[:, 1:] >= scores[:, :1], axis=1)


def recall_at_k(scores: np.ndarray, k: int, n_candidates: int | None = None) -> float:
    """The share of rows whose true response ranks in the top ``k``.

    Args:
        scores: ``(n_rows, n_candidates)``, the true response in column 0.
        k: how many top-ranked candidates count as a hit.
        n_candidates: rank among only the first this many columns (``2`` gives R2@1).

    Returns:
        Recall in ``[0, 1]``.

    Example:
        >>> recall_at_k(np.array([[0.2, 0.9, 0.1]]), 1, n_candidates=2)
        0.0
    """
    scores = np.asarray(scores)
    if n_candidates is not None:
        if not 2 <= n_candidates <= scores.shape[-1]:
            raise ValueError(f"n_candidates={n_candidates} outside 2..{scores.shape[-1]}")
        scores = scores[:, :n_candidates]
    if not 1 <= k <= scores.shape[-1]:
        raise ValueError(f"k={k} outside 1..{scores.shape[-1]}")
    return float(np.mean(true_ranks(scores) <= k))


def mean_reciprocal_rank(scores: np.ndarray) -> float:
    """The mean of 1 / rank of the true response.

    Example:
        >>> mean_reciprocal_rank(np.array([[0.9, 0.1], [0.1, 0.9]]))
        0.75
    """
    return float(np.mean(1.0 / true_ranks(scores)))
