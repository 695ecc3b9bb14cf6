"""An approximate nearest-neighbour index stored beside a large repository's vectors (faiss IVF).

Exact search reads every vector for every query batch: at 1M x 256 that is 35 ms for one
query and, being arithmetic-bound for batches, about 0.5 s for 32 on two cores — more than
a busy service can give. Above :data:`ANN_MIN_RESPONSES` responses ``chatbot index`` also
writes a faiss IVF index: a query visits ``nprobe`` of the ``nlist`` k-means cells.

The vectors in the cells are 4-bit product-quantisation codes read by faiss's SIMD "fast
scan" (``IndexIVFPQFastScan``, 64 bytes a 256-d vector): scanning is cheap enough to visit
many cells, and the codes' coarse scores only pick :data:`REFINE` x the wanted number of
candidates, whose scores are then recomputed from the stored vectors. Visiting cells is what
recall needs here: the responses' vectors vary in length (0.45 to 3.4 at 1M), so a query's
best inner products lie in cells whose centres are far from it. The earlier layout (8-bit
codes, ``IndexIVFScalarQuantizer``, 64 of 4,000 cells) kept only 0.55 of the exact neural
top-10 at 1M (docs/performance.md); indexes written so still load.

Each worker process holds its own copy of the codes (80 MB at 1M for the LSTM's vectors,
62 MB for the sentence vectors' coarser ones): faiss reads the fast-scan layout into memory
even with its memory-mapping flags (measured: the same anonymous memory with
``IO_FLAG_MMAP`` and ``IO_FLAG_MMAP_IFC``). The stored vectors it re-scores from are
memory-mapped and shared.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from chatbot.int8_rows import Int8Rows

ANN_FILE = "vectors.ivf.faiss"
ANN_KIND = "faiss-ivf-pq4fs"  # what build_ivf writes (the manifest's "kind")
# From this many responses up, `chatbot index` writes an IVF index and serving uses it. At
# the real Ubuntu index's 53,874 it kept 0.996 of the exact neural top-10 in 2.2 ms a query
# where exact float16 search took 6.6 ms, and cost no more per query in batches of 4 to 32
# (docs/performance.md); below some tens of thousands exact search is a few ms anyway.
ANN_MIN_RESPONSES = 50_000
# Cells visited per query: a search setting, not part of the stored index. At 1M responses
# (4,000 cells) 512 kept 0.96 of the exact neural top-10 for the time the 8-bit layout took
# to keep 0.56; 1,024 cells and 4x kept 0.99 at 1.6x the time (docs/performance.md).
NPROBE = 512
# Dimensions per 4-bit sub-quantiser. The LSTM's vectors: 2, which kept 0.99 of the neural
# top-10 at 1M where 4 kept 0.92. The sentence vectors: 4, whose codes each worker holds in
# half the memory (62 MiB at 1M instead of 116), and which keep more of the exact best 128
# than 2 did with 2 candidates a result (0.971 against 0.950), at 0.9 ms more a query, by
# re-scoring 8 candidates a result (docs/performance.md, stop 22).
DIMS_PER_CODE = 2
SENTENCE_DIMS_PER_CODE = 4
# Candidates taken from the codes per result wanted, by dimensions per code: the coarser the
# codes, the more candidates their exact scores must sort out.
REFINE = {2: 2, 4: 8}
# The 8-bit layout's cells visited (indexes written before the fast-scan layout).
SQ8_NPROBE = 64
_ADD_ROWS = 100_000  # vectors converted to float32 and added at once


def ivf_cells(n: int) -> int:
    """The number of k-means cells for ``n`` vectors: about 4√n, at least 1.

    Example:
        >>> ivf_cells(1_000_000), ivf_cells(10)
        (4000, 1)
    """
    return max(1, min(int(4 * math.sqrt(n)), n // 39))


def build_ivf(
    vectors: np.ndarray,
    path: Path,
    seed: int = 0,
    progress: bool = False,
    dims_per_code: int = DIMS_PER_CODE,
) -> dict[str, Any]:
    """Trains and writes an IVF index of ``vectors`` (any float dtype) to ``path``, with a
    4-bit code for every ``dims_per_code`` dimensions (one of :data:`REFINE`'s keys).

    Returns:
        what the index manifest records: kind, cells, dimensions per code.
    """
    if dims_per_code not in REFINE:
        raise ValueError(f"dims_per_code must be one of {sorted(REFINE)}, not {dims_per_code}")
    import faiss

    n, dim = vectors.shape
    nlist = ivf_cells(n)
    rng = np.random.default_rng(seed)
    # faiss wants at least 39 training points per cell; 64 give stable cells.
    sample = np.sort(rng.choice(n, size=min(n, 64 * nlist), replace=False))
    quantizer = faiss.IndexFlatIP(dim)
    codes = dim // dims_per_code if dim % dims_per_code == 0 else dim
    index = faiss.IndexIVFPQFastScan(quantizer, dim, nlist, codes, 4, faiss.METRIC_INNER_PRODUCT)
    index.train(np.asarray(vectors[sample], dtype=np.float32))
    for start in tqdm(range(0, n, _ADD_ROWS), desc="IVF index", disable=not progress):
        index.add(np.asarray(vectors[start : start + _ADD_ROWS], dtype=np.float32))
    faiss.write_index(index, str(path))
    return {"kind": ANN_KIND, "nlist": nlist, "dims_per_code": dim // codes}


class StoredIvfSearch:
    """Searches an index written by :func:`build_ivf`, memory-mapped.

    Args:
        path: the index file.
        nprobe: cells visited per query.
        vectors: the stored vectors; with ``refine`` > 1 the index's best ``refine × k``
            are re-scored from them and the best ``k`` of those returned.
        refine: candidates taken from the index per result wanted.
    """

    name = "faiss-ivf-stored"

    def __init__(
        self,
        path: Path,
        nprobe: int = NPROBE,
        vectors: np.ndarray | Int8Rows | None = None,
        refine: int = 1,
    ) -> None:
        import faiss

        if refine > 1 and vectors is None:
            raise ValueError("refining the index's candidates needs the stored vectors")
        self.index = faiss.read_index(str(path), faiss.IO_FLAG_MMAP | faiss.IO_FLAG_READ_ONLY)
        faiss.ParameterSpace().set_index_parameter(self.index, "nprobe", nprobe)
        self.nprobe = nprobe
        self.vectors = vectors
        self.refine = refine

    @classmethod
    def from_manifest(
        cls,
        path: Path,
        info: dict[str, Any],
        vectors: np.ndarray | Int8Rows,
        nprobe: int = NPROBE,
        refine: int | None = None,
    ) -> StoredIvfSearch:
        """The search for an index whose manifest entry (``build_ivf``'s return value) is
        ``info``, visiting ``nprobe`` cells and re-scoring ``refine`` x the wanted (by default
        what its codes need, :data:`REFINE`; indexes written before say no dimensions per
        code: they have 2)."""
        if info.get("kind") == "faiss-ivf-sq8":  # the 8-bit layout: its own scores, no refine
            return cls(path, int(info.get("nprobe", SQ8_NPROBE)))
        if refine is None:
            refine = REFINE.get(int(info.get("dims_per_code", DIMS_PER_CODE)), REFINE[2])
        return cls(path, min(nprobe, int(info.get("nlist", nprobe))), vectors, refine)

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        k = min(k, self.index.ntotal)
        queries = np.ascontiguousarray(queries, dtype=np.float32)
        wanted = min(k * self.refine, self.index.ntotal)
        scores, ids = self.index.search(queries, wanted)
        ids = ids.astype(np.int64)
        if self.vectors is None or self.refine <= 1:
            return scores[:, :k], ids[:, :k]
        # Exact scores of the candidates (-1: fewer found than wanted), the best k of them.
        found = ids >= 0
        exact = np.full(ids.shape, -np.inf, dtype=np.float32)
        owner, flat = np.nonzero(found)[0], ids[found]
        exact[found] = np.einsum(
            "md,md->m", np.asarray(self.vectors[flat], dtype=np.float32), queries[owner]
        )
        best = np.argsort(-exact, axis=1, kind="stable")[:, :k]
        best_scores = np.take_along_axis(exact, best, 1)
        best_ids = np.where(np.isfinite(best_scores), np.take_along_axis(ids, best, 1), -1)
        return best_scores, best_ids
