"""tf.data input for training: streamed from a UDC-layout CSV, shuffled, length-bucketed.

On a CPU the LSTM runs its step loop over every padded position, so each batch should hold
examples of similar length: examples are grouped by (context length, response length)
bucket and padded only to the longest in their batch. Nothing is loaded whole: rows stream
from the file through a shuffle buffer, so a 1M-row train.csv costs the memory of the buffer.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import tensorflow as tf
from tqdm import tqdm

from chatbot.config import ModelConfig
from chatbot.vocab import Vocab
from training.errors import BadRowCounter
from training.sources.udc_csv import TrainRow, read_train_rows

log = logging.getLogger(__name__)

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
        hard_negatives: with ``positives_only``, give each positive row one of the label-0
            responses written for the same context (a hard negative), if it has any: batches
            are then ``((context, response, negative, has_negative), label)``.
        extra: more training files read after the main one (users' votes, exported by
            ``chatbot feedback export``). With ``positives_only`` their label-0 rows are hard
            negatives of their contexts whether or not ``hard_negatives`` is set, and a
            context with no true response anywhere becomes a row of label 0 whose only
            job is to score its negative low (:func:`training.train._losses`).
        seed: shuffling seed.
    """

    batch_size: int = 128
    shuffle_buffer: int = 10_000
    bucketing: bool = True
    positives_only: bool = False
    hard_negatives: bool = False
    extra: tuple[Path, ...] = ()
    seed: int = 0

    @property
    def uses_hard_negatives(self) -> bool:
        return self.positives_only and (self.hard_negatives or bool(self.extra))


def build_vocab(train_path: Path, config: ModelConfig, bad: BadRowCounter | None = None) -> Vocab:
    """The vocabulary of a training file (contexts and responses), streamed once."""

    def token_lists() -> Iterator[list[str]]:
        rows = read_train_rows(train_path, bad)
        for row in tqdm(rows, desc="vocabulary", unit=" rows", mininterval=2):
            yield row.context.split()
            yield row.response.split()

    return Vocab.build(token_lists(), config.vocab_size, config.min_count)


def _nonempty(ids: np.ndarray) -> np.ndarray:
    # An empty side would be a fully masked sequence; give it one unknown token instead.
    return ids if len(ids) else np.ones(1, np.int32)


def _context_key(context: str) -> bytes:
    """A short stable key for a context (a 1M-row file's contexts would not fit as text)."""
    return hashlib.blake2b(context.encode("utf-8"), digest_size=8).digest()


def hard_negative_table(
    train_path: Path | Sequence[Path],
    vocab: Vocab,
    config: ModelConfig,
    bad: BadRowCounter | None = None,
) -> dict[bytes, list[np.ndarray]]:
    """The label-0 responses of a training file by context: the hard negatives a data build
    wrote for it (e.g. a restatement of the context, or another user's question on the topic).

    Example:
        >>> import tempfile
        >>> from chatbot.vocab import Vocab
        >>> from training.sources.udc_csv import TRAIN_HEADER, write_csv
        >>> path = Path(tempfile.mkdtemp()) / "train.csv"
        >>> hi = "hi __eou__ __eot__"
        >>> rows = [(hi, "hello __eou__", 1), (hi, "hi __eou__", 0)]
        >>> _ = write_csv(path, TRAIN_HEADER, rows, progress=False)
        >>> vocab = Vocab(["<pad>", "<unk>", "hi", "hello", "__eou__", "__eot__"])
        >>> table = hard_negative_table(path, vocab, ModelConfig())
        >>> [ids.tolist() for ids in table[_context_key(hi)]]
        [[2, 4]]
    """
    table: dict[bytes, list[np.ndarray]] = {}
    for row in _rows(train_path, bad):
        if row.label == 0:
            ids = vocab.encode(row.response.split(), config.max_response_tokens, keep="first")
            table.setdefault(_context_key(row.context), []).append(_nonempty(ids))
    return table


def _rows(paths: Path | Sequence[Path], bad: BadRowCounter | None) -> Iterator[TrainRow]:
    for path in [paths] if isinstance(paths, Path) else paths:
        yield from read_train_rows(path, bad)


def orphan_contexts(
    extra: Sequence[Path], all_paths: Sequence[Path], bad: BadRowCounter | None = None
) -> set[bytes]:
    """Contexts of the extra files' label-0 rows that have no label-1 row in any file: a
    down-vote on a reply, with no reply known to be right."""
    voted_down = {_context_key(row.context) for row in _rows(extra, bad) if row.label == 0}
    if not voted_down:
        return set()
    for row in _rows(all_paths, bad):
        if row.label == 1:
            voted_down.discard(_context_key(row.context))
    return voted_down


@dataclass(frozen=True)
class _HardNegatives:
    """What hard-negative rows need, read from the files once per input pipeline (not once
    per pass over the data)."""

    table: dict[bytes, list[np.ndarray]]  # context key -> its label-0 responses' ids
    orphans: set[bytes]  # contexts of down-votes with no true response in any file

    @classmethod
    def read(
        cls, train_path: Path, vocab: Vocab, config: ModelConfig, options: InputOptions
    ) -> _HardNegatives:
        paths = [train_path, *options.extra]
        # The main file's label-0 rows count only when hard negatives are asked for.
        table = hard_negative_table(
            paths if options.hard_negatives else list(options.extra), vocab, config
        )
        orphans = orphan_contexts(options.extra, paths)
        log.info(
            "hard negatives for %d contexts (%d with no true response)", len(table), len(orphans)
        )
        return cls(table, orphans)


def _encoded_rows(
    train_path: Path,
    vocab: Vocab,
    config: ModelConfig,
    options: InputOptions,
    shard: tuple[int, int],
    bad: BadRowCounter | None,
    hard: _HardNegatives | None,
) -> Iterator[tuple[np.ndarray | np.float32, ...]]:
    n_shards, shard_id = shard
    rng = np.random.default_rng(options.seed)
    for i, row in enumerate(_rows([train_path, *options.extra], bad)):
        if i % n_shards != shard_id:
            continue
        key = _context_key(row.context) if hard is not None else b""
        orphan = row.label != 1 and hard is not None and key in hard.orphans
        if row.label != 1 and options.positives_only and not orphan:
            continue
        context = vocab.encode(row.context.split(), config.max_context_tokens, keep="last")
        response = vocab.encode(row.response.split(), config.max_response_tokens, keep="first")
        encoded = (_nonempty(context), _nonempty(response))
        if hard is None:
            yield (*encoded, np.float32(row.label))
        elif orphan:  # its own response is the negative, and nothing is right
            yield (encoded[0], np.ones(1, np.int32), encoded[1], np.float32(1), np.float32(0))
        elif found := hard.table.get(key):
            yield (*encoded, found[rng.integers(len(found))], np.float32(1), np.float32(1))
        else:  # a placeholder the loss masks out
            yield (*encoded, np.zeros(1, np.int32), np.float32(0), np.float32(1))


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
    ids, flag = tf.TensorSpec((None,), tf.int32), tf.TensorSpec((), tf.float32)
    hard = options.uses_hard_negatives
    signature = (ids, ids, ids, flag, flag) if hard else (ids, ids, flag)
    negatives = _HardNegatives.read(train_path, vocab, config, options) if hard else None
    ds = tf.data.Dataset.from_generator(
        lambda: _encoded_rows(train_path, vocab, config, options, shard, bad, negatives),
        output_signature=signature,
    )
    ds = ds.repeat().shuffle(options.shuffle_buffer, seed=options.seed)
    batch = options.batch_size
    if options.bucketing:
        n_response_buckets = len(RESPONSE_BOUNDARIES) + 1

        def key(c: tf.Tensor, r: tf.Tensor, *_: tf.Tensor) -> tf.Tensor:
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
            *(([config.max_response_tokens], []) if hard else ()),
            [],
        )
        ds = ds.padded_batch(batch, padded_shapes=shapes, drop_remainder=True)
    if hard:
        return ds.map(lambda c, r, h, has, y: ((c, r, h, has), y)).prefetch(tf.data.AUTOTUNE)
    return ds.map(lambda c, r, y: ((c, r), y)).prefetch(tf.data.AUTOTUNE)
