"""tf.data input for training: streamed from a UDC-layout CSV, shuffled, length-bucketed.

On a CPU the LSTM runs its step loop over every padded position, so each batch should hold
examples of similar length: examples are grouped by (context length, response length)
bucket and padded only to the longest in their batch. Nothing is loaded whole: rows stream
from the file through a shuffle buffer, so a 1M-row train.csv costs the memory of the buffer.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import tensorflow as tf
from tqdm import tqdm

from chatbot.config import ModelConfig
from chatbot.vocab import Vocab
from training.errors import BadRowCounter
from training.sources.udc_csv import read_train_rows

CONTEXT_BOUNDARIES = (24, 48, 80, 120)  # tokens; the last bucket runs to max_context_tokens
RESPONSE_BOUNDARIES = (12, 24, 48)


@dataclass(frozen=True)
class InputOptions:
    """How training batches are made.

    Args:
        batch_size: examples per batch (per replica under a distribution strategy).
        shuffle_buffer: rows held for shuffling.
        bucketing: group by length; off pads every batch to the maximum lengths.
        positives_only: keep label-1 rows only (in-batch negatives need no labelled negatives).
        seed: shuffling seed.
    """

    batch_size: int = 128
    shuffle_buffer: int = 10_000
    bucketing: bool = True
    positives_only: bool = False
    seed: int = 0


def build_vocab(train_path: Path, config: ModelConfig, bad: BadRowCounter | None = None) -> Vocab:
    """The vocabulary of a training file (contexts and responses), streamed once."""

    def token_lists() -> Iterator[list[str]]:
        rows = read_train_rows(train_path, bad)
        for row in tqdm(rows, desc="vocabulary", unit=" rows", mininterval=2):
            yield row.context.split()
            yield row.response.split()

    return Vocab.build(token_lists(), config.vocab_size, config.min_count)


def _encoded_rows(
    train_path: Path,
    vocab: Vocab,
    config: ModelConfig,
    options: InputOptions,
    shard: tuple[int, int],
    bad: BadRowCounter | None,
) -> Iterator[tuple[np.ndarray, np.ndarray, np.float32]]:
    n_shards, shard_id = shard
    for i, row in enumerate(read_train_rows(train_path, bad)):
        if i % n_shards != shard_id or (options.positives_only and row.label != 1):
            continue
        context = vocab.encode(row.context.split(), config.max_context_tokens, keep="last")
        response = vocab.encode(row.response.split(), config.max_response_tokens, keep="first")
        # An empty side would be a fully masked sequence; give it one unknown token instead.
        yield (
            context if len(context) else np.ones(1, np.int32),
            response if len(response) else np.ones(1, np.int32),
            np.float32(row.label),
        )


def _bucket_key(boundaries: tuple[int, ...], length: tf.Tensor) -> tf.Tensor:
    return tf.reduce_sum(tf.cast(length > tf.constant(boundaries), tf.int64))


def train_dataset(
    train_path: Path,
    vocab: Vocab,
    config: ModelConfig,
    options: InputOptions,
    shard: tuple[int, int] = (1, 0),
    bad: BadRowCounter | None = None,
) -> tf.data.Dataset:
    """Endless batches of ``((context_ids, response_ids), labels)``, right-padded with 0.

    Args:
        train_path: a UDC v2 train-layout CSV.
        vocab: the vocabulary.
        config: lengths to truncate to.
        options: batching, shuffling, bucketing.
        shard: (number of input pipelines, this pipeline's index), for multi-worker training.
        bad: counts skipped rows under ``--skip-bad-rows`` (raises otherwise).
    """
    signature = (
        tf.TensorSpec((None,), tf.int32),
        tf.TensorSpec((None,), tf.int32),
        tf.TensorSpec((), tf.float32),
    )
    ds = tf.data.Dataset.from_generator(
        lambda: _encoded_rows(train_path, vocab, config, options, shard, bad),
        output_signature=signature,
    )
    ds = ds.repeat().shuffle(options.shuffle_buffer, seed=options.seed)
    batch = options.batch_size
    if options.bucketing:
        n_response_buckets = len(RESPONSE_BOUNDARIES) + 1

        def key(c: tf.Tensor, r: tf.Tensor, _: tf.Tensor) -> tf.Tensor:
            ck = _bucket_key(CONTEXT_BOUNDARIES, tf.size(c))
            return ck * n_response_buckets + _bucket_key(RESPONSE_BOUNDARIES, tf.size(r))

        ds = ds.group_by_window(
            key_func=key,
            reduce_func=lambda _, window: window.padded_batch(batch, drop_remainder=True),
            window_size=batch,
        )
    else:
        shapes: tuple[list[int], ...] = (
            [config.max_context_tokens],
            [config.max_response_tokens],
            [],
        )
        ds = ds.padded_batch(batch, padded_shapes=shapes, drop_remainder=True)
    return ds.map(lambda c, r, y: ((c, r), y)).prefetch(tf.data.AUTOTUNE)
