"""Every metric against a hand-computed case."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.metrics import CONVENTION, cc, ergas, psnr, rmse, sam_deg, score, ssim, uiqi


def test_scalar_metrics_by_hand() -> None:
    t = np.array([0.1, 0.2, 0.3, 0.4])
    p = np.array([0.1, 0.2, 0.3, 0.6])
    assert rmse(t, p) == pytest.approx(np.sqrt(0.04 / 4))
    assert psnr(t, p) == pytest.approx(10 * np.log10(1 / 0.01))
    assert cc(t, 2 * t + 1) == pytest.approx(1.0)
    assert cc(t, -t) == pytest.approx(-1.0)
    # UIQI: identical -> 1; a pure offset lowers only the luminance term
    assert uiqi(t, t) == pytest.approx(1.0)
    mt, mp = 0.25, 0.35
    assert uiqi(t, t + 0.1) == pytest.approx(2 * mt * mp / (mt**2 + mp**2))


def test_sam_and_ergas_by_hand() -> None:
    t = np.array([[1.0, 0.2], [0.0, 0.2]])  # (band, pixel)
    p = np.array([[0.0, 0.4], [1.0, 0.4]])  # 90 deg apart, then parallel
    assert sam_deg(t, p) == pytest.approx(45.0)
    # band 0: rmse^2 = 0.52, mu 0.6; band 1: rmse^2 = 0.52, mu 0.1
    expected = 100 / 16 * np.sqrt((0.52 / 0.36 + 0.52 / 0.01) / 2)
    assert ergas(t, p, 1 / 16) == pytest.approx(expected)


def test_ssim_identity_and_mask() -> None:
    rng = np.random.default_rng(0)
    t = rng.random((20, 20))
    valid = np.ones((20, 20), bool)
    assert ssim(t, t, valid) == pytest.approx(1.0)
    p = t.copy()
    p[:5] = 0.9  # garbage only where masked out, far from the scored rows
    valid[:12] = False
    assert ssim(t, p, valid) == pytest.approx(1.0)


def test_score_excludes_nan_and_mask() -> None:
    t = np.full((2, 8, 8), 0.3, np.float32) + np.linspace(0, 0.1, 64).reshape(8, 8)
    p = t + 0.01
    p[0, 0, 0] = np.nan
    mask = np.ones((8, 8), bool)
    mask[7, 7] = False
    p[1, 7, 7] = 5.0  # excluded by the mask
    s = score(t, p, ("red", "nir"), ratio=1 / 16, mask=mask)
    assert s.per_band["red"]["rmse"] == pytest.approx(0.01, rel=1e-4)
    assert s.per_band["nir"]["rmse"] == pytest.approx(0.01, rel=1e-4)
    assert s.overall["cc"] == pytest.approx(1.0)
    assert set(s.overall) == {"rmse", "ssim", "cc", "uiqi", "psnr", "sam_deg", "ergas"}
    assert s.convention == CONVENTION


def test_score_rejects_empty() -> None:
    t = np.full((1, 4, 4), np.nan)
    with pytest.raises(ValueError, match="no valid pixel"):
        score(t, t, ("ndvi",), ratio=1 / 16)
