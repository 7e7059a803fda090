"""Fit-FC: exact recovery of a local linear change from one pair, tiling, two refs, round trip."""

from __future__ import annotations

import numpy as np
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
    model = create_model("fitfc", bands=BANDS, size="tiny")
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
