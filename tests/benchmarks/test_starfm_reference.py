"""The per-pixel numpy STARFM of the benchmarks equals the torch STARFM of the pipeline."""

from __future__ import annotations

import numpy as np
import pytest

from benchmarks.starfm_peer import peer_inputs
from benchmarks.starfm_reference import starfm_reference
from pipeline.models.starfm import starfm


@pytest.mark.parametrize("window", [3, 5])
def test_reference_matches_torch_starfm(window: int) -> None:
    # windows without a near-tie of the similarity test (float32 summation order
    # can flip a candidate whose |F - F_centre| is within ~1e-6 of the threshold)
    fine, coarse, target = peer_inputs(16)
    ours = starfm(fine, coarse, target, window=window)
    ref = starfm_reference(fine, coarse, target, window=window)
    for a, b in zip(ours, ref, strict=True):
        assert np.array_equal(np.isnan(a), np.isnan(b))
        np.testing.assert_allclose(a, b, atol=1e-4, equal_nan=True)


def test_reference_falls_back_to_the_coarse_target_without_candidates() -> None:
    fine, coarse, target = peer_inputs(8)
    fine[:] = np.nan
    pred, spread = starfm_reference(fine, coarse, target, window=3)
    np.testing.assert_array_equal(pred, target)
    assert np.isnan(spread).all()
