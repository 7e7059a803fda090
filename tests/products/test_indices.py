"""Indices on hand-computed values and the documented smoother weight functions."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

from pipeline.products.indices import (
    W_MIN,
    evi,
    ndvi,
    ndvi_sigma_ratio,
    ndwi,
    quality_weights,
    sigma_weights,
    weights_for,
    weights_of,
)
from pipeline.products.smoothing import DEFAULT_LAMBDA, whittaker


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


def test_sigma_weights_inverse_variance_and_flags() -> None:
    # observed, fused sigma 0.05, filled sigma 0.01, gap, outside, no flag, observed w/o sigma
    q = np.array([1, 2, 32, 8, 16, 0, 1], dtype=np.uint8)
    u = np.array([0.005, 0.05, 0.01, 0.02, np.nan, 0.02, np.nan], dtype=np.float32)
    w = sigma_weights(q, u)
    assert w[0] == pytest.approx(1.0)  # a clear observation at its sensor noise
    assert w[1] == pytest.approx((0.005 / 0.05) ** 2)  # 0.01
    assert w[2] == pytest.approx(0.25)  # filled days count, at their own sigma
    assert w[3] == w[4] == w[5] == 0.0  # gap, outside coverage, no flag
    assert w[6] == pytest.approx(1.0)  # observed without a sigma: the sensor noise


def test_sigma_weights_finite_and_bounded() -> None:
    sigmas = np.array([0.0, 1e-6, 0.005, 0.03, 0.5, 5.0, 1e30, np.inf, np.nan, -0.01])
    q = np.full(sigmas.shape, 2, dtype=np.uint8)
    w = sigma_weights(q, sigmas.astype(np.float32))
    assert w.dtype == np.float32 and np.isfinite(w).all()
    assert ((w >= 0) & (w <= 1)).all()
    finite = np.isfinite(sigmas)
    assert (w[finite] >= W_MIN).all()  # a fused day with a sigma is never dropped
    assert (w[~finite] == 0).all()  # no sigma, no weight
    assert (np.diff(w[1:6]) <= 0).all()  # larger sigma, smaller weight


def test_weights_of_uses_the_store_sigma_when_present() -> None:
    dims = ("time", "y", "x")
    q = xr.DataArray(np.array([1, 2], np.uint8).reshape(2, 1, 1), dims=dims)
    u = xr.DataArray(np.array([0.005, 0.05], np.float32).reshape(2, 1, 1), dims=dims)
    with_sigma = weights_of(xr.Dataset({"quality": q, "uncertainty": u})).values.ravel()
    np.testing.assert_allclose(with_sigma, [1.0, 0.01], rtol=1e-5)
    legacy = weights_of(xr.Dataset({"quality": q})).values.ravel()
    np.testing.assert_allclose(legacy, [1.0, 0.2], rtol=1e-5)  # flags only: fused far value


def test_noisy_day_moves_the_smoothed_series_less_than_a_precise_one() -> None:
    # a flat 0.5 series of clear observations every 4 days and one fused day at 0.8
    y = np.full(61, np.nan)
    q = np.zeros(61, np.uint8)
    y[::4], q[::4] = 0.5, 1
    y[30], q[30] = 0.8, 2
    u = np.where(q > 0, 0.005, np.nan).astype(np.float32)
    shifts = {}
    for sigma in (0.005, 0.05):
        u[30] = sigma
        z = whittaker(y, sigma_weights(q, u), lam=DEFAULT_LAMBDA)
        shifts[sigma] = abs(z[30] - 0.5)
    assert shifts[0.05] < 0.25 * shifts[0.005]
    assert shifts[0.005] > 0.05  # a precise day is followed


def _store(factors: list[float] | None) -> xr.Dataset:
    """Observed and fused days of one pixel, red 0.05 / NIR 0.35, store sigma 0.01."""
    import json

    dims = ("time", "y", "x")

    def var(*v: float, dtype: type = np.float32) -> xr.DataArray:
        return xr.DataArray(np.array(v, dtype).reshape(len(v), 1, 1), dims=dims)

    seamless = {} if factors is None else {"band_factors": factors}
    attrs = {"stf_bands": ["green", "red", "nir"],
             "stf_provenance": json.dumps({"model": {"seamless": seamless}})}  # fmt: skip
    return xr.Dataset(
        {"quality": var(1, 2, dtype=np.uint8), "uncertainty": var(0.005, 0.01),
         "green": var(0.06, 0.06), "red": var(0.05, 0.05), "nir": var(0.35, 0.35)},
        attrs=attrs,
    )  # fmt: skip


def test_ndvi_sigma_ratio_hand_values() -> None:
    # equal factors: NDVI's sigma scales with the band sigma, ratio = the factor
    np.testing.assert_allclose(ndvi_sigma_ratio(np.float32(0.1), np.float32(0.4), 2, 2), 2.0)
    # sqrt((0.4 * 0.5)^2 + (0.1 * 1.5)^2) / sqrt(0.4^2 + 0.1^2) = 0.25 / 0.4123
    got = ndvi_sigma_ratio(np.float32(0.1), np.float32(0.4), 0.5, 1.5)
    np.testing.assert_allclose(got, 0.25 / np.hypot(0.4, 0.1), rtol=1e-6)


def test_weights_for_each_variable_use_its_own_sigma() -> None:
    ds = _store([0.6, 0.8, 1.4])
    red = weights_for(ds, "red").values.ravel()
    np.testing.assert_allclose(red, [1.0, (0.005 / (0.01 * 0.8)) ** 2], rtol=1e-5)
    nir = weights_for(ds, "nir").values.ravel()
    np.testing.assert_allclose(nir, [1.0, (0.005 / (0.01 * 1.4)) ** 2], rtol=1e-5)
    # NDVI over dense vegetation: its error is mostly red's (nir >> red), so it weighs more
    # than the RMS-over-bands weight, which counts NIR's larger error
    ratio = np.hypot(0.35 * 0.8, 0.05 * 1.4) / np.hypot(0.35, 0.05)
    ndvi_w = weights_for(ds, "ndvi").values.ravel()
    np.testing.assert_allclose(ndvi_w, [1.0, (0.005 / (0.01 * ratio)) ** 2], rtol=1e-5)
    assert ndvi_w[1] > weights_of(ds).values.ravel()[1]
    # no factors recorded, or a variable without one: the store's sigma as it is
    for bare, name in ((_store(None), "ndvi"), (ds, "swir1")):
        np.testing.assert_allclose(weights_for(bare, name).values, weights_of(bare).values)
