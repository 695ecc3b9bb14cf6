"""Calibrated confidence: how likely the best reply is the right one, from its score.

A model's score is a logit of no fixed scale. A :class:`Calibration` maps the best reply's
score and its margin over the runner-up to a probability, by a logistic (Platt) curve fitted
on validation rows (:mod:`training.calibration`), one curve per kind of job:

* ``candidates``: the best of a short list (``chatbot eval``'s 1 in 10, a request's own
  ``candidates``);
* ``repository``: the best of the whole response repository (``/respond``'s usual job).

The curves live in the artifact's ``calibration.json``. A model without one gets
:data:`UNCALIBRATED`, which reads the logit as a probability (``σ(score)``) and says so.

Example:
    >>> curve = PlattCurve(score=1.0, margin=2.0, intercept=-3.0)
    >>> round(curve.confidence(np.array([3.0, 1.5])), 3)  # σ(3 + 2·1.5 − 3)
    0.953
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

FORMAT = 1
SETTINGS = ("candidates", "repository")


def top_two(scores: np.ndarray) -> tuple[float, float]:
    """The best score and its margin over the runner-up (0 when there is none).

    Example:
        >>> top_two(np.array([0.5, 2.0, 1.0]))
        (2.0, 1.0)
    """
    if scores.size == 0:
        raise ValueError("no scores")
    if scores.size == 1:
        return float(scores[0]), 0.0
    second, first = np.partition(scores.astype(np.float64), scores.size - 2)[-2:]
    return float(first), float(first - second)


@dataclass(frozen=True)
class PlattCurve:
    """``σ(score·s + margin·m + intercept)``: the probability that the best reply is right.

    Attributes:
        score, margin, intercept: the fitted coefficients.
        rows: validation rows it was fitted on (0: not fitted).
        base_rate: the share of those rows whose best reply was right.
    """

    score: float
    margin: float
    intercept: float
    rows: int = 0
    base_rate: float | None = None

    def confidence(self, scores: np.ndarray) -> float:
        """The probability for a ranked list's scores (any order; the best and runner-up
        are taken from them)."""
        best, margin = top_two(np.asarray(scores, dtype=np.float64))
        return self.probability(np.array([best]), np.array([margin]))[0].item()

    def probability(self, best: np.ndarray, margin: np.ndarray) -> np.ndarray:
        """Vectorised: best scores and margins in, probabilities out."""
        z = self.score * best + self.margin * margin + self.intercept
        return 1.0 / (1.0 + np.exp(-np.clip(z, -500, 500)))


@dataclass(frozen=True)
class Calibration:
    """The curves of one model, by job (:data:`SETTINGS`); ``fitted`` says whether they came
    from validation rows or are the uncalibrated stand-in."""

    curves: dict[str, PlattCurve]
    fitted: bool = True
    details: dict[str, Any] = field(default_factory=dict)

    def curve(self, setting: str) -> PlattCurve:
        """The curve of a job; a job the model has no curve for uses the other job's."""
        return self.curves.get(setting) or next(iter(self.curves.values()))

    def confidence(self, setting: str, scores: np.ndarray) -> float:
        """The best reply's probability of being right, for a job of ``setting``."""
        return self.curve(setting).confidence(scores)

    def save(self, path: Path) -> None:
        data = {
            "format": FORMAT,
            "method": "platt",
            "features": ["best_score", "margin_over_runner_up"],
            "curves": {name: asdict(curve) for name, curve in self.curves.items()},
            "details": self.details,
        }
        path.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n", encoding="utf-8")

    @classmethod
    def load(cls, path: Path) -> Calibration:
        """Reads ``calibration.json``; ``ValueError`` says what is wrong with it."""
        data = json.loads(path.read_text(encoding="utf-8"))
        if data.get("format") != FORMAT:
            raise ValueError(f"calibration format {data.get('format')!r}, this code reads {FORMAT}")
        curves = {name: PlattCurve(**curve) for name, curve in data["curves"].items()}
        unknown = set(curves) - set(SETTINGS)
        if unknown or not curves:
            raise ValueError(f"curves {sorted(curves)}; expected some of {list(SETTINGS)}")
        return cls(curves, fitted=True, details=data.get("details", {}))


# σ(score): what a model without a fitted calibration reports.
UNCALIBRATED = Calibration(
    {name: PlattCurve(score=1.0, margin=0.0, intercept=0.0) for name in SETTINGS}, fitted=False
)
