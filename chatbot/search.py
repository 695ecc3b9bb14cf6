"""Top-k inner-product search over pre-encoded response vectors: one interface, several backends.

* ``exact``: a TensorFlow matrix product plus top-k. With a GPU the vectors stay resident
  on the device; on a CPU the product is XLA-compiled. Exact search reads every vector per
  query batch, so its cost is bounded by memory bandwidth: batching queries (the service's
  micro-batching) turns many matrix-vector products into one matrix-matrix product. On a CPU,
  repositories of more than :data:`FLOAT16_MIN_VALUES` numbers are stored as float16, which
  halves the bytes read per query (1M x 256, one query, 2 busy cores: 46 ms instead of
  147 ms, see bench/ranking.py); results are exact up to that rounding.
* ``numpy``: the same on numpy's BLAS, the portable reference.
* ``faiss-flat`` / ``faiss-ivf`` / ``faiss-hnsw``: faiss indexes, for repositories too large
  for exact search (IVF and HNSW are approximate).

Example:
    >>> backend = make_backend("numpy", np.eye(3, dtype="float32"))
    >>> backend.search(np.array([[0, 1, 0]], "float32"), k=1)[1].tolist()
    [[1]]
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Protocol

import numpy as np

from chatbot.ann import ivf_cells

# "auto": on a CPU, the index's stored approximate index when it has one (chatbot.ann); else
# (a GPU, or no stored index) "exact".
BACKENDS = ("auto", "exact", "numpy", "faiss-flat", "faiss-ivf", "faiss-hnsw")

# Above this many numbers (n x d; 2^22 = 16 MiB of float32) the CPU ``exact`` backend stores
# the vectors as float16: the product is then bound by memory bandwidth, not arithmetic.
FLOAT16_MIN_VALUES = 1 << 22

# top_k_rows selects by threshold (see _top_k_by_threshold) in rows at least this wide.
_THRESHOLD_MIN_WIDTH = 1 << 16


class SearchBackend(Protocol):
    """Finds the k vectors with the largest inner product for each query."""

    name: str

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Scores and row ids, both (n_queries, k), best first."""
        ...


class TensorFlowSearch:
    """Exact search with TensorFlow, on the GPU when there is one.

    On a GPU the vectors are held as float32 and ``top_k`` runs on the device. On a CPU the
    product is XLA-compiled and the k best are picked with numpy (:func:`top_k_rows`, several
    times faster than ``tf.math.top_k`` over wide rows).

    With float16 storage (CPU only) the vectors are kept in blocks of ``block_rows`` rows and
    an XLA loop converts one block at a time to float32 and multiplies it with the queries:
    each block's float32 copy stays in cache, so every query batch reads 2 bytes per number
    from memory, and the product itself is float32 (XLA's own float16 product is fast for one
    query but several times slower than float32 for two or more). Batches of up to 8 queries
    and larger ones use two compiled variants. The vectors are scaled by their largest norm
    before rounding, so that float16 neither overflows nor loses small values; scores are
    scaled back in float32.

    Args:
        vectors: (n, d) response vectors.
        precision: ``float32``, ``float16``, or ``auto``: float16 on a CPU when the repository
            holds more than :data:`FLOAT16_MIN_VALUES` numbers, else float32.
        block_rows: rows per block of the float16 loop.
    """

    name = "exact"

    def __init__(
        self, vectors: np.ndarray, precision: str = "auto", block_rows: int = 4096
    ) -> None:
        import tensorflow as tf

        if precision not in ("auto", "float32", "float16"):
            raise ValueError(f"precision must be auto, float32 or float16, not {precision!r}")
        self._tf = tf
        gpus = tf.config.list_physical_devices("GPU")
        self.device = "/GPU:0" if gpus else "/CPU:0"
        if precision == "auto":
            large = vectors.size > FLOAT16_MIN_VALUES
            precision = "float16" if large and not gpus else "float32"
        if precision == "float16" and gpus:
            raise ValueError("float16 storage is implemented for the CPU only")
        self.precision = precision
        self._n, dim = vectors.shape
        self._scale = np.float32(1.0)
        self._tail = None
        n_full = self._n // block_rows
        if precision == "float16" and vectors.dtype == np.float16 and n_full:
            # Stored float16 (an index's vectors.f16.npy, memory-mapped): TensorFlow reads the
            # full blocks where they lie, shared with every process mapping the same file;
            # only the last, partial block is copied (padded with zeros).
            full = vectors[: n_full * block_rows].reshape(n_full, block_rows, dim)
            stored = _zero_copy(tf, full)
            rest = self._n - n_full * block_rows
            if rest:
                tail = np.zeros((block_rows, dim), dtype=np.float16)
                tail[:rest] = vectors[n_full * block_rows :]
                with tf.device(self.device):
                    self._tail = tf.constant(tail)
        elif precision == "float16":
            vectors = np.asarray(vectors, dtype=np.float32)
            largest = float(np.linalg.norm(vectors, axis=1).max()) if self._n else 0.0
            self._scale = np.float32(largest if largest > 0 else 1.0)
            n_blocks = max(1, -(-self._n // block_rows))
            blocks = np.zeros((n_blocks * block_rows, dim), dtype=np.float16)
            blocks[: self._n] = vectors / self._scale
            stored = blocks.reshape(n_blocks, block_rows, dim)
        else:
            stored = np.asarray(vectors, dtype=np.float32)
        if not isinstance(stored, tf.Tensor):
            with tf.device(self.device):
                stored = tf.constant(stored)
        self._vectors = stored
        self._scores_fn = self._compile_scores()
        self._k_fns: dict[int, object] = {}

    def _compile_scores(self):
        """(queries) -> float32 scores against every vector: one XLA function for all batches."""
        tf, vectors, n = self._tf, self._vectors, self._n
        dim = int(vectors.shape[-1])
        signature = [tf.TensorSpec((None, dim), tf.float32)]

        if self.precision == "float32":

            @tf.function(input_signature=signature, jit_compile=self.device == "/CPU:0")
            def scores(queries):
                return tf.matmul(queries, vectors, transpose_b=True)

            return scores

        n_blocks = int(vectors.shape[0])
        tail = self._tail

        def blocked(few_queries: bool):
            # Eigen multiplies (block x dim)(dim x few) faster than (few x dim)(dim x block)
            # for up to about 8 queries, and the other way round for more (bench/ranking.py).
            @tf.function(input_signature=signature, jit_compile=True)
            def scores(queries):
                def product(block):
                    block = tf.cast(block, tf.float32)
                    if few_queries:
                        return tf.matmul(block, queries, transpose_b=True)  # (rows, queries)
                    return tf.matmul(queries, block, transpose_b=True)  # (queries, rows)

                def body(i, out):
                    return i + 1, out.write(i, product(vectors[i]))

                out = tf.TensorArray(tf.float32, size=n_blocks)
                _, out = tf.while_loop(lambda i, _: i < n_blocks, body, (tf.constant(0), out))
                stacked, n_queries = out.stack(), tf.shape(queries)[0]
                if few_queries:
                    by_query = tf.transpose(tf.reshape(stacked, (-1, n_queries)))
                else:
                    by_query = tf.reshape(tf.transpose(stacked, (1, 0, 2)), (n_queries, -1))
                if tail is not None:  # the rows after the last full block (zero-copy storage)
                    last = product(tail)
                    by_query = tf.concat([by_query, tf.transpose(last) if few_queries else last], 1)
                return by_query[:, :n]  # less the zero rows that pad the last block

            return scores

        few, many = blocked(few_queries=True), blocked(few_queries=False)
        return lambda queries: (few if queries.shape[0] <= 8 else many)(queries)

    def _top_k_fn(self, k: int):
        """GPU only: product and top-k on the device, so only (n, k) results come back."""
        if k not in self._k_fns:
            tf, vectors = self._tf, self._vectors

            @tf.function(input_signature=[tf.TensorSpec((None, vectors.shape[1]), tf.float32)])
            def top_k(queries):
                return tf.math.top_k(tf.matmul(queries, vectors, transpose_b=True), k=k)

            self._k_fns[k] = top_k
        return self._k_fns[k]

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        tf = self._tf
        queries = np.asarray(queries, dtype=np.float32)
        k = min(k, int(self._n))
        if self.device != "/CPU:0":
            with tf.device(self.device):
                result = self._top_k_fn(k)(tf.constant(queries))
            return result.values.numpy(), result.indices.numpy().astype(np.int64)
        n = len(queries)
        padded = np.zeros((padded_query_rows(n), queries.shape[1]), dtype=np.float32)
        padded[:n] = queries
        scores = self._scores_fn(tf.constant(padded)).numpy()[:n]
        values, ids = top_k_rows(scores, k)
        return values * self._scale, ids


def _zero_copy(tf, array: np.ndarray):
    """A CPU tensor over ``array``'s memory (DLPack), or a copy when it cannot be shared."""
    try:
        return tf.experimental.dlpack.from_dlpack(array.__dlpack__())
    except (BufferError, TypeError, ValueError):  # read-only or not aligned: copy it
        with tf.device("/CPU:0"):
            return tf.constant(array)


def padded_query_rows(n: int) -> int:
    """Query rows the ``exact`` CPU search hands to XLA: powers of two up to 8, then multiples
    of 8, so that any batch size meets one of a few compiled shapes.

    Example:
        >>> [padded_query_rows(n) for n in (1, 3, 8, 9, 17)]
        [1, 4, 8, 16, 24]
    """
    return 1 << max(0, (n - 1).bit_length()) if n <= 8 else -(-n // 8) * 8


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
    if scores.shape[1] >= _THRESHOLD_MIN_WIDTH:
        return _top_k_by_threshold(scores, k)
    return _top_k_by_partition(scores, k)


def _top_k_by_partition(scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    part = np.argpartition(-scores, k - 1, axis=1)[:, :k]
    part_scores = np.take_along_axis(scores, part, axis=1)
    order = np.argsort(-part_scores, axis=1, kind="stable")
    return np.take_along_axis(part_scores, order, axis=1), np.take_along_axis(part, order, axis=1)


def _top_k_by_threshold(scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The same result as :func:`_top_k_by_partition`, tens of times faster for wide rows.

    The k-th best of an evenly spaced sample of a row is at most the row's k-th best, so
    every one of the row's k best is >= it: one comparison pass leaves a few thousand
    candidates (about width * k / sample) to partition instead of the whole row.
    """
    rows, width = scores.shape
    sample_size = min(width, max(4096, 64 * k))
    stride = width // sample_size
    sample = scores[:, ::stride][:, :sample_size]
    thresholds = np.partition(sample, sample_size - k, axis=1)[:, sample_size - k]
    values = np.empty((rows, k), dtype=scores.dtype)
    ids = np.empty((rows, k), dtype=np.int64)
    for r in range(rows):
        candidates = np.flatnonzero(scores[r] >= thresholds[r])
        if len(candidates) < k:  # only with NaN scores: fall back to the full partition
            values[r], ids[r] = (a[0] for a in _top_k_by_partition(scores[r : r + 1], k))
            continue
        v, i = _top_k_by_partition(scores[r : r + 1, candidates], k)
        values[r], ids[r] = v[0], candidates[i[0]]
    return values, ids


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
        # cores (docs/performance.md): keep its own kernel for the micro-batch sizes we use.
        faiss.cvar.distance_compute_blas_threshold = 1024
        index: faiss.Index
        if kind == "flat":
            index = faiss.IndexFlatIP(dim)
        elif kind == "ivf":
            nlist = ivf_cells(n)
            ivf = faiss.IndexIVFFlat(faiss.IndexFlatIP(dim), dim, nlist, faiss.METRIC_INNER_PRODUCT)
            ivf.train(vectors)
            ivf.nprobe = min(nprobe, nlist)
            index = ivf
        elif kind == "hnsw":
            hnsw = faiss.IndexHNSWFlat(dim, 32, faiss.METRIC_INNER_PRODUCT)
            hnsw.hnsw.efSearch = 128
            index = hnsw
        else:
            raise ValueError(f"unknown faiss index kind {kind!r}; expected flat, ivf or hnsw")
        index.add(vectors)
        self.index = index

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        k = min(k, self.index.ntotal)
        scores, ids = self.index.search(np.ascontiguousarray(queries, dtype=np.float32), k)
        return scores, ids.astype(np.int64)


def has_gpu() -> bool:
    """Whether TensorFlow sees a GPU (the ``exact`` search then runs there)."""
    import tensorflow as tf

    return bool(tf.config.list_physical_devices("GPU"))


def gpu_device_present() -> bool:
    """Whether an NVIDIA GPU is visible to this process, asked without TensorFlow: a device
    file, unless ``CUDA_VISIBLE_DEVICES`` hides them all."""
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None and visible.strip() in ("", "-1"):
        return False
    return any(Path("/dev").glob("nvidia[0-9]*"))


def stored_precision(backend: str, n_values: int, gpu: bool | None = None) -> str:
    """The precision of the vectors ``backend`` should be handed for ``n_values`` numbers: the
    ``exact`` CPU search reads float16 above :data:`FLOAT16_MIN_VALUES`, the rest float32.
    ``gpu``: whether there is one, when known (else TensorFlow is asked).

    Example:
        >>> stored_precision("numpy", 1 << 30), stored_precision("exact", 10)
        ('float32', 'float32')
    """
    if backend not in ("auto", "exact") or n_values <= FLOAT16_MIN_VALUES:
        return "float32"
    return "float32" if (has_gpu() if gpu is None else gpu) else "float16"


def make_backend(name: str, vectors: np.ndarray) -> SearchBackend:
    """The search backend called ``name`` (one of :data:`BACKENDS`) over ``vectors``."""
    if name in ("exact", "auto"):  # "auto" without a stored approximate index: exact
        return TensorFlowSearch(vectors)
    if name == "numpy":
        return NumpySearch(vectors)
    if name.startswith("faiss-"):
        return FaissSearch(vectors, kind=name.removeprefix("faiss-"))
    raise ValueError(f"unknown search backend {name!r}; expected one of {BACKENDS}")
