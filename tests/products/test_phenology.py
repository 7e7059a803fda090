"""Phenology metrics on a double-logistic with known timing."""

from __future__ import annotations

import numpy as np
import pandas as pd
import xarray as xr

from pipeline.products.phenology import METRICS, metrics_block, phenology
from tests.products.storegen import double_logistic


def test_double_logistic_timing() -> None:
    t = np.arange(240.0)
    m = dict(zip(METRICS, metrics_block(double_logistic(t, 80, 170)[None])[0], strict=True))
    # 50 % crossings are the logistic midpoints; 20 % lie ln(4)/rate = 9.24 days outside them.
    assert abs(m["sos50"] - 80) < 1 and abs(m["eos50"] - 170) < 1
    assert abs(m["sos"] - (80 - np.log(4) / 0.15)) < 1
    assert abs(m["eos"] - (170 + np.log(4) / 0.15)) < 1
    assert abs(m["pos"] - 125) <= 2
    assert abs(m["peak"] - 0.8) < 0.01 and abs(m["amplitude"] - 0.65) < 0.01
    assert abs(m["length"] - (m["eos"] - m["sos"])) < 1e-4
    assert m["integral"] > 0


def test_flat_series_has_no_season() -> None:
    m = metrics_block(np.full((1, 100), 0.15))[0]
    assert np.isnan(m[METRICS.index("sos")]) and m[METRICS.index("peak")] == np.float32(0.15)


def test_phenology_dataset_in_day_of_year() -> None:
    t = np.arange(200.0)
    v = np.broadcast_to(double_logistic(t, 60, 150)[:, None, None], (200, 2, 3))
    da = xr.DataArray(
        v, dims=("time", "y", "x"), coords={"time": pd.date_range("2024-03-01", periods=200)}
    )
    out = phenology(da.chunk({"y": 1}))
    doy0 = pd.Timestamp("2024-03-01").dayofyear
    assert set(out.data_vars) == set(METRICS)
    np.testing.assert_allclose(out["sos50"].values, 60 + doy0, atol=1)
