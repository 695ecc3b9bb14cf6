"""Ranking metrics against score matrices whose answers are worked out by hand."""

from __future__ import annotations

import numpy as np
import pytest

from training.metrics import mean_reciprocal_rank, recall_at_k, true_ranks

# Column 0 is the true response.
SCORES = np.array(
    [
        [0.9, 0.1, 0.5, 0.3],  # nothing >= 0.9                 -> rank 1
        [0.5, 0.5, 0.1, 0.2],  # column 1 ties 0.5 (tie loses)  -> rank 2
        [0.2, 0.3, 0.4, 0.1],  # 0.3 and 0.4 beat 0.2           -> rank 3
        [0.0, 0.0, 0.0, 0.0],  # all three tie                  -> rank 4
    ]
)


def test_ranks_count_ties_against_the_true_response() -> None:
    assert true_ranks(SCORES).tolist() == [1, 2, 3, 4]


@pytest.mark.parametrize(("k", "expected"), [(1, 0.25), (2, 0.5), (3, 0.75), (4, 1.0)])
def test_recall_at_k(k: int, expected: float) -> None:
    # Ranks 1, 2, 3, 4: recall@k = (number of ranks <= k) / 4.
    assert recall_at_k(SCORES, k) == pytest.approx(expected)


def test_recall_2_at_1_uses_only_the_first_distractor() -> None:
    # Column 0 vs column 1 only: 0.9 > 0.1 hit; 0.5 = 0.5 tie, miss; 0.2 < 0.3 miss;
    # 0.0 = 0.0 tie, miss -> 1/4.
    assert recall_at_k(SCORES, 1, n_candidates=2) == pytest.approx(0.25)
    # Row 2's 0.4 in column 2 must not matter once only two columns are used.
    assert recall_at_k(np.array([[0.35, 0.3, 0.4]]), 1, n_candidates=2) == 1.0


def test_mean_reciprocal_rank() -> None:
    # (1/1 + 1/2 + 1/3 + 1/4) / 4 = (25/12) / 4 = 25/48.
    assert mean_reciprocal_rank(SCORES) == pytest.approx(25 / 48)


@pytest.mark.parametrize(
    ("scores", "k", "n_candidates"),
    [
        (np.array([[0.1, np.nan]]), 1, None),
        (np.array([[0.1, 0.2]]), 3, None),
        (np.array([[0.1, 0.2]]), 0, None),
        (np.array([[0.1, 0.2, 0.3]]), 1, 4),
        (np.zeros((0, 10)), 1, None),
        (np.array([0.1, 0.2]), 1, None),
    ],
)
def test_invalid_input_raises(scores: np.ndarray, k: int, n_candidates: int | None) -> None:
    with pytest.raises(ValueError):
        recall_at_k(scores, k, n_candidates)
