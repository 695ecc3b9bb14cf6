"""Shared test helpers: tiny models built in milliseconds (vocabulary 50, sizes 8)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from chatbot.artifact import save_artifact
from chatbot.config import ModelConfig
from chatbot.model import DualEncoder, build_dual_encoder
from chatbot.vocab import Vocab

WORDS = "hello hi how are you fine thanks what is your name my bye see later good morning".split()


def tiny_config(**overrides: object) -> ModelConfig:
    base = dict(
        vocab_size=50,
        min_count=1,
        embedding_dim=8,
        hidden_size=8,
        max_context_tokens=12,
        max_response_tokens=6,
        normalization="tokenize",
    )
    return ModelConfig(**{**base, **overrides})  # type: ignore[arg-type]


def tiny_vocab() -> Vocab:
    return Vocab.build([WORDS, ["__eou__", "__eot__"]], max_size=50, min_count=1)


def tiny_model(config: ModelConfig | None = None, seed: int = 0) -> DualEncoder:
    import keras

    keras.utils.set_random_seed(seed)
    vocab = tiny_vocab()
    return build_dual_encoder(config or tiny_config(), len(vocab), vocab.turn_marker_id)


def tiny_artifact(path: Path, config: ModelConfig | None = None, seed: int = 0) -> Path:
    config = config or tiny_config()
    return save_artifact(path, tiny_model(config, seed), tiny_vocab(), config, name="tiny")


def random_ids(rows: int, length: int, vocab_size: int = 20, seed: int = 0) -> np.ndarray:
    ids = np.random.default_rng(seed).integers(2, vocab_size, size=(rows, length)).astype("int32")
    ids[0, length // 2 :] = 0  # one right-padded row
    return ids


BUNDLE_TEXTS = ("Hello there!", "I am fine, thanks.", "My name is Bot.", "Good morning!")


def tiny_bundle(
    root: Path, texts: tuple[str, ...] = BUNDLE_TEXTS, seed: int = 0, hybrid: bool = True
) -> tuple[Path, Path]:
    """A tiny model (hybrid: with a TF-IDF part) and its index of ``texts`` under ``root``;
    returns ``(model_dir, index_dir)``."""
    from chatbot.artifact import load_artifact
    from chatbot.index import save_index
    from chatbot.lexical import TfidfModel
    from chatbot.text import Normalizer

    config = tiny_config(lexical_weight=1.0 if hybrid else 0.0)
    normalized = [Normalizer(config.normalization).response(t) for t in texts]
    lexical = TfidfModel.fit(normalized) if hybrid else None
    model_dir = save_artifact(
        root / "model", tiny_model(config, seed), tiny_vocab(), config, "tiny", lexical=lexical
    )
    artifact = load_artifact(model_dir)
    vectors = artifact.encoder().encode_responses(normalized)
    rows = artifact.lexical.transform(normalized) if artifact.lexical is not None else None
    index_dir = save_index(
        root / "index", vectors, list(texts), artifact, lexical=rows, normalized=normalized
    )
    return model_dir, index_dir
