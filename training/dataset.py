"""tf.data input for training: streamed from a UDC-layout CSV, shuffled, length-bucketed.

On a CPU the LSTM runs its step loop over every padded position, so each batch should hold
examples of similar length: examples are grouped by (context length, response length)
bucket and padded only to the longest in their batch. Nothing is loaded whole: rows stream
from the file through a shuffle buffer, so a 1M-row train.csv costs the memory of the buffer.

A pass's encoded examples (token ids, cut to the model's lengths) are kept for the next
passes while they fit in :data:`EPOCH_CACHE_BYTES`. They are a small part of the file (a
chitchat context row holds the whole dialogue so far; the model reads its last 48 tokens),
and parsing and encoding the file again every pass cost about as much CPU as the training
step itself. A file whose examples do not fit streams every pass, as before.
"""

from __future__ import annotations

import bisect
import hashlib
import logging
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import tensorflow as tf
from tqdm import tqdm

from chatbot.config import ModelConfig
from chatbot.token_ids import pad_ids
from chatbot.vocab import Vocab
from training.errors import BadRowCounter
from training.sources.udc_csv import TrainRow, read_train_rows

log = logging.getLogger(__name__)

CONTEXT_BOUNDARIES = (24, 48, 80, 120)  # tokens; the last bucket runs to max_context_tokens
RESPONSE_BOUNDARIES = (12, 24, 48)
# The most memory one input pipeline spends keeping a pass's encoded examples for the next
# passes, counted with the overhead below: 42 MiB for the chitchat preset's 60,000 examples,
# 81 MiB for the Ubuntu preset's 93,149. Past it they are dropped, and every pass streams
# from the file (a 1M-row UDC file's 500,000 examples would take about 450 MiB).
EPOCH_CACHE_BYTES = 256 * 1024 * 1024
_EXAMPLE_OVERHEAD_BYTES = 400  # a tuple of 3-5 NumPy objects, beside their data
# Once this share of the files is read, the first pass's memory is projected to the whole
# pass, so that a file too large to keep is found out early and its memory stays flat.
_PROJECT_AFTER = 0.02

Example = tuple[np.ndarray | np.float32, ...]  # one training example's arrays, as batched


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
        cache_bytes: memory for keeping a pass's encoded examples for the next passes
            (0: every pass streams from the file).
    """

    batch_size: int = 128
    shuffle_buffer: int = 10_000
    bucketing: bool = True
    positives_only: bool = False
    hard_negatives: bool = False
    extra: tuple[Path, ...] = ()
    seed: int = 0
    cache_bytes: int = EPOCH_CACHE_BYTES

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


@dataclass
class _PassProgress:
    """How far a pass over the training files is: the characters of the rows read so far,
    against the files' bytes (text is mostly one byte a character)."""

    total: int
    read: int = 0

    def fraction(self) -> float:
        return self.read / self.total if self.total else 1.0


def _encoded_rows(
    train_path: Path,
    vocab: Vocab,
    config: ModelConfig,
    options: InputOptions,
    shard: tuple[int, int],
    bad: BadRowCounter | None,
    hard: _HardNegatives | None,
    progress: _PassProgress | None = None,
) -> Iterator[Example]:
    n_shards, shard_id = shard
    rng = np.random.default_rng(options.seed)
    if progress is not None:
        progress.read = 0
    for i, row in enumerate(_rows([train_path, *options.extra], bad)):
        if progress is not None:
            progress.read += len(row.context) + len(row.response)
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


class _EpochCache:
    """One input pipeline's encoded examples, kept from its first pass for the later ones
    while they fit in ``budget`` bytes. A pass replays exactly what the file would give:
    the order, and the hard negative drawn for each row (the draw is seeded per pass).

    Example:
        >>> cache = _EpochCache(budget=10_000)
        >>> list(cache.examples(lambda: iter([(np.ones(3, np.int32),)])))[0][0].tolist()
        [1, 1, 1]
        >>> cache.complete, list(cache.examples(lambda: iter([])))[0][0].tolist()
        (True, [1, 1, 1])
    """

    def __init__(
        self, budget: int = EPOCH_CACHE_BYTES, progress: _PassProgress | None = None
    ) -> None:
        self.budget = budget
        self.progress = progress  # how much of the pass is read: projects its memory early
        self.complete = False
        self._rows: list[Example] | None = None
        self._bytes = 0

    def examples(self, stream: Callable[[], Iterator[Example]]) -> Iterator[Example]:
        """One pass: from memory once a whole pass fitted, else from ``stream()``, kept as
        it goes while it still fits."""
        if self.complete and self._rows is not None:
            yield from self._rows
            return
        self._rows, self._bytes = ([] if self.budget > 0 else None), 0
        for example in stream():
            if self._rows is not None:
                self._keep(example)
            yield example
        self.complete = self._rows is not None

    def _keep(self, example: Example) -> None:
        assert self._rows is not None
        self._bytes += _EXAMPLE_OVERHEAD_BYTES + sum(np.asarray(a).nbytes for a in example)
        projected = self._bytes
        if self.progress is not None and self.progress.fraction() >= _PROJECT_AFTER:
            projected = int(self._bytes / self.progress.fraction())
        if projected > self.budget:
            log.info("training examples over %d MiB: every pass streams", self.budget >> 20)
            self.budget = 0  # too large: the memory stays flat instead
            self._rows = None
        else:
            self._rows.append(example)


def _bucket(length: int, boundaries: tuple[int, ...]) -> int:
    """How many boundaries ``length`` is above: 0 for the shortest bucket."""
    return bisect.bisect_left(boundaries, length)


def _padded_batch(examples: Sequence[Example], widths: Sequence[int | None]) -> Example:
    """Examples stacked column by column: token ids right-padded with 0 to ``widths`` (None:
    the longest in the batch), flags as a float32 vector."""
    columns: list[np.ndarray | np.float32] = []
    for column, width in zip(zip(*examples, strict=True), widths, strict=True):
        if isinstance(column[0], np.ndarray):
            columns.append(pad_ids(column, width or max(len(ids) for ids in column)))
        else:
            columns.append(np.asarray(column, np.float32))
    return tuple(columns)


def _batches(
    passes: Callable[[], Iterator[Example]], options: InputOptions, widths: Sequence[int | None]
) -> Iterator[Example]:
    """Endless padded batches from endless passes over the examples: a shuffle buffer, then
    (bucketing) one open batch per (context, response) length bucket, handed out when full.

    This runs in Python, one call into TensorFlow per batch: tf.data's own shuffle and
    bucketing took a tensor conversion per example, which cost as much CPU as the training
    step of a small model.
    """
    rng = np.random.default_rng(options.seed)
    buffer: list[Example] = []
    open_batches: dict[int, list[Example]] = {}
    n_response_buckets = len(RESPONSE_BOUNDARIES) + 1
    while True:
        yielded = False
        for example in passes():
            yielded = True
            buffer.append(example)
            if len(buffer) < options.shuffle_buffer:
                continue
            i = int(rng.integers(len(buffer)))
            buffer[i], buffer[-1] = buffer[-1], buffer[i]
            chosen = buffer.pop()
            key = 0
            if options.bucketing:
                context, response = np.shape(chosen[0])[0], np.shape(chosen[1])[0]
                key = _bucket(context, CONTEXT_BOUNDARIES) * n_response_buckets
                key += _bucket(response, RESPONSE_BOUNDARIES)
            batch = open_batches.setdefault(key, [])
            batch.append(chosen)
            if len(batch) == options.batch_size:
                del open_batches[key]
                yield _padded_batch(batch, widths)
        if not yielded:  # an empty file: no batches, as an empty dataset gives none
            return


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
    ids, flag = tf.TensorSpec((None, None), tf.int32), tf.TensorSpec((None,), tf.float32)
    hard = options.uses_hard_negatives
    signature = (ids, ids, ids, flag, flag) if hard else (ids, ids, flag)
    negatives = _HardNegatives.read(train_path, vocab, config, options) if hard else None
    progress = _PassProgress(sum(p.stat().st_size for p in [train_path, *options.extra]))
    cache = _EpochCache(options.cache_bytes, progress)

    def one_pass() -> Iterator[Example]:
        return cache.examples(
            lambda: _encoded_rows(
                train_path, vocab, config, options, shard, bad, negatives, progress
            )
        )

    # Bucketed batches are padded to their longest example, others to the model's lengths.
    context, response = (
        (None, None)
        if options.bucketing
        else (config.max_context_tokens, config.max_response_tokens)
    )
    widths = (context, response, *((response, None) if hard else ()), None)
    ds = tf.data.Dataset.from_generator(
        lambda: _batches(one_pass, options, widths), output_signature=signature
    )
    if hard:
        return ds.map(lambda c, r, h, has, y: ((c, r, h, has), y)).prefetch(tf.data.AUTOTUNE)
    return ds.map(lambda c, r, y: ((c, r), y)).prefetch(tf.data.AUTOTUNE)
