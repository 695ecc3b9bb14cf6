"""Confidence curves: the arithmetic, the file, and their place in the artifact."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from chatbot.artifact import load_artifact, write_calibration
from chatbot.calibration import UNCALIBRATED, Calibration, PlattCurve, top_two
from chatbot.errors import ArtifactError
from chatbot.index import load_index
from tests.helpers import tiny_bundle


def test_top_two_takes_the_best_and_its_margin_in_any_order() -> None:
    assert top_two(np.array([1.0, 4.0, 2.5])) == (4.0, 1.5)
    assert top_two(np.array([3.0])) == (3.0, 0.0)  # nobody to be ahead of
    assert top_two(np.array([2.0, 2.0])) == (2.0, 0.0)
    with pytest.raises(ValueError):
        top_two(np.array([]))


def test_a_curve_is_the_logistic_of_its_weighted_features() -> None:
    curve = PlattCurve(score=0.5, margin=1.0, intercept=-1.0)
    # best 4, margin 1.5: σ(0.5·4 + 1.5 − 1) = σ(2.5)
    assert curve.confidence(np.array([2.5, 4.0])) == pytest.approx(1 / (1 + math.exp(-2.5)))
    assert 0.0 <= curve.probability(np.array([-1e6]), np.array([0.0]))[0] <= 1.0


def test_uncalibrated_reads_the_logit_as_a_probability() -> None:
    assert not UNCALIBRATED.fitted
    assert UNCALIBRATED.confidence("repository", np.array([0.0, -1.0])) == pytest.approx(0.5)


def test_a_job_without_its_own_curve_uses_the_other() -> None:
    only = Calibration({"candidates": PlattCurve(0.0, 0.0, 0.0)})
    assert only.confidence("repository", np.array([5.0, 1.0])) == pytest.approx(0.5)


def test_calibration_is_saved_in_the_artifact_without_touching_the_weights(tmp_path: Path) -> None:
    model_dir, index_dir = tiny_bundle(tmp_path)
    before = load_artifact(model_dir)
    assert before.calibration is UNCALIBRATED
    calibration = Calibration(
        {"candidates": PlattCurve(1.0, 2.0, -3.0, rows=10, base_rate=0.4)},
        details={"valid_sets": {"valid": "v.csv"}},
    )
    write_calibration(model_dir, calibration)
    after = load_artifact(model_dir)
    assert after.calibration == calibration
    assert after.version == before.version  # same weights: same version, index still valid
    load_index(index_dir, after)


def test_a_damaged_calibration_names_the_file(tmp_path: Path) -> None:
    model_dir, _ = tiny_bundle(tmp_path)
    write_calibration(model_dir, Calibration({"candidates": PlattCurve(1.0, 0.0, 0.0)}))
    (model_dir / "calibration.json").write_text("{}")
    with pytest.raises(ArtifactError, match=r"calibration\.json"):
        load_artifact(model_dir)
