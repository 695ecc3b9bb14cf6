"""Texts in, vectors out: the inference side of a dual encoder, on TensorFlow.

Inputs are padded (:mod:`chatbot.token_ids`) so that compiled functions are reused: with XLA
every new input shape costs a compilation (about 0.5 s on CPU), and a batch-1 context encodes
about 2.5x faster compiled than not (docs/performance.md). Serving on a CPU can run the same
network on LiteRT instead (:mod:`chatbot.lite`).
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence

import numpy as np
import tensorflow as tf

from chatbot.config import ModelConfig
from chatbot.model import DualEncoder
from chatbot.text import Normalizer
from chatbot.token_ids import (
    context_ids,
    encode_padded,
    padded_shapes,
    response_ids,
)
from chatbot.vocab import Vocab


class TextEncoder:
    """Encodes normalised texts with a :class:`DualEncoder` and its vocabulary.

    Args:
        model: the trained dual encoder.
        vocab: its vocabulary.
        config: its configuration (lengths, normalisation).
        jit_compile: compile with XLA (faster per call, a compilation per new shape).
        weights_fixed: the weights will not change (a loaded artifact, not a model in
            training), so :attr:`bias` is read from the model once.

    The neural part of a model's score only; :class:`chatbot.scoring.Scorer` adds the rest.

    Example:
        >>> from chatbot.model import build_dual_encoder
        >>> config = ModelConfig(embedding_dim=4, hidden_size=4, normalization="none")
        >>> vocab = Vocab(["<pad>", "<unk>", "hi", "__eou__", "__eot__"])
        >>> model = build_dual_encoder(config, vocab_size=len(vocab))
        >>> TextEncoder(model, vocab, config).encode_contexts(["hi __eou__ __eot__"]).shape
        (1, 4)
    """

    def __init__(
        self,
        model: DualEncoder,
        vocab: Vocab,
        config: ModelConfig,
        jit_compile: bool = True,
        weights_fixed: bool = False,
    ) -> None:
        self.model = model
        self.vocab = vocab
        self.config = config
        self.weights_fixed = weights_fixed
        self._fixed_bias: float | None = None
        self.normalizer = Normalizer(config.normalization)
        self._warmed: set[tuple[int, int]] = set()  # context shapes compiled by warm_up
        signature = [tf.TensorSpec((None, None), tf.int32)]
        self._contexts = tf.function(
            lambda ids: model.encode_contexts(ids),
            input_signature=signature,
            jit_compile=jit_compile,
        )
        self._responses = tf.function(
            lambda ids: model.encode_responses(ids),
            input_signature=signature,
            jit_compile=jit_compile,
        )

    def fits(self, model: DualEncoder, config: ModelConfig) -> bool:
        """Whether ``model`` has this encoder's network shape and padded input shapes, so that
        :meth:`recycled_for` can give it this encoder's compiled functions."""
        # The network config gives the weight shapes and the constants compiled into the
        # context function (turn marker and counts); the token caps give the padded shapes.
        return (
            type(model) is type(self.model)
            and model.get_config() == self.model.get_config()
            and config.max_context_tokens == self.config.max_context_tokens
            and config.max_response_tokens == self.config.max_response_tokens
        )

    def recycled_for(self, model: DualEncoder, vocab: Vocab, config: ModelConfig) -> TextEncoder:
        """An encoder of ``model`` that reuses this one's compiled functions: ``model``'s
        weights are copied into this encoder's network, which XLA compiled already for every
        padded shape (a new network would take seconds per shape). This encoder must not be
        used any more: it now computes with the new weights.

        Raises:
            ValueError: ``model`` does not fit (see :meth:`fits`).
        """
        if not self.fits(model, config):
            raise ValueError("the model's network or padded shapes differ from this encoder's")
        self.model.set_weights(model.get_weights())
        recycled = copy.copy(self)
        recycled.vocab, recycled.config = vocab, config
        recycled.normalizer = Normalizer(config.normalization)
        recycled._warmed = set(self._warmed)  # compiled: the functions are the same
        recycled._fixed_bias = None  # new weights, new b
        return recycled

    @property
    def bias(self) -> float:
        """The scorer's ``b``, read from the model: every time (it changes while training), or
        once when the weights are fixed (a variable read costs 0.1-0.8 ms a model call)."""
        if not self.weights_fixed:
            return float(self.model.b.numpy())
        if self._fixed_bias is None:
            self._fixed_bias = float(self.model.b.numpy())
        return self._fixed_bias

    @property
    def dim(self) -> int:
        return self.model.encoding_dim

    def context_ids(self, texts: Sequence[str]) -> list[np.ndarray]:
        """Token ids of normalised contexts, keeping the last tokens (the latest turns)."""
        return context_ids(self.vocab, texts, self.config.max_context_tokens)

    def response_ids(self, texts: Sequence[str]) -> list[np.ndarray]:
        """Token ids of normalised responses, keeping the first tokens."""
        return response_ids(self.vocab, texts, self.config.max_response_tokens)

    def encode_contexts(
        self, texts: Sequence[str], batch_size: int = 256, progress: bool = False
    ) -> np.ndarray:
        """``cM`` for normalised contexts: float32 (len(texts), dim)."""
        ids = self.context_ids(texts)
        return self._run(self._contexts, ids, self.config.max_context_tokens, batch_size, progress)

    def encode_responses(
        self, texts: Sequence[str], batch_size: int = 256, progress: bool = False
    ) -> np.ndarray:
        """``r`` for normalised responses: float32 (len(texts), dim)."""
        ids = self.response_ids(texts)
        return self._run(
            self._responses, ids, self.config.max_response_tokens, batch_size, progress
        )

    def context_shapes(self, max_batch: int) -> set[tuple[int, int]]:
        """Every ``(rows, tokens)`` shape that :meth:`encode_contexts` pads a call of up to
        ``max_batch`` contexts to: what the compiled context encoder must be ready for."""
        return padded_shapes(max_batch, self.config.max_context_tokens)

    def warm_up(self, max_batch: int) -> int:
        """Compiles the context encoder for every shape of :meth:`context_shapes`, so that no
        request waits for a compilation; returns the number of shapes compiled (those this
        encoder, or the one it was recycled from, compiled before are skipped)."""
        shapes = sorted(self.context_shapes(max_batch) - self._warmed)
        for rows, length in shapes:
            self._contexts(tf.ones((rows, length), dtype=tf.int32))  # id 1: <unk>
            self._warmed.add((rows, length))
        return len(shapes)

    def _run(
        self,
        fn: Callable[[tf.Tensor], tf.Tensor],
        ids: list[np.ndarray],
        cap: int,
        batch_size: int,
        progress: bool,
    ) -> np.ndarray:
        return encode_padded(
            ids, cap, batch_size, lambda batch: fn(tf.constant(batch)).numpy(), self.dim, progress
        )
