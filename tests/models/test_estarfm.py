"""ESTARFM: exact recovery of a linear temporal change, NaN handling, tiling, round trip."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest
import torch

from pipeline.models import FusionInput, FusionModel, Scene, create_model, load_model

torch.set_num_threads(1)
BANDS = ("green", "red", "nir")
D0, D1, D2 = dt.date(2001, 5, 24), dt.date(2001, 7, 11), dt.date(2001, 8, 12)


def _classes(shape: tuple[int, int], seed: int = 0) -> np.ndarray:
    """Piecewise-constant (band, y, x) field of 4 classes in 4-pixel stripes."""
    rng = np.random.default_rng(seed)
    levels = rng.uniform(0.05, 0.5, size=(len(BANDS), 4)).astype(np.float32)
    ids = (np.arange(shape[1])[None, :] // 4 + np.arange(shape[0])[:, None] // 8) % 4
    return levels[:, ids]


def linear_change_inputs(shape: tuple[int, int] = (24, 20)) -> tuple[FusionInput, np.ndarray]:
    """Fine reflectance changing linearly in time; coarse = fine + a sensor bias."""
    base = _classes(shape)
    slope = np.array([0.001, -0.0005, 0.002], np.float32)[:, None, None]

    def fine(day: dt.date) -> np.ndarray:
        return (base + slope * (day - D0).days).astype(np.float32)

    bias = np.float32(0.01)
    refs = tuple(Scene(d, coarse=fine(d) + bias, fine=fine(d)) for d in (D0, D2))
    target = Scene(D1, coarse=fine(D1) + bias)
    return FusionInput(refs=refs, target=target, bands=BANDS), fine(D1)


def row_tile(inputs: FusionInput, y0: int, y1: int, halo: int) -> FusionInput:
    """Rows ``y0:y1`` of every image, padded by ``halo`` rows of real data on each side."""
    rows = slice(y0 - halo, y1 + halo)
    refs = tuple(Scene(r.date, r.coarse[:, rows], r.fine[:, rows]) for r in inputs.refs)
    return FusionInput(refs, Scene(inputs.target.date, inputs.target.coarse[:, rows]), BANDS)


def test_linear_change_is_recovered_exactly() -> None:
    inputs, truth = linear_change_inputs()
    out = create_model("estarfm", bands=BANDS, size="tiny").predict(inputs)
    assert out.fine.dtype == np.float32 and out.fine.shape == truth.shape
    np.testing.assert_allclose(out.fine, truth, atol=1e-5)
    np.testing.assert_allclose(out.uncertainty, 0.0, atol=1e-5)


def test_tiles_with_halo_match_whole_image() -> None:
    rng = np.random.default_rng(1)
    inputs, _ = linear_change_inputs((30, 26))
    noisy = [
        Scene(r.date, r.coarse, r.fine + rng.normal(0, 0.01, r.fine.shape).astype(np.float32))
        for r in inputs.refs
    ]
    inputs = FusionInput(tuple(noisy), inputs.target, BANDS)
    model = create_model("estarfm", bands=BANDS, size="tiny")
    whole = model.predict(inputs)
    h, y0, y1 = model.halo, 10, 20
    part = model.predict(row_tile(inputs, y0, y1, h))
    np.testing.assert_allclose(part.fine[:, h:-h], whole.fine[:, y0:y1], atol=1e-5)
    np.testing.assert_allclose(part.uncertainty[:, h:-h], whole.uncertainty[:, y0:y1], atol=1e-5)


def test_nan_falls_back_and_needs_two_refs(tmp_path) -> None:
    inputs, _ = linear_change_inputs()
    inputs.refs[0].fine[:, 5, 5] = np.nan
    inputs.target.coarse[:, 0, 0] = np.nan
    model = create_model("estarfm", bands=BANDS, size="tiny")
    assert isinstance(model, FusionModel) and model.n_refs == (2,)
    out = model.predict(inputs)
    assert np.isnan(out.fine).sum() <= len(BANDS)
    assert np.isfinite(out.fine[:, 5, 5]).all()
    with pytest.raises(ValueError, match="2 reference"):
        model.predict(FusionInput(inputs.refs[:1], inputs.target, BANDS))
    model.save(tmp_path)
    again = load_model(tmp_path)
    assert again.config() == model.config() and again.halo == model.halo
