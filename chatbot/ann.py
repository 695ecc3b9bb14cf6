"""An approximate nearest-neighbour index stored beside a large repository's vectors (faiss IVF).

Exact search reads every vector for every query batch: at 1M x 256 that is 35 ms for one
query and, being arithmetic-bound for batches, about 0.5 s for 32 on two cores — more than
a busy service can give. Above :data:`ANN_MIN_RESPONSES` responses ``chatbot index`` also
writes a faiss ``IndexIVFScalarQuantizer`` (inverted file over k-means cells, vectors as 8-bit
codes): a query visits ``nprobe`` of the ``nlist`` cells (a few ms). Serving only takes the
neural part's best :data:`chatbot.scoring.RERANK_DEPTH` from it; their scores are then
recomputed from the stored vectors, and ``chatbot eval --repository`` reports how much of the
exact top-10 the served ranking keeps.

The file is read with faiss's memory-mapping flag, so the worker processes of one machine
share its pages.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

ANN_FILE = "vectors.ivf.faiss"
# From this many responses up, `chatbot index` writes an IVF index and serving uses it.
ANN_MIN_RESPONSES = 200_000
# Cells visited per query: at 1M, 64 of 4096 cells (bench/served_path.py).
NPROBE = 64
_ADD_ROWS = 100_000  # vectors converted to float32 and added at once


def ivf_cells(n: int) -> int:
    """The number of k-means cells for ``n`` vectors: about 4√n, at least 1.

    Example:
        >>> ivf_cells(1_000_000), ivf_cells(10)
        (4000, 1)
    """
    return max(1, min(int(4 * math.sqrt(n)), n // 39))


def build_ivf(
    vectors: np.ndarray, path: Path, seed: int = 0, progress: bool = False
) -> dict[str, Any]:
    """Trains and writes an IVF index of ``vectors`` (any float dtype) to ``path``.

    Returns:
        what the index manifest records: kind, cells, cells visited per query.
    """
    import faiss

    n, dim = vectors.shape
    nlist = ivf_cells(n)
    rng = np.random.default_rng(seed)
    # faiss wants at least 39 training points per cell; 64 give stable cells.
    sample = np.sort(rng.choice(n, size=min(n, 64 * nlist), replace=False))
    quantizer = faiss.IndexFlatIP(dim)
    index = faiss.IndexIVFScalarQuantizer(
        quantizer, dim, nlist, faiss.ScalarQuantizer.QT_8bit, faiss.METRIC_INNER_PRODUCT
    )
    index.train(np.asarray(vectors[sample], dtype=np.float32))
    for start in tqdm(range(0, n, _ADD_ROWS), desc="IVF index", disable=not progress):
        index.add(np.asarray(vectors[start : start + _ADD_ROWS], dtype=np.float32))
    faiss.write_index(index, str(path))
    return {"kind": "faiss-ivf-sq8", "nlist": nlist, "nprobe": min(NPROBE, nlist)}


class StoredIvfSearch:
    """Searches an index written by :func:`build_ivf`, memory-mapped.

    Args:
        path: the index file.
        nprobe: cells visited per query.
    """

    name = "faiss-ivf-stored"

    def __init__(self, path: Path, nprobe: int = NPROBE) -> None:
        import faiss

        self.index = faiss.read_index(str(path), faiss.IO_FLAG_MMAP | faiss.IO_FLAG_READ_ONLY)
        faiss.ParameterSpace().set_index_parameter(self.index, "nprobe", nprobe)
        self.nprobe = nprobe

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        k = min(k, self.index.ntotal)
        scores, ids = self.index.search(np.ascontiguousarray(queries, dtype=np.float32), k)
        return scores, ids.astype(np.int64)
