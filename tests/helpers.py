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
    root: Path,
    texts: tuple[str, ...] = BUNDLE_TEXTS,
    seed: int = 0,
    hybrid: bool = True,
    semantic: bool = False,
) -> tuple[Path, Path]:
    """A tiny model (hybrid: with a TF-IDF part; semantic: and a tiny sentence encoder at
    weight 2) and its index of ``texts`` under ``root``; returns ``(model_dir, index_dir)``."""
    import dataclasses

    from chatbot.artifact import load_artifact, update_config
    from chatbot.index import save_index
    from chatbot.lexical import TfidfModel
    from chatbot.text import Normalizer
    from training.sentence import export_sentence_encoder

    config = tiny_config(lexical_weight=1.0 if hybrid else 0.0)
    normalized = [Normalizer(config.normalization).response(t) for t in texts]
    lexical = TfidfModel.fit(normalized) if hybrid or semantic else None
    model_dir = save_artifact(
        root / "model", tiny_model(config, seed), tiny_vocab(), config, "tiny", lexical=lexical
    )
    if semantic:
        export_sentence_encoder(model_dir, tiny_sentence_source(root / "sentence", seed))
        update_config(model_dir, dataclasses.replace(config, semantic_weight=2.0))
    artifact = load_artifact(model_dir)
    vectors = artifact.encoder().encode_responses(normalized)
    rows = artifact.lexical.transform(normalized) if artifact.lexical is not None else None
    sentence = artifact.sentence_encoder.encode(texts) if artifact.sentence_encoder else None
    index_dir = save_index(
        root / "index",
        vectors,
        list(texts),
        artifact,
        lexical=rows,
        normalized=normalized,
        sentence=sentence,
    )
    return model_dir, index_dir


SENTENCE_WIDTH, SENTENCE_HEADS, SENTENCE_LAYERS = 8, 2, 1


def tiny_sentence_source(folder: Path, seed: int = 0) -> Path:
    """A BERT-style sentence encoder in the Hugging Face layout, 1 layer of width 8, random
    weights, a WordPiece tokenizer over :data:`WORDS`: what ``training.sentence`` converts."""
    import json

    from safetensors.numpy import save_file
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors

    folder.mkdir(parents=True, exist_ok=True)
    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]"]
    vocab = {w: i for i, w in enumerate([*specials, *WORDS, "?", ",", "."])}
    tokenizer = Tokenizer(models.WordPiece(vocab, unk_token="[UNK]"))
    tokenizer.normalizer = normalizers.BertNormalizer(lowercase=True)
    tokenizer.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tokenizer.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", special_tokens=[("[CLS]", 2), ("[SEP]", 3)]
    )
    tokenizer.save(str(folder / "tokenizer.json"))
    w, ff = SENTENCE_WIDTH, 2 * SENTENCE_WIDTH
    config = {
        "num_attention_heads": SENTENCE_HEADS,
        "num_hidden_layers": SENTENCE_LAYERS,
        "layer_norm_eps": 1e-12,
        "hidden_size": w,
    }
    (folder / "config.json").write_text(json.dumps(config))
    rng = np.random.default_rng(seed)

    def r(*shape: int) -> np.ndarray:
        return rng.normal(0, 0.5, shape).astype(np.float32)

    weights = {
        "embeddings.word_embeddings.weight": r(len(vocab), w),
        "embeddings.position_embeddings.weight": r(128, w),  # chatbot.sentence.MAX_TOKENS
        "embeddings.token_type_embeddings.weight": r(2, w),
        "embeddings.LayerNorm.weight": 1 + r(w),
        "embeddings.LayerNorm.bias": r(w),
    }
    for i in range(SENTENCE_LAYERS):
        p = f"encoder.layer.{i}."
        for name, (rows, cols) in {
            "attention.self.query": (w, w),
            "attention.self.key": (w, w),
            "attention.self.value": (w, w),
            "attention.output.dense": (w, w),
            "intermediate.dense": (ff, w),
            "output.dense": (w, ff),
        }.items():
            weights[f"{p}{name}.weight"], weights[f"{p}{name}.bias"] = r(rows, cols), r(rows)
        for norm in ("attention.output.LayerNorm", "output.LayerNorm"):
            weights[f"{p}{norm}.weight"], weights[f"{p}{norm}.bias"] = 1 + r(w), r(w)
    save_file(weights, str(folder / "model.safetensors"))
    return folder
