"""SwinSTFM: tiny fit/predict on sizes that are not window multiples, full-size params, tiling."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from pipeline.models import FusionInput, Scene, create_model, load_model
from tests.models.test_ganstfm import ALL_BANDS, fit_and_predict, toy_pairs

torch.set_num_threads(1)


@pytest.mark.parametrize("n_bands", [1, 4, 7])
def test_tiny_fit_predict(n_bands: int) -> None:
    _, report, out = fit_and_predict("swinstfm", n_bands, n_refs=1 + n_bands % 2)
    assert np.isfinite(report.best_val_loss)
    assert out.fine.shape == (n_bands, 80, 32) and out.fine.dtype == np.float32
    assert np.isfinite(out.fine).all() and (out.uncertainty >= 0).all()


def test_full_size_parameter_count() -> None:
    model = create_model("swinstfm", bands=ALL_BANDS[:6], size="full", device="cpu")
    assert abs(model.parameter_count() - 37.5e6) / 37.5e6 < 0.15


def test_tiles_close_to_whole_and_round_trip(tmp_path) -> None:
    """Attention is not tile-exact: tiles padded by ``halo`` stay within a small tolerance."""
    model, _, _ = fit_and_predict("swinstfm", 3)
    pairs = toy_pairs(3, shape=(64, 64))
    inputs = FusionInput(tuple(pairs[:1]), Scene(pairs[2].date, pairs[2].coarse), model.bands)
    model.params["tta"] = 1
    whole = model.predict(inputs).fine
    model.params["tile"] = 32
    tiled = model.predict(inputs).fine
    assert np.abs(tiled - whole).max() < 0.05
    model.save(tmp_path)
    again = load_model(tmp_path)
    np.testing.assert_allclose(again.predict(inputs).fine, tiled, atol=1e-5)


def test_untrained_is_its_smoothed_change_base_and_it_always_trains() -> None:
    """Zero head: the untrained network returns fine ref + box(coarse change); with two
    training dates the engine still takes gradient steps (cross-date task)."""
    from pipeline.models._torch import smoothed_change

    bands = ALL_BANDS[:2]
    pairs = toy_pairs(2)
    model = create_model("swinstfm", bands=bands, size="tiny", tta=1)
    ref, target = pairs[0], pairs[2]
    out = model.predict(FusionInput((ref,), Scene(target.date, target.coarse), bands)).fine
    change = smoothed_change(torch.as_tensor(target.coarse)[None],
                             torch.as_tensor(ref.coarse)[None], 3)[0].numpy()  # fmt: skip
    np.testing.assert_allclose(out, ref.fine + change, atol=1e-5)
    report = model.fit(pairs[:2], progress=False, bands=bands)
    assert report.steps > 0 and report.task == "cross-date"
    assert report.notes["loss_share_end"]["charbonnier"] > 0.5  # reflectance dominates
