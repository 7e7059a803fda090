"""Naive baselines: hand-checkable values, NaN filling, protocol and save/load."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest

from pipeline.models import FusionInput, FusionModel, Scene, create_model, load_model

D0, D1, D2 = dt.date(2001, 5, 1), dt.date(2001, 5, 11), dt.date(2001, 5, 31)


def _inputs(n_refs: int = 2) -> FusionInput:
    ones = np.ones((2, 3, 4), np.float32)
    r0 = Scene(D0, coarse=0.1 * ones, fine=0.2 * ones)
    r2 = Scene(D2, coarse=0.3 * ones, fine=0.5 * ones)
    target = Scene(D1, coarse=0.2 * ones)
    return FusionInput(refs=(r0, r2)[:n_refs], target=target, bands=("red", "nir"))


@pytest.mark.parametrize("name", ["naive_fine", "naive_coarse", "naive_change"])
def test_protocol_and_round_trip(name: str, tmp_path) -> None:
    model = create_model(name, bands=("red", "nir"))
    assert isinstance(model, FusionModel)
    assert model.halo == 0 and not model.trainable
    model.save(tmp_path)
    again = load_model(tmp_path)
    assert again.config() == model.config()
    out = again.predict(_inputs())
    assert out.fine.shape == (2, 3, 4) and out.fine.dtype == np.float32


def test_values_by_hand() -> None:
    fine = create_model("naive_fine", bands=("red", "nir")).predict(_inputs()).fine
    np.testing.assert_allclose(fine, 0.2)  # D0 is 10 days away, D2 is 20
    coarse = create_model("naive_coarse", bands=("red", "nir")).predict(_inputs()).fine
    np.testing.assert_allclose(coarse, 0.2)
    # ref0: 0.2 + (0.2-0.1) = 0.3 (w 2/3); ref2: 0.5 + (0.2-0.3) = 0.4 (w 1/3)
    out = create_model("naive_change", bands=("red", "nir")).predict(_inputs())
    np.testing.assert_allclose(out.fine, 2 / 3 * 0.3 + 1 / 3 * 0.4, rtol=1e-6)
    std = np.sqrt(2 / 3 * (0.3 - 1 / 3) ** 2 + 1 / 3 * (0.4 - 1 / 3) ** 2)
    np.testing.assert_allclose(out.uncertainty, std, rtol=1e-5)
    single = create_model("naive_change", bands=("red", "nir")).predict(_inputs(1))
    np.testing.assert_allclose(single.fine, 0.3, rtol=1e-6)
    assert single.uncertainty is None


def test_nan_is_filled_not_spread() -> None:
    inputs = _inputs()
    inputs.refs[0].fine[0, 0, 0] = np.nan
    inputs.refs[1].fine[0, 0, 0] = np.nan
    inputs.refs[0].fine[1, 1, 1] = np.nan
    inputs.target.coarse[0, 2, 3] = np.nan
    for name, n_nan in [("naive_fine", 0), ("naive_change", 1)]:
        out = create_model(name, bands=("red", "nir")).predict(inputs).fine
        # naive_fine never reads the target coarse image, so its NaN does not matter
        assert np.isnan(out).sum() == n_nan
        assert out[0, 0, 0] == pytest.approx(0.2)  # both refs missing: coarse target
    change = create_model("naive_change", bands=("red", "nir")).predict(inputs).fine
    assert change[1, 1, 1] == pytest.approx(0.4)  # only ref2 valid there
