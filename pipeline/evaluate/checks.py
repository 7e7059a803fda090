"""Refuse inputs that cannot give a meaningful score, in one line each (exit 2).

An all-invalid or constant truth makes RMSE meaningless and CC/SSIM undefined;
an all-invalid or constant fine reference means there is nothing to fuse from
(a masked or empty file, a wrong scale). Both are reported before any training.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from pipeline.errors import InputError
from pipeline.evaluate.manifest import Dataset
from pipeline.models.base import Scene

#: Smallest per-band standard deviation (reflectance) of an image worth scoring.
MIN_STD = 1e-6


def _problem(image: np.ndarray | None, mask: np.ndarray | None = None) -> str | None:
    """Why a (band, y, x) image is degenerate, or None."""
    if image is None:
        return "has no fine image"
    valid = np.isfinite(image)
    if mask is not None:
        valid &= mask[None]
    if not valid.any():
        return "has no valid pixel (all nodata or masked)"
    for band in range(image.shape[0]):
        values = image[band][valid[band]]
        if values.size < 2 or float(np.std(values)) < MIN_STD:
            return f"is constant in band {band + 1}"
    return None


def check_scorable(dataset: Dataset, target: Scene, pairs: Sequence[Scene]) -> None:
    """Raise InputError (one line) when the target or every reference is degenerate."""
    path = dataset.manifest.path
    why = _problem(target.fine, dataset.masks.get(target.date))
    if why:
        raise InputError(
            f"manifest {path}: date {target.date} {why}: it cannot be scored; "
            "predict another date or fix its fine raster/mask"
        )
    for pair in pairs:
        why = _problem(pair.fine, dataset.masks.get(pair.date))
        if why:
            raise InputError(
                f"manifest {path}: date {pair.date} {why}: it cannot serve as a reference; "
                "drop it from the manifest or fix its fine raster/mask"
            )
    for scene in (target, *pairs):
        if not np.isfinite(scene.coarse).any():
            raise InputError(
                f"manifest {path}: date {scene.date} coarse image has no valid pixel; "
                "fix its coarse raster or scaling"
            )
