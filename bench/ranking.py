"""The ranking step alone: top-k inner-product search over a pre-encoded repository.

For N generated 256-d float32 vectors (random normal, normalised; 100k and 1M by default) and
query batches of 1 and 32, measures p50/p99 milliseconds per call and per query of

* every backend of ``chatbot/search.py`` that the service can use: ``exact`` (TensorFlow/XLA;
  on a CPU, float16 storage above 4M numbers), ``exact-f32`` (the same forced to float32),
  ``numpy``, ``faiss-flat``;
* ``before``: the ``exact`` backend as it was before float16 storage (float32 XLA matmul +
  ``tf.math.top_k``), for the change's effect;
* faiss ``IndexFlatIP`` used directly (the baseline of the ratios) and faiss
  ``IndexScalarQuantizer`` fp16.

Recall@k against a float32 brute force is printed for each (1.0 = the same ids).

Goal on 2 cores: at 1M, ``exact`` no slower than faiss flat, and batch-1 p99 + about 10 ms of
context encoding <= 60 ms (docs/performance.md: float32 1M x 256 needs >= 55 ms by memory
bandwidth alone, so this needs float16).

Threads are pinned before numpy/TensorFlow load: OpenBLAS/MKL/OpenMP to ``--threads``
(default 2) with ``OMP_WAIT_POLICY=PASSIVE``, TensorFlow intra-op to ``--threads`` and
inter-op to 1, faiss OpenMP to ``--threads``.

Run: ``.venv/bin/python bench/ranking.py`` (``--sizes 100000 --calls 10`` to shrink).
"""

from __future__ import annotations

import argparse
import os
import sys
import time

THREADS = "2"
for _i, _a in enumerate(sys.argv):  # before numpy is imported: BLAS reads these at load
    if _a == "--threads" and _i + 1 < len(sys.argv):
        THREADS = sys.argv[_i + 1]
    elif _a.startswith("--threads="):
        THREADS = _a.split("=", 1)[1]
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = THREADS
# Idle OpenMP threads sleep instead of spinning: spinning ones steal the 2 cores from
# TensorFlow's pool (faiss flat at 20k went from 32 ms to 8 ms per query with this).
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402


class FaissDirect:
    """faiss used as the docs show it: default settings, nothing tuned."""

    def __init__(self, vectors: np.ndarray, kind: str) -> None:
        import faiss

        dim = vectors.shape[1]
        if kind == "flat":
            self.index = faiss.IndexFlatIP(dim)
        else:
            self.index = faiss.IndexScalarQuantizer(
                dim, faiss.ScalarQuantizer.QT_fp16, faiss.METRIC_INNER_PRODUCT
            )
            self.index.train(vectors)
        self.index.add(vectors)

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        return self.index.search(queries, k)


class BeforeTensorFlow:
    """The ``exact`` backend before float16 storage: float32 XLA matmul + tf.math.top_k."""

    def __init__(self, vectors: np.ndarray) -> None:
        import tensorflow as tf

        self._tf = tf
        self._vectors = tf.constant(vectors, dtype=tf.float32)
        self._fns: dict[int, object] = {}

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        tf = self._tf
        if k not in self._fns:
            vectors = self._vectors

            @tf.function(
                input_signature=[tf.TensorSpec((None, vectors.shape[1]), tf.float32)],
                jit_compile=True,
            )
            def top_k(q):
                return tf.math.top_k(tf.matmul(q, vectors, transpose_b=True), k=k)

            self._fns[k] = top_k
        result = self._fns[k](tf.constant(queries))
        return result.values.numpy(), result.indices.numpy()


def make(name: str, vectors: np.ndarray):
    from chatbot.search import TensorFlowSearch, make_backend

    if name == "faiss IndexFlatIP":
        return FaissDirect(vectors, "flat")
    if name == "faiss SQ fp16":
        return FaissDirect(vectors, "sq-fp16")
    if name == "before":
        return BeforeTensorFlow(vectors)
    if name == "exact-f32":
        return TensorFlowSearch(vectors, precision="float32")
    return make_backend(name, vectors)


def measure(backend, queries: np.ndarray, batch: int, k: int, calls: int, budget_s: float):
    """Per-call seconds of ``calls`` searches (fewer if ``budget_s`` runs out; at least 5)."""
    n_pool = len(queries) // batch
    backend.search(queries[:batch], k)  # compile / warm caches
    backend.search(queries[batch : 2 * batch], k)
    times: list[float] = []
    deadline = time.perf_counter() + budget_s
    while len(times) < calls and (len(times) < 5 or time.perf_counter() < deadline):
        j = len(times) % n_pool
        q = queries[j * batch : (j + 1) * batch]
        start = time.perf_counter()
        backend.search(q, k)
        times.append(time.perf_counter() - start)
    return np.array(times)


def recall(backend, vectors: np.ndarray, queries: np.ndarray, k: int) -> float:
    _, ids = backend.search(queries, k)
    truth = np.argsort(-(queries @ vectors.T), axis=1)[:, :k]
    return float(np.mean([len(set(a) & set(b)) / k for a, b in zip(ids, truth, strict=True)]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 32])
    parser.add_argument("--dim", type=int, default=256)
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--calls", type=int, default=60, help="timed calls per configuration")
    parser.add_argument("--budget-s", type=float, default=6.0, help="time cap per configuration")
    parser.add_argument("--threads", type=int, default=2, help="BLAS/OpenMP/TF threads")
    parser.add_argument(
        "--backends",
        nargs="+",
        default=[
            "faiss IndexFlatIP",
            "exact",
            "exact-f32",
            "before",
            "numpy",
            "faiss-flat",
            "faiss SQ fp16",
        ],
    )
    parser.add_argument("--encode-ms", type=float, default=10.0, help="for the request budget")
    args = parser.parse_args()

    import faiss
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(args.threads)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    faiss.omp_set_num_threads(args.threads)
    print(
        f"threads: OMP/OPENBLAS/MKL_NUM_THREADS={THREADS}, "
        f"OMP_WAIT_POLICY={os.environ['OMP_WAIT_POLICY']}, TF intra-op {args.threads} "
        f"inter-op 1, faiss omp {args.threads}; {os.cpu_count()} CPUs; k={args.k}; "
        f"load average {os.getloadavg()[0]:.1f}"
    )
    rng = np.random.default_rng(0)
    rows = []
    for n in args.sizes:
        vectors = rng.standard_normal((n, args.dim), dtype=np.float32)
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
        pool = max(args.batches) * 4
        queries = rng.standard_normal((pool, args.dim), dtype=np.float32)
        queries /= np.linalg.norm(queries, axis=1, keepdims=True)
        print(f"\nN = {n:,} ({vectors.nbytes / 2**20:.0f} MiB float32)")
        for name in args.backends:
            start = time.perf_counter()
            backend = make(name, vectors)
            built = time.perf_counter() - start
            detail = getattr(backend, "precision", "")
            r = recall(backend, vectors, queries[:8], args.k)
            for batch in args.batches:
                times = measure(backend, queries, batch, args.k, args.calls, args.budget_s)
                p50, p99 = np.percentile(times, 50) * 1e3, np.percentile(times, 99) * 1e3
                rows.append((n, batch, name, detail, p50, p99, len(times), r))
                print(
                    f"  {name:<18} {detail:<8} batch {batch:>2}: p50 {p50:8.1f} ms  "
                    f"p99 {p99:8.1f} ms  per query p50 {p50 / batch:7.2f} ms  "
                    f"({len(times)} calls; recall@{args.k} {r:.3f}; built in {built:.1f} s)",
                    flush=True,
                )
            del backend

    print("\nsummary: ms per call (p50 / p99), ms per query at p50, and faiss IndexFlatIP p50 /")
    print("this p50 (>1: faster than faiss flat)")
    header = f"{'N':>9} {'batch':>5} {'backend':<18} {'storage':<8} {'p50':>8} {'p99':>8}"
    print(header + f" {'/query':>8} {'vs faiss':>8} {'recall':>6}")
    base = {(n, b): p50 for n, b, name, _, p50, *_ in rows if name == "faiss IndexFlatIP"}
    for n, batch, name, detail, p50, p99, _, r in rows:
        ratio = base.get((n, batch), float("nan")) / p50
        print(
            f"{n:>9,} {batch:>5} {name:<18} {detail:<8} {p50:8.1f} {p99:8.1f} "
            f"{p50 / batch:8.2f} {ratio:7.2f}x {r:6.3f}"
        )
    for n, batch, name, _, p50, p99, *_ in rows:
        if name == "exact" and batch == 1 and n == max(args.sizes):
            total = p99 + args.encode_ms
            faiss_p50 = base.get((n, 1), float("nan"))
            print(
                f"\nexact at N={n:,}, batch 1: p99 {p99:.1f} ms + {args.encode_ms:.0f} ms "
                f"encoding = {total:.1f} ms (goal <= 60: {'meets' if total <= 60 else 'misses'}); "
                f"p50 vs faiss flat {faiss_p50 / p50:.2f}x "
                f"(goal >= 1: {'meets' if faiss_p50 >= p50 else 'misses'})"
            )
    before = {(n, b): p50 for n, b, name, _, p50, *_ in rows if name == "before"}
    for n, batch, name, _, p50, *_ in rows:
        if name == "exact" and (n, batch) in before:
            print(
                f"exact now vs before (float32 XLA matmul + tf top_k), N={n:,} batch {batch}: "
                f"{before[(n, batch)] / p50:.2f}x faster at p50"
            )


if __name__ == "__main__":
    main()
