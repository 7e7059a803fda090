"""STARFM: hand-checkable case, NaN handling, tiling with the halo, shapes."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.models import FusionInput, Scene, create_model
from pipeline.models.starfm import starfm


def test_hand_checked_pixel() -> None:
    # one band, one row of 3 pixels, window 3, no sensor uncertainty; centre pixel:
    # left fine 0.2 is not similar (|0.1| > std(0.2, 0.3, 0.31) * 2 / 4 = 0.0248),
    # right is: S = 0.04, T = 0.03, D = 2 -> 1/C = 416.7; centre: S = T = 0.05, D = 1 -> 400.
    fine = np.array([[[[0.2, 0.3, 0.31]]]], np.float32)
    coarse = np.array([[[[0.25, 0.25, 0.27]]]], np.float32)
    target = np.full((1, 1, 3), 0.3, np.float32)
    pred, spread = starfm(fine, coarse, target, window=3, sigma_fine=0.0, sigma_coarse=0.0)
    wc, wr = 400 / (400 + 1250 / 3), (1250 / 3) / (400 + 1250 / 3)
    expected = wc * 0.35 + wr * 0.34
    assert pred[0, 0, 1] == pytest.approx(expected, abs=1e-6)
    std = np.sqrt(wc * (0.35 - expected) ** 2 + wr * (0.34 - expected) ** 2)
    assert spread[0, 0, 1] == pytest.approx(std, abs=1e-6)


def test_centre_only_window_is_naive_change(scene_factory) -> None:
    scenes = scene_factory(n_bands=2, size=16)
    fine, coarse = scenes[0].fine[None], scenes[0].coarse[None]
    pred, spread = starfm(fine, coarse, scenes[1].coarse, window=1)
    np.testing.assert_allclose(
        pred, scenes[0].fine + scenes[1].coarse - scenes[0].coarse, atol=1e-6
    )
    np.testing.assert_allclose(spread, 0.0, atol=1e-6)


@pytest.mark.parametrize("n_bands", [1, 4, 7])
@pytest.mark.parametrize("n_refs", [1, 2])
def test_shapes(n_bands: int, n_refs: int, scene_factory) -> None:
    s = scene_factory(n_bands=n_bands, size=16)
    model = create_model("starfm", bands=tuple(f"b{i}" for i in range(n_bands)), size="tiny")
    refs = (s[0], s[2])[:n_refs]
    out = model.predict(FusionInput(refs, Scene(s[1].date, s[1].coarse), model.bands))
    assert out.fine.shape == (n_bands, 16, 16) and out.fine.dtype == np.float32
    assert out.uncertainty.shape == out.fine.shape


def test_nan_filled_from_neighbours(scene_factory) -> None:
    s = scene_factory(size=16)
    s[0].fine[:, 5:8, 5:8] = np.nan
    s[1].coarse[:, 0, 0] = np.nan
    model = create_model("starfm", bands=("g", "r", "n"), size="tiny")
    out = model.predict(FusionInput((s[0],), Scene(s[1].date, s[1].coarse), model.bands)).fine
    assert np.isnan(out[:, 0, 0]).all()
    assert np.isfinite(out[:, 5:8, 5:8]).all()


@pytest.mark.parametrize("kernel", ["auto", "shifted", "unfold"])
def test_pixel_cloudy_in_one_pair_is_fused_from_the_other(scene_factory, kernel: str) -> None:
    # The centre's S/T bound is the largest over the pairs valid there: a cloud in one
    # pair must not send the pixel to the coarse fallback (it did: NaN max, nothing kept).
    s = scene_factory(size=16)
    s[0].fine[:, 5:8, 5:8] = np.nan
    fine = np.stack([s[0].fine, s[2].fine])
    coarse = np.stack([s[0].coarse, s[2].coarse])
    pred, spread = starfm(fine, coarse, s[1].coarse, window=5, kernel=kernel)
    assert np.isfinite(spread[:, 5:8, 5:8]).all()  # fused, not the fallback (NaN spread)
    assert not np.array_equal(pred[:, 5:8, 5:8], s[1].coarse[:, 5:8, 5:8])


def test_output_is_nan_exactly_where_the_target_is(scene_factory) -> None:
    s = scene_factory(size=16)
    s[0].fine[:, 2:5, 2:5] = np.nan
    s[2].fine[:, 2:5, 2:5] = np.nan  # no pair valid at the centre: no S/T bound there
    target = s[1].coarse.copy()
    target[:, 3, 3] = np.nan
    fine = np.stack([s[0].fine, s[2].fine])
    pred, spread = starfm(fine, np.stack([s[0].coarse, s[2].coarse]), target, window=5)
    assert np.array_equal(np.isnan(pred), np.isnan(target))
    assert np.isnan(spread[:, 3, 3]).all() and np.isfinite(spread[:, 2, 2]).all()


def test_tile_padded_by_halo_equals_whole_image(scene_factory) -> None:
    s = scene_factory(size=40)
    model = create_model("starfm", bands=("g", "r", "n"), size="tiny")
    whole = model.predict(FusionInput((s[0], s[2]), Scene(s[1].date, s[1].coarse), model.bands))
    h, (y0, y1, x0, x1) = model.halo, (12, 28, 10, 30)
    win = (slice(None), slice(y0 - h, y1 + h), slice(x0 - h, x1 + h))

    def crop(sc: Scene) -> Scene:
        return Scene(sc.date, sc.coarse[win], None if sc.fine is None else sc.fine[win])

    tile = model.predict(
        FusionInput((crop(s[0]), crop(s[2])), crop(Scene(s[1].date, s[1].coarse)), model.bands)
    )
    np.testing.assert_allclose(tile.fine[:, h:-h, h:-h], whole.fine[:, y0:y1, x0:x1], atol=1e-4)
