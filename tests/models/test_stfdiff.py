"""STFDiff: tiny fit/predict, untrained = base, seeded spread, full-size params, round trip."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from pipeline.models import FusionInput, Scene, create_model, load_model
from tests.models.test_ganstfm import ALL_BANDS, fit_and_predict, toy_pairs

torch.set_num_threads(1)


@pytest.mark.parametrize("n_bands", [1, 2, 7])
def test_tiny_fit_predict(n_bands: int) -> None:
    _, report, out = fit_and_predict("stfdiff", n_bands, n_refs=1 + n_bands % 2)
    assert np.isfinite(report.best_val_loss)
    assert out.fine.shape == (n_bands, 80, 32) and out.fine.dtype == np.float32
    assert np.isfinite(out.fine).all() and (out.uncertainty >= 0).all()


def test_untrained_returns_base_and_trained_head_spreads() -> None:
    """Zero head: x0 = 0 at every step, so the prediction is the base with no spread;
    once the head is non-zero, different seeds give different samples."""
    bands = ALL_BANDS[:2]
    pairs = toy_pairs(2)
    model = create_model("stfdiff", bands=bands, size="tiny", ddim_steps=5)
    inputs = FusionInput(tuple(pairs[:2]), Scene(pairs[2].date, pairs[2].coarse), bands)
    out = model.predict(inputs)
    tensors = [torch.as_tensor(np.stack([r.coarse for r in pairs[:2]]))[None],
               torch.as_tensor(np.stack([r.fine for r in pairs[:2]]))[None],
               torch.as_tensor(pairs[2].coarse)[None], torch.tensor([[-61.0, -30.0]])]  # fmt: skip
    base, _ = model.condition(*tensors)
    np.testing.assert_allclose(out.fine, base[0].numpy(), atol=1e-6)
    assert float(out.uncertainty.max()) == 0.0
    torch.nn.init.normal_(model.net.out[-1].weight, std=0.1)
    assert float(model.predict(inputs).uncertainty.max()) > 0.0


def test_full_size_parameter_count() -> None:
    model = create_model("stfdiff", bands=ALL_BANDS[:6], size="full", device="cpu")
    assert abs(model.parameter_count() - 7.5e6) / 7.5e6 < 0.15


def test_deterministic_and_round_trip(tmp_path) -> None:
    model, _, out = fit_and_predict("stfdiff", 3)
    pairs = toy_pairs(3)
    inputs = FusionInput(tuple(pairs[:2]), Scene(pairs[2].date, pairs[2].coarse), model.bands)
    np.testing.assert_array_equal(model.predict(inputs).fine, out.fine)
    model.save(tmp_path)
    again = load_model(tmp_path)
    np.testing.assert_allclose(again.predict(inputs).fine, out.fine, atol=1e-5)
    assert model.train_steps == 100 and model.params["ddim_steps"] < 100
    assert create_model("stfdiff", bands=("red",), size="small").params["ddim_steps"] >= 50


def test_step_budget_caps_the_steps() -> None:
    """``budget_steps`` (the zoo benchmark's load-independent budget) stops training."""
    bands = ALL_BANDS[:1]
    model = create_model("stfdiff", bands=bands, size="tiny", epochs=5, steps_per_epoch=4,
                         patience=10, budget_steps=6)  # fmt: skip
    report = model.fit(toy_pairs(1), progress=False, bands=bands)
    assert report.steps == 6 and report.epochs == 2
