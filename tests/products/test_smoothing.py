"""Whittaker and Savitzky-Golay: recover a known curve from noisy, gappy samples; weights matter."""

from __future__ import annotations

import numpy as np
import xarray as xr

from pipeline.products.smoothing import savgol, savgol_pixels, smooth, whittaker, whittaker_pixels
from tests.products.storegen import double_logistic


def _noisy(seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    truth = double_logistic(np.arange(200.0), 60, 150)
    w = (rng.random(200) < 0.25).astype(float)  # ~1 sample in 4 days survives
    y = np.where(w > 0, truth + rng.normal(0, 0.03, 200), np.nan)
    return truth, y, w


def test_whittaker_recovers_curve_from_gappy_noise() -> None:
    truth, y, w = _noisy()
    z = whittaker(y, w, lam=400)
    assert np.isfinite(z).all()
    assert np.sqrt(np.mean((z - truth) ** 2)) < 0.025  # below the 0.03 noise, gaps included


def test_whittaker_respects_weights() -> None:
    truth, y, w = _noisy(1)
    y, w = y.copy(), w.copy()
    y[100], w[100] = 0.0, 1.0  # a cloud-like dip at the peak
    strong = whittaker(y, w, 400)[100]
    w[100] = 0.05
    weak = whittaker(y, w, 400)[100]
    assert abs(weak - truth[100]) < abs(strong - truth[100])
    assert abs(weak - truth[100]) < 0.05


def test_whittaker_too_few_samples_is_nan() -> None:
    y = np.full(50, np.nan)
    y[10] = 0.5
    assert np.isnan(whittaker(y, np.isfinite(y).astype(float))).all()


def test_savgol_fills_gaps() -> None:
    truth, y, w = _noisy(2)
    z = savgol(y, w, window=31)
    assert np.sqrt(np.mean((z - truth) ** 2)) < 0.03


def test_dask_parallel_equals_numpy() -> None:
    _, y, w = _noisy(3)
    values = np.broadcast_to(y[:, None, None], (200, 4, 6)).copy()
    weights = np.broadcast_to(w[:, None, None], (200, 4, 6)).copy()
    da_v = xr.DataArray(values, dims=("time", "y", "x")).chunk({"time": 50, "y": 2, "x": 3})
    da_w = xr.DataArray(weights, dims=("time", "y", "x")).chunk({"time": 50, "y": 2, "x": 3})
    out = smooth(da_v, da_w, "whittaker", 400)
    assert out.dims == ("time", "y", "x") and out.dtype == np.float32
    np.testing.assert_allclose(out.values[:, 3, 5], whittaker(y, w, 400), atol=1e-5)


def _many(seed: int = 4, n: int = 365, pixels: int = 300) -> tuple[np.ndarray, np.ndarray]:
    """(pixel, day) gappy noisy series with the edge cases the per-pixel code handles."""
    rng = np.random.default_rng(seed)
    t = np.arange(n, dtype=float)
    y = double_logistic(t, 100, 250)[None, :] + rng.normal(0, 0.03, (pixels, n))
    w = rng.random((pixels, n))
    w[w < 0.7] = 0.0
    y[rng.random((pixels, n)) < 0.1] = np.nan
    w[0] = 0.0  # no sample at all
    w[1] = 0.0
    w[1, 100] = 1.0  # a single sample
    w[2] = 0.0
    w[2, [0, n - 1]] = 1.0  # two samples at the ends
    y[3] = np.nan  # weights but no values
    return y, w


def test_vectorised_whittaker_equals_per_pixel() -> None:
    y, w = _many()
    ref = np.stack([whittaker(y[i], w[i], 400) for i in range(y.shape[0])])
    got = whittaker_pixels(y, w, 400)
    assert np.array_equal(np.isnan(got), np.isnan(ref))
    np.testing.assert_allclose(got, ref, atol=1e-6, rtol=0)


def test_vectorised_savgol_equals_per_pixel() -> None:
    y, w = _many(5)
    ref = np.stack([savgol(y[i], w[i], 31) for i in range(y.shape[0])])
    got = savgol_pixels(y, w, 31)
    assert np.array_equal(np.isnan(got), np.isnan(ref))
    np.testing.assert_allclose(got, ref, atol=1e-6, rtol=0)
    short_y, short_w = y[:, :20], w[:, :20]  # window longer than the series
    ref = np.stack([savgol(short_y[i], short_w[i], 31) for i in range(y.shape[0])])
    np.testing.assert_allclose(savgol_pixels(short_y, short_w, 31), ref, atol=1e-6, rtol=0)
