from __future__ import annotations

import numpy as np
import pytest

from chatbot.int8_rows import Int8Rows


def test_each_component_is_within_half_a_step_of_its_row_s_scale() -> None:
    rng = np.random.default_rng(0)
    vectors = rng.normal(size=(250_001, 6)).astype(np.float16)  # any float dtype; > 1 chunk
    vectors[3] = 0.0  # a zero row stays zero
    rows = Int8Rows.quantize(vectors)
    exact = vectors.astype(np.float32)
    step = np.abs(exact).max(axis=1, keepdims=True) / 127
    assert np.all(np.abs(np.asarray(rows) - exact) <= step * (0.5 + 1e-5))
    assert not np.asarray(rows)[3].any() and np.abs(rows.codes).max() == 127


def test_rows_read_alike_by_any_index() -> None:
    rng = np.random.default_rng(1)
    rows = Int8Rows.quantize(rng.normal(size=(50, 4)))
    full = np.asarray(rows)
    assert full.dtype == np.float32 and rows.shape == (50, 4) and len(rows) == 50
    mask = np.arange(50) % 3 == 0
    for key in (7, slice(5, 9), np.array([4, 4, 0]), [1, 2], mask):
        np.testing.assert_array_equal(rows[key], full[key])
    assert np.asarray(rows, dtype=np.float64).dtype == np.float64


def test_codes_and_scales_must_fit_together() -> None:
    with pytest.raises(ValueError, match="differ"):
        Int8Rows(np.zeros((3, 2), np.int8), np.ones(2, np.float32))
