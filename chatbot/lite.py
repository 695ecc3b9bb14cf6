"""The dual encoder on LiteRT: serving on a CPU without TensorFlow in the process.

A serving worker that imports TensorFlow holds about 270 MiB for the import alone and more
for each compiled input shape; at 1M responses two such workers were 2.6 GB in all
(docs/performance.md). The same network converted to a LiteRT flatbuffer
(:mod:`chatbot.lite_export`, ``chatbot lite``) computes the same vectors (within float32
rounding) from a memory-mapped file that every worker shares, and needs no compilation.

An artifact holds one ``encoder.tflite`` with a signature per side and batch size
(``contexts_8``, ``responses_1``, ...: the converter needs a fixed batch size for the LSTM's
state, the length may vary) and ``encoder_lite.json`` with those sizes and the scorer's
``b``. Both are listed, with checksums, in the artifact's manifest.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Sequence
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from chatbot.config import ModelConfig
from chatbot.token_ids import (
    context_ids,
    encode_padded,
    padded_shapes,
    response_ids,
)
from chatbot.vocab import Vocab

LITE_MODEL = "encoder.tflite"
LITE_INFO = "encoder_lite.json"
# Powers of two up to 64, the largest micro-batch a service may be set to take (it takes 8
# by default): a batch is padded to the next one (chatbot.token_ids.padded_batch), a larger
# call is cut.
LITE_BATCHES = (1, 2, 4, 8, 16, 32, 64)
SIDES = ("contexts", "responses")
# Where a served model's encoders run (chatbot.ranker.serving_runtime): LiteRT when the
# artifact has them converted and there is no GPU, TensorFlow, or LiteRT (required).
RUNTIMES = ("auto", "tensorflow", "lite")


def signature_name(side: str, batch: int) -> str:
    """The flatbuffer's signature for one side and batch size.

    Example:
        >>> signature_name("contexts", 8)
        'contexts_8'
    """
    return f"{side}_{batch}"


class LiteEncoder:
    """Encodes normalised texts with an artifact's ``encoder.tflite``: the same interface as
    :class:`chatbot.encoder.TextEncoder` (what :class:`chatbot.scoring.Scorer` calls).

    Args:
        model_file: the artifact's ``encoder.tflite``.
        info: its ``encoder_lite.json`` (batch sizes, ``b``, vector size).
        vocab: the artifact's vocabulary.
        config: its configuration (token caps).
        threads: CPU threads per call.

    Calls are serialised by a lock: one interpreter's tensors serve one call at a time. The
    ``batch_size`` of the encode methods is accepted for :class:`~chatbot.encoder.TextEncoder`'s
    callers and not used: a call is cut into batches of the largest converted size.
    """

    def __init__(
        self,
        model_file: Path,
        info: dict[str, Any],
        vocab: Vocab,
        config: ModelConfig,
        threads: int = 1,
    ) -> None:
        from ai_edge_litert.interpreter import Interpreter

        self.vocab = vocab
        self.config = config
        self.batches = tuple(int(b) for b in info["batch_sizes"])
        self._bias = float(info["bias"])
        self.dim = int(info["dim"])
        # From the path, the flatbuffer is memory-mapped: its pages are shared by every
        # worker that serves the artifact.
        self._interpreter = Interpreter(model_path=str(model_file), num_threads=threads)
        self._runners = {
            (side, b): self._interpreter.get_signature_runner(signature_name(side, b))
            for side in SIDES
            for b in self.batches
        }
        self._lock = threading.Lock()

    @property
    def bias(self) -> float:
        """The scorer's ``b``, saved with the flatbuffer."""
        return self._bias

    def encode_contexts(
        self, texts: Sequence[str], batch_size: int = 256, progress: bool = False
    ) -> np.ndarray:
        """``cM`` for normalised contexts: float32 (len(texts), dim)."""
        cap = self.config.max_context_tokens
        return self._run("contexts", context_ids(self.vocab, texts, cap), cap, progress)

    def encode_responses(
        self, texts: Sequence[str], batch_size: int = 256, progress: bool = False
    ) -> np.ndarray:
        """``r`` for normalised responses: float32 (len(texts), dim)."""
        cap = self.config.max_response_tokens
        return self._run("responses", response_ids(self.vocab, texts, cap), cap, progress)

    def warm_up(self, max_batch: int) -> int:
        """Runs each context shape a batch of up to ``max_batch`` contexts is padded to once,
        so that their tensors are allocated before a request needs them; returns how many."""
        # A larger call is cut into batches of the largest size: no other shapes.
        shapes = padded_shapes(min(max_batch, self.batches[-1]), self.config.max_context_tokens)
        for shape in sorted(shapes):
            self._call("contexts", np.ones(shape, dtype=np.int32))  # id 1: <unk>
        return len(shapes)

    def _run(self, side: str, ids: list[np.ndarray], cap: int, progress: bool) -> np.ndarray:
        run = partial(self._call, side)
        return encode_padded(ids, cap, self.batches[-1], run, self.dim, progress)

    def _call(self, side: str, batch: np.ndarray) -> np.ndarray:
        runner = self._runners[side, batch.shape[0]]
        with self._lock:
            (vectors,) = runner(ids=batch).values()
        return vectors


def read_lite_info(path: Path) -> dict[str, Any]:
    """An artifact's ``encoder_lite.json``; ``ValueError`` names what is missing."""
    info = json.loads(path.read_text(encoding="utf-8"))
    missing = [k for k in ("batch_sizes", "bias", "dim") if k not in info]
    if missing:
        raise ValueError(f"missing {', '.join(missing)}")
    batches = [int(b) for b in info["batch_sizes"]]
    if not batches or batches != [1 << i for i in range(len(batches))]:
        raise ValueError(f"batch_sizes must be the powers of two from 1 on, not {batches}")
    return info
