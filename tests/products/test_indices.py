"""Indices on hand-computed values and the documented quality-weight function."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

from pipeline.products.indices import evi, ndvi, ndwi, quality_weights


def _da(*values: float) -> xr.DataArray:
    return xr.DataArray(np.array(values, dtype=np.float32), dims="time")


def test_indices_hand_values() -> None:
    red, nir, green, blue = _da(0.1, 0.0), _da(0.5, 0.0), _da(0.2, 0.1), _da(0.05, 0.1)
    # (0.5 - 0.1) / 0.6; zero denominator -> NaN
    np.testing.assert_allclose(ndvi(red, nir).values, [0.4 / 0.6, np.nan], rtol=1e-6)
    # McFeeters: (0.2 - 0.5) / 0.7
    np.testing.assert_allclose(ndwi(green, nir).values[0], -0.3 / 0.7, rtol=1e-6)
    # 2.5 * 0.4 / (0.5 + 0.6 - 0.375 + 1)
    np.testing.assert_allclose(evi(blue, red, nir).values[0], 1.0 / 1.725, rtol=1e-6)


def test_quality_weights_order() -> None:
    q = np.array([1, 2, 2, 2 | 4, 8, 0], dtype=np.uint8)
    before = np.array([0, 0, 40, 0, -1, -1], dtype=np.int16)
    after = np.array([-1, -1, -1, -1, -1, -1], dtype=np.int16)
    w = quality_weights(q, before, after)
    assert w[0] == 1.0  # observed
    assert w[1] == pytest.approx(0.7)  # fused on a pair date
    assert 0.2 < w[2] < w[1]  # fused 40 days from the pair decays toward 0.2
    assert w[3] == pytest.approx(0.56)  # single pair: x 0.8
    assert w[4] == w[5] == 0.0  # gap / no flag
