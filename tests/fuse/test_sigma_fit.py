"""Fitting the calibrated sigma: pipeline.fuse.sigma_fit and calibrate.calibration_from."""

from __future__ import annotations

import numpy as np

from pipeline.evaluate.calibration import within_sigma
from pipeline.fuse import sigma_fit
from pipeline.fuse.calibrate import Residuals, SeriesCalibration, calibration_from


def _heavy_tailed(n: int = 60_000, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """|error| and model sigma: the model's spread tracks the error on most pixels, but a
    third carry an error of their own (0.02) its spread misses: a scale-only fit is short
    at 2 sigma."""
    rng = np.random.default_rng(seed)
    u = rng.uniform(0.002, 0.02, n)
    err = rng.normal(0, 1.0, n) * np.sqrt(
        (1.5 * u) ** 2 + np.where(rng.random(n) < 0.3, 0.02, 0.0) ** 2
    )
    return np.abs(err), u


def test_scale_and_floor_place_both_quantiles_better_than_a_scale() -> None:
    err, u = _heavy_tailed()
    pure_sigma = np.quantile(err / u, 0.6827) * u
    pure = within_sigma(err, pure_sigma)
    assert pure["within_2sigma"] < 0.93  # the scale-only fit falls short at 2 sigma
    s, floor = sigma_fit.scale_and_floor(err, u)
    fitted = np.sqrt((s * u) ** 2 + floor**2)
    assert sigma_fit.misfit(err, fitted) < 0.5 * sigma_fit.misfit(err, pure_sigma)
    fresh_err, fresh_u = _heavy_tailed(seed=1)  # it holds on errors it was not fitted on
    fresh = within_sigma(fresh_err, np.sqrt((s * fresh_u) ** 2 + floor**2))
    assert abs(fresh["within_1sigma"] - 0.6827) < 0.05
    assert abs(fresh["within_2sigma"] - 0.9545) < 0.03


def test_scale_and_floor_of_gaussian_errors_is_a_pure_scale() -> None:
    rng = np.random.default_rng(2)
    u = rng.uniform(0.005, 0.02, 50_000)
    err = np.abs(rng.normal(0, 1, u.size) * 2.0 * u)
    s, floor = sigma_fit.scale_and_floor(err, u)
    assert abs(s - 2.0) < 0.15 and floor < 0.25 * np.median(err)
    got = within_sigma(err, np.sqrt((s * u) ** 2 + floor**2))
    assert abs(got["within_1sigma"] - 0.6827) < 0.02 and abs(got["within_2sigma"] - 0.9545) < 0.01


def test_band_factors_follow_each_band_and_have_rms_one() -> None:
    rng = np.random.default_rng(3)
    u = np.full(20_000, 0.01)
    err = np.abs(rng.normal(0, 1, (3, u.size)) * np.array([[0.005], [0.01], [0.03]]))
    f = sigma_fit.band_factors(err, u)
    assert np.sqrt(np.mean(f**2)) == np.float64(1.0) or abs(np.sqrt(np.mean(f**2)) - 1) < 1e-9
    np.testing.assert_allclose(f / f[1], [0.5, 1.0, 3.0], rtol=0.05)
    assert (sigma_fit.band_factors(np.zeros((2, 0)), np.zeros(0)) == 1).all()


def test_bridge_q_covers_a_random_walk_interpolation() -> None:
    rng = np.random.default_rng(4)
    q, d = 1e-5, 16.0
    h = np.full(20_000, d * d / (2 * d))
    err = np.abs(rng.normal(0, np.sqrt(q * h)))
    got = sigma_fit.bridge_q(err, h, np.full(h.size, 0.5), 0.0)
    assert got is not None and abs(got / q - 1) < 0.05
    assert sigma_fit.bridge_q(err[:10], h[:10], h[:10], 0.0) is None


def test_calibration_from_residuals_and_without_any() -> None:
    err, u = _heavy_tailed(30_000)
    res = Residuals(
        err=np.stack([err * 0.5, err * 1.5]).astype(np.float32),
        u=u.astype(np.float32),
        gap_err=np.zeros((2, 0), np.float32),
        gap_h=np.zeros(0, np.float32),
        gap_w2=np.zeros(0, np.float32),
        sums=np.array([2e-4, 4e-4]),
        counts=np.array([10.0, 10.0]),
    )
    cal = calibration_from(res)
    np.testing.assert_allclose(cal.band_factors[1] / cal.band_factors[0], 3.0, rtol=1e-3)
    np.testing.assert_allclose(cal.q, [2e-5, 4e-5])  # no inner pair: the change rate
    assert cal.samples == err.size * 2 and cal.floor > 0
    empty = calibration_from(Residuals.concat([], 2))
    assert empty.samples == 0 and empty.band_factors == () and empty.scale == 1.0
    np.testing.assert_allclose(SeriesCalibration(2.0, (), 1).factors(3), 1.0)


def test_coarse_fallback_pixels_get_the_fine_coarse_sigma() -> None:
    """A model that reports a sigma but gave none at a pixel (no fine candidate: STARFM fell
    back to the coarse value) gets the sigma fitted on the pairs' |fine - coarse|."""
    from pipeline.fuse.seamless import _fused_sigma

    rng = np.random.default_rng(5)
    err, u = _heavy_tailed(20_000)
    coarse = np.abs(rng.normal(0, 0.04, (2, 20_000))).astype(np.float32)
    rows = np.zeros((2, 0), np.float32)
    res = Residuals(np.stack([err, err]).astype(np.float32), u.astype(np.float32), rows,
                    np.zeros(0, np.float32), np.zeros(0, np.float32), np.zeros(2), np.zeros(2),
                    coarse, has_sigma=True)  # fmt: skip
    cal = calibration_from(res)
    assert abs(cal.coarse_sigma - 0.04) < 0.006
    model_sigma = np.full((1, 2, 2, 2), 0.01, np.float32)
    model_sigma[0, :, 0, 0] = np.nan  # the fallback pixel
    sig = _fused_sigma(model_sigma, cal)
    rms = np.sqrt(np.mean(sig**2, axis=1))[0]
    assert rms[0, 0] == np.float64(cal.coarse_sigma) or abs(rms[0, 0] - cal.coarse_sigma) < 1e-9
    np.testing.assert_allclose(rms[1, 1], cal.fused(np.float64(0.01)))
    assert calibration_from(Residuals(**{**res.__dict__, "has_sigma": False})).coarse_sigma == 0


def test_the_fallback_sigma_is_fitted_on_the_fallback_pixels_own_errors() -> None:
    """Enough left-out fallback pixels: their own errors; too few: every pixel's |fine - coarse|."""
    from pipeline.fuse.sigma_fit import fallback_errors

    rng = np.random.default_rng(1)
    fine = rng.random((3, 2, 8, 8)).astype(np.float32)
    coarse = fine + 0.1
    core = (slice(0, 8), slice(0, 8))
    own = np.full((2, 500), 0.01, np.float32)
    np.testing.assert_array_equal(fallback_errors(own, fine, coarse, [0, 2], core, 500), own)
    few = fallback_errors(own[:, :10], fine, coarse, [0, 2], core, 500)
    assert few.shape == (2, 2 * 64)
    np.testing.assert_allclose(few, 0.1, rtol=1e-5)
