"""The echo rule's threshold, tuned against the repository and saved without new weights."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from chatbot.artifact import ArtifactError, load_artifact, save_artifact, update_config
from chatbot.index import load_index, save_index
from chatbot.lexical import TfidfModel
from tests.helpers import WORDS, tiny_config, tiny_model, tiny_vocab
from training.echo import ECHO_GRID, tune_echo_cosine
from training.sources.udc_csv import EVAL_HEADER, write_csv


def test_tuning_saves_a_threshold_and_keeps_the_index_valid(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    responses = sorted({" ".join(rng.choice(WORDS, size=3)) + " __eou__" for _ in range(40)})
    lexical = TfidfModel.fit(responses)
    config = tiny_config(lexical_weight=5.0)
    save_artifact(tmp_path / "m", tiny_model(config), tiny_vocab(), config, lexical=lexical)
    artifact = load_artifact(tmp_path / "m")
    vectors = artifact.encoder().encode_responses(responses)
    rows = lexical.transform(responses)
    save_index(tmp_path / "i", vectors, responses, artifact, lexical=rows, normalized=responses)
    # Contexts that restate their own true reply: only a threshold that keeps echoes finds it.
    valid = [[r.replace("__eou__", "__eou__ __eot__"), r, *responses[1:10]] for r in responses[:12]]
    write_csv(tmp_path / "valid.csv", EVAL_HEADER, valid, progress=False)
    version = artifact.version

    tuning = tune_echo_cosine(tmp_path / "m", tmp_path / "i", {"valid": tmp_path / "valid.csv"})

    assert tuning["echo_cosine"] == 2.0  # every true reply is an echo of its context here
    assert [t["echo_cosine"] for t in tuning["grid"]] == list(ECHO_GRID)
    tuned = load_artifact(tmp_path / "m")
    assert tuned.config.echo_cosine == 2.0 and tuned.version == version
    assert tuned.scorer().echo_cosine == 2.0
    load_index(tmp_path / "i", tuned)  # still the same weights: the index is accepted
    assert json.loads((tmp_path / "m" / "manifest.json").read_text())["echo_tuning"] == tuning


def test_a_config_that_changes_the_network_is_refused(tmp_path: Path) -> None:
    config = tiny_config()
    save_artifact(tmp_path / "m", tiny_model(config), tiny_vocab(), config)
    with pytest.raises(ArtifactError, match="shape"):
        update_config(tmp_path / "m", tiny_config(hidden_size=4))


def test_a_model_with_a_semantic_part_gets_a_semantic_threshold_too(tmp_path: Path) -> None:
    from tests.helpers import BUNDLE_TEXTS, tiny_bundle
    from training.echo import SEMANTIC_ECHO_GRID

    model, index = tiny_bundle(tmp_path / "bundle", semantic=True)
    texts = list(BUNDLE_TEXTS)
    # Each context restates its own true reply, which only the rules turned off can find.
    valid = [
        [t.lower() + " __eou__ __eot__", t.lower() + " __eou__", *[x.lower() for x in texts[:3]]]
        for t in texts
    ]
    write_csv(tmp_path / "valid.csv", EVAL_HEADER[:5], valid, progress=False)

    tuning = tune_echo_cosine(model, index, {"valid": tmp_path / "valid.csv"})

    assert [t["echo_cosine"] for t in tuning["semantic_grid"]] == list(SEMANTIC_ECHO_GRID)
    tuned = load_artifact(model)
    assert tuned.config.semantic_echo_cosine == tuning["semantic_echo_cosine"]
    assert tuned.scorer().semantic_echo_cosine == tuning["semantic_echo_cosine"]
    load_index(index, tuned)  # the same weights: the index is still accepted


def test_a_threshold_may_not_leave_more_echoes_than_the_true_replies() -> None:
    from training.echo import best_threshold

    # The chitchat bot's semantic grid on its 173 validation rows (stop 21): the rule off
    # ranks best, and 0.7 falls just outside one standard error of it.
    table = [
        {"echo_cosine": 0.6, "mrr": 0.069, "mrr_se": 0.018, "echoed_top1": 0.0},
        {"echo_cosine": 0.7, "mrr": 0.091, "mrr_se": 0.020, "echoed_top1": 0.0},
        {"echo_cosine": 0.8, "mrr": 0.111, "mrr_se": 0.022, "echoed_top1": 0.064},
        {"echo_cosine": 2.0, "mrr": 0.114, "mrr_se": 0.022, "echoed_top1": 0.064},
    ]
    assert best_threshold(table, true_echoed=0.035) == 0.7  # 0.064 > 0.035
    assert best_threshold(table, true_echoed=0.07) == 2.0  # within the cap: MRR decides
    # Nothing within the cap: the fewest echoes, then the higher threshold.
    capped = [{**t, "echoed_top1": t["echoed_top1"] + 0.1} for t in table]
    assert best_threshold(capped, true_echoed=0.0) == 0.7
