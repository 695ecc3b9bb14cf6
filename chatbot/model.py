"""The dual-encoder LSTM of Lowe et al. (2015): score(c, r) = σ(cᵀ M r + b).

A context and a response are embedded word by word and read by an LSTM; its final state is
the encoding. Responses never see the context, so they can be encoded once and stored: the
context side carries ``M`` (``encode_contexts`` returns ``cM``), and ranking a repository
is a matrix product ``(cM) · Rᵀ``.

With ``hierarchical`` the context side reads turn by turn instead (Serban et al.'s HRED
layout, as in the multi-turn UDC models): the response encoder reads each of the context's
last turns, and a second LSTM reads the turn vectors in order.

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


def split_turns(ids: tf.Tensor, marker_id: int, max_turns: int, max_turn_tokens: int) -> tf.Tensor:
    """A context's token ids cut into turns: (batch, time) -> (batch, max_turns,
    max_turn_tokens).

    A turn ends with (and keeps) ``marker_id``. The last ``max_turns`` turns are kept, in
    order from the first slot, each cut to its first ``max_turn_tokens`` tokens; unused
    slots and positions are 0 (padding). Made of dense ops only, so XLA compiles it for
    every padded input shape.

    Example:
        >>> ids = tf.constant([[5, 9, 6, 7, 9, 8, 0]])  # 9 ends a turn
        >>> split_turns(ids, marker_id=9, max_turns=2, max_turn_tokens=2).numpy().tolist()
        [[[6, 7], [8, 0]]]
    """
    rows, length = tf.shape(ids)[0], tf.shape(ids)[1]
    real = tf.not_equal(ids, 0)
    turn = tf.cumsum(tf.cast(tf.equal(ids, marker_id), tf.int32), axis=1, exclusive=True)
    turns = tf.reduce_max(tf.where(real, turn, -1), axis=1, keepdims=True) + 1
    slot = turn - tf.maximum(turns - max_turns, 0)
    # Turns are contiguous, so a token's place in its turn is the number of tokens of the
    # same turn before it: a (time x time) comparison, cheap at context lengths.
    same_turn = tf.equal(turn[:, :, None], turn[:, None, :])
    positions = tf.range(length)
    earlier = positions[None, :] < positions[:, None]  # (t, t'): t' comes before t
    place = tf.reduce_sum(tf.cast(same_turn & earlier[None], tf.int32), axis=2)
    keep = real & (slot >= 0) & (place < max_turn_tokens)
    # Dropped tokens all go to one spare slot, cut off below (scatter_nd adds duplicates).
    slot = tf.where(keep, slot, max_turns)
    place = tf.where(keep, place, 0)
    row = tf.broadcast_to(tf.range(rows)[:, None], tf.shape(ids))
    indices = tf.stack([row, slot, place], axis=-1)
    values = tf.where(keep, ids, 0)
    shape = tf.stack([rows, max_turns + 1, max_turn_tokens])
    return tf.scatter_nd(indices, values, shape)[:, :max_turns]


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
        hierarchical: read contexts turn by turn (see :func:`split_turns`); the response
            encoder reads each turn, a dialogue-level LSTM the turn vectors.
        turn_marker_id: the token id that ends a turn (``__eot__``), needed when
            hierarchical.
        max_turns: turns kept of a hierarchical context.
        max_turn_tokens: tokens kept of each turn.
    """

    def __init__(
        self,
        vocab_size: int,
        embedding_dim: int,
        hidden_size: int,
        bidirectional: bool = False,
        shared_encoder: bool = True,
        dropout: float = 0.0,
        hierarchical: bool = False,
        turn_marker_id: int = 0,
        max_turns: int = 8,
        max_turn_tokens: int = 32,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if hierarchical and turn_marker_id < 2:
            raise ValueError("a hierarchical encoder needs the id of the turn marker (__eot__)")
        self.vocab_size = vocab_size
        self.embedding_dim = embedding_dim
        self.hidden_size = hidden_size
        self.bidirectional = bidirectional
        self.shared_encoder = shared_encoder
        self.dropout_rate = dropout
        self.hierarchical = hierarchical
        self.turn_marker_id = turn_marker_id
        self.max_turns = max_turns
        self.max_turn_tokens = max_turn_tokens
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
        # The dialogue-level reader of a hierarchical context; its state is the encoding.
        self.dialogue_rnn = (
            keras.layers.LSTM(self.encoding_dim, name="dialogue_encoder") if hierarchical else None
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

    def _encode_turns(self, ids: tf.Tensor, training: bool) -> tf.Tensor:
        turns = split_turns(ids, self.turn_marker_id, self.max_turns, self.max_turn_tokens)
        rows = tf.shape(turns)[0]
        present = tf.reduce_any(tf.not_equal(turns, 0), axis=2)  # (batch, max_turns)
        # An unused slot reads one <unk> rather than nothing (the cuDNN kernel rejects
        # empty sequences); the dialogue LSTM skips its vector anyway.
        first = tf.where(present, turns[:, :, 0], 1)
        turns = tf.concat([first[:, :, None], turns[:, :, 1:]], axis=2)
        flat = tf.reshape(turns, (-1, self.max_turn_tokens))
        turn_vectors = self._encode(flat, self.response_rnn, training)
        turn_vectors = tf.reshape(turn_vectors, (rows, self.max_turns, self.encoding_dim))
        assert self.dialogue_rnn is not None
        return self.dialogue_rnn(turn_vectors, mask=present, training=training)

    def encode_contexts(self, ids: tf.Tensor, training: bool = False) -> tf.Tensor:
        """``cM`` for token ids of shape (batch, time): shape (batch, encoding_dim)."""
        if self.hierarchical:
            return tf.matmul(self._encode_turns(ids, training), self.M)
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
            hierarchical=self.hierarchical,
            turn_marker_id=self.turn_marker_id,
            max_turns=self.max_turns,
            max_turn_tokens=self.max_turn_tokens,
        )
        return config


def build_dual_encoder(
    config: ModelConfig, vocab_size: int | None = None, turn_marker_id: int = 0
) -> DualEncoder:
    """A built :class:`DualEncoder` for ``config`` (``vocab_size`` overrides the config's,
    since the real vocabulary may be smaller than the cap; a hierarchical config needs the
    vocabulary's ``turn_marker_id``, see :meth:`chatbot.vocab.Vocab.turn_marker_id`)."""
    model = DualEncoder(
        vocab_size=vocab_size or config.vocab_size,
        embedding_dim=config.embedding_dim,
        hidden_size=config.hidden_size,
        bidirectional=config.bidirectional,
        shared_encoder=config.shared_encoder,
        dropout=config.dropout,
        hierarchical=config.hierarchical,
        turn_marker_id=turn_marker_id,
        max_turns=config.max_turns,
        max_turn_tokens=config.max_turn_tokens,
        name="dual_encoder",
    )
    model.build_all()
    return model
