"""Naive baselines every fusion model must beat.

* ``naive_fine``: the fine reference nearest in time, unchanged (assumes no change).
* ``naive_coarse``: the target coarse image, unchanged (no spatial detail added).
* ``naive_change``: fine ref + (coarse target - coarse ref) per reference, averaged
  over references with inverse-time weights (the simplest "add the coarse change"
  fusion; STARFM with a 1x1 window and no similar pixels).

None is trainable; all have ``halo == 0``. Where a reference is NaN the others
fill in (weights renormalised); where all are NaN the coarse target is used, so
the output is NaN only where the target coarse image is NaN (the
:mod:`pipeline.models.base` rule).
"""

from __future__ import annotations

import numpy as np

from pipeline.models.base import (
    ClassicModel,
    FusionInput,
    Prediction,
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
