"""Top-k inner-product search over pre-encoded response vectors: one interface, several backends.

* ``exact``: a TensorFlow matrix product plus ``top_k``. With a GPU the vectors stay resident
  on the device; on a CPU the product is XLA-compiled. Exact search reads every vector per
  query batch, so its cost is bounded by memory bandwidth: batching queries (the service's
  micro-batching) turns many matrix-vector products into one matrix-matrix product.
* ``numpy``: the same on numpy's BLAS, the portable reference.
* ``faiss-flat`` / ``faiss-ivf`` / ``faiss-hnsw``: faiss indexes, for repositories too large
  for exact search (IVF and HNSW are approximate).

Example:
    >>> backend = make_backend("numpy", np.eye(3, dtype="float32"))
    >>> backend.search(np.array([[0, 1, 0]], "float32"), k=1)[1].tolist()
    [[1]]
"""

from __future__ import annotations

import math
from typing import Protocol

import numpy as np

BACKENDS = ("exact", "numpy", "faiss-flat", "faiss-ivf", "faiss-hnsw")


class SearchBackend(Protocol):
    """Finds the k vectors with the largest inner product for each query."""

    name: str

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Scores and row ids, both (n_queries, k), best first."""
        ...


class TensorFlowSearch:
    """Exact search with TensorFlow, on the GPU when there is one."""

    name = "exact"

    def __init__(self, vectors: np.ndarray) -> None:
        import tensorflow as tf

        self._tf = tf
        gpus = tf.config.list_physical_devices("GPU")
        self.device = "/GPU:0" if gpus else "/CPU:0"
        with tf.device(self.device):
            self._vectors = tf.constant(vectors, dtype=tf.float32)
        self._k_fns: dict[int, object] = {}

    def _fn(self, k: int):
        if k not in self._k_fns:
            tf = self._tf
            vectors = self._vectors

            # One compiled function per k; queries vary only in batch size.
            @tf.function(
                input_signature=[tf.TensorSpec((None, vectors.shape[1]), tf.float32)],
                jit_compile=self.device == "/CPU:0",
            )
            def top_k(queries):
                scores = tf.matmul(queries, vectors, transpose_b=True)
                return tf.math.top_k(scores, k=k)

            self._k_fns[k] = top_k
        return self._k_fns[k]

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        k = min(k, int(self._vectors.shape[0]))
        with self._tf.device(self.device):
            result = self._fn(k)(self._tf.constant(queries, dtype=self._tf.float32))
        return result.values.numpy(), result.indices.numpy().astype(np.int64)


class NumpySearch:
    """Exact search with numpy: a BLAS product, then a partial sort of each row."""

    name = "numpy"

    def __init__(self, vectors: np.ndarray) -> None:
        self._vectors = np.ascontiguousarray(vectors, dtype=np.float32)

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        scores = np.asarray(queries, dtype=np.float32) @ self._vectors.T
        return top_k_rows(scores, k)


def top_k_rows(scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The k best columns of each row, best first: (scores, ids)."""
    k = min(k, scores.shape[1])
    part = np.argpartition(-scores, k - 1, axis=1)[:, :k]
    part_scores = np.take_along_axis(scores, part, axis=1)
    order = np.argsort(-part_scores, axis=1, kind="stable")
    return np.take_along_axis(part_scores, order, axis=1), np.take_along_axis(part, order, axis=1)


class FaissSearch:
    """A faiss inner-product index: ``flat`` (exact), ``ivf`` or ``hnsw`` (approximate).

    Args:
        vectors: (n, d) float32.
        kind: ``flat``, ``ivf`` or ``hnsw``.
        nprobe: IVF lists visited per query (recall vs speed).
    """

    def __init__(self, vectors: np.ndarray, kind: str = "flat", nprobe: int = 16) -> None:
        import faiss

        self.name = f"faiss-{kind}"
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        n, dim = vectors.shape
        # faiss hands batches of 20+ queries to its bundled BLAS, which was erratic on 2
        # cores (docs/facts): keep its own kernel for the micro-batch sizes we use.
        faiss.cvar.distance_compute_blas_threshold = 1024
        if kind == "flat":
            index = faiss.IndexFlatIP(dim)
        elif kind == "ivf":
            nlist = max(1, min(int(4 * math.sqrt(n)), n // 39 or 1))
            index = faiss.IndexIVFFlat(
                faiss.IndexFlatIP(dim), dim, nlist, faiss.METRIC_INNER_PRODUCT
            )
            index.train(vectors)
            index.nprobe = min(nprobe, nlist)
        elif kind == "hnsw":
            index = faiss.IndexHNSWFlat(dim, 32, faiss.METRIC_INNER_PRODUCT)
            index.hnsw.efSearch = 128
        else:
            raise ValueError(f"unknown faiss index kind {kind!r}; expected flat, ivf or hnsw")
        index.add(vectors)
        self.index = index

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        k = min(k, self.index.ntotal)
        scores, ids = self.index.search(np.ascontiguousarray(queries, dtype=np.float32), k)
        return scores, ids.astype(np.int64)


def make_backend(name: str, vectors: np.ndarray) -> SearchBackend:
    """The search backend called ``name`` (one of :data:`BACKENDS`) over ``vectors``."""
    if name == "exact":
        return TensorFlowSearch(vectors)
    if name == "numpy":
        return NumpySearch(vectors)
    if name.startswith("faiss-"):
        return FaissSearch(vectors, kind=name.removeprefix("faiss-"))
    raise ValueError(f"unknown search backend {name!r}; expected one of {BACKENDS}")
