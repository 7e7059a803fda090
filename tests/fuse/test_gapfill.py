"""Temporal gap filling (pipeline.fuse.gapfill) and the seamless window of a task, in memory."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.evaluate.calibration import fit_scale, within_sigma
from pipeline.fuse.calibrate import OBS_SIGMA, SeriesCalibration, sample_windows
from pipeline.fuse.gapfill import fill_gaps, fill_kalman, fill_linear, process_variance
from pipeline.fuse.worker import seamless_window
from pipeline.store.layout import FILLED, FUSED, GAP, OBSERVED, OUTSIDE


def _series(n_days: int = 20, shape: tuple[int, int] = (3, 4)) -> np.ndarray:
    """(time, band, y, x) float32: a linear rise per pixel, two bands."""
    t = np.arange(n_days, dtype=np.float32)[:, None, None, None]
    base = np.linspace(0.05, 0.3, 2 * shape[0] * shape[1], dtype=np.float32).reshape(2, *shape)
    return (base[None] + 0.004 * t).astype(np.float32)


@pytest.mark.parametrize("method", ["linear", "kalman"])
def test_gaps_inside_cover_are_filled_and_valid_days_kept(method: str) -> None:
    truth = _series()
    values = truth.copy()
    values[5:9] = np.nan  # a 4-day cloudy spell everywhere
    values[:, :, 0, 0] = np.nan  # a pixel with no valid day at all
    sigma = np.full_like(values, 0.001)
    cover = np.ones(values.shape[2:], bool)
    cover[2, 3] = False
    out = fill_gaps(values, sigma, cover, method=method)
    valid = np.isfinite(values).all(axis=1)
    np.testing.assert_array_equal(
        out.values[valid[:, None].repeat(2, 1)], values[valid[:, None].repeat(2, 1)]
    )
    assert out.filled[5:9, 1, 1].all() and not out.filled[:, 2, 3].any()
    assert not out.filled[:, 0, 0].any() and np.isnan(out.values[:, :, 0, 0]).all()
    assert np.isnan(out.values[5:9, :, 2, 3]).all()  # outside the cover: never filled
    # a linear series is interpolated (almost) exactly by both methods
    assert np.nanmax(np.abs(out.values[5:9, :, 1, 1] - truth[5:9, :, 1, 1])) < 0.003
    # sigma grows from the edge of the gap towards its middle
    s = out.sigma[5:9, 0, 1, 1]
    assert s[0] < s[1] and s[3] < s[2] and np.all(s > 0.001)


def test_linear_is_the_brownian_bridge() -> None:
    values = np.array([[0.1], [np.nan], [np.nan], [np.nan], [0.2]])
    sigma = np.zeros_like(values)
    mean, var = fill_linear(values, sigma, q=1e-4)
    np.testing.assert_allclose(mean[:, 0], [0.1, 0.125, 0.15, 0.175, 0.2])
    np.testing.assert_allclose(var[1:4, 0], 1e-4 * np.array([3, 4, 3]) / 4)
    tail, tail_var = fill_linear(np.array([[0.1], [np.nan], [np.nan]]), np.zeros((3, 1)), q=1e-4)
    np.testing.assert_allclose(tail[:, 0], 0.1)
    np.testing.assert_allclose(tail_var[:, 0], [0, 1e-4, 2e-4])


def test_kalman_sigma_is_calibrated_on_a_random_walk() -> None:
    """On data drawn from its own model the smoother's sigma covers 68 % / 95 % of the errors."""
    rng = np.random.default_rng(1)
    n_days, n, q, r = 60, 4000, 1e-4, 0.004
    truth = 0.2 + np.cumsum(rng.normal(0, np.sqrt(q), (n_days, n)), axis=0)
    obs = truth + rng.normal(0, r, truth.shape)
    gaps = rng.random((n_days, n)) < 0.4
    gaps[20:27] = True  # a week-long gap in every series
    obs[gaps] = np.nan
    mean, var = fill_kalman(obs, np.full_like(obs, r), q)
    err, sig = (mean - truth)[gaps], np.sqrt(var[gaps])
    got = within_sigma(err, sig)
    assert abs(got["within_1sigma"] - 0.683) < 0.03 and abs(got["within_2sigma"] - 0.954) < 0.02
    lin, _ = fill_linear(obs, np.full_like(obs, r), q)
    assert np.mean((lin - truth)[gaps] ** 2) >= np.mean(err**2) * 0.99  # the smoother is not worse


def test_process_variance_and_scale() -> None:
    values = _series()
    q = process_variance(values)
    np.testing.assert_allclose(q, 0.004**2, rtol=1e-3)
    err = np.random.default_rng(0).normal(0, 2.0, 100_000)
    assert fit_scale(err, np.ones_like(err)) == pytest.approx(2.0, rel=0.02)


def test_sample_windows_depend_on_the_grid_only() -> None:
    wins = sample_windows((544, 544), 16)
    assert len(wins) == 4 and all((y1 - y0, x1 - x0) == (128, 128) for y0, y1, x0, x1 in wins)
    assert all(v % 16 == 0 for w in wins for v in w[::2])
    assert sample_windows((40, 36), 4) == [(0, 36, 0, 36)]


def _day(values: np.ndarray, quality: np.ndarray, sigma: float = 0.01) -> dict[str, np.ndarray]:
    return {
        "values": values,
        "sigma": np.where(quality & FUSED, sigma, np.nan).astype(np.float32)[None].repeat(2, 0),
        "quality": quality,
        "ref_before_days": np.zeros(quality.shape, np.int16),
        "ref_after_days": np.zeros(quality.shape, np.int16),
    }


@pytest.mark.parametrize("method", ["linear", "kalman"])
def test_seamless_window_flags_coverage_fills_and_sigma(method: str) -> None:
    truth = _series(n_days=10)
    shape = truth.shape[2:]
    days = []
    for t in range(10):
        quality = np.full(shape, FUSED, np.uint8)
        if t in (3, 4):
            quality[:] = GAP  # cloudy coarse: no fused value
        if t == 0:
            quality[:] = OBSERVED
        days.append(_day(np.where(quality == GAP, np.nan, truth[t]), quality))
    cover = np.ones(shape, bool)
    cover[:, -1] = False
    out = seamless_window(days, cover, SeriesCalibration(2.0, (1e-5, 1e-5), 100), method)
    q = out["quality"]
    assert (q[:, :, -1] == OUTSIDE).all() and np.isnan(out["values"][:, :, :, -1]).all()
    assert np.isnan(out["uncertainty"][:, :, -1]).all()
    inside = q != OUTSIDE
    assert (q[3:5][inside[3:5]] == FILLED).all() and not (q & GAP).any()
    assert np.isfinite(out["values"].transpose(1, 0, 2, 3)[:, inside]).all()
    assert np.isfinite(out["uncertainty"][inside]).all()
    np.testing.assert_allclose(out["uncertainty"][5][inside[5]], 0.02, rtol=1e-6)  # 2 x 0.01
    np.testing.assert_allclose(out["uncertainty"][0][inside[0]], OBS_SIGMA, rtol=1e-6)
    gap_sigma = out["uncertainty"][3][inside[3]]
    # both methods: the correlated ends (weights 2/3, 1/3 on the neighbours' 0.02 add as
    # sigmas: fused errors share reference pairs) plus the filler's own variance
    ends = 0.02**2
    if method == "linear":  # independent ends weighted, plus the bridge q h, h = 2/3 day
        pooled = (4 / 9 + 1 / 9) * 0.02**2 + 1e-5 * 2 / 3
    else:  # the smoother's posterior over the day's series of sigmas
        sig = np.array([OBS_SIGMA, 0.02, 0.02, np.nan, np.nan, *[0.02] * 5])[:, None]
        series = np.where(np.isfinite(sig), 0.1, np.nan)
        pooled = fill_kalman(series, np.where(np.isfinite(sig), sig, np.nan), 1e-5)[1][3, 0]
    assert pooled < ends  # pooling many fused days would under-state the error alone
    np.testing.assert_allclose(gap_sigma, np.sqrt(ends + pooled), rtol=1e-5)


def test_a_window_of_gap_days_keeps_the_store_band_count() -> None:
    """No prediction and no observation on any day: 1-band placeholders, 3 bands stored."""
    shape = (4, 5)
    gap = np.full(shape, GAP, np.uint8)
    placeholder = np.full((1, *shape), np.nan, np.float32)  # what assemble_day gives a gap day
    days = [{**_day(placeholder, gap), "sigma": placeholder} for _ in range(3)]
    out = seamless_window(days, np.ones(shape, bool), SeriesCalibration(1.0, (), 0), n_bands=3)
    assert out["values"].shape == (3, 3, *shape)


def test_correlated_ends_add_as_sigmas() -> None:
    values = np.array([[0.1], [np.nan], [0.2]])
    sigma = np.array([[0.01], [np.nan], [0.03]])
    _, indep = fill_linear(values, sigma, q=0.0)
    _, corr = fill_linear(values, sigma, q=0.0, correlated=True)
    np.testing.assert_allclose(indep[1, 0], 0.25 * 0.01**2 + 0.25 * 0.03**2)
    np.testing.assert_allclose(corr[1, 0], (0.5 * 0.01 + 0.5 * 0.03) ** 2)
