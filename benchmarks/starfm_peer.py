"""STARFM against a peer: the project's torch STARFM vs the per-pixel numpy reference.

Same inputs (two pairs, a cloud on one fine reference, one NaN target pixel),
same window; reports the largest absolute difference (goal: <= 1e-4), the band-pixels
beyond 1e-4 and the speed ratio, both on one CPU thread. A band-pixel can differ
when a candidate lies within float32 rounding of the similarity threshold
(the torch version sums the window variance in another order), which flips
that candidate in or out.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from benchmarks.common import best_time, block_mean, load, smooth_field
from benchmarks.starfm_reference import starfm_reference
from pipeline.models.starfm import starfm


def peer_inputs(size: int, n_bands: int = 3) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(fine, coarse, target) of a ``size``² scene with a small cloud and one NaN target pixel."""
    rng = np.random.default_rng(1)
    fine = smooth_field(rng, (2, n_bands, size, size))
    coarse = block_mean(fine, 4) + 0.01
    target = block_mean(fine.mean(0) + 0.03, 4)
    fine[0, :, size // 8 : size // 4, size // 4 : size // 2] = np.nan
    target[-1, size // 2, size // 2] = np.nan
    return fine, coarse, target


def compare(size: int, window: int) -> dict[str, Any]:
    """Max |difference| of prediction and spread, and seconds of each implementation."""
    fine, coarse, target = peer_inputs(size)
    ours = starfm(fine, coarse, target, window=window)
    ref = starfm_reference(fine, coarse, target, window=window)
    diff = max(float(np.nanmax(np.abs(a - b))) for a, b in zip(ours, ref, strict=True))
    over = int(np.sum(np.abs(ours[0] - ref[0]) > 1e-4))
    pairs = zip(ours, ref, strict=True)
    nan_mismatch = sum(int((np.isnan(a) != np.isnan(b)).sum()) for a, b in pairs)
    t_ours = best_time(lambda: starfm(fine, coarse, target, window=window), repeats=2)
    t_ref = best_time(lambda: starfm_reference(fine, coarse, target, window=window), repeats=1)
    return {
        "size": size,
        "window": window,
        "max_abs_diff": diff,
        "pixels_over_1e-4": over,
        "pixels": int(ours[0].size),
        "nan_mismatch": nan_mismatch,
        "torch_s": t_ours,
        "numpy_s": t_ref,
        "speedup": t_ref / t_ours,
        "load": load(),
    }


def run(quick: bool = False) -> dict[str, Any]:
    """Both implementations on one thread; the paper's 31 px window unless ``quick``."""
    torch.set_num_threads(1)
    cases = [(24, 7)] if quick else [(32, 7), (32, 31)]
    return {"rows": [compare(size, window) for size, window in cases]}
