"""The all-compiled CPU STARFM gives the same bits as torch planes + the compiled candidate loop."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch

from benchmarks.starfm_peer import peer_inputs
from pipeline.models.starfm import _in_place, _planes, starfm


def _torch_planes_path(
    fine: np.ndarray, coarse: np.ndarray, target: np.ndarray, window: int
) -> tuple[np.ndarray, np.ndarray]:
    """The CPU path before :mod:`pipeline.models.starfm_cpu`: torch planes, numba sums."""
    radius = window // 2
    side = torch.arange(-radius, radius + 1, dtype=torch.float32)
    dist = torch.sqrt(side[:, None] ** 2 + side[None, :] ** 2).reshape(1, 1, -1, 1)
    opts: dict[str, Any] = {
        "radius": radius,
        "num_classes": 4.0,
        "u_s": float(np.hypot(0.002, 0.002)),
        "u_t": float(np.sqrt(2.0) * 0.002),
        "distance": 1.0 + dist / max(radius, 1),
    }
    with torch.no_grad():
        planes = _planes(
            torch.as_tensor(fine), torch.as_tensor(coarse), torch.as_tensor(target[None]), opts
        )
        return _in_place(planes, "auto", opts)


def _random_inputs(n_refs: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Reflectance-like planes with clouds on the references and NaN holes in the target."""
    rng = np.random.default_rng(seed)
    shape = (n_refs, 3, 37, 29)
    fine = rng.uniform(0.02, 0.5, shape).astype(np.float32)
    coarse = (fine + rng.normal(0, 0.02, shape)).astype(np.float32)
    target = (coarse[0] + rng.normal(0, 0.03, shape[1:])).astype(np.float32)
    fine[0, :, 5:15, 3:12] = np.nan
    coarse[-1, 1, 20:25, 20:29] = np.nan
    target[:, 30:, :4] = np.nan
    return fine, coarse, target


@pytest.mark.parametrize(("n_refs", "window"), [(1, 1), (1, 5), (2, 3), (2, 5), (2, 9)])
@pytest.mark.parametrize("source", ["peer", "random"])
def test_compiled_cpu_path_gives_the_same_bits(n_refs: int, window: int, source: str) -> None:
    if source == "peer":
        fine, coarse, target = peer_inputs(24)
        fine, coarse = fine[:n_refs], coarse[:n_refs]
    else:
        fine, coarse, target = _random_inputs(n_refs, seed=window)
    ref = _torch_planes_path(fine, coarse, target, window)
    out = starfm(fine, coarse, target, window=window)  # "auto" on the CPU: starfm_cpu
    for a, b in zip(out, ref, strict=True):
        assert a.dtype == np.float32 and a.shape == b.shape
        np.testing.assert_array_equal(a, b)  # NaN in the same places, every value the same
