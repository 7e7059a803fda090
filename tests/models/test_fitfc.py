"""Fit-FC: exact recovery of a local linear change from one pair, tiling, two refs, round trip."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from pipeline.models import FusionInput, Scene, create_model, load_model
from tests.models.test_estarfm import BANDS, D0, D1, _classes, linear_change_inputs, row_tile

torch.set_num_threads(1)


def test_linear_relation_is_recovered_from_one_pair() -> None:
    fine0 = _classes((24, 20), seed=3)
    gain = np.array([1.2, 0.8, 1.1], np.float32)[:, None, None]
    offset = np.array([0.01, -0.02, 0.03], np.float32)[:, None, None]
    truth = gain * fine0 + offset
    inputs = FusionInput((Scene(D0, fine0, fine0),), Scene(D1, truth.copy()), BANDS)
    out = create_model("fitfc", bands=BANDS, size="tiny").predict(inputs)
    assert out.fine.dtype == np.float32
    np.testing.assert_allclose(out.fine, truth, atol=1e-5)
    np.testing.assert_allclose(out.uncertainty, 0.0, atol=1e-4)


def test_two_refs_and_tiles(tmp_path) -> None:
    inputs, truth = linear_change_inputs((40, 24))
    # ratio 4: the RM window spans 3 x 3 coarse pixels of 4 px, so the halo fits this image
    model = create_model("fitfc", bands=BANDS, size="tiny", ratio=4)
    whole = model.predict(inputs)
    np.testing.assert_allclose(whole.fine, truth, atol=1e-4)
    h, y0, y1 = model.halo, 12, 28
    part = model.predict(row_tile(inputs, y0, y1, h))
    np.testing.assert_allclose(part.fine[:, h:-h], whole.fine[:, y0:y1], atol=1e-5)
    np.testing.assert_allclose(part.uncertainty[:, h:-h], whole.uncertainty[:, y0:y1], atol=1e-5)
    model.save(tmp_path)
    assert load_model(tmp_path).config() == model.config()


def test_nan_only_where_target_is_nan() -> None:
    inputs, _ = linear_change_inputs()
    inputs.refs[0].fine[:, 3, 3] = np.nan
    inputs.target.coarse[:, 7, 7] = np.nan
    out = create_model("fitfc", bands=BANDS, size="tiny").predict(
        FusionInput(inputs.refs[:1], inputs.target, BANDS)
    )
    assert np.isfinite(out.fine[:, 3, 3]).all()
    assert np.isnan(out.fine).sum() <= len(BANDS) * 1


def test_hand_checked_regression_on_the_coarse_grid() -> None:
    # 3 x 3 coarse pixels of 4 x 4 fine ones, coarse values 0.1 .. 0.9; target 2 c + 0.1
    # except the centre coarse pixel (+0.09). Least squares over the 9 coarse samples:
    # the outlier sits at the mean of x, so a = 2 and b = 0.1 + 0.09 / 9 = 0.11; the
    # centre residual is 1.19 - (2 * 0.5 + 0.11) = 0.08. The fine centre block is a
    # checkerboard 0.5 +- 0.04 (its mean is the coarse value): at (5, 5), F = 0.54 and
    # the prediction is 2 * 0.54 + 0.11 + 0.08 = 1.27 (SF over the 8 equal pixels,
    # no interpolation with residual_window = 1).
    coarse = np.repeat(np.repeat(np.arange(1, 10).reshape(3, 3) / 10, 4, 0), 4, 1)
    fine = coarse.copy()
    checker = np.where(np.add.outer(np.arange(4), np.arange(4)) % 2 == 0, 0.04, -0.04)
    fine[4:8, 4:8] += checker
    target = 2 * coarse + 0.1
    target[4:8, 4:8] += 0.09
    f32 = lambda a: a[None].astype(np.float32)  # noqa: E731
    inputs = FusionInput((Scene(D0, f32(coarse), f32(fine)),), Scene(D1, f32(target)), ("red",))
    model = create_model(
        "fitfc", bands=("red",), size="tiny", ratio=4, n_similar=8, residual_window=1
    )
    out = model.predict(inputs)
    assert out.fine[0, 5, 5] == pytest.approx(1.27, abs=1e-5)
    assert out.fine[0, 5, 6] == pytest.approx(2 * 0.46 + 0.11 + 0.08, abs=1e-5)


def test_model_stage_passes_the_grid_ratio() -> None:
    from pipeline.config import ModelSpec
    from pipeline.train import _params

    spec = ModelSpec(name="fitfc")
    assert _params(spec, "fitfc", 8)["ratio"] == 8  # the grid's coarse_factor, not 16
    assert _params(ModelSpec(name="fitfc", params={"ratio": 4}), "fitfc", 8)["ratio"] == 4
    assert "ratio" not in _params(ModelSpec(name="starfm"), "starfm", 8)
