"""The artifact and indexes the served-path benchmarks load: the hybrid type users are served.

* The model: the trained Ubuntu model (``artifacts/ubuntu/model``, ``make ubuntu-model``)
  when it is there; else an untrained hybrid stand-in of the same shape (bidirectional LSTM
  128, embedding 100, vocabulary 30k, TF-IDF fitted on the corpus, ``lexical_weight`` 24).
  Latency does not depend on the weights; which one was used is printed.
* Each index: ``n`` texts from :func:`bench._served_corpus.served_corpus` with their TF-IDF
  rows and postings (and, from 50k up, the approximate neural index), as ``chatbot index``
  writes them. The distinct base texts are encoded by
  the model; a variant gets its base text's vector plus a little noise (encoding 1M texts
  with the LSTM would take an hour on 2 cores and change no timing). A model with a
  semantic part (``chatbot.sentence``) gets sentence vectors the same way.
* ``neural`` (reference only): an untrained neural-only artifact, random vectors, texts
  "response <i>" — what the benchmarks measured before.

Everything is cached in ``workdir`` and rebuilt when the model changes.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from bench._served_corpus import DEFAULT_CSV, Corpus, served_corpus
from chatbot.ann import ANN_KIND, ANN_MIN_RESPONSES, DIMS_PER_CODE, SENTENCE_DIMS_PER_CODE

UBUNTU_MODEL = Path("artifacts/ubuntu/model")


def _stand_in_model(path: Path, texts: list[str], lexical_weight: float) -> None:
    from chatbot.artifact import save_artifact
    from chatbot.config import ModelConfig
    from chatbot.lexical import TfidfModel
    from chatbot.lite_export import export_lite
    from chatbot.model import build_dual_encoder
    from chatbot.vocab import Vocab

    config = ModelConfig(
        vocab_size=30_000,
        embedding_dim=100,
        hidden_size=128,
        bidirectional=True,
        normalization="udc",
        lexical_weight=lexical_weight,
    )
    vocab = Vocab.build((t.split() for t in texts), config.vocab_size, min_count=1)
    model = build_dual_encoder(config, vocab_size=len(vocab))
    lexical = TfidfModel.fit(texts) if lexical_weight > 0 else None
    save_artifact(path, model, vocab, config, name="bench", lexical=lexical)
    export_lite(path)  # as the training pipeline does: served on LiteRT


def served_model(workdir: Path, csv_path: Path | None = DEFAULT_CSV) -> tuple[Path, str]:
    """The hybrid model to serve, and a line saying which one it is."""
    if (UBUNTU_MODEL / "manifest.json").is_file():
        return UBUNTU_MODEL, f"the trained Ubuntu model ({UBUNTU_MODEL})"
    path = workdir / "hybrid-model"
    if not (path / "manifest.json").is_file():
        _stand_in_model(path, served_corpus(100_000, csv_path, 1).texts, lexical_weight=24.0)
    return path, f"an untrained hybrid stand-in ({path}; no {UBUNTU_MODEL})"


def served_index(
    workdir: Path, model_dir: Path, n: int, csv_path: Path | None = DEFAULT_CSV
) -> tuple[Path, Corpus]:
    """An index of ``n`` responses for ``model_dir``: its folder, and the corpus it holds
    (texts, their base texts, the benchmark's normalised queries, where they came from)."""
    from chatbot.artifact import load_artifact
    from chatbot.index import (
        SENTENCE_CODES,
        VECTOR_CODES,
        VECTOR_CODES_MIN_RESPONSES,
        save_index,
    )
    from chatbot.scoring import encode_unique, sentence_of_normalized

    artifact = load_artifact(model_dir)
    corpus = served_corpus(n, csv_path, n_queries=512)
    texts, source = corpus.texts, corpus.source
    index_dir = workdir / f"hybrid-index-{n}"
    manifest = index_dir / "manifest.json"
    if manifest.is_file():
        saved = json.loads(manifest.read_text())
        current = saved["model_checksum"] == artifact.checksum
        # The semantic part's vectors, when the model has one, by the same sentence encoder.
        current &= saved.get("sentence_model") == artifact.sentence_checksum
        current &= artifact.sentence_checksum is None or SENTENCE_CODES in saved["files"]
        ann_kind = saved.get("ann", {}).get("kind")
        current &= n < VECTOR_CODES_MIN_RESPONSES or VECTOR_CODES in saved["files"]
        sentence_codes = saved.get("sentence_ann", {}).get("dims_per_code", DIMS_PER_CODE)
        current &= "sentence_ann" not in saved or sentence_codes == SENTENCE_DIMS_PER_CODE
        if current and ann_kind == (ANN_KIND if n >= ANN_MIN_RESPONSES else None):
            return index_dir, corpus
    print(f"building the {n:,}-response hybrid index in {index_dir} ...", flush=True)
    encoder = artifact.encoder()
    # A variant gets its base text's vector plus noise: only the base texts are encoded.
    bases = np.unique(corpus.origins)
    base_vectors, _ = encode_unique(
        [texts[i] for i in bases], encoder.encode_responses, 512, "base texts", progress=True
    )
    vectors = base_vectors[np.searchsorted(bases, corpus.origins)]
    rng = np.random.default_rng(n)
    vectors += rng.normal(0, 0.02, size=vectors.shape).astype(np.float32)
    lexical = artifact.lexical.transform(texts) if artifact.lexical is not None else None
    sentence = None
    if artifact.sentence_encoder is not None:
        base_sentences = artifact.sentence_encoder.encode(
            [sentence_of_normalized(texts[i]) for i in bases], progress=True
        )
        sentence = base_sentences[np.searchsorted(bases, corpus.origins)]
        sentence += rng.normal(0, 0.01, size=sentence.shape).astype(np.float32)
        sentence /= np.linalg.norm(sentence, axis=1, keepdims=True)
    save_index(
        index_dir,
        vectors,
        texts,
        artifact,
        source=source,
        lexical=lexical,
        normalized=texts,
        display="normalized",
        progress=True,
        sentence=sentence,
    )
    return index_dir, corpus


def neural_reference(workdir: Path, n: int) -> tuple[Path, Path]:
    """The untrained neural-only artifact and a random-vector index of ``n`` (reference)."""
    from chatbot.artifact import load_artifact, save_artifact
    from chatbot.config import ModelConfig
    from chatbot.index import save_index
    from chatbot.model import build_dual_encoder
    from chatbot.vocab import PAD, UNK, Vocab

    model_dir = workdir / "neural-model"
    if not (model_dir / "manifest.json").is_file():
        config = ModelConfig(vocab_size=20_000, embedding_dim=100, hidden_size=256)
        vocab = Vocab([PAD, UNK, *(f"v{i}" for i in range(config.vocab_size - 2))])
        model = build_dual_encoder(config, vocab_size=len(vocab))
        save_artifact(model_dir, model, vocab, config, name="bench")
    artifact = load_artifact(model_dir)
    index_dir = workdir / f"neural-index-{n}"
    manifest = index_dir / "manifest.json"
    if not manifest.is_file() or json.loads(manifest.read_text())["model_checksum"] != (
        artifact.checksum
    ):
        rng = np.random.default_rng(n)
        vectors = rng.standard_normal((n, artifact.model.encoding_dim), dtype=np.float32)
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
        save_index(index_dir, vectors, [f"response {i}" for i in range(n)], artifact)
    return model_dir, index_dir
