"""The stored approximate neural index of large repositories (faiss IVF, memory-mapped)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from chatbot.ann import ANN_FILE, REFINE, StoredIvfSearch, build_ivf
from chatbot.artifact import load_artifact
from chatbot.errors import IndexLoadError
from chatbot.index import (
    VECTOR_CODES,
    VECTOR_CODES_MIN_RESPONSES,
    VECTOR_SCALES,
    load_index,
    save_index,
)
from chatbot.ranker import Ranker
from tests.helpers import tiny_artifact


def _clustered(n: int, dim: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((20, dim))
    vectors = centres[rng.integers(0, 20, n)] + 0.1 * rng.standard_normal((n, dim))
    return (vectors / np.linalg.norm(vectors, axis=1, keepdims=True)).astype(np.float32)


def _overlap(found: np.ndarray, exact: np.ndarray) -> float:
    return float(
        np.mean([len(set(a) & set(b)) / len(b) for a, b in zip(found, exact, strict=True)])
    )


def test_the_stored_index_finds_what_exact_search_finds(tmp_path: Path) -> None:
    vectors = _clustered(2000, 16)
    info = build_ivf(vectors.astype(np.float16), tmp_path / ANN_FILE)
    assert info == {"kind": "faiss-ivf-pq4fs", "nlist": 51, "dims_per_code": 2}
    # Every cell, and deep enough into a cluster of ~100 near-ties that 4-bit codes cannot order.
    search = StoredIvfSearch.from_manifest(tmp_path / ANN_FILE, info, vectors, 51, refine=20)
    queries = vectors[:50]
    scores, found = search.search(queries, 10)
    exact = np.argsort(-(queries @ vectors.T), axis=1)[:, :10]
    # 4-bit codes only choose the candidates; their scores are exact, best first.
    assert _overlap(found, exact) >= 0.9
    np.testing.assert_allclose(scores, np.take_along_axis(queries @ vectors.T, found, 1), rtol=1e-5)
    assert np.all(np.diff(scores, axis=1) <= 0)
    assert (found[:, 0] == np.arange(50)).mean() >= 0.95  # a stored vector finds itself
    unrefined = StoredIvfSearch(tmp_path / ANN_FILE, nprobe=info["nlist"])
    assert _overlap(unrefined.search(queries, 10)[1], exact) < _overlap(found, exact)


def test_coarser_codes_re_score_more_candidates_and_still_find_the_exact_best(
    tmp_path: Path,
) -> None:
    vectors = _clustered(2000, 16)
    assert build_ivf(vectors, tmp_path / "fine.faiss")["dims_per_code"] == 2
    coarse = build_ivf(vectors, tmp_path / "coarse.faiss", dims_per_code=4)
    assert coarse["dims_per_code"] == 4
    assert (tmp_path / "coarse.faiss").stat().st_size < (tmp_path / "fine.faiss").stat().st_size
    search = StoredIvfSearch.from_manifest(tmp_path / "coarse.faiss", coarse, vectors, 51)
    assert search.refine == REFINE[4] > REFINE[2]
    # An index written before manifests said how coarse its codes were has 2 dimensions each.
    assert (
        StoredIvfSearch.from_manifest(tmp_path / "fine.faiss", {"nlist": 51}, vectors).refine == 2
    )
    queries = vectors[:50]
    exact = np.argsort(-(queries @ vectors.T), axis=1)[:, :10]
    assert _overlap(search.search(queries, 10)[1], exact) >= 0.8
    with pytest.raises(ValueError, match="dims_per_code"):
        build_ivf(vectors, tmp_path / "odd.faiss", dims_per_code=3)


def test_a_search_asked_for_more_than_its_cells_hold_pads_with_minus_one(tmp_path: Path) -> None:
    vectors = _clustered(2000, 16)
    info = build_ivf(vectors, tmp_path / ANN_FILE)
    search = StoredIvfSearch.from_manifest(tmp_path / ANN_FILE, info, vectors, nprobe=1)
    scores, found = search.search(vectors[:3], 1500)  # one cell holds about 40
    assert found.shape == (3, 1500) and (found == -1).any() and (found >= 0).any()
    assert np.all(np.isneginf(scores[found == -1])) and np.all(np.isfinite(scores[found >= 0]))


def test_an_index_of_the_8_bit_layout_still_serves_with_its_own_scores(tmp_path: Path) -> None:
    import faiss

    vectors = _clustered(2000, 16)
    old = faiss.IndexIVFScalarQuantizer(
        faiss.IndexFlatIP(16), 16, 51, faiss.ScalarQuantizer.QT_8bit, faiss.METRIC_INNER_PRODUCT
    )
    old.train(vectors)
    old.add(vectors)
    faiss.write_index(old, str(tmp_path / ANN_FILE))
    info = {"kind": "faiss-ivf-sq8", "nlist": 51, "nprobe": 51}
    search = StoredIvfSearch.from_manifest(tmp_path / ANN_FILE, info, vectors)
    assert search.refine == 1 and search.nprobe == 51
    exact = np.argsort(-(vectors[:50] @ vectors.T), axis=1)[:, :10]
    assert _overlap(search.search(vectors[:50], 10)[1], exact) >= 0.8


def test_a_large_index_is_served_through_its_stored_ann(tmp_path: Path) -> None:
    artifact = load_artifact(tiny_artifact(tmp_path / "model"))
    texts = [f"hello {i}" for i in range(300)]
    vectors = np.asarray(artifact.encoder().encode_responses([f"{t} __eou__" for t in texts]))
    save_index(tmp_path / "index", vectors, texts, artifact, ann=True)
    index = load_index(tmp_path / "index", artifact)
    assert index.ann_path == tmp_path / "index" / ANN_FILE
    assert index.manifest["ann"]["kind"] == "faiss-ivf-pq4fs"
    ranker = Ranker.load(tmp_path / "model", tmp_path / "index")
    assert ranker.backend.name == "faiss-ivf-stored"
    assert Ranker.load(tmp_path / "model", tmp_path / "index", "exact").backend.name == "exact"
    hits = ranker.respond([["hello there"]], k=3)[0]
    assert len(hits) == 3 and all(hit.text in texts for hit in hits)


def test_serving_from_the_stored_ann_re_scores_from_8_bit_codes(tmp_path: Path) -> None:
    artifact = load_artifact(tiny_artifact(tmp_path / "model"))
    texts = [f"hello {i}" for i in range(300)]
    vectors = np.asarray(artifact.encoder().encode_responses([f"{t} __eou__" for t in texts]))
    save_index(tmp_path / "index", vectors, texts, artifact, ann=True, codes=True)
    index = load_index(tmp_path / "index", artifact)
    assert index.codes is not None and index.rescoring_vectors is index.codes
    assert {VECTOR_CODES, VECTOR_SCALES} <= index.manifest["files"].keys()
    rows = index.codes[np.arange(300)]
    assert np.abs(rows - vectors).max() <= np.abs(vectors).max(axis=1).max() / 254 + 1e-6
    search = Ranker.load(tmp_path / "model", tmp_path / "index").backend
    assert isinstance(search, StoredIvfSearch) and search.vectors is not None
    # The exact search reads the float vectors; below VECTOR_CODES_MIN_RESPONSES no codes.
    assert Ranker.load(tmp_path / "model", tmp_path / "index", "exact").index.codes is not None
    save_index(tmp_path / "small", vectors, texts, artifact, ann=True)
    small = load_index(tmp_path / "small", artifact)
    assert small.codes is None and small.rescoring_vectors is small.vectors
    assert len(texts) < VECTOR_CODES_MIN_RESPONSES


def test_codes_of_another_shape_are_refused(tmp_path: Path) -> None:
    from chatbot.files import sha256_file

    artifact = load_artifact(tiny_artifact(tmp_path / "model"))
    texts = [f"t{i}" for i in range(120)]
    vectors = np.asarray(artifact.encoder().encode_responses([f"{t} __eou__" for t in texts]))
    save_index(tmp_path / "index", vectors, texts, artifact, codes=True)
    codes = tmp_path / "index" / VECTOR_CODES
    np.save(codes, np.zeros((120, 3), dtype=np.int8))
    manifest = json.loads((tmp_path / "index" / "manifest.json").read_text())
    manifest["files"][VECTOR_CODES] = sha256_file(codes)
    (tmp_path / "index" / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(IndexLoadError, match=VECTOR_CODES):
        load_index(tmp_path / "index", artifact)


def test_small_indexes_have_none_and_a_damaged_one_is_refused(tmp_path: Path) -> None:
    artifact = load_artifact(tiny_artifact(tmp_path / "model"))
    vectors = np.asarray(artifact.encoder().encode_responses(["a __eou__", "b __eou__"]))
    save_index(tmp_path / "small", vectors, ["a", "b"], artifact)
    assert load_index(tmp_path / "small", artifact).ann_path is None
    save_index(
        tmp_path / "big",
        np.repeat(vectors, 60, 0),
        [f"t{i}" for i in range(120)],
        artifact,
        ann=True,
    )
    with (tmp_path / "big" / ANN_FILE).open("r+b") as f:
        f.seek(200)
        f.write(b"\x00\x01\x02")
    with pytest.raises(IndexLoadError, match=ANN_FILE):
        load_index(tmp_path / "big", artifact)
