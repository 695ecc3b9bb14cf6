"""The inverted index behind lexical search: exact when nothing is cut, exact scores always."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from chatbot.postings import Postings, _best_first


def _rows(n: int, words: int, density: float, seed: int) -> sp.csr_matrix:
    rng = np.random.default_rng(seed)
    rows = sp.random(n, words, density=density, random_state=rng, dtype=np.float32).tocsr()
    norms = np.sqrt(np.asarray(rows.multiply(rows).sum(axis=1))).ravel()
    norms[norms == 0] = 1
    return sp.csr_matrix(sp.diags(1 / norms) @ rows, dtype=np.float32)


def _brute(query: sp.csr_matrix, rows: sp.csr_matrix, n: int) -> tuple[np.ndarray, np.ndarray]:
    scores = (rows @ query.T).toarray().ravel()
    hit = np.flatnonzero(scores > 0)
    order = np.lexsort((hit, -scores[hit]))[:n]
    return hit[order], scores[hit][order]


def test_postings_hold_each_words_responses_heaviest_first() -> None:
    rows = _rows(300, 40, 0.1, seed=1)
    postings = Postings.from_rows(rows)
    by_word = rows.tocsc()
    for word in range(rows.shape[1]):
        span = slice(postings.indptr[word], postings.indptr[word + 1])
        weights, ids = postings.weights[span], postings.ids[span]
        assert np.all(np.diff(weights) <= 0)
        column = by_word[:, word].toarray().ravel()
        assert sorted(ids.tolist()) == np.flatnonzero(column).tolist()
        np.testing.assert_allclose(weights, column[ids])


@pytest.mark.parametrize("seed", range(5))
def test_reading_every_posting_gives_the_exact_top_n(seed: int) -> None:
    rows = _rows(500, 60, 0.08, seed)
    postings = Postings.from_rows(rows)
    queries = _rows(10, 60, 0.15, seed + 100)
    for query in queries:
        ids, cosines = postings.top(query, rows, 20, max_postings=10_000, rescore=10_000)
        want_ids, want = _brute(query, rows, 20)
        assert ids.tolist() == want_ids.tolist()
        np.testing.assert_allclose(cosines, want, rtol=1e-5)


def test_cut_postings_still_return_exact_cosines_best_first() -> None:
    rows = _rows(2000, 30, 0.2, seed=7)  # every word in ~400 responses
    postings = Postings.from_rows(rows)
    query = _rows(1, 30, 0.3, seed=8)
    ids, cosines = postings.top(query, rows, 10, max_postings=50, full_read_share=0)
    exact = (rows @ query.T).toarray().ravel()
    np.testing.assert_allclose(cosines, exact[ids], rtol=1e-5)
    assert np.all(np.diff(cosines) <= 0) and len(set(ids.tolist())) == len(ids)
    # What the cut loses is bounded: no response beats the 10th by more than the postings
    # left unread could have added (q_t x the weight at each word's cut).
    cut_weight = np.array(
        [
            postings.weights[min(postings.indptr[w] + 49, postings.indptr[w + 1] - 1)]
            for w in query.indices
        ]
    )
    bound = float(query.data @ cut_weight)
    missed = np.setdiff1d(np.flatnonzero(exact > cosines[-1]), ids)
    assert np.all(exact[missed] <= cosines[-1] + bound + 1e-6)


def test_a_word_in_few_responses_is_read_whole_whatever_its_share() -> None:
    # Response 0 is long: its weight for each word is low, below the heaviest postings of
    # every word. A query of many words gives each a share of a few postings only.
    rng = np.random.default_rng(3)
    dense = np.zeros((4000, 64), dtype=np.float32)
    for r in range(1, 4000):  # short responses: two heavy words each (~125 a word)
        dense[r, rng.choice(64, size=2, replace=False)] = 1.0
    dense[0] = 1.0  # every word, lightly
    rows = sp.csr_matrix(dense / np.linalg.norm(dense, axis=1, keepdims=True))
    postings = Postings.from_rows(rows)
    query = sp.csr_matrix(np.full((1, 64), 1 / 8, dtype=np.float32))  # 64 words, q_t² = 1/64
    want_ids, _ = _brute(query, rows, 1)
    assert want_ids.tolist() == [0]  # the long response shares every word: cosine 1
    # Each word's share is MIN_SHARE (64) postings, the heaviest: never the long response's.
    cut, _ = postings.top(query, rows, 1, budget=64, rescore=4, full_read_share=0)
    whole, cosines = postings.top(query, rows, 1, budget=64, rescore=4, full_read_share=0.05)
    assert cut.tolist() != [0]
    assert whole.tolist() == [0] and cosines[0] == pytest.approx(1.0, abs=1e-5)


def test_ties_are_broken_by_response_id() -> None:
    rows = sp.csr_matrix(np.array([[1.0, 0], [1.0, 0], [0, 1.0], [1.0, 0]], dtype=np.float32))
    ids, _ = Postings.from_rows(rows).top(sp.csr_matrix([[1.0, 0.0]], dtype=np.float32), rows, 3)
    assert ids.tolist() == [0, 1, 3]


def test_a_query_sharing_no_word_finds_nothing_and_a_foreign_word_is_refused() -> None:
    rows = sp.csr_matrix(np.array([[1.0, 0, 0], [0, 1.0, 0]], dtype=np.float32))
    postings = Postings.from_rows(rows)
    ids, cosines = postings.top(sp.csr_matrix([[0, 0, 1.0]], dtype=np.float32), rows, 5)
    assert ids.size == 0 and cosines.size == 0
    with pytest.raises(ValueError, match="word 3"):
        postings.top(sp.csr_matrix([[0, 0, 0, 1.0]], dtype=np.float32), rows, 5)


def test_saved_postings_load_memory_mapped_and_answer_the_same(tmp_path) -> None:
    rows = _rows(200, 25, 0.2, seed=3)
    postings = Postings.from_rows(rows)
    names = postings.save(tmp_path)
    loaded = Postings.load(tmp_path)
    assert len(names) == 3 and isinstance(loaded.ids.base, np.memmap)  # pages of the file
    query = _rows(1, 25, 0.3, seed=4)
    for got, want in zip(loaded.top(query, rows, 7), postings.top(query, rows, 7), strict=True):
        np.testing.assert_array_equal(got, want)


def test_tied_partial_sums_still_give_exactly_the_candidates_asked_for() -> None:
    # Every response has word 0 at the same weight: all partial sums tie at the cut.
    rows = sp.csr_matrix(np.tile(np.array([[0.6, 0.8]], dtype=np.float32), (50, 1)))
    postings = Postings.from_rows(rows)
    query = sp.csr_matrix(np.array([[1.0, 0.0]], dtype=np.float32))
    ids, cosines = postings.top(query, rows, 5, rescore=7)
    assert len(ids) == len(set(ids.tolist())) == 5
    np.testing.assert_allclose(cosines, 0.6, rtol=1e-6)


def test_responses_far_apart_in_a_large_repository_are_summed_apart() -> None:
    # A million rows, a few of them used: ids that share low bits must not share a sum.
    n, used = 1_000_003, np.array([0, 1 << 10, 1 << 16, 1 << 19, 999_999, 1_000_002])
    data = np.array([[1.0, 0.0], [0.0, 1.0], [0.6, 0.8], [0.8, 0.6], [1.0, 0.0], [0.0, 1.0]])
    rows = sp.csr_matrix(
        (data.ravel(), (np.repeat(used, 2), np.tile([0, 1], len(used)))), shape=(n, 2)
    ).astype(np.float32)
    rows.eliminate_zeros()
    postings = Postings.from_rows(rows)
    query = sp.csr_matrix(np.array([[0.6, 0.8]], dtype=np.float32))
    ids, cosines = postings.top(query, rows, 6)
    want_ids, want = _brute(query, rows, 6)
    assert ids.tolist() == want_ids.tolist()
    np.testing.assert_allclose(cosines, want, rtol=1e-5)


def test_only_candidates_that_can_still_reach_the_best_are_re_scored() -> None:
    from chatbot.postings_kernel import top_candidates

    # One word, five responses, read whole: the partial sums are the cosines.
    ids = np.array([4, 3, 2, 1, 0], dtype=np.int32)
    weights = np.array([0.9, 0.8, 0.5, 0.2, 0.1], dtype=np.float32)
    rows = sp.csr_matrix(weights[::-1].reshape(-1, 1))  # response r's weight, by id

    def rescored(slack: float) -> list[int]:
        found, cosines = top_candidates(
            ids, weights, np.array([0]), np.array([5]), np.array([1.0], np.float32),
            np.array([0]), 2, slack, 5, rows.indptr, rows.indices, rows.data, 1,
        )  # fmt: skip
        np.testing.assert_allclose(cosines, rows.toarray()[found, 0], rtol=1e-6)
        return sorted(found.tolist())

    assert rescored(0.0) == [3, 4]  # nothing unread: the 2 best are all there is to re-score
    assert rescored(0.35) == [2, 3, 4]  # 0.5 + 0.35 could still pass the 2nd best (0.8)
    assert rescored(10.0) == [0, 1, 2, 3, 4]  # anything could: up to keep (5)


@pytest.mark.parametrize("seed", range(3))
def test_best_first_is_the_head_of_a_full_sort_ties_by_id(seed: int) -> None:
    """The partition-then-sort selection returns exactly the first n of a lexsort of all
    candidates, with many tied cosines at the cut."""
    rng = np.random.default_rng(seed)
    for _ in range(300):
        m, n = int(rng.integers(0, 800)), int(rng.integers(0, 300))
        ids = rng.permutation(10_000)[:m]
        cosines = np.round(rng.random(m), int(rng.integers(1, 3))).astype(np.float32)
        expected = np.lexsort((ids, -cosines))[:n]
        assert np.array_equal(_best_first(ids, cosines, n), expected)
