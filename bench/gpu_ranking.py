"""Ranking on a GPU: the ``exact`` backend's latency at 1M and 10M responses.

Shows where the repository lives and where the product and top-k run, then times one query
and a micro-batch of 32 queries against N generated 256-d vectors resident on the device.
Run through ``bench/gpu_check.sh`` on a machine with an NVIDIA GPU; without one it says so
and exits (``--require-gpu`` makes that an error).

    python bench/gpu_ranking.py --sizes 1000000 10000000
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np


def _timings(fn, repeats: int) -> tuple[float, float]:
    fn()  # compile / warm up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1000)
    return float(np.percentile(times, 50)), float(np.percentile(times, 99))


def _measure(n: int, dim: int, repeats: int, rng: np.random.Generator) -> None:
    import tensorflow as tf

    from chatbot.search import TensorFlowSearch

    vectors = rng.standard_normal((n, dim), dtype=np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    backend = TensorFlowSearch(vectors)
    del vectors  # the repository now lives on the device
    print(f"repository of {n:,} vectors resident on {backend._vectors.device}")
    for batch in (1, 32):
        queries = rng.standard_normal((batch, dim), dtype=np.float32)
        _, ids = backend.search(queries, 10)
        assert ids.shape == (batch, 10)
        p50, p99 = _timings(lambda q=queries: backend.search(q, 10), repeats)
        print(f"{n:>12,} {batch:>5} {p50:>8.2f} {p99:>8.2f} {p50 / batch:>9.3f}")
    with tf.device(backend.device):
        ones = tf.ones((1, dim))
        probe = tf.math.top_k(tf.matmul(ones, backend._vectors, transpose_b=True), k=10)
    print(f"product and top-k ran on: {probe.values.device}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000_000, 10_000_000])
    parser.add_argument("--dim", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=50)
    parser.add_argument("--require-gpu", action="store_true")
    args = parser.parse_args()

    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    print(f"TensorFlow {tf.__version__}; GPUs: {[g.name for g in gpus] or 'none'}")
    if not gpus:
        print("no GPU visible to TensorFlow: nothing to measure here")
        return 2 if args.require_gpu else 0
    rng = np.random.default_rng(0)
    print(f"{'N':>12} {'batch':>5} {'p50 ms':>8} {'p99 ms':>8} {'ms/query':>9}")
    for n in args.sizes:
        _measure(n, args.dim, args.repeats, rng)
    return 0


if __name__ == "__main__":
    sys.exit(main())
