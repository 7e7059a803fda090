"""The seamless step worked on in strips of rows gives the same bits as the whole window."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.fuse.calibrate import SeriesCalibration
from pipeline.fuse.seamless import _strips, seamless_window
from pipeline.store.layout import FUSED, GAP, OBSERVED, SINGLE_PAIR

CALIBRATIONS = {
    # the typical model sigma (window-wide median) stands in for missing ones
    "typical": SeriesCalibration(
        1.7, (2e-5, 1e-5, 3e-5), 90, floor=0.003, band_factors=(0.8, 1.0, 1.2)
    ),
    # a coarse fallback's sigma and its own fill scales
    "fallback": SeriesCalibration(
        1.3,
        (2e-5, 1e-5, 3e-5),
        90,
        coarse_sigma=0.02,
        fill_end=0.9,
        fill_pooled=1.4,
        fill_fallback=(1.1, 0.7),
    ),
    # uncalibrated: the model's sigma and q fitted on the window (window-wide)
    "none": SeriesCalibration(1.0, (), 0),
}


def _window(n_days: int = 23, shape: tuple[int, int] = (9, 6), seed: int = 3) -> list[dict]:
    """Days as ``assemble_day`` gives them: observed, fused (some without a sigma), gaps,
    and one all-gap day with 1-band placeholders."""
    rng = np.random.default_rng(seed)
    days = []
    for t in range(n_days):
        kind = rng.choice([OBSERVED, FUSED, FUSED | SINGLE_PAIR, GAP], size=shape,
                          p=[0.1, 0.45, 0.1, 0.35])  # fmt: skip
        quality = kind.astype(np.uint8)
        values = 0.2 + 0.05 * np.sin(t / 5) + 0.02 * rng.standard_normal((3, *shape))
        values = np.where(quality == GAP, np.nan, values).astype(np.float32)
        sigma = np.where(quality & FUSED, rng.uniform(0.002, 0.03, (3, *shape)), np.nan)
        sigma[:, rng.random(shape) < 0.15] = np.nan  # fused pixels the model gave no sigma
        if t == 7:  # no prediction and no observation: placeholders
            quality[:] = GAP
            values = np.full((1, *shape), np.nan, np.float32)
            sigma = values
        days.append({
            "values": values,
            "sigma": sigma.astype(np.float32),
            "quality": quality,
            "ref_before_days": np.full(shape, t % 8, np.int16),
            "ref_after_days": np.full(shape, 8 - t % 8, np.int16),
        })  # fmt: skip
    return days


@pytest.mark.parametrize("method", ["kalman", "linear"])
@pytest.mark.parametrize("name", sorted(CALIBRATIONS))
def test_strips_give_the_whole_windows_bits(method: str, name: str) -> None:
    days = _window()
    cover = np.ones(days[0]["quality"].shape, bool)
    cover[:, -1] = False
    calib = CALIBRATIONS[name]
    whole = seamless_window(days, cover, calib, method, n_bands=3, strip_pixel_days=1 << 30)
    for limit in (1, 2 * 23 * 6, 5 * 23 * 6):  # one row, two rows, five rows (uneven end)
        strips = seamless_window(days, cover, calib, method, n_bands=3, strip_pixel_days=limit)
        assert strips.keys() == whole.keys()
        for key, value in whole.items():
            assert strips[key].dtype == value.dtype
            np.testing.assert_array_equal(strips[key], value, err_msg=f"{key}, {limit}")
    assert np.isfinite(whole["values"][:, :, :, :-1]).all()  # every covered pixel-day filled


def test_strips_bound_the_pixel_days() -> None:
    days = _window(n_days=10, shape=(9, 6))
    assert [(s.start, s.stop) for s in _strips(days, 9, 2 * 10 * 6)] == [
        (0, 2), (2, 4), (4, 6), (6, 8), (8, 9)
    ]  # fmt: skip
    assert len(_strips(days, 9, 1)) == 9  # never below one row
    assert len(_strips(days, 9, 1 << 30)) == 1
