"""The semantic part's sentence encoder: the LiteRT conversion against a numpy forward pass
of the same network, bulk against one-at-a-time encoding, and the artifact's checks."""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path

import numpy as np
import pytest
from scipy.special import erf

from chatbot.artifact import load_artifact, update_config
from chatbot.errors import ArtifactError
from chatbot.int8_rows import Int8Rows
from chatbot.sentence import SENTENCE_INFO, sentence_text
from tests.helpers import tiny_artifact, tiny_sentence_source
from training.errors import DataError
from training.sentence import export_sentence_encoder, resolve_source

TEXTS = ["hello how are you?", "what is your name", "good morning, see you later.", "bye"]


def _reference(source: Path, text: str) -> np.ndarray:
    """The BERT forward pass and mean pooling in numpy, written apart from the converter."""
    from safetensors.numpy import load_file
    from tokenizers import Tokenizer

    config = json.loads((source / "config.json").read_text())
    w = load_file(source / "model.safetensors")
    ids = Tokenizer.from_file(str(source / "tokenizer.json")).encode(text).ids
    heads, eps = config["num_attention_heads"], config["layer_norm_eps"]

    def norm(x: np.ndarray, name: str) -> np.ndarray:
        mean, var = x.mean(-1, keepdims=True), x.var(-1, keepdims=True)
        return (x - mean) / np.sqrt(var + eps) * w[f"{name}.weight"] + w[f"{name}.bias"]

    def dense(x: np.ndarray, name: str) -> np.ndarray:
        return x @ w[f"{name}.weight"].T + w[f"{name}.bias"]

    t = len(ids)
    x = w["embeddings.word_embeddings.weight"][ids] + w["embeddings.position_embeddings.weight"][:t]
    x = norm(x + w["embeddings.token_type_embeddings.weight"][0], "embeddings.LayerNorm")
    d = x.shape[1] // heads
    for i in range(config["num_hidden_layers"]):
        p = f"encoder.layer.{i}."
        q, k, v = (
            dense(x, f"{p}attention.self.{s}").reshape(t, heads, d).transpose(1, 0, 2)
            for s in ("query", "key", "value")
        )
        a = q @ k.transpose(0, 2, 1) / math.sqrt(d)
        a = np.exp(a - a.max(-1, keepdims=True))
        a /= a.sum(-1, keepdims=True)
        attended = (a @ v).transpose(1, 0, 2).reshape(t, -1)
        x = norm(
            x + dense(attended, f"{p}attention.output.dense"), f"{p}attention.output.LayerNorm"
        )
        f = dense(x, f"{p}intermediate.dense")
        x = norm(
            x + dense(0.5 * f * (1 + erf(f / math.sqrt(2))), f"{p}output.dense"),
            f"{p}output.LayerNorm",
        )
    pooled = x.mean(0)
    return pooled / np.linalg.norm(pooled)


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_sentence_source(tmp_path_factory.mktemp("sentence") / "encoder")


@pytest.fixture(scope="module")
def float_artifact(source: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    model = tiny_artifact(tmp_path_factory.mktemp("sentence_model") / "model")
    export_sentence_encoder(model, source, int8=False)
    return model


def test_the_converted_encoder_computes_the_reference_vectors(source, float_artifact) -> None:
    encoder = load_artifact(float_artifact).sentence_encoder
    assert encoder is not None and encoder.dim == 8
    got = encoder.encode(TEXTS, threads=1)
    want = np.stack([_reference(source, t) for t in TEXTS])
    np.testing.assert_allclose(got, want, atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-5)


def test_int8_weights_keep_the_vectors_close(source, tmp_path: Path) -> None:
    model = tiny_artifact(tmp_path / "model")
    info = export_sentence_encoder(model, source)
    assert info["weights"] == "int8 dynamic range"
    got = load_artifact(model).sentence_encoder.encode(TEXTS)
    want = np.stack([_reference(source, t) for t in TEXTS])
    assert np.min(np.sum(got * want, axis=1)) > 0.95  # cosine with the float network


def test_bulk_encoding_on_threads_equals_one_at_a_time(float_artifact) -> None:
    encoder = load_artifact(float_artifact).sentence_encoder
    texts = [f"{a} {b}" for a in TEXTS for b in TEXTS] * 3
    np.testing.assert_array_equal(
        encoder.encode(texts, threads=2), encoder.encode(texts, threads=1)
    )


def test_a_long_text_is_cut_at_the_token_cap(float_artifact) -> None:
    encoder = load_artifact(float_artifact).sentence_encoder
    # 128 tokens: [CLS], 126 words, [SEP]; a paste of any length costs no more.
    long, cut = " ".join(["hello", "you"] * 200), " ".join(["hello", "you"] * 63)
    np.testing.assert_array_equal(encoder.encode([long]), encoder.encode([cut]))
    shorter = " ".join(["hello", "you"] * 62)  # within the cap: read to its end
    assert not np.allclose(encoder.encode([long]), encoder.encode([shorter + " fine"]))
    # A query is read from its end: its latest 62 words, between [CLS] and [SEP].
    query, tail = "fine thanks " + long, " ".join(["hello", "you"] * 31)
    np.testing.assert_array_equal(encoder.encode_queries([query]), encoder.encode_queries([tail]))
    assert not np.allclose(encoder.encode_queries([query]), encoder.encode([query]))
    info = json.loads((float_artifact / SENTENCE_INFO).read_text())
    assert (info["max_tokens"], info["context_tokens"], info["context_turns"]) == (128, 64, 3)


def test_a_semantic_weight_without_the_encoder_is_refused(tmp_path: Path) -> None:
    model = tiny_artifact(tmp_path / "model")
    config = load_artifact(model).config
    update_config(model, dataclasses.replace(config, semantic_weight=4.0))
    with pytest.raises(ArtifactError, match=r"semantic_weight 4\.0 but the manifest does not list"):
        load_artifact(model)


def test_the_sentence_files_are_checked_like_the_weights(float_artifact, tmp_path: Path) -> None:
    import shutil

    copy = shutil.copytree(float_artifact, tmp_path / "model")
    (copy / SENTENCE_INFO).write_text('{"dim": 8}')
    with pytest.raises(ArtifactError, match=r"sentence\.json"):
        load_artifact(copy)


def test_the_context_is_read_from_its_last_turns() -> None:
    assert sentence_text(["a", "b", " ", "c", "d"], 2) == "c d"
    assert sentence_text([], 3) == ""


def test_a_sentence_encoder_folder_must_hold_its_files(tmp_path: Path) -> None:
    assert resolve_source("none") is None
    with pytest.raises(DataError, match=r"model\.safetensors"):
        (tmp_path / "config.json").write_text("{}")
        resolve_source(str(tmp_path))


def test_an_index_is_tied_to_the_sentence_encoder_that_read_it(source, tmp_path: Path) -> None:
    from chatbot.errors import IndexLoadError
    from chatbot.index import load_index
    from training.indexing import build_index

    model = tiny_artifact(tmp_path / "model")
    responses = tmp_path / "responses.txt"
    responses.write_text("\n".join(TEXTS) + "\n")
    build_index(model, responses, tmp_path / "plain")  # before the semantic part
    export_sentence_encoder(model, source)
    config = load_artifact(model).config
    update_config(model, dataclasses.replace(config, semantic_weight=2.0))
    artifact = load_artifact(model)
    with pytest.raises(IndexLoadError, match="has no sentence vectors"):
        load_index(tmp_path / "plain", artifact)
    build_index(model, responses, tmp_path / "index")
    index = load_index(tmp_path / "index", artifact)
    assert isinstance(index.sentence, Int8Rows)
    written = artifact.sentence_encoder.encode(list(index.texts))  # the shown texts, as written
    # 8-bit codes: each component within half a step of its row's scale.
    step = np.abs(written).max(axis=1, keepdims=True) / 127
    assert np.all(np.abs(np.asarray(index.sentence) - written) <= step / 2 + 1e-7)
    # Indexes written before (float16, float32) still load, and rank from the values they hold.
    for dtype in (np.float16, np.float32):
        legacy = _as_float_sentence_index(
            tmp_path / "index", tmp_path / f"legacy-{dtype.__name__}", dtype
        )
        old = load_index(legacy, artifact)
        assert old.sentence is not None and old.sentence.dtype == dtype
        np.testing.assert_array_equal(old.sentence, np.asarray(index.sentence).astype(dtype))
    export_sentence_encoder(model, tiny_sentence_source(tmp_path / "other", seed=1))
    with pytest.raises(IndexLoadError, match="has no sentence vectors by the sentence encoder"):
        load_index(tmp_path / "index", load_artifact(model))


def _as_float_sentence_index(path: Path, out: Path, dtype: type) -> Path:
    """A copy of the index at ``path`` laid out as before the 8-bit codes: its sentence
    vectors as one float array (``sentence.f16.npy`` or ``sentence.f32.npy``)."""
    import shutil

    from chatbot.files import sha256_file
    from chatbot.index import (
        SENTENCE_CODES,
        SENTENCE_SCALES,
        SENTENCE_VECTORS_F16,
        SENTENCE_VECTORS_F32,
        load_index,
    )

    vectors = np.asarray(load_index(path).sentence).astype(dtype)
    shutil.copytree(path, out)
    name = SENTENCE_VECTORS_F16 if dtype == np.float16 else SENTENCE_VECTORS_F32
    np.save(out / name, vectors)
    manifest = json.loads((out / "manifest.json").read_text())
    for gone in (SENTENCE_CODES, SENTENCE_SCALES):
        (out / gone).unlink()
        del manifest["files"][gone]
    manifest["files"][name] = sha256_file(out / name)
    (out / "manifest.json").write_text(json.dumps(manifest))
    return out


def test_a_large_index_searches_its_sentence_vectors_through_coarser_codes(
    source, tmp_path: Path
) -> None:
    from chatbot.ann import REFINE, SENTENCE_DIMS_PER_CODE, StoredIvfSearch
    from chatbot.index import load_index, save_index

    model = tiny_artifact(tmp_path / "model")
    export_sentence_encoder(model, source)
    config = load_artifact(model).config
    update_config(model, dataclasses.replace(config, semantic_weight=2.0))
    artifact = load_artifact(model)
    texts = [f"{TEXTS[i % 4]} number {i}" for i in range(240)]
    vectors = np.asarray(artifact.encoder().encode_responses([f"{t} __eou__" for t in texts]))
    sentence = artifact.sentence_encoder.encode(texts)
    save_index(tmp_path / "index", vectors, texts, artifact, ann=True, sentence=sentence)
    index = load_index(tmp_path / "index", artifact)
    assert index.manifest["sentence_ann"]["dims_per_code"] == SENTENCE_DIMS_PER_CODE == 4
    search = index.sentence_search
    assert isinstance(search, StoredIvfSearch) and search.refine == REFINE[4]
    scores, _ = search.search(sentence[:20], 5)
    exact = np.sort(sentence[:20] @ np.asarray(index.sentence).T, axis=1)[:, ::-1][:, :5]
    np.testing.assert_allclose(scores, exact, atol=2e-2)  # the best, from 8-bit rows
