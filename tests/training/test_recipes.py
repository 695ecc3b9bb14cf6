"""The default chitchat bot's recipe, end to end on a slice of the embedded corpus."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pytest

from tests.helpers import tiny_sentence_source
from training.pipeline import PipelineOptions, run_pipeline
from training.recipes import chitchat_recipe
from training.sentence import SEMANTIC_GRID


@pytest.mark.slow
def test_chitchat_recipe_builds_evaluates_and_indexes(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from chatbot.artifact import load_artifact
    from chatbot.index import load_index

    recipe = chitchat_recipe(examples=400, preset="tiny", max_dialogues=300)
    sentence = tiny_sentence_source(tmp_path / "sentence")
    with caplog.at_level(logging.INFO, logger="training.sentence_job"):
        report = run_pipeline(recipe, PipelineOptions(tmp_path, max_steps=10, sentence=sentence))

    data = report["data"]
    assert data["train_pairs"] == 400 and data["hard_negatives"] >= 400  # a restatement each
    index = load_index(tmp_path / "index", load_artifact(tmp_path / "model"))
    assert len(index) == data["responses"] and not index.shows_normalized_text
    assert any(text != text.lower() for text in index.texts)  # shown as people wrote them
    evaluation = json.loads((tmp_path / "eval.json").read_text())
    assert set(evaluation["results"]) == {"model", "tfidf", "random"}
    repository = evaluation["repository"]
    assert repository["repository_size"] == len(index)
    assert {"model", "model_semantic", "tfidf"} <= set(repository["systems"])
    # The semantic part: converted into the artifact, its weight chosen on validation rows,
    # and the index holds the sentence vectors of what it shows.
    semantic = report["semantic"]
    assert [row["weight"] for row in semantic["grid"]] == list(SEMANTIC_GRID)
    assert load_artifact(tmp_path / "model").config.semantic_weight == semantic["semantic_weight"]
    assert index.sentence is not None and index.sentence.shape == (len(index), 8)
    # ... encoded in the background while the data build and the training's steps ran, and
    # the same vectors as the artifact's encoder gives (to the index's 8 bits).
    assert "encoded in the background" in caplog.text
    own = load_artifact(tmp_path / "model").sentence_encoder.encode(index.texts)
    stored = np.asarray(index.sentence, dtype=np.float32)
    np.testing.assert_allclose(stored, own, atol=0.02)
    assert (tmp_path / "eval_repository.png").stat().st_size > 1000
    assert report["echo"]["echo_cosine"] is not None
    # The pipeline fits the confidence on validation rows and the evaluation measures it.
    assert load_artifact(tmp_path / "model").calibration.fitted
    assert set(report["calibration"]) == {"candidates", "repository"}
    assert set(evaluation["calibration"]) == {"1 in 10", "repository"}
    assert (tmp_path / "eval_coverage.png").stat().st_size > 1000
