"""Normalised texts to padded token-id matrices: the input both runtimes of the encoder read
(TensorFlow's :mod:`chatbot.encoder`, LiteRT's :mod:`chatbot.lite`), without TensorFlow.

Inputs are padded to a few fixed lengths and batch sizes, so that compiled functions (and
LiteRT's tensor allocations) are reused for every call of the same shape.

Example:
    >>> vocab = Vocab(["<pad>", "<unk>", "hi", "there"])
    >>> pad_ids(context_ids(vocab, ["hi there hi"], cap=2), padded_length(2, 160), 2).shape
    (2, 16)
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
from tqdm import tqdm

from chatbot.vocab import Vocab

LENGTH_BUCKETS = (16, 32, 64, 128)


def padded_length(n: int, cap: int) -> int:
    """The smallest bucket length >= n, at most ``cap``.

    Example:
        >>> padded_length(20, 160), padded_length(150, 160)
        (32, 160)
    """
    for bucket in LENGTH_BUCKETS:
        if n <= bucket and bucket < cap:
            return bucket
    return cap


def padded_batch(n: int) -> int:
    """The next power of two >= n, so micro-batches of any size reuse a few shapes."""
    return 1 << max(0, (n - 1).bit_length())


def padded_shapes(max_batch: int, cap: int) -> set[tuple[int, int]]:
    """Every ``(rows, tokens)`` shape a call of up to ``max_batch`` texts is padded to.

    Example:
        >>> sorted(padded_shapes(2, 20))
        [(1, 16), (1, 20), (2, 16), (2, 20)]
    """
    rows = {padded_batch(n) for n in range(1, max_batch + 1)}
    lengths = {padded_length(n, cap) for n in (*LENGTH_BUCKETS, cap)}
    return {(r, n) for r in rows for n in lengths}


def pad_ids(id_rows: Sequence[np.ndarray], length: int, rows: int | None = None) -> np.ndarray:
    """Right-padded int32 matrix of shape (rows or len(id_rows), length)."""
    out = np.zeros((rows or len(id_rows), length), dtype=np.int32)
    for i, ids in enumerate(id_rows):
        out[i, : len(ids)] = ids[:length]
    return out


def context_ids(vocab: Vocab, texts: Sequence[str], cap: int) -> list[np.ndarray]:
    """Token ids of normalised contexts, keeping the last ``cap`` tokens (the latest turns)."""
    return [vocab.encode(t.split(), cap, keep="last") for t in texts]


def response_ids(vocab: Vocab, texts: Sequence[str], cap: int) -> list[np.ndarray]:
    """Token ids of normalised responses, keeping the first ``cap`` tokens."""
    return [vocab.encode(t.split(), cap, keep="first") for t in texts]


def encode_padded(
    ids: Sequence[np.ndarray],
    cap: int,
    batch_size: int,
    run: Callable[[np.ndarray], np.ndarray],
    dim: int,
    progress: bool = False,
) -> np.ndarray:
    """``run`` over padded batches of at most ``batch_size`` rows of ``ids`` (each padded to a
    bucket length up to ``cap`` and a power-of-two row count): float32 ``(len(ids), dim)``,
    in the order of ``ids``. Rows are batched shortest first, so padding stays small.

    Example:
        >>> rows = [np.array([2, 3]), np.array([4])]
        >>> encode_padded(rows, 8, 64, lambda batch: batch[:, :2].astype(np.float32), 2)
        array([[2., 3.],
               [4., 0.]], dtype=float32)
    """
    out = np.zeros((len(ids), dim), dtype=np.float32)
    order = np.argsort([len(x) for x in ids], kind="stable")
    starts = range(0, len(ids), batch_size)
    for start in tqdm(starts, desc="encoding", unit="batch", disable=not progress):
        chunk = order[start : start + batch_size]
        rows = [ids[i] for i in chunk]
        length = padded_length(max(1, *(len(r) for r in rows)), cap)
        out[chunk] = run(pad_ids(rows, length, padded_batch(len(rows))))[: len(rows)]
    return out
