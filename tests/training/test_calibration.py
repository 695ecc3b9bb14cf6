"""Fitting and measuring the confidence: figures worked out by hand, and a fit that recovers
a known curve."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from chatbot.artifact import load_artifact
from tests.helpers import BUNDLE_TEXTS, tiny_bundle
from training.calibration import (
    Examples,
    calibrate_model,
    calibration_report,
    candidate_examples,
    coverage_at_precision,
    expected_calibration_error,
    fit_curve,
    risk_coverage,
)
from training.sources.udc_csv import EVAL_HEADER, write_csv


def test_candidate_examples_take_the_best_two_and_count_ties_as_wrong() -> None:
    scores = np.array([[3.0, 1.0, 2.0], [1.0, 4.0, 0.0], [2.0, 2.0, 0.0]])
    examples = candidate_examples(scores)
    assert examples.best.tolist() == [3.0, 4.0, 2.0]
    assert examples.margin.tolist() == [1.0, 3.0, 0.0]
    assert examples.right.tolist() == [True, False, False]


def test_expected_calibration_error_by_hand() -> None:
    # Bin 0.9: two rows, one right → |0.9 − 0.5| · 2/5; bin 0.3: three rows, one right →
    # |0.3 − 1/3| · 3/5.  0.16 + 0.02 = 0.18
    confidence = np.array([0.9, 0.9, 0.3, 0.3, 0.3])
    right = np.array([1, 0, 1, 0, 0])
    assert expected_calibration_error(confidence, right) == pytest.approx(0.18)


def test_risk_coverage_answers_the_surest_first() -> None:
    coverage, precision = risk_coverage(np.array([0.1, 0.8, 0.6, 0.9]), np.array([0, 1, 0, 1]))
    assert coverage.tolist() == [0.25, 0.5, 0.75, 1.0]
    assert precision.tolist() == pytest.approx([1.0, 1.0, 2 / 3, 0.5])


def test_coverage_at_precision_cannot_split_a_tie() -> None:
    right = np.array([1, 1, 0, 1])
    # Distinct confidences: the two surest are both right → half answered at 100 %.
    assert coverage_at_precision(np.array([0.9, 0.8, 0.7, 0.6]), right, 1.0) == 0.5
    # The second and third tie: a threshold takes both or neither → only the first.
    assert coverage_at_precision(np.array([0.9, 0.8, 0.8, 0.6]), right, 1.0) == 0.25
    assert coverage_at_precision(np.array([0.5, 0.5]), np.array([0, 0]), 0.9) == 0.0


def test_platt_scaling_recovers_a_known_curve_and_is_calibrated() -> None:
    rng = np.random.default_rng(0)

    def draw(n: int) -> Examples:
        best, margin = rng.normal(2, 2, n), rng.exponential(1, n)
        truth = 1 / (1 + np.exp(-(0.8 * best + 1.5 * margin - 3)))
        return Examples(best, margin, rng.random(n) < truth)

    curve = fit_curve(draw(20_000))
    assert (curve.score, curve.margin, curve.intercept) == pytest.approx((0.8, 1.5, -3), abs=0.15)
    fresh = draw(5_000)
    fitted = calibration_report(curve, fresh, fitted=True)
    raw = expected_calibration_error(1 / (1 + np.exp(-fresh.best)), fresh.right)
    assert fitted["ece"] < 0.03 < raw  # σ(score) alone is far off; the fit is not
    assert len(fitted["curve"]["coverage"]) == 100


def test_one_sided_examples_give_a_constant_curve() -> None:
    curve = fit_curve(Examples(np.arange(5.0), np.ones(5), np.zeros(5, dtype=bool)))
    assert curve.score == curve.margin == 0.0
    assert curve.probability(np.array([100.0]), np.array([5.0]))[0] < 0.01


def _valid_rows(path: Path, n: int) -> Path:
    """Rows whose true reply is one of the index's texts, distractors the others."""
    rng = np.random.default_rng(1)
    rows = []
    for i in range(n):
        true = BUNDLE_TEXTS[i % len(BUNDLE_TEXTS)]
        others = [t for t in BUNDLE_TEXTS if t != true]
        distractors = [others[j] for j in rng.integers(0, len(others), 9)]
        rows.append([f"hello how are you {i} __eou__ __eot__", true, *distractors])
    write_csv(path, EVAL_HEADER, rows, progress=False)
    return path


def test_calibrating_a_model_writes_both_curves_and_eval_reports_them(tmp_path: Path) -> None:
    model_dir, index_dir = tiny_bundle(tmp_path / "bundle")
    valid = _valid_rows(tmp_path / "valid.csv", 40)
    summary = calibrate_model(model_dir, {"valid": valid}, index_dir)
    assert set(summary) == {"candidates", "repository"}
    assert summary["candidates"]["n"] == summary["repository"]["n"] == 40
    calibration = load_artifact(model_dir).calibration
    assert calibration.fitted and set(calibration.curves) == {"candidates", "repository"}

    test = _valid_rows(tmp_path / "test.csv", 30)
    out = tmp_path / "eval.json"
    command = [sys.executable, "-m", "chatbot_cli", "eval", "--model", str(model_dir)]
    command += ["--data", str(test), "--repository", str(index_dir), "--json", str(out)]
    command += ["--plot", str(tmp_path / "eval.png")]
    run = subprocess.run(command, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr[-2000:]
    assert "confidence (1 in 10, 30 rows): expected calibration error" in run.stdout
    assert "coverage at 90% top-1 precision" in run.stdout
    report = json.loads(out.read_text())["calibration"]
    assert set(report) == {"1 in 10", "repository"}
    assert 0.0 <= report["repository"]["ece"] <= 1.0
    assert (tmp_path / "eval_coverage.png").stat().st_size > 1000
