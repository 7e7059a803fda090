"""``halo`` covers the whole receptive field: tiles equal the whole image to float precision.

A model's ``halo`` is the context a tile (and a fuse chunk) is padded with; a pixel
whose inputs reach beyond it is computed from replicate padding instead of its true
neighbours, and the tiles' edges show in the fused image. resstf_prior and EDCSTFN
feed their trunk and their linear path with features that already span the change
window, so each adds its own reach to the window's.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from pipeline.models import FusionInput, Scene, create_model

BANDS = ("green", "red", "nir")


def _inputs(scene_factory) -> FusionInput:
    """One reference and a target of 64 px with detail at every scale (all pixels valid)."""
    ref, target = scene_factory(size=64, n_dates=2, seed=4)
    rng = np.random.default_rng(5)
    wiggle = (0.02 * rng.standard_normal(target.coarse.shape)).astype(np.float32)
    return FusionInput((ref,), Scene(target.date, target.coarse + wiggle), BANDS)


def _randomised(name: str, window: int) -> object:
    """The tiny model with every weight random (the zero head and linear path included),
    so each part of the network reaches as far as it can."""
    model = create_model(
        name, bands=BANDS, size="tiny", change_window=window, change_windows=[window],
        blend="time", linear_signed=False,
    )  # fmt: skip
    torch.manual_seed(0)
    with torch.no_grad():
        for param in model.net.parameters():
            param.copy_(0.2 * torch.randn_like(param))
    return model


@pytest.mark.parametrize("name", ["resstf_prior", "edcstfn"])
@pytest.mark.parametrize("window", [1, 9])
def test_tiles_equal_the_whole_image(name: str, window: int, scene_factory) -> None:
    inputs = _inputs(scene_factory)
    model = _randomised(name, window)
    model.params["tile"] = 256  # one tile: the whole image
    whole = model.predict(inputs).fine
    model.params["tile"] = 16  # 16 tiles: every core pixel within 16 px of a tile edge
    tiled = model.predict(inputs).fine
    np.testing.assert_allclose(tiled, whole, atol=2e-5, rtol=0)


@pytest.mark.parametrize("name", ["resstf_prior", "edcstfn"])
def test_halo_adds_the_reaches(name: str) -> None:
    """Trunk and linear path read features that span the window: their reaches add."""
    model = _randomised(name, 9)
    trunk = int(model.params["depth"]) if name == "resstf_prior" else 6
    kernel = int(model.params["linear_kernel"]) // 2
    assert model.halo == 4 + max(trunk, kernel)
