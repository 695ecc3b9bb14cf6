"""Fits a model's confidence curves on validation rows and measures how well they hold.

For each validation row the model ranks a set of replies; an *example* is the best reply's
score, its margin over the runner-up, and whether it was the true reply:

* ``candidates``: the row's own 10 (1 true, 9 distractors);
* ``repository``: the true reply against every response of the repository, as the service
  ranks it (:meth:`chatbot.scoring.Scorer.rank`, echo rule included). The best reply is right
  when the true reply beats the served best (or is the same text).

A logistic regression (Platt scaling, scikit-learn) on (score, margin) per job is the
:class:`chatbot.calibration.Calibration` saved in the artifact. :func:`calibration_report`
measures it on test rows: expected calibration error (ECE), and the risk–coverage curve
(precision of the answered top-1 replies against the share answered, most confident first).

Example:
    >>> confident = np.array([0.9, 0.8, 0.3, 0.2]); right = np.array([1, 1, 0, 1])
    >>> coverage_at_precision(confident, right, 0.9)
    0.5
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from chatbot.calibration import Calibration, PlattCurve
from chatbot.scoring import Scorer
from chatbot.text import split_turns
from training.errors import DataError
from training.raw_text import raw_arguments, raw_turns
from training.sources.udc_csv import EvalRow, read_eval_rows

log = logging.getLogger(__name__)

ECE_BINS = 10
# The precision a support team would want before the bot answers on its own.
TARGET_PRECISION = 0.9
# Repository examples cost a whole served ranking each: enough rows for two coefficients.
MAX_REPOSITORY_ROWS = 2000


@dataclass(frozen=True)
class Examples:
    """One example per row: the best reply's score, its margin, whether it was right."""

    best: np.ndarray  # (n,) float64
    margin: np.ndarray  # (n,) float64
    right: np.ndarray  # (n,) bool

    def __len__(self) -> int:
        return len(self.right)


def candidate_examples(scores: np.ndarray) -> Examples:
    """From 1-in-N score rows (the true reply in column 0; a tie counts as wrong).

    Example:
        >>> candidate_examples(np.array([[3.0, 1.0, 0.0], [1.0, 2.0, 1.0]])).right.tolist()
        [True, False]
    """
    ordered = -np.sort(-scores.astype(np.float64), axis=1)
    right = scores[:, 0] > np.max(scores[:, 1:], axis=1)
    return Examples(ordered[:, 0], ordered[:, 0] - ordered[:, 1], right)


def repository_examples(
    rows: Sequence[EvalRow], scorer: Scorer, index: Any, normalizer: Any
) -> Examples:
    """From the served ranking of the repository, with each row's true reply added to it."""
    from chatbot.search import make_backend
    from training.repository_eval import repository_texts

    contexts = [row.context for row in rows]
    last_turns = [(split_turns(c) or [""])[-1] for c in contexts]
    backend = make_backend("numpy", index.vectors)
    served = scorer.rank(contexts, last_turns, index, backend, 2, raw_turns=raw_turns(rows))
    return served_examples(rows, served, scorer, repository_texts(index, normalizer))


def served_examples(
    rows: Sequence[EvalRow],
    served: Sequence[Sequence[tuple[int, float]]],
    scorer: Scorer,
    repo: Sequence[str],
) -> Examples:
    """From a served ranking already made (each row's best ``(row id, score)``, best first):
    its best two against each row's true reply, scored by ``scorer``."""
    truth = scorer.pair_scores(
        [row.context for row in rows],
        [[row.response] for row in rows],
        **raw_arguments(rows, candidates=1),
    )
    best, margin, right = [], [], []
    for row, top, true_score in zip(rows, served, truth[:, 0], strict=True):
        scores = [score for _, score in top[:2]]  # the served best two
        if top and repo[top[0][0]] == row.response:  # the true text itself, served first
            ranked, wins = scores, True
        else:
            ranked = sorted([float(true_score), *scores], reverse=True)
            wins = not scores or true_score > scores[0]
        best.append(ranked[0])
        margin.append(ranked[0] - ranked[1] if len(ranked) > 1 else 0.0)
        right.append(wins)
    return Examples(np.array(best), np.array(margin), np.array(right, dtype=bool))


def fit_curve(examples: Examples) -> PlattCurve:
    """Platt scaling on (score, margin); a constant curve when every example agrees."""
    from sklearn.linear_model import LogisticRegression

    rate = float(np.mean(examples.right))
    if examples.right.all() or not examples.right.any():
        logit = float(np.log((rate + 1e-3) / (1 - rate + 1e-3)))
        return PlattCurve(0.0, 0.0, logit, rows=len(examples), base_rate=rate)
    features = np.stack([examples.best, examples.margin], axis=1)
    fitted = LogisticRegression(C=1e4, max_iter=1000).fit(features, examples.right)
    (score, margin), intercept = fitted.coef_[0], fitted.intercept_[0]
    return PlattCurve(float(score), float(margin), float(intercept), len(examples), rate)


def expected_calibration_error(confidence: np.ndarray, right: np.ndarray) -> float:
    """Σ over 10 equal-width confidence bins of (share of rows) × |mean confidence − accuracy|.

    Example:
        >>> round(expected_calibration_error(np.array([0.9, 0.9, 0.1, 0.1]),
        ...                                  np.array([1, 0, 0, 0])), 3)
        0.25
    """
    bins = np.minimum((confidence * ECE_BINS).astype(int), ECE_BINS - 1)
    error = 0.0
    for b in np.unique(bins):
        members = bins == b
        error += members.mean() * abs(confidence[members].mean() - right[members].mean())
    return float(error)


def risk_coverage(confidence: np.ndarray, right: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(coverage, precision)``: answering the most confident i rows, for i = 1..n.

    Example:
        >>> coverage, precision = risk_coverage(np.array([0.2, 0.9]), np.array([0, 1]))
        >>> coverage.tolist(), precision.tolist()
        ([0.5, 1.0], [1.0, 0.5])
    """
    order = np.argsort(-confidence, kind="stable")
    hits = np.cumsum(np.asarray(right, dtype=np.float64)[order])
    answered = np.arange(1, len(order) + 1)
    return answered / len(order), hits / answered


def coverage_at_precision(confidence: np.ndarray, right: np.ndarray, precision: float) -> float:
    """The largest share of rows the bot can answer with at least ``precision`` of them right
    (0 when even its surest answer misses it). Rows tied in confidence are answered together."""
    order = np.argsort(-confidence, kind="stable")
    sorted_conf = confidence[order]
    hits = np.cumsum(np.asarray(right, dtype=np.float64)[order])
    answered = np.arange(1, len(order) + 1)
    # A threshold can only stop where the confidence changes.
    stops = np.r_[sorted_conf[1:] != sorted_conf[:-1], True]
    good = stops & (hits / answered >= precision)
    return float(answered[good].max() / len(order)) if good.any() else 0.0


def calibration_report(curve: PlattCurve, examples: Examples, fitted: bool) -> dict[str, Any]:
    """ECE, coverage at :data:`TARGET_PRECISION` and the risk–coverage curve (100 points)."""
    confidence = curve.probability(examples.best, examples.margin)
    coverage, precision = risk_coverage(confidence, examples.right)
    points = np.unique(np.linspace(0, len(coverage) - 1, min(100, len(coverage))).astype(int))
    return {
        "fitted": fitted,
        "n": len(examples),
        "accuracy": float(np.mean(examples.right)),
        "mean_confidence": float(np.mean(confidence)),
        "ece": expected_calibration_error(confidence, examples.right),
        f"coverage@{TARGET_PRECISION:.0%}_precision": coverage_at_precision(
            confidence, examples.right, TARGET_PRECISION
        ),
        "curve": {
            "coverage": coverage[points].round(4).tolist(),
            "precision": precision[points].round(4).tolist(),
        },
    }


def fit_calibration(
    scorer: Scorer,
    valid_sets: Mapping[str, Path],
    index: Any = None,
    normalizer: Any = None,
) -> tuple[Calibration, dict[str, Any]]:
    """The model's curves from its validation rows (all sets pooled), and what they did there.

    Args:
        scorer: the model.
        valid_sets: 1-in-10 validation files by name (those that exist are used).
        index: the response repository, for the ``repository`` curve (``None``: skipped).
        normalizer: the model's normalisation (for indexes without stored normalised texts).
    """
    from training.evaluate import model_scores

    rows = [row for path in valid_sets.values() if path.is_file() for row in read_eval_rows(path)]
    if not rows:  # a DataError is a ValueError too, and the command line reports it
        raise DataError(", ".join(map(str, valid_sets.values())), None, "no validation rows")
    examples = {"candidates": candidate_examples(model_scores(rows, scorer, progress=False))}
    if index is not None:
        rng = np.random.default_rng(0)
        picked = rng.permutation(len(rows))[:MAX_REPOSITORY_ROWS]
        subset = [rows[i] for i in sorted(picked)]
        examples["repository"] = repository_examples(subset, scorer, index, normalizer)
    curves = {name: fit_curve(found) for name, found in examples.items()}
    fitted_on = {
        name: calibration_report(curves[name], found, fitted=True)
        for name, found in examples.items()
    }
    for name, report in fitted_on.items():
        log.info(
            "calibration (%s): %d validation rows, accuracy %.3f, ECE %.3f",
            name,
            report["n"],
            report["accuracy"],
            report["ece"],
        )
    details: dict[str, Any] = {"valid_sets": {k: str(v) for k, v in valid_sets.items()}}
    if index is not None:
        details["repository_size"] = len(index)
    summary = {name: {k: v for k, v in r.items() if k != "curve"} for name, r in fitted_on.items()}
    return Calibration(curves, details=details), summary


def calibrate_model(
    model_dir: Path, valid_sets: Mapping[str, Path], index_dir: Path | None = None
) -> dict[str, Any]:
    """Fits the curves of the artifact at ``model_dir`` and writes its ``calibration.json``."""
    from chatbot.artifact import load_artifact, write_calibration
    from chatbot.index import load_index
    from chatbot.text import Normalizer

    artifact = load_artifact(model_dir)
    index = load_index(index_dir, artifact) if index_dir is not None else None
    calibration, summary = fit_calibration(
        artifact.scorer(), valid_sets, index, Normalizer(artifact.config.normalization)
    )
    write_calibration(model_dir, calibration)
    return summary
