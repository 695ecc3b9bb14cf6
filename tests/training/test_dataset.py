"""The training input pipeline: a pass's encoded examples kept for the next passes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import training.dataset as dataset
from training.dataset import InputOptions, build_vocab, train_dataset
from training.presets import PRESETS
from training.sources.udc_csv import TRAIN_HEADER, read_train_rows, write_csv
from training.synthetic import write_synthetic_udc

CONFIG = PRESETS["tiny"][0]


@pytest.fixture(scope="module")
def train_csv(tmp_path_factory) -> Path:
    """Positive rows with two hard negatives each, so that every pass draws one of two."""
    folder = tmp_path_factory.mktemp("data")
    rows = []
    for row in read_train_rows(write_synthetic_udc(folder / "syn", 400, 20, 1) / "train.csv"):
        if row.label == 1:
            turns = row.context.split(" __eot__")
            rows.append((row.context, row.response, 1))
            rows.append((row.context, turns[-2] + " __eou__", 0))
            rows.append((row.context, turns[0] + " __eou__", 0))
    write_csv(folder / "train.csv", TRAIN_HEADER, rows, progress=False)
    return folder / "train.csv"


def batches(path: Path, cache_bytes: int, n: int) -> list[list[np.ndarray]]:
    options = InputOptions(
        batch_size=16,
        shuffle_buffer=64,
        positives_only=True,
        hard_negatives=True,
        cache_bytes=cache_bytes,
    )
    iterator = iter(train_dataset(path, build_vocab(path, CONFIG), CONFIG, options))
    return [
        [np.asarray(a) for a in (*inputs, labels)]
        for inputs, labels in (next(iterator) for _ in range(n))
    ]


def count_reads(monkeypatch) -> list[int]:
    """How many passes read the training file, from here on."""
    reads = [0]
    real = dataset.read_train_rows

    def counted(path, bad=None):
        reads[0] += 1
        return real(path, bad)

    monkeypatch.setattr(dataset, "read_train_rows", counted)
    return reads


@pytest.mark.parametrize("cache_bytes", [dataset.EPOCH_CACHE_BYTES, 2_000], ids=["fits", "too-big"])
def test_passes_from_memory_give_the_batches_the_file_gives(train_csv, monkeypatch, cache_bytes):
    # About 13 passes over ~200 examples: later passes from memory, or, past the budget,
    # from the file again; the batches are the same either way.
    streamed = batches(train_csv, 0, 160)
    reads = count_reads(monkeypatch)
    cached = batches(train_csv, cache_bytes, 160)
    assert len(streamed) == len(cached) == 160
    for a, b in zip(streamed, cached, strict=True):
        for x, y in zip(a, b, strict=True):
            np.testing.assert_array_equal(x, y)
    # 1 read for the vocabulary, 1 for the hard-negative table, then 1 per pass that
    # streamed: the first only when the examples fit.
    if cache_bytes == dataset.EPOCH_CACHE_BYTES:
        assert reads[0] == 3
    else:
        assert reads[0] > 10


def test_a_pass_that_stops_early_is_not_kept():
    cache = dataset._EpochCache(budget=10_000)
    stream = lambda: iter([(np.ones(2, np.int32),), (np.zeros(2, np.int32),)])  # noqa: E731
    first = cache.examples(stream)
    next(first)
    first.close()  # the pipeline was torn down mid-pass
    assert not cache.complete
    assert [e[0].tolist() for e in cache.examples(stream)] == [[1, 1], [0, 0]]
    assert cache.complete


def synthetic_examples(n: int, seed: int = 0) -> list[tuple]:
    rng = np.random.default_rng(seed)
    return [
        (
            np.arange(1, 1 + rng.integers(1, 70), dtype=np.int32),
            np.full(rng.integers(1, 40), i + 1, np.int32),
            np.float32(1),
        )
        for i in range(n)
    ]


def test_batches_hold_one_length_bucket_padded_to_their_longest():
    examples = synthetic_examples(300)
    options = InputOptions(batch_size=8, shuffle_buffer=32, seed=1)
    batches_ = dataset._batches(lambda: iter(examples), options, (None, None, None))
    for _ in range(60):
        contexts, responses, labels = next(batches_)
        lengths = (contexts > 0).sum(axis=1)
        buckets = {dataset._bucket(int(n), dataset.CONTEXT_BOUNDARIES) for n in lengths}
        assert len(buckets) == 1 and contexts.shape == (8, lengths.max())
        response_lengths = (responses > 0).sum(axis=1)
        assert (
            len({dataset._bucket(int(n), dataset.RESPONSE_BOUNDARIES) for n in response_lengths})
            == 1
        )
        assert responses.shape[1] == response_lengths.max()
        assert labels.dtype == np.float32 and labels.shape == (8,)


def test_every_example_is_served_once_a_pass_without_bucketing():
    examples = synthetic_examples(10)
    options = InputOptions(batch_size=5, shuffle_buffer=1, bucketing=False)
    batches_ = dataset._batches(lambda: iter(examples), options, (80, 40, None))
    served = [next(batches_) for _ in range(4)]  # two passes
    assert all(b[0].shape == (5, 80) and b[1].shape == (5, 40) for b in served)
    ids = sorted(int(r[0]) for b in served for r in b[1])
    assert ids == sorted(2 * list(range(1, 11)))


def test_an_empty_file_gives_no_batches():
    options = InputOptions(batch_size=2, shuffle_buffer=1)
    assert list(dataset._batches(lambda: iter([]), options, (None, None, None))) == []


def test_a_pass_too_large_to_keep_is_found_out_early():
    # 10 % of the files read and 1,000 bytes kept: the whole pass would take about
    # 10,000 bytes, over the budget, so nothing more is kept from here on.
    progress = dataset._PassProgress(total=1_000, read=100)
    cache = dataset._EpochCache(budget=5_000, progress=progress)
    example = (np.ones(150, np.int32),)  # 600 bytes + 400 of overhead
    stream = lambda: iter([example] * 3)  # noqa: E731
    assert len(list(cache.examples(stream))) == 3
    assert cache._rows is None and not cache.complete and cache.budget == 0
