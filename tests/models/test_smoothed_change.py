"""smoothed_change / smoothed_change_blend: values by hand, window chosen on training dates."""

from __future__ import annotations

import datetime as dt

import numpy as np

from pipeline.models import FusionInput, Scene, create_model, load_model
from pipeline.models.baselines import box_mean, choose_window

D0, D1, D2 = dt.date(2001, 5, 1), dt.date(2001, 5, 11), dt.date(2001, 5, 31)


def _pairs(noise: float, size: int = 80, seed: int = 0) -> list[Scene]:
    """Fixed fine detail + a uniform change per date; coarse = true change + pixel noise."""
    rng = np.random.default_rng(seed)
    base = (0.2 + 0.1 * rng.random((2, size, size))).astype(np.float32)
    scenes = []
    for k, day in enumerate((D0, D1, D2)):
        fine = base + 0.03 * k
        coarse = 0.25 + 0.03 * k + noise * rng.standard_normal(base.shape)
        scenes.append(Scene(day, coarse.astype(np.float32), fine.astype(np.float32)))
    return scenes


def test_box_mean_ignores_nan() -> None:
    image = np.ones((1, 5, 5))
    image[0, 2, 2] = np.nan
    np.testing.assert_allclose(box_mean(image, 3), 1.0)
    assert np.isnan(box_mean(np.full((1, 3, 3), np.nan), 3)).all()


def test_window_follows_the_coarse_noise_of_the_training_dates() -> None:
    assert choose_window(_pairs(noise=0.0)) == 1  # exact change: no smoothing (tie -> smallest)
    assert choose_window(_pairs(noise=0.02)) > 9  # noisy change: average it
    # one pair: sized on the pair itself (its coarse image is noise around flat: a wide box)
    assert choose_window(_pairs(0.02)[:1]) >= 17


def test_values_by_hand_and_blend() -> None:
    s = _pairs(noise=0.0)
    inputs = FusionInput((s[0], s[2]), Scene(D1, s[1].coarse), ("red", "nir"))
    model = create_model("smoothed_change", bands=("red", "nir"))
    model.fit([s[0], s[2]], bands=("red", "nir"), progress=False)
    assert model.params["window"] == 1 and model.halo == 0
    out = model.predict(inputs)  # nearest ref D0 (10 days) + exact change
    np.testing.assert_allclose(out.fine, s[1].fine, atol=1e-6)
    assert out.uncertainty is None
    blend = create_model("smoothed_change_blend", bands=("red", "nir"), window=1)
    both = blend.predict(inputs)
    np.testing.assert_allclose(both.fine, s[1].fine, atol=1e-6)
    assert both.uncertainty is not None


def test_round_trip_keeps_the_chosen_window(tmp_path) -> None:
    model = create_model("smoothed_change_blend", bands=("red", "nir"))
    model.fit(_pairs(noise=0.02), bands=("red", "nir"), progress=False)
    model.save(tmp_path)
    again = load_model(tmp_path)
    assert again.config() == model.config() and again.halo == model.halo > 0
