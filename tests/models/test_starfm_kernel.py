"""The STARFM kernels that read windows in place equal the unfolded implementation."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from benchmarks.starfm_peer import peer_inputs
from pipeline.errors import InputError
from pipeline.models import starfm_kernel
from pipeline.models.starfm import starfm


def _inputs(n_refs: int, size: int = 24) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Two-pair inputs with a cloud on one fine reference and a NaN target pixel."""
    fine, coarse, target = peer_inputs(size)
    return fine[:n_refs], coarse[:n_refs], target


@pytest.mark.parametrize("kernel", ["auto", "shifted"])
@pytest.mark.parametrize(("n_refs", "window"), [(1, 1), (1, 7), (2, 3), (2, 9)])
def test_in_place_kernels_match_the_unfolded_windows(kernel: str, n_refs: int, window: int) -> None:
    fine, coarse, target = _inputs(n_refs)
    ref = starfm(fine, coarse, target, window=window, kernel="unfold")
    out = starfm(fine, coarse, target, window=window, kernel=kernel)
    for a, b in zip(out, ref, strict=True):
        assert a.dtype == np.float32 and np.array_equal(np.isnan(a), np.isnan(b))
        np.testing.assert_allclose(a, b, atol=1e-5, equal_nan=True)


def test_cpu_auto_kernel_is_the_compiled_one() -> None:
    assert starfm_kernel.has_numba()


def test_unknown_kernel_is_refused() -> None:
    fine, coarse, target = _inputs(1, 8)
    with pytest.raises(InputError, match="unknown STARFM kernel"):
        starfm(fine, coarse, target, window=3, kernel="fast")


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_kernel_matches_cpu() -> None:
    fine, coarse, target = _inputs(2, 64)
    cpu = starfm(fine, coarse, target, window=15, device="cpu")
    gpu = starfm(fine, coarse, target, window=15, device="cuda")
    for a, b in zip(gpu, cpu, strict=True):
        np.testing.assert_allclose(a, b, atol=1e-5, equal_nan=True)
