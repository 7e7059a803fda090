"""Naive baselines every fusion model must beat.

* ``naive_fine``: the fine reference nearest in time, unchanged (assumes no change).
* ``naive_coarse``: the target coarse image, unchanged (no spatial detail added).
* ``naive_change``: fine ref + (coarse target - coarse ref) per reference, averaged
  over references with inverse-time weights (the simplest "add the coarse change"
  fusion; STARFM with a 1x1 window and no similar pixels).
* ``smoothed_change``: fine ref (nearest) + coarse change box-averaged over a window
  chosen on the training dates only; ``smoothed_change_blend``: the same from both
  references, inverse-time weighted. Untrained ten-line numpy that real MODIS makes
  hard to beat (estarfm-2001: RMSE 0.0071 vs 0.0082 for ``naive_change``).

The first three have no ``fit`` and ``halo == 0``; the smoothed ones choose their
window in ``fit`` (no weights) and have ``halo = window // 2``. Where a reference is NaN the others
fill in (weights renormalised); where all are NaN the coarse target is used, so
the output is NaN only where the target coarse image is NaN (the
:mod:`pipeline.models.base` rule).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from pipeline.models.base import (
    ClassicModel,
    FitReport,
    FusionInput,
    Prediction,
    Scene,
    inverse_time_weights,
    nearest_ref,
)


def _fill_from_coarse(image: np.ndarray, coarse: np.ndarray) -> np.ndarray:
    """Replace NaN in ``image`` by the coarse target (NaN stays only where coarse is NaN)."""
    return np.where(np.isnan(image), coarse, image).astype(np.float32)


class NearestFineReference(ClassicModel):
    """The nearest fine reference, unchanged; NaN pixels filled from the other ref or coarse."""

    name = "naive_fine"

    def predict(self, inputs: FusionInput) -> Prediction:
        date = inputs.target.date
        ordered = sorted(inputs.refs, key=lambda r: abs((r.date - date).days))
        out = nearest_ref(inputs.refs, date).fine.astype(np.float32)
        for ref in ordered:
            out = np.where(np.isnan(out), ref.fine, out)
        return Prediction(_fill_from_coarse(out, inputs.target.coarse))


class CoarseTarget(ClassicModel):
    """The target coarse image on the fine grid, unchanged."""

    name = "naive_coarse"

    def predict(self, inputs: FusionInput) -> Prediction:
        return Prediction(inputs.target.coarse.astype(np.float32, copy=True))


class FineRefPlusCoarseChange(ClassicModel):
    """Fine ref + coarse temporal change, inverse-time weighted over refs.

    With two refs the spread of the two per-reference predictions (weighted
    standard deviation) is returned as the uncertainty; with one ref none is given.
    """

    name = "naive_change"

    def predict(self, inputs: FusionInput) -> Prediction:
        target = inputs.target.coarse.astype(np.float64)
        preds = np.stack([ref.fine + (target - ref.coarse) for ref in inputs.refs])
        weights = inverse_time_weights(inputs.refs, inputs.target.date)
        w = np.where(np.isnan(preds), 0.0, weights[:, None, None, None])
        wsum = w.sum(axis=0)
        with np.errstate(invalid="ignore", divide="ignore"):
            mean = np.nansum(preds * w, axis=0) / wsum
            var = np.nansum(w * (preds - mean) ** 2, axis=0) / wsum
        mean = np.where(wsum > 0, mean, np.nan)
        fine = _fill_from_coarse(mean, inputs.target.coarse)
        unc = None
        if len(inputs.refs) > 1:
            unc = np.where(np.isnan(fine), np.nan, np.sqrt(np.nan_to_num(var))).astype(np.float32)
        return Prediction(fine, unc)


#: Box widths (fine px) ``smoothed_change`` chooses from; 1 is the raw coarse change.
CHANGE_WINDOWS: tuple[int, ...] = (1, 9, 17, 33, 65)
#: Width used when the training dates cannot choose (a single pair: no change to score).
DEFAULT_WINDOW = 33


def box_mean(image: np.ndarray, window: int) -> np.ndarray:
    """NaN-aware ``window`` x ``window`` box mean of each band of a (band, y, x) image.

    NaN pixels are left out of each mean (normalised convolution); a box with no
    valid pixel gives NaN. Edges use the nearest valid row/column (``mode="nearest"``),
    like the replicate padding of the torch models. Returns float64.
    """
    from scipy.ndimage import uniform_filter

    if window <= 1:
        return image.astype(np.float64)
    ok = np.isfinite(image)
    size = (1, window, window)
    num = uniform_filter(np.where(ok, image, 0.0).astype(np.float64), size, mode="nearest")
    den = uniform_filter(ok.astype(np.float64), size, mode="nearest")
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 1e-9, num / den, np.nan)


def smoothed_change_prediction(ref: Scene, target: np.ndarray, window: int) -> np.ndarray:
    """``fine_ref + box(coarse_target - coarse_ref)``, (band, y, x) float64, NaN kept."""
    return ref.fine + box_mean(target.astype(np.float64) - ref.coarse, window)


def choose_window(pairs: Sequence[Scene], windows: Sequence[int] = CHANGE_WINDOWS) -> int:
    """The box width with the lowest cross-date MSE among the training ``pairs``.

    Every ordered pair (reference, target) of distinct training dates is predicted
    with every candidate width and scored against the target's fine image (valid
    pixels only). With fewer than two pairs nothing can be scored and
    :data:`DEFAULT_WINDOW` is returned. Ties go to the smaller width.
    """
    clear = [p for p in pairs if p.fine is not None]
    if len(clear) < 2:
        return DEFAULT_WINDOW
    errors = np.zeros(len(windows))
    for ref in clear:
        for tgt in clear:
            if tgt is ref:
                continue
            for i, w in enumerate(windows):
                err = smoothed_change_prediction(ref, tgt.coarse, w) - tgt.fine
                errors[i] += float(np.nanmean(err**2))
    return int(windows[int(np.argmin(errors))])


class SmoothedChange(ClassicModel):
    """Fine reference + coarse change box-averaged over ``window`` px (a naive model).

    Real MODIS resampled to 30 m carries no detail below its pixel and is often
    misregistered by part of one, so its per-pixel change is noise around a local
    mean; the box mean is the change STARFM-family methods assume. ``fit`` chooses
    ``window`` among :data:`CHANGE_WINDOWS` on the *training dates only*
    (:func:`choose_window`), never on the date it will predict. ``blend = "nearest"``
    (``smoothed_change``) uses the reference nearest in time; ``"time"``
    (``smoothed_change_blend``) averages the per-reference predictions with
    inverse-time weights and returns their spread as uncertainty.
    """

    name = "smoothed_change"
    trainable = True  # fit() chooses the window; there are no weights
    blend = "nearest"

    def __init__(self, bands: Sequence[str], size: str = "full", **params: Any) -> None:
        params.setdefault("window", DEFAULT_WINDOW)
        super().__init__(bands, size, **params)

    @property
    def halo(self) -> int:
        return int(self.params["window"]) // 2

    def fit(
        self,
        pairs: Sequence[Scene],
        val: Sequence[Scene] = (),
        *,
        bands: tuple[str, ...],
        progress: bool = True,
    ) -> FitReport:
        """Choose ``window`` on the training pairs (cross-date MSE); no gradient steps."""
        self.params["window"] = choose_window(list(pairs) + list(val))
        return FitReport()

    def predict(self, inputs: FusionInput) -> Prediction:
        date, window = inputs.target.date, int(self.params["window"])
        refs = inputs.refs if self.blend == "time" else (nearest_ref(inputs.refs, date),)
        preds = np.stack(
            [smoothed_change_prediction(r, inputs.target.coarse, window) for r in refs]
        )
        weights = inverse_time_weights(refs, date)
        w = np.where(np.isnan(preds), 0.0, weights[:, None, None, None])
        wsum = w.sum(axis=0)
        with np.errstate(invalid="ignore", divide="ignore"):
            mean = np.nansum(preds * w, axis=0) / wsum
            var = np.nansum(w * (preds - mean) ** 2, axis=0) / wsum
        fine = _fill_from_coarse(np.where(wsum > 0, mean, np.nan), inputs.target.coarse)
        unc = None
        if len(refs) > 1:
            unc = np.where(np.isnan(fine), np.nan, np.sqrt(np.nan_to_num(var))).astype(np.float32)
        return Prediction(fine, unc)


class SmoothedChangeBlend(SmoothedChange):
    """:class:`SmoothedChange` with both references blended by inverse time distance."""

    name = "smoothed_change_blend"
    blend = "time"


#: The naive models every accuracy table shows next to each model (registry names).
NAIVE_MODELS: tuple[str, ...] = (
    "naive_fine",
    "naive_coarse",
    "naive_change",
    "smoothed_change",
    "smoothed_change_blend",
)
