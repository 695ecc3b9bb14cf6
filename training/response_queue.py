"""Cross-batch negatives: the response vectors of recent training steps, kept as more wrong
answers for the in-batch softmax (cross-batch memory, Wang et al., CVPR 2020).

A batch of 128 teaches the model to tell a reply from 127 others; serving asks it to find one
among tens of thousands. The queue widens each softmax to the last ``size`` responses at the
cost of one matrix product: their vectors are stored, not re-encoded, so they are a few steps
stale and carry no gradient. A queued reply with the same tokens as a row's own true reply
("thanks", "yes") is not a wrong answer for that row, and does not count.

Example:
    >>> queue = ResponseQueue(size=3, dim=2)
    >>> ids = tf.constant([[5, 6], [7, 0]])
    >>> queue.push(tf.ones((2, 2)), tf.constant([1.0, 0.0]), fingerprints(ids))
    >>> queue.push(2 * tf.ones((2, 2)), tf.ones(2), fingerprints(ids))
    >>> queue.vectors.numpy()[:, 0].tolist(), queue.valid.numpy().tolist()
    ([2.0, 1.0, 2.0], [1.0, 0.0, 1.0])
"""

from __future__ import annotations

import tensorflow as tf


def fingerprints(ids: tf.Tensor) -> tf.Tensor:
    """One int64 per row of right-padded token ids, equal for equal rows (padding aside).

    Example:
        >>> f = fingerprints(tf.constant([[5, 6, 0], [5, 6, 0], [6, 5, 0]])).numpy()
        >>> bool(f[0] == f[1]), bool(f[0] == f[2])
        (True, False)
    """
    # Each position gets a pseudo-random weight below 2^32 (a multiplicative hash of the
    # position, never 0), so the weighted sum tells token orders apart; it stays far below
    # 2^63 for any vocabulary and length a model reads.
    positions = tf.range(1, tf.shape(ids)[1] + 1, dtype=tf.int64)
    weights = (positions * 2_654_435_761) % 4_294_967_311
    return tf.reduce_sum(tf.cast(ids, tf.int64) * weights[None, :], axis=1)


class ResponseQueue:
    """A ring of the last ``size`` response vectors (``dim`` wide) and whether each is real.

    Created inside a ``tf.distribute`` scope, every replica keeps its own ring of its own
    responses (``ON_READ`` variables are replica-local), so replicas never write one ring at
    once. The ring is not checkpointed: a resumed run fills it again within a few steps.
    """

    def __init__(self, size: int, dim: int) -> None:
        if size < 1:
            raise ValueError(f"a response queue holds at least one vector, not {size}")
        self.size = size

        def local(value: tf.Tensor, name: str) -> tf.Variable:
            return tf.Variable(
                value,
                trainable=False,
                name=name,
                synchronization=tf.VariableSynchronization.ON_READ,
                aggregation=tf.VariableAggregation.ONLY_FIRST_REPLICA,
            )

        self.vectors = local(tf.zeros((size, dim)), "queue_vectors")
        # 0 for a slot not written yet or holding a placeholder (a row with no true reply).
        self.valid = local(tf.zeros((size,)), "queue_valid")
        self.fingerprints = local(tf.zeros((size,), tf.int64), "queue_fingerprints")
        self.position = local(tf.constant(0, tf.int32), "queue_position")

    def logits(
        self, context_vectors: tf.Tensor, bias: tf.Tensor, true_fingerprints: tf.Tensor
    ) -> tf.Tensor:
        """Scores of every context against every queued response, (batch, size); an empty or
        placeholder slot, or a copy of the row's own true reply, scores -1e9, so the softmax
        never counts it."""
        scores = tf.matmul(context_vectors, self.vectors, transpose_b=True) + bias
        same = tf.equal(true_fingerprints[:, None], self.fingerprints[None, :])
        ignored = tf.logical_or(same, tf.equal(self.valid, 0.0)[None, :])
        return scores - 1e9 * tf.cast(ignored, scores.dtype)

    def push(
        self, response_vectors: tf.Tensor, valid: tf.Tensor, response_fingerprints: tf.Tensor
    ) -> None:
        """Writes a batch's responses over the oldest slots (``valid``: 1 for a real reply;
        ``response_fingerprints``: :func:`fingerprints` of their token ids)."""
        rows = tf.shape(response_vectors)[0]
        slots = (self.position + tf.range(rows)) % self.size
        # A batch larger than the ring keeps its last rows (scatter writes the others first).
        keep = tf.range(rows) >= rows - self.size
        slots, vectors = tf.boolean_mask(slots, keep), tf.boolean_mask(response_vectors, keep)
        self.vectors.assign(
            tf.tensor_scatter_nd_update(self.vectors, slots[:, None], tf.stop_gradient(vectors))
        )
        self.valid.assign(
            tf.tensor_scatter_nd_update(
                self.valid, slots[:, None], tf.boolean_mask(tf.cast(valid, tf.float32), keep)
            )
        )
        self.fingerprints.assign(
            tf.tensor_scatter_nd_update(
                self.fingerprints, slots[:, None], tf.boolean_mask(response_fingerprints, keep)
            )
        )
        self.position.assign((self.position + rows) % self.size)
