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
    # the reference's whole-image threshold differs between a tile and the image by
    # construction; the tile contract holds with each window's own threshold
    model = create_model("estarfm", bands=BANDS, size="tiny", similarity="window")
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


def _stripes(delta: float, lone: bool = False) -> FusionInput:
    """One band, 9 x 9: fine 0.2 / 0.4 in alternating columns, coarse = fine / 2 + 0.1.

    Date 2: coarse + delta, fine + 2 delta (so V = 2); target: coarse + 2 delta.
    With ``lone`` the centre pixel is 0.3 (similar to nothing but itself).
    """
    f1 = np.where(np.arange(9)[None, :] % 2 == 0, 0.2, 0.4) * np.ones((9, 1))
    if lone:
        f1[4, 4] = 0.3
    c1 = f1 / 2 + 0.1
    f32 = lambda a: a[None].astype(np.float32)  # noqa: E731
    refs = (Scene(D0, f32(c1), f32(f1)), Scene(D2, f32(c1 + delta), f32(f1 + 2 * delta)))
    return FusionInput(refs, Scene(D1, f32(c1 + 2 * delta)), ("red",))


def test_hand_checked_conversion_coefficient_and_its_guard() -> None:
    # Similar pixels of the centre: its stripe class (threshold 2 std / 4 ~ 0.05).
    # Coarse change 0.05 >= 0.02: the pooled regression gives V = 2 (significant),
    # both pairs predict f1 + 4 delta exactly.
    model = create_model("estarfm", bands=("red",), size="tiny", window=5)
    out = model.predict(_stripes(0.05))
    assert out.fine[0, 4, 4] == pytest.approx(0.2 + 4 * 0.05, abs=1e-6)
    # Coarse change 0.01 < 0.02: no regression, V = 1: P1 = f1 + 2 delta, P2 = f1 + 3 delta;
    # window-mean coarse changes 2 delta and delta give T1 = 1/3, T2 = 2/3.
    out = model.predict(_stripes(0.01))
    assert out.fine[0, 4, 4] == pytest.approx(0.2 + (2 / 3 + 2) * 0.01, abs=1e-6)
    assert out.uncertainty[0, 4, 4] == pytest.approx(np.sqrt(2 / 9) * 0.01, abs=1e-6)


def test_too_few_similar_pixels_fall_back_to_the_window_change() -> None:
    # A lone centre has 1 similar pixel (<= 5): T1 (F1 + dC1) + T2 (F2 + dC2) with the
    # window-mean coarse changes dC1 = 2 delta, dC2 = delta and T1 = 1/3, T2 = 2/3.
    delta = 0.05
    model = create_model("estarfm", bands=("red",), size="tiny", window=5)
    out = model.predict(_stripes(delta, lone=True))
    expected = (0.3 + 2 * delta) / 3 + 2 * (0.3 + 2 * delta + delta) / 3
    assert out.fine[0, 4, 4] == pytest.approx(expected, abs=1e-6)


def test_similarity_threshold_is_the_whole_image_std() -> None:
    from pipeline.models.estarfm import _image_threshold

    rng = np.random.default_rng(2)
    fine = rng.random((2, 10, 12)).astype(np.float32)
    fine[0, 3, 3] = np.nan
    th = _image_threshold(torch.as_tensor(fine), classes=4).numpy()
    expected = [np.nanstd(b, ddof=1) * 2 / 4 for b in fine]
    np.testing.assert_allclose(th, expected, rtol=1e-5)
    with pytest.raises(Exception, match="similarity must be"):
        create_model("estarfm", bands=BANDS, size="tiny", similarity="local")


def test_numba_and_shifted_sums_agree(monkeypatch) -> None:
    import pipeline.models.estarfm_kernel as kernel

    rng = np.random.default_rng(1)
    inputs, _ = linear_change_inputs((20, 18))
    noisy = tuple(
        Scene(r.date, r.coarse, r.fine + rng.normal(0, 0.01, r.fine.shape).astype(np.float32))
        for r in inputs.refs
    )
    inputs = FusionInput(noisy, inputs.target, BANDS)
    inputs.refs[0].fine[:, 4, 4] = np.nan
    model = create_model("estarfm", bands=BANDS, size="tiny")
    compiled = model.predict(inputs)
    monkeypatch.setattr(kernel, "has_numba", lambda: False)
    shifted = model.predict(inputs)
    np.testing.assert_allclose(shifted.fine, compiled.fine, atol=1e-6)
    np.testing.assert_allclose(shifted.uncertainty, compiled.uncertainty, atol=1e-6)
