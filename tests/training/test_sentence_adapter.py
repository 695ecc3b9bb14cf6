"""The sentence encoder's context adapter: what it learns, when it is kept, where it lives."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from chatbot.artifact import load_artifact
from chatbot.errors import ArtifactError
from chatbot.sentence import SENTENCE_ADAPTER, adapt_vectors, sentence_text
from tests.helpers import WORDS, tiny_artifact, tiny_sentence_source
from training.dialogue import Dialogue
from training.raw_text import RawText, read_raw_file, write_raw_text
from training.sentence import export_sentence_encoder
from training.sentence_adapter import add_adapter, fit_adapter, write_training_pairs


def _unit(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def test_the_adapter_learns_what_answers_a_context() -> None:
    rng = np.random.default_rng(0)
    contexts = _unit(rng.standard_normal((3000, 16)))
    # The answer lies elsewhere than the question: a linear map of it, and noise.
    away = np.eye(16) + 2 * rng.standard_normal((16, 16)) / 4
    replies = _unit(contexts @ away + 0.1 * rng.standard_normal((3000, 16)))
    adapter, report = fit_adapter(contexts, replies, epochs=3, held_out=500, learning_rate=0.03)
    before, *passes = report["held_out_mrr"]
    assert adapter is not None and adapter.shape == (16, 16)
    assert report["pass_kept"] == 1 + int(np.argmax(passes))
    assert before < 0.2 and max(passes) > 0.8
    # The kept map is the one judged: its MRR is the best pass's.
    test = np.random.default_rng(0).permutation(3000)[:500]
    queries = adapt_vectors(contexts[test], adapter)
    scores = queries @ replies.T
    ranks = 1 + (scores > scores[np.arange(500), test][:, None]).sum(1)
    assert np.mean(1 / ranks) == pytest.approx(max(passes), abs=1e-3)


def test_no_adapter_is_kept_when_the_encoder_already_finds_every_reply() -> None:
    contexts = _unit(np.random.default_rng(1).standard_normal((600, 8)))
    adapter, report = fit_adapter(contexts, contexts.copy(), epochs=2, held_out=100)
    assert adapter is None and report["pass_kept"] == 0
    assert report["held_out_mrr"][0] == 1.0


def test_mismatched_or_too_few_pairs_are_refused() -> None:
    contexts = np.ones((50, 8), dtype=np.float32)
    with pytest.raises(ValueError, match="same shape"):
        fit_adapter(contexts, contexts[:, :4])
    with pytest.raises(ValueError, match="more than 100 pairs"):
        fit_adapter(contexts, contexts, held_out=100)


def test_training_pairs_are_the_last_turns_and_the_reply_as_written(tmp_path: Path) -> None:
    dialogue = Dialogue(
        "d",
        None,
        (("Hi there",), ("Hello!", "How can I help?"), ("My wifi died",), ("Which card?",)),
    )
    path = tmp_path / "pairs.raw.jsonl"
    assert write_training_pairs(path, [dialogue], seed=0) == 2
    assert read_raw_file(path) == [
        RawText(("Hi there", "Hello! How can I help?"), ("My wifi died",)),
        RawText(("Hi there", "Hello! How can I help?", "My wifi died"), ("Which card?",)),
    ]
    assert not list(tmp_path.glob("*.part"))
    first = path.read_bytes()
    assert write_training_pairs(path, [dialogue] * 5, seed=3, n=4) == 4
    again = tmp_path / "again.jsonl"
    write_training_pairs(again, [dialogue] * 5, seed=3, n=4)
    assert again.read_bytes() == path.read_bytes() != first  # the sample follows the seed


def _adapted_model(tmp_path: Path) -> Path:
    model = tiny_artifact(tmp_path / "model")
    export_sentence_encoder(model, tiny_sentence_source(tmp_path / "sentence"))
    # Each word is answered by the next one: a map the pretrained vectors do not hold.
    rows = [RawText((WORDS[i % len(WORDS)],), (WORDS[(i + 1) % len(WORDS)],)) for i in range(600)]
    write_raw_text(tmp_path / "pairs.raw.jsonl", rows)
    report = add_adapter(model, tmp_path / "pairs.raw.jsonl")
    assert report["pass_kept"] > 0 and report["pairs"] == 600
    return model


def test_the_adapter_is_saved_in_the_artifact_and_scores_contexts(tmp_path: Path) -> None:
    model = _adapted_model(tmp_path)
    artifact = load_artifact(model)
    assert SENTENCE_ADAPTER in artifact.manifest["files"]
    sentence = artifact.sentence_encoder
    assert sentence is not None and sentence.adapter is not None
    assert sentence.adapter.shape == (sentence.dim, sentence.dim)
    # The semantic cosine reads the context through the adapter, the replies as they are.
    turns, replies = ["hello", "how are you"], ["fine thanks", "good morning"]
    parts = artifact.scorer(jit_compile=False).parts(
        ["hello __eou__ __eot__ how are you __eou__"],
        [["fine thanks __eou__", "good morning __eou__"]],
        raw_turns=[turns],
        raw_candidates=[replies],
    )
    context = sentence.adapt(sentence.encode_queries([sentence_text(turns, 3)]))
    expected = context @ sentence.encode(replies).T
    assert parts.semantic is not None
    np.testing.assert_allclose(parts.semantic, expected, atol=1e-5)
    plain = sentence.encode_queries([sentence_text(turns, 3)]) @ sentence.encode(replies).T
    assert not np.allclose(parts.semantic, plain, rtol=0, atol=1e-6)


def test_a_new_encoder_drops_the_adapter_and_a_damaged_one_is_refused(tmp_path: Path) -> None:
    from chatbot.files import sha256_file

    model = _adapted_model(tmp_path)
    np.save(model / SENTENCE_ADAPTER, np.zeros((3, 3), dtype=np.float32))
    manifest = json.loads((model / "manifest.json").read_text())
    manifest["files"][SENTENCE_ADAPTER] = sha256_file(model / SENTENCE_ADAPTER)
    (model / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ArtifactError, match="adapter of shape"):
        _ = load_artifact(model).sentence_encoder
    export_sentence_encoder(model, tiny_sentence_source(tmp_path / "other", seed=1))
    artifact = load_artifact(model)
    assert SENTENCE_ADAPTER not in artifact.manifest["files"]
    assert not (model / SENTENCE_ADAPTER).exists()
    assert artifact.sentence_encoder is not None and artifact.sentence_encoder.adapter is None
