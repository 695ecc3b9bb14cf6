"""The dual-encoder LSTM of Lowe et al. (2015): score(c, r) = σ(cᵀ M r + b).

A context and a response are embedded word by word and read by an LSTM; its final state is
the encoding. Responses never see the context, so they can be encoded once and stored: the
context side carries ``M`` (``encode_contexts`` returns ``cM``), and ranking a repository
is a matrix product ``(cM) · Rᵀ``.

Example:
    >>> model = build_dual_encoder(ModelConfig(vocab_size=50, embedding_dim=8, hidden_size=8))
    >>> model.encode_contexts(np.ones((2, 5), "int32")).shape
    TensorShape([2, 8])
"""

from __future__ import annotations

from typing import Any

import keras
import numpy as np
import tensorflow as tf

from chatbot.config import ModelConfig


def _encoder_rnn(hidden_size: int, bidirectional: bool, name: str) -> keras.layers.Layer:
    lstm = keras.layers.LSTM(hidden_size, name=f"{name}_lstm")
    if bidirectional:
        return keras.layers.Bidirectional(lstm, merge_mode="concat", name=name)
    return lstm


@keras.saving.register_keras_serializable(package="chatbot")
class DualEncoder(keras.Model):
    """Context and response encoders plus the bilinear scorer.

    Inputs are right-padded int32 token ids (0 = padding), which the embedding masks; on a
    GPU that layout is what the cuDNN LSTM kernel requires.

    Args:
        vocab_size: rows of the embedding table.
        embedding_dim: word-vector size.
        hidden_size: LSTM units per direction.
        bidirectional: read both ways.
        shared_encoder: one LSTM for both sides.
        dropout: rate on embeddings and encodings while training.
    """

    def __init__(
        self,
        vocab_size: int,
        embedding_dim: int,
        hidden_size: int,
        bidirectional: bool = False,
        shared_encoder: bool = True,
        dropout: float = 0.0,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.vocab_size = vocab_size
        self.embedding_dim = embedding_dim
        self.hidden_size = hidden_size
        self.bidirectional = bidirectional
        self.shared_encoder = shared_encoder
        self.dropout_rate = dropout
        self.encoding_dim = hidden_size * (2 if bidirectional else 1)

        self.embedding = keras.layers.Embedding(
            vocab_size, embedding_dim, mask_zero=True, name="embedding"
        )
        self.dropout = keras.layers.Dropout(dropout)
        self.context_rnn = _encoder_rnn(hidden_size, bidirectional, "context_encoder")
        self.response_rnn = (
            self.context_rnn
            if shared_encoder
            else _encoder_rnn(hidden_size, bidirectional, "response_encoder")
        )
        # Identity start: before training the score is plain cᵀr, a sensible similarity.
        self.M = self.add_weight(
            shape=(self.encoding_dim, self.encoding_dim), initializer="identity", name="M"
        )
        self.b = self.add_weight(shape=(), initializer="zeros", name="b")

    def _encode(self, ids: tf.Tensor, rnn: keras.layers.Layer, training: bool) -> tf.Tensor:
        embedded = self.dropout(self.embedding(ids), training=training)
        mask = tf.not_equal(ids, 0)
        return self.dropout(rnn(embedded, mask=mask, training=training), training=training)

    def encode_contexts(self, ids: tf.Tensor, training: bool = False) -> tf.Tensor:
        """``cM`` for token ids of shape (batch, time): shape (batch, encoding_dim)."""
        return tf.matmul(self._encode(ids, self.context_rnn, training), self.M)

    def encode_responses(self, ids: tf.Tensor, training: bool = False) -> tf.Tensor:
        """``r`` for token ids of shape (batch, time): shape (batch, encoding_dim)."""
        return self._encode(ids, self.response_rnn, training)

    def call(self, inputs: tuple[tf.Tensor, tf.Tensor], training: bool = False) -> tf.Tensor:
        """Logits of (context, response) pairs: ``cᵀ M r + b``, shape (batch,)."""
        context_ids, response_ids = inputs
        c = self.encode_contexts(context_ids, training=training)
        r = self.encode_responses(response_ids, training=training)
        return tf.reduce_sum(c * r, axis=-1) + self.b

    def pairwise_logits(self, context_vectors: tf.Tensor, response_vectors: tf.Tensor) -> tf.Tensor:
        """Every context against every response: shape (n_contexts, n_responses)."""
        return tf.matmul(context_vectors, response_vectors, transpose_b=True) + self.b

    def set_embeddings(self, vectors: np.ndarray) -> None:
        """Initialises the word embeddings, e.g. from pre-trained word vectors."""
        self.embedding.embeddings.assign(vectors.astype("float32"))

    def build_all(self) -> None:
        """Creates every weight by running both encoders once on a dummy input."""
        dummy = tf.ones((1, 2), tf.int32)
        self((dummy, dummy))

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(
            vocab_size=self.vocab_size,
            embedding_dim=self.embedding_dim,
            hidden_size=self.hidden_size,
            bidirectional=self.bidirectional,
            shared_encoder=self.shared_encoder,
            dropout=self.dropout_rate,
        )
        return config


def build_dual_encoder(config: ModelConfig, vocab_size: int | None = None) -> DualEncoder:
    """A built :class:`DualEncoder` for ``config`` (``vocab_size`` overrides the config's,
    since the real vocabulary may be smaller than the cap)."""
    model = DualEncoder(
        vocab_size=vocab_size or config.vocab_size,
        embedding_dim=config.embedding_dim,
        hidden_size=config.hidden_size,
        bidirectional=config.bidirectional,
        shared_encoder=config.shared_encoder,
        dropout=config.dropout,
        name="dual_encoder",
    )
    model.build_all()
    return model
