"""Vectors stored as 8-bit codes with one float32 scale a row: a quarter of float32's memory.

A repository's sentence vectors (:mod:`chatbot.sentence`) are read a few hundred rows at a
time, to score a request's candidates exactly, and they are mapped into every worker's
memory: at 1M replies float16 holds 732 MiB of them, these codes 366 MiB. Each row is
scaled by its largest component, so that every row uses the whole code range; for a unit
vector of 384 dimensions a cosine then moves by 4e-4 (standard deviation; at most 3e-3 in
2e7 pairs: docs/performance.md).

Example:
    >>> rows = Int8Rows.quantize(np.array([[0.6, -0.8], [1.0, 0.0]], dtype=np.float32))
    >>> rows.codes.tolist(), [round(float(x), 3) for x in rows[0]]
    ([[95, -127], [127, 0]], [0.598, -0.8])
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

_LEVELS = 127  # codes in -127..127: symmetric, so that 0 stays exactly 0
_ROWS_PER_CHUNK = 100_000  # rows quantised or expanded at once (bounds the float32 copies)


@dataclass(frozen=True)
class Int8Rows:
    """``(n, d)`` rows as ``codes`` (int8) × ``scales`` (float32, one a row). Indexing gives
    float32 rows, as a float array would; ``np.asarray`` gives them all."""

    codes: np.ndarray
    scales: np.ndarray

    def __post_init__(self) -> None:
        if self.codes.ndim != 2 or self.scales.shape != (len(self.codes),):
            raise ValueError(f"codes {self.codes.shape} and scales {self.scales.shape} differ")

    @classmethod
    def quantize(cls, vectors: np.ndarray) -> Int8Rows:
        """The codes of ``vectors`` (any float dtype, read a chunk at a time)."""
        codes = np.empty(vectors.shape, dtype=np.int8)
        scales = np.empty(len(vectors), dtype=np.float32)
        for start in range(0, len(vectors), _ROWS_PER_CHUNK):
            part = np.asarray(vectors[start : start + _ROWS_PER_CHUNK], dtype=np.float32)
            top = np.abs(part).max(axis=1) if part.shape[1] else np.zeros(len(part))
            scale = np.where(top > 0, top / _LEVELS, 1.0).astype(np.float32)
            codes[start : start + len(part)] = np.rint(part / scale[:, None])
            scales[start : start + len(part)] = scale
        return cls(codes, scales)

    @property
    def shape(self) -> tuple[int, int]:
        return (int(self.codes.shape[0]), int(self.codes.shape[1]))

    @property
    def ndim(self) -> int:
        return 2

    @property
    def dtype(self) -> np.dtype:
        return np.dtype(np.float32)  # what indexing gives

    def __len__(self) -> int:
        return len(self.codes)

    def __getitem__(self, key: Any) -> np.ndarray:
        rows = np.asarray(self.codes[key], dtype=np.float32)
        return rows * np.asarray(self.scales[key], dtype=np.float32)[..., None]

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        out = np.empty(self.shape, dtype=np.float32)
        for start in range(0, len(self), _ROWS_PER_CHUNK):
            out[start : start + _ROWS_PER_CHUNK] = self[start : start + _ROWS_PER_CHUNK]
        return out if dtype is None else out.astype(dtype, copy=False)
