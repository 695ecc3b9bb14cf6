"""chatbot.search against plain numpy references on random data.

The fast paths (threshold selection over wide rows, the blocked float16 XLA loop with its
padded last block and its two batch-size variants, the float16 scaling) are each checked
against ``np.argsort`` over exact float32 scores.
"""

from __future__ import annotations

import numpy as np
import pytest

from chatbot import search as search_module
from chatbot.search import (
    _THRESHOLD_MIN_WIDTH,
    NumpySearch,
    TensorFlowSearch,
    _top_k_by_partition,
    _top_k_by_threshold,
    top_k_rows,
)

WIDE = 70_000  # > _THRESHOLD_MIN_WIDTH: top_k_rows selects by threshold


def reference_top_k(scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The plain answer: a full stable sort of every row."""
    order = np.argsort(-scores, axis=1, kind="stable")[:, : min(k, scores.shape[1])]
    return np.take_along_axis(scores, order, axis=1), order


def assert_valid_top_k(scores: np.ndarray, k: int, values: np.ndarray, ids: np.ndarray) -> None:
    """values are the reference's exactly, and ids point at them (ties may pick any id)."""
    expected_values, _ = reference_top_k(scores, k)
    assert values.shape == ids.shape == expected_values.shape
    assert values.dtype == scores.dtype
    np.testing.assert_array_equal(values, expected_values)
    assert ids.min() >= 0 and ids.max() < scores.shape[1]
    np.testing.assert_array_equal(np.take_along_axis(scores, ids, axis=1), values)
    for row in ids:
        assert len(np.unique(row)) == len(row), "an id is returned twice"


def assert_same_ids_where_untied(
    scores: np.ndarray, k: int, ids: np.ndarray, gap: float | np.ndarray = 0.0
) -> None:
    """ids equal the reference's wherever the reference score is apart from its neighbours.

    Even continuous float32 data has exact ties in rows of thousands (and scores from two
    matrix products differ in their last bits), so only scores more than ``gap`` away from
    the next better and the next worse score pin down their id.
    """
    order = np.argsort(-scores, axis=1, kind="stable")
    ranked = np.take_along_axis(scores, order, axis=1)
    gaps = np.abs(np.diff(ranked, axis=1))
    gap = np.broadcast_to(np.asarray(gap, dtype=np.float64).reshape(-1, 1), (len(scores), 1))
    inf = np.full((len(scores), 1), np.inf)
    apart = (np.hstack([inf, gaps]) > gap) & (np.hstack([gaps, inf]) > gap)
    k = min(k, scores.shape[1])
    apart = apart[:, :k]
    assert apart.mean() > 0.5, "too few untied scores to test"
    np.testing.assert_array_equal(ids[apart], order[:, :k][apart])


def tied_scores(rng: np.random.Generator, shape: tuple[int, int], levels: int) -> np.ndarray:
    return rng.integers(0, levels, size=shape).astype(np.float32)


# --- top-k selection ---------------------------------------------------------------------


def test_wide_rows_take_the_threshold_path():
    assert WIDE >= _THRESHOLD_MIN_WIDTH


@pytest.mark.parametrize("width", [_THRESHOLD_MIN_WIDTH, WIDE, 131_075])
@pytest.mark.parametrize("k", [1, 2, 63, 64, 65, 500, 1000, 5000])
def test_threshold_and_partition_match_reference_on_continuous_scores(width, k):
    rng = np.random.default_rng(width * 7 + k)
    scores = rng.normal(size=(3, width)).astype(np.float32)
    for select in (_top_k_by_threshold, _top_k_by_partition, top_k_rows):
        values, ids = select(scores, k)
        assert_valid_top_k(scores, k, values, ids)
        assert_same_ids_where_untied(scores, k, ids)


@pytest.mark.parametrize("levels", [50, 5000])
def test_threshold_and_partition_match_reference_with_ties(levels):
    rng = np.random.default_rng(levels)
    scores = tied_scores(rng, (3, WIDE), levels)
    # k around the boundaries of the first tie groups of row 0: exactly on a boundary, one
    # short of it, one past it (the k-th best is then tied with columns left out).
    sorted_row = np.sort(scores[0])[::-1]
    boundaries = np.flatnonzero(np.diff(sorted_row) != 0)[:3] + 1
    ks = {1, 2, 100, 500, 5000, 60_000, WIDE}
    for b in boundaries:
        ks |= {int(b) - 1, int(b), int(b) + 1}
    for k in sorted(ks):
        for select in (_top_k_by_threshold, _top_k_by_partition, top_k_rows):
            values, ids = select(scores, k)
            assert_valid_top_k(scores, k, values, ids)


@pytest.mark.parametrize("k", [1, 10, 300, 4000])
def test_threshold_with_the_best_scores_where_the_sample_does_not_look(k):
    """Sorted rows: the best columns are all in the tail, past the evenly spaced sample."""
    rng = np.random.default_rng(k)
    base = rng.normal(size=(4, WIDE)).astype(np.float32)
    scores = np.stack(
        [
            np.sort(base[0]),  # ascending: the k best are the last columns
            np.sort(base[1])[::-1],  # descending: the k best are the first columns
            np.where(np.arange(WIDE) % 17 == 0, np.float32(-1e30), base[2]),  # sampled worst
            np.where(np.arange(WIDE) % 17 == 0, np.float32(1e30), base[3]),  # sampled best
        ]
    ).astype(np.float32)
    for select in (_top_k_by_threshold, top_k_rows):
        values, ids = select(scores, k)
        assert_valid_top_k(scores, k, values, ids)


def test_threshold_with_infinities():
    rng = np.random.default_rng(3)
    scores = rng.normal(size=(2, WIDE)).astype(np.float32)
    scores[0, rng.choice(WIDE, 20, replace=False)] = np.inf
    scores[1, rng.choice(WIDE, 20, replace=False)] = -np.inf
    scores[1, :WIDE:3] = -np.inf
    for k in (5, 20, 25, 1000):
        values, ids = _top_k_by_threshold(scores, k)
        assert_valid_top_k(scores, k, values, ids)


def test_threshold_with_nans():
    """NaN is never a candidate; a row of mostly NaN falls back to the full partition."""
    rng = np.random.default_rng(4)
    scores = rng.normal(size=(2, WIDE)).astype(np.float32)
    scores[0, rng.choice(WIDE, 50, replace=False)] = np.nan
    scores[1, rng.choice(WIDE, WIDE - 30, replace=False)] = np.nan
    for k in (1, 10, 30, 40):
        values, ids = _top_k_by_threshold(scores, k)
        # NaN sorts last, as in the reference; assert_array_equal takes NaN == NaN.
        assert_valid_top_k(scores, k, values, ids)
        assert not np.isnan(values[0]).any()
        assert np.isnan(values[1]).sum() == max(0, k - 30)


@pytest.mark.parametrize("levels", [None, 50, 5000])
@pytest.mark.parametrize("k", [1, 64, 500, 1500, 5000])
def test_threshold_partitions_only_candidates(monkeypatch, levels, k):
    """Without NaN, ties included, no row falls back to partitioning all its columns."""
    rng = np.random.default_rng(k)
    shape = (3, WIDE)
    scores = rng.normal(size=shape).astype(np.float32) if levels is None else None
    scores = tied_scores(rng, shape, levels) if levels else scores
    widths = []

    def partition(part_scores, k):
        widths.append(part_scores.shape[1])
        return _top_k_by_partition(part_scores, k)

    monkeypatch.setattr(search_module, "_top_k_by_partition", partition)
    values, ids = _top_k_by_threshold(scores, k)
    assert_valid_top_k(scores, k, values, ids)
    assert len(widths) == 3
    assert max(widths) <= max(WIDE // 8, 4 * k), widths


@pytest.mark.parametrize("k", [WIDE - 1, WIDE, WIDE + 1, 10 * WIDE])
def test_top_k_rows_clips_k_to_wide_rows(k):
    rng = np.random.default_rng(k)
    for scores in (rng.normal(size=(2, WIDE)).astype(np.float32), tied_scores(rng, (2, WIDE), 50)):
        values, ids = top_k_rows(scores, k)
        assert values.shape == (2, min(k, WIDE))
        assert_valid_top_k(scores, k, values, ids)


@pytest.mark.parametrize("width", [1, 2, 7, 1000, _THRESHOLD_MIN_WIDTH - 1])
@pytest.mark.parametrize("k_of_width", [0.0, 0.5, 1.0, 2.0])
@pytest.mark.parametrize("ties", [False, True])
def test_top_k_rows_on_narrow_rows(width, k_of_width, ties):
    rng = np.random.default_rng(width)
    shape = (4, width)
    scores = tied_scores(rng, shape, 5) if ties else rng.normal(size=shape).astype(np.float32)
    k = max(1, int(width * k_of_width)) + (3 if k_of_width == 2.0 else 0)  # 2.0: k > width
    values, ids = top_k_rows(scores, k)
    assert values.shape == (4, min(k, width))
    assert_valid_top_k(scores, k, values, ids)
    if not ties:
        assert_same_ids_where_untied(scores, k, ids)


def test_top_k_rows_keeps_float64():
    scores = np.random.default_rng(0).normal(size=(2, 300))
    values, ids = top_k_rows(scores, 10)
    assert_valid_top_k(scores, 10, values, ids)


# --- TensorFlowSearch, float16 -----------------------------------------------------------

N, DIM, BLOCK = 10_003, 32, 1024  # the last of 10 blocks holds 787 rows and 237 zeros


@pytest.fixture(scope="module")
def vectors() -> np.ndarray:
    return np.random.default_rng(42).normal(size=(N, DIM)).astype(np.float32)


@pytest.fixture(scope="module")
def float16_search(vectors) -> TensorFlowSearch:
    search = TensorFlowSearch(vectors, precision="float16", block_rows=BLOCK)
    assert search.precision == "float16"
    return search


def float16_error_bound(vectors: np.ndarray, queries: np.ndarray) -> np.ndarray:
    """(queries, n): how far a float16-stored score may be from the exact one.

    Each stored number is ``v / scale`` rounded to float16 (relative error at most 2^-11,
    absolute 2^-25 where subnormal); the product, the scaling and the sum are float32.
    """
    q, v = np.abs(queries.astype(np.float64)), np.abs(vectors.astype(np.float64))
    scale = np.linalg.norm(vectors.astype(np.float64), axis=1).max()
    relative = 2.0**-11 + (vectors.shape[1] + 4) * 2.0**-24
    return 1.05 * (relative * (q @ v.T) + 2.0**-25 * scale * q.sum(axis=1, keepdims=True))


def assert_close_top_k(
    vectors: np.ndarray,
    queries: np.ndarray,
    k: int,
    values: np.ndarray,
    ids: np.ndarray,
    check_overlap: bool = True,
) -> None:
    """A float16 answer: valid ids, scores right to float16 rounding, nearly the exact set.

    ``check_overlap`` off: scores so close together that float16 rounding ties many of
    them, so that only the tolerance checks apply.
    """
    exact = queries.astype(np.float64) @ vectors.astype(np.float64).T
    bound = float16_error_bound(vectors, queries)
    n = len(vectors)
    k = min(k, n)
    assert values.shape == ids.shape == (len(queries), k)
    assert values.dtype == np.float32
    assert ids.min() >= 0 and ids.max() < n, "a padding row (id >= n) was returned"
    expected_values, expected_ids = reference_top_k(exact, k)
    for q in range(len(queries)):
        assert len(np.unique(ids[q])) == k, "an id is returned twice"
        assert np.all(np.diff(values[q]) <= 0), "not best first"
        # Each score is the exact one up to float16 rounding (well within 1% of the largest).
        error = np.abs(values[q] - exact[q, ids[q]])
        assert np.all(error <= bound[q, ids[q]]), f"query {q}: score error {error.max()}"
        assert error.max() <= 1e-2 * np.abs(exact[q]).max()
        # The returned set is the exact top k up to rounding near the cut ...
        tol = bound[q].max()
        np.testing.assert_allclose(values[q], expected_values[q], rtol=0, atol=2 * tol)
        assert exact[q, ids[q]].min() >= expected_values[q, -1] - 2 * tol
        # ... and holds every id whose exact score clearly beats the worst one returned.
        clear = expected_ids[q][expected_values[q] > exact[q, ids[q]].min() + 2 * tol]
        assert np.isin(clear, ids[q]).all()
        if check_overlap:
            overlap = len(np.intersect1d(ids[q], expected_ids[q])) / k
            assert overlap >= (0.98 if k >= 100 else 0.8), f"query {q}: overlap {overlap}"


@pytest.mark.parametrize("n_queries", [1, 3, 8, 9, 20])  # <= 8: the "few" XLA variant
@pytest.mark.parametrize("k", [1, 10, 2000])  # 2000 > BLOCK
def test_float16_matches_exact_scores(float16_search, vectors, n_queries, k):
    queries = np.random.default_rng(n_queries * 10 + k).normal(size=(n_queries, DIM))
    queries = queries.astype(np.float32)
    values, ids = float16_search.search(queries, k)
    assert_close_top_k(vectors, queries, k, values, ids)


@pytest.mark.parametrize("n_queries", [1, 3, 9])
def test_float16_never_returns_the_padding_rows(n_queries):
    """Every score is negative, so the zero rows padding the last block would be the best."""
    rng = np.random.default_rng(n_queries)
    vectors = rng.normal(size=(N, DIM)).astype(np.float32)
    vectors[:, 0] = np.abs(vectors[:, 0]) + 0.5
    search = TensorFlowSearch(vectors, precision="float16", block_rows=BLOCK)
    queries = np.zeros((n_queries, DIM), np.float32)
    queries[:, 0] = -1.0
    queries[1:] += rng.normal(scale=0.01, size=(n_queries - 1, DIM)).astype(np.float32)
    assert (queries @ vectors.T).max() < 0
    for k in (1, 300, 2000):
        values, ids = search.search(queries, k)
        assert_close_top_k(vectors, queries, k, values, ids, check_overlap=False)
        assert values.max() < 0
    # All of them, and more than there are: a permutation of the n real rows.
    for k in (N, N + 500):
        values, ids = search.search(queries, k)
        assert ids.shape == (n_queries, N)
        for row in ids:
            np.testing.assert_array_equal(np.sort(row), np.arange(N))
        assert values.max() < 0


@pytest.mark.parametrize(("n", "block_rows"), [(1000, 1024), (2048, 1024), (5, 4), (1, 8)])
@pytest.mark.parametrize("n_queries", [2, 12])
def test_float16_block_layouts(n, block_rows, n_queries):
    """One short block, an exact multiple of blocks, tiny blocks, a single vector."""
    rng = np.random.default_rng(n + block_rows + n_queries)
    vectors = rng.normal(size=(n, 8)).astype(np.float32)
    vectors[:, 0] = np.abs(vectors[:, 0]) + 1.0
    queries = rng.normal(size=(n_queries, 8)).astype(np.float32)
    queries[0] = 0
    queries[0, 0] = -1.0  # all scores negative: padding zeros would win
    search = TensorFlowSearch(vectors, precision="float16", block_rows=block_rows)
    for k in sorted({1, min(3, n), n, n + 2}):
        values, ids = search.search(queries, k)
        assert_close_top_k(vectors, queries, k, values, ids, check_overlap=False)
        assert_close_top_k(vectors, queries[1:], k, values[1:], ids[1:])


@pytest.mark.parametrize("norm", [1e-6, 1e4, 1e6])
def test_float16_scaling_keeps_large_and_small_vectors(norm):
    """Components of 1e6 overflow float16 (max 65504); of 1e-7, they underflow to zero."""
    rng = np.random.default_rng(int(np.log10(norm)) + 10)
    vectors = rng.normal(size=(3000, 16)).astype(np.float32)
    vectors *= np.float32(norm) / np.linalg.norm(vectors, axis=1).max()
    vectors[:, 0] += np.float32(0.2 * norm)  # all positive, so negative queries see padding
    queries = rng.normal(size=(5, 16)).astype(np.float32)
    queries[0] = 0
    queries[0, 0] = -1.0
    search = TensorFlowSearch(vectors, precision="float16", block_rows=1024)
    for k in (1, 50, 1500):
        values, ids = search.search(queries, k)
        assert np.all(np.isfinite(values))
        assert_close_top_k(vectors, queries, k, values, ids, check_overlap=False)
        assert_close_top_k(vectors, queries[1:], k, values[1:], ids[1:])


def test_float16_error_is_within_rounding_when_all_terms_add_up():
    """Positive vectors and queries: the score is the sum of |terms|, the bound is tight."""
    rng = np.random.default_rng(7)
    vectors = np.abs(rng.normal(size=(3000, 16))).astype(np.float32) * np.float32(300)
    queries = np.abs(rng.normal(size=(4, 16))).astype(np.float32)
    search = TensorFlowSearch(vectors, precision="float16", block_rows=512)
    for k in (1, 100, 3000):
        values, ids = search.search(queries, k)
        assert_close_top_k(vectors, queries, k, values, ids, check_overlap=False)


# --- exact backends ----------------------------------------------------------------------


@pytest.mark.parametrize("n", [N, WIDE])  # WIDE: top_k_rows selects by threshold
@pytest.mark.parametrize("backend", ["tf-float32", "numpy"])
def test_float32_backends_match_reference(n, backend):
    rng = np.random.default_rng(n)
    vectors = rng.normal(size=(n, 16)).astype(np.float32)
    if backend == "numpy":
        search = NumpySearch(vectors)
    else:
        search = TensorFlowSearch(vectors, precision="float32")
        assert search.precision == "float32"
    for n_queries, k in [(1, 1), (3, 20), (9, 1000), (4, n + 7)]:
        queries = rng.normal(size=(n_queries, 16)).astype(np.float32)
        exact = queries @ vectors.T
        values, ids = search.search(queries, k)
        expected_values = reference_top_k(exact, k)[0]
        assert ids.shape == (n_queries, min(k, n))
        for row in ids:
            assert len(np.unique(row)) == len(row)
        if k > n:
            for row in ids:
                np.testing.assert_array_equal(np.sort(row), np.arange(n))
        if backend == "numpy":  # the same product: exactly the reference
            assert_valid_top_k(exact, k, values, ids)
            assert_same_ids_where_untied(exact, k, ids)
        else:  # XLA's product may differ from numpy's in the last bits
            gap = 1e-5 * np.abs(exact).max(axis=1)
            top = min(k, 1000)  # further down, the scores are too dense for that gap
            assert_same_ids_where_untied(exact, top, ids[:, :top], gap=gap)
            np.testing.assert_allclose(values, expected_values, rtol=1e-5, atol=1e-4)
            np.testing.assert_allclose(
                values, np.take_along_axis(exact, ids, axis=1), rtol=1e-5, atol=1e-4
            )
