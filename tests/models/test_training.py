"""Torch models on the shared engine: fit, shapes, NaN, save/load, tiling, seeds."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.errors import InputError
from pipeline.models import FusionInput, Scene, create_model, load_model

NETS = ["resstf", "resstf_prior", "edcstfn"]


def _inputs(s: list[Scene], n_refs: int, bands: tuple[str, ...]) -> FusionInput:
    return FusionInput((s[0], s[2])[:n_refs], Scene(s[1].date, s[1].coarse), bands)


@pytest.mark.parametrize("name", NETS)
@pytest.mark.parametrize("n_bands", [1, 7])
def test_fit_predict_shapes(name: str, n_bands: int, scene_factory) -> None:
    bands = tuple(f"b{i}" for i in range(n_bands))
    s = scene_factory(n_bands=n_bands)
    model = create_model(name, bands=bands, size="tiny")
    report = model.fit([s[0], s[2]], bands=bands, progress=False)
    assert report.epochs >= 1 and np.isfinite(report.best_val_loss)
    for n_refs in (1, 2):
        out = model.predict(_inputs(s, n_refs, bands))
        assert out.fine.shape == (n_bands, 32, 32) and out.fine.dtype == np.float32
        assert (out.uncertainty is None) == (n_refs == 1)


@pytest.mark.parametrize("name", NETS)
def test_nan_inputs_excluded_and_flagged(name: str, scene_factory) -> None:
    s = scene_factory()
    s[0].fine[:, :20, :20] = np.nan  # most patches rejected / masked, never NaN in a loss
    model = create_model(name, bands=("g", "r", "n"), size="tiny")
    report = model.fit([s[0], s[2]], bands=("g", "r", "n"), progress=False)
    assert all(np.isfinite(h["loss"]) for h in report.history[1:])
    s[1].coarse[:, 3, 4] = np.nan
    out = model.predict(_inputs(s, 2, ("g", "r", "n"))).fine
    assert np.isnan(out[:, 3, 4]).all() and np.isfinite(out).sum() == out.size - 3


@pytest.mark.parametrize("name", NETS)
def test_save_load_round_trip(name: str, tmp_path, scene_factory) -> None:
    s = scene_factory()
    model = create_model(name, bands=("g", "r", "n"), size="tiny")
    model.fit([s[0], s[2]], bands=("g", "r", "n"), progress=False)
    model.save(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["config.json", "weights.safetensors"]
    again = load_model(tmp_path)
    a = model.predict(_inputs(s, 2, ("g", "r", "n")))
    b = again.predict(_inputs(s, 2, ("g", "r", "n")))
    np.testing.assert_array_equal(a.fine, b.fine)


def test_bad_weights_file_is_one_line(tmp_path) -> None:
    model = create_model("edcstfn", bands=("g",), size="tiny")
    model.save(tmp_path)
    (tmp_path / "weights.safetensors").write_bytes(b"not a safetensors file")
    with pytest.raises(InputError, match=r"weights\.safetensors"):
        load_model(tmp_path)


@pytest.mark.parametrize("name", NETS)
def test_seeded_training_is_deterministic(name: str, scene_factory) -> None:
    s = scene_factory()
    outs = []
    for _ in range(2):
        model = create_model(name, bands=("g", "r", "n"), size="tiny", seed=3)
        model.fit([s[0], s[2]], bands=("g", "r", "n"), progress=False)
        outs.append(model.predict(_inputs(s, 1, ("g", "r", "n"))).fine)
    np.testing.assert_array_equal(outs[0], outs[1])


def test_tile_padded_by_halo_equals_whole_image(scene_factory) -> None:
    s = scene_factory(size=48)
    model = create_model("resstf", bands=("g", "r", "n"), size="tiny", tile=16)
    model.fit([s[0], s[2]], bands=("g", "r", "n"), progress=False)
    whole = model.predict(_inputs(s, 2, ("g", "r", "n")))
    h, (y0, y1, x0, x1) = model.halo, (16, 32, 14, 34)
    win = (slice(None), slice(y0 - h, y1 + h), slice(x0 - h, x1 + h))
    crop = [Scene(x.date, x.coarse[win], x.fine[win]) for x in s]
    tile = model.predict(_inputs(crop, 2, ("g", "r", "n")))
    np.testing.assert_allclose(tile.fine[:, h:-h, h:-h], whole.fine[:, y0:y1, x0:x1], atol=1e-4)


def test_parameter_counts_of_published_configs() -> None:
    bands = tuple(f"b{i}" for i in range(6))
    assert 0.55e6 < create_model("resstf", bands=bands).parameter_count() < 0.65e6
    # the published network; the engine's linear path beside it is an addition (~22 k:
    # the pair features and their signed copy, linear_signed)
    published = create_model("edcstfn", bands=bands, linear_kernel=0)
    assert 0.25e6 < published.parameter_count() < 0.31e6
    extra = create_model("edcstfn", bands=bands).parameter_count() - published.parameter_count()
    assert extra == 2 * (6 * 6 + 6 * 6) * 6 * 25 + 6


@pytest.mark.gpu
@pytest.mark.skipif(not __import__("torch").cuda.is_available(), reason="needs CUDA")
def test_cuda_bf16_predict(scene_factory) -> None:
    s = scene_factory()
    model = create_model("edcstfn", bands=("g", "r", "n"), size="tiny", device="cuda")
    model.fit([s[0], s[2]], bands=("g", "r", "n"), progress=False)
    assert np.isfinite(model.predict(_inputs(s, 2, ("g", "r", "n"))).fine).all()


@pytest.mark.parametrize("side", [8, 24, 64, 200])
def test_ms_ssim_loss_handles_small_patches(side: int) -> None:
    import torch

    from pipeline.models.losses import ms_ssim_loss

    x = torch.rand(2, 3, side, side) * 0.5
    valid = torch.ones(2, 1, side, side)
    assert float(ms_ssim_loss(x, x, valid)) == pytest.approx(0.0, abs=1e-5)
    noisy = float(ms_ssim_loss(x + 0.1 * torch.rand_like(x), x, valid))
    assert 0.0 < noisy < 1.0
