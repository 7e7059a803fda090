"""The compiled gap fillers give the same bits as the numpy ones, and fill_gaps uses them."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.fuse import gapfill, gapfill_kernels


def _series(seed: int, n_t: int = 23, n: int = 400) -> tuple[np.ndarray, np.ndarray]:
    """Random walks with gaps: leading, trailing and inner spells, a few never valid."""
    rng = np.random.default_rng(seed)
    values = 0.2 + np.cumsum(rng.normal(0, 0.01, (n_t, n)), axis=0)
    sigma = rng.uniform(0.002, 0.02, (n_t, n))
    values[rng.random((n_t, n)) < 0.5] = np.nan
    values[:4, :50] = np.nan
    values[-5:, 50:100] = np.nan
    values[:, 100:110] = np.nan  # no valid day
    values[:, 110] = np.nan
    values[n_t // 2, 110] = 0.3  # exactly one valid day
    sigma[rng.random((n_t, n)) < 0.05] = np.nan  # a valid day without a sigma
    return values, sigma


@pytest.mark.skipif(not gapfill_kernels.has_kernels(), reason="numba is not installed")
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_compiled_fillers_give_the_same_bits(seed: int) -> None:
    values, sigma = _series(seed)
    q = 2.5e-5
    pairs = [
        (gapfill.fill_kalman(values, sigma, q), gapfill_kernels.kalman(values, sigma, q, 1.0)),
        (gapfill.fill_linear(values, sigma, q), gapfill_kernels.linear(values, sigma, q)),
        (
            gapfill.fill_linear(values, sigma, q, correlated=True),
            gapfill_kernels.linear(values, sigma, q, correlated=True),
        ),
    ]
    for ref, out in pairs:
        for a, b in zip(out, ref, strict=True):
            np.testing.assert_array_equal(a, b)  # NaN in the same places, same values


@pytest.mark.parametrize("method", gapfill.METHODS)
def test_fill_gaps_equals_the_numpy_fillers(method: str, monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(7)
    values = rng.uniform(0.05, 0.4, (19, 3, 9, 11)).astype(np.float32)
    gap = rng.random((19, 9, 11)) < 0.4
    values[np.broadcast_to(gap[:, None], values.shape)] = np.nan  # every band of a pixel-day
    sigma = np.full_like(values, 0.01)
    cover = np.ones((9, 11), bool)
    cover[0, :3] = False
    q = np.array([1e-5, 2e-5, 4e-5])
    fast = gapfill.fill_gaps(values, sigma, cover, q, method, 1.3, 0.8)
    monkeypatch.setattr(gapfill_kernels, "has_kernels", lambda: False)
    slow = gapfill.fill_gaps(values, sigma, cover, q, method, 1.3, 0.8)
    for name in ("values", "sigma", "filled"):
        np.testing.assert_array_equal(getattr(fast, name), getattr(slow, name))
