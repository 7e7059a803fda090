"""Calibration: positive rank correlation when sigma tracks the error; reliability PNG."""

from __future__ import annotations

import numpy as np

from pipeline.evaluate.calibration import calibrate, plot_reliability


def test_rank_correlation_and_reliability(tmp_path) -> None:
    rng = np.random.default_rng(0)
    truth = rng.uniform(0, 0.5, (2, 40, 40))
    sigma = rng.uniform(0.005, 0.05, truth.shape)
    pred = truth + rng.normal(0, 1, truth.shape) * sigma  # errors drawn with the stated sigma
    pred[0, 0, 0] = np.nan
    cal = calibrate(pred, sigma, truth, bins=5)
    assert cal.spearman > 0.3
    assert len(cal.sigma) == 5 and sum(cal.count) == truth.size - 1
    # calibrated by construction: observed RMSE close to the mean sigma in each bin
    np.testing.assert_allclose(cal.rmse, cal.sigma, rtol=0.25)
    png = plot_reliability({"toy": cal}, tmp_path / "rel.png", "toy")
    assert png.read_bytes()[:4] == b"\x89PNG"
    noise = calibrate(pred, rng.uniform(0, 1, truth.shape), truth)
    assert abs(noise.spearman) < 0.1
