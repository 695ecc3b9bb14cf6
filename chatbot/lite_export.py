"""Converts an artifact's encoders for LiteRT (:mod:`chatbot.lite`); needs TensorFlow.

Each side and batch size becomes one signature of ``encoder.tflite``, its weights frozen into
constants (the converter stores them once for all signatures). The conversion is checked
before it is kept: both runtimes encode a few probe texts, and vectors that differ by more
than float32 rounding fail it.
"""

from __future__ import annotations

import json
import logging
import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from chatbot.artifact import Artifact, load_artifact, rewrite_files
from chatbot.errors import ArtifactError
from chatbot.lite import LITE_BATCHES, LITE_INFO, LITE_MODEL, SIDES, LiteEncoder, signature_name

log = logging.getLogger(__name__)

# Largest difference allowed between the two runtimes' vectors, relative to their scale.
TOLERANCE = 1e-4
_PROBES = ("", "hello __eou__", "a b c __eou__ __eot__ d e __eou__", "x " * 300)


def export_lite(path: str | Path, batches: Sequence[int] = LITE_BATCHES) -> Path:
    """Adds ``encoder.tflite`` and ``encoder_lite.json`` to the artifact at ``path``, whose
    weights, version and indexes stay valid. Returns ``path``.

    Raises:
        ArtifactError: the artifact is damaged, or the converted encoders do not compute
            what the Keras network computes.
    """
    path = Path(path)
    artifact = load_artifact(path)
    import tensorflow as tf  # after the checks: a wrong folder is named at once

    with tempfile.TemporaryDirectory(prefix="chatbot-lite-") as tmp:
        flatbuffer = _convert(artifact, batches, Path(tmp))
        info = {
            "batch_sizes": list(batches),
            "bias": float(artifact.model.b.numpy()),
            "dim": artifact.config.encoding_dim,
            "weights": artifact.checksum,
            "tensorflow": tf.__version__,
        }
        model_file = Path(tmp) / LITE_MODEL
        model_file.write_bytes(flatbuffer)
        _check(artifact, LiteEncoder(model_file, info, artifact.vocab, artifact.config))
        rewrite_files(
            path,
            {
                LITE_MODEL: lambda f: f.write_bytes(flatbuffer),
                LITE_INFO: lambda f: f.write_text(json.dumps(info, indent=2) + "\n"),
            },
        )
    log.info("%s: %s written (%.1f MB)", path, LITE_MODEL, len(flatbuffer) / 1e6)
    return path


def _convert(artifact: Artifact, batches: Sequence[int], tmp: Path) -> bytes:
    import tensorflow as tf
    from tensorflow.python.framework.convert_to_constants import (
        convert_variables_to_constants_v2,
    )

    model = artifact.model
    module = tf.Module()
    signatures = {}
    for side in SIDES:
        encode = getattr(model, f"encode_{side}")
        for batch in batches:
            # A fixed batch size: the LSTM's loop keeps its state in a list whose element
            # shape the converter needs to know; the length stays free.
            spec = tf.TensorSpec((batch, None), tf.int32, name="ids")
            function = tf.function(lambda ids, encode=encode: encode(ids), input_signature=[spec])
            # Frozen, the weights are constants; left as variables inside the loop, LiteRT
            # would find them uninitialised.
            frozen = convert_variables_to_constants_v2(
                function.get_concrete_function(), lower_control_flow=False
            )
            name = signature_name(side, batch)
            signatures[name] = frozen
            setattr(module, name, frozen)  # tracked, so that the SavedModel keeps it
    tf.saved_model.save(module, str(tmp / "saved_model"), signatures=signatures)
    converter = tf.lite.TFLiteConverter.from_saved_model(
        str(tmp / "saved_model"), signature_keys=list(signatures)
    )
    try:
        return converter.convert()
    except Exception as exc:  # the converter's own error types vary by version
        message = f"{artifact.path}: the encoders do not convert to LiteRT ({exc})"
        raise ArtifactError(message) from exc


def _check(artifact: Artifact, lite: LiteEncoder) -> None:
    keras = artifact.encoder(jit_compile=False)
    for side in SIDES:
        texts = [*_PROBES, *_PROBES[1:3]]  # 6 texts: a padded batch of 8
        want = getattr(keras, f"encode_{side}")(texts)
        got = getattr(lite, f"encode_{side}")(texts)
        scale = max(1.0, float(np.abs(want).max()))
        error = float(np.abs(want - got).max()) / scale
        if not error <= TOLERANCE:
            raise ArtifactError(
                f"{artifact.path}: the LiteRT {side} encoder differs from the Keras one by "
                f"{error:.2e} (allowed {TOLERANCE:.0e}); not written"
            )
