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
  Their window (and, for the learned models that start from them, the blend) is
  chosen by one rule, :func:`choose_smoothing`: the lowest MSE when each training
  pair is predicted from its nearest pairs before and after (the gaps a fused day has).

The first three have no ``fit`` and ``halo == 0``; the smoothed ones choose their
window in ``fit`` (no weights) and have ``halo = window // 2``. Where a reference is NaN the others
fill in (weights renormalised); where all are NaN the coarse target is used, so
the output is NaN only where the target coarse image is NaN (the
:mod:`pipeline.models.base` rule).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field
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
from pipeline.models.pairs import choose_scenes


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
        mean, spread = time_blend(preds, inputs.refs, inputs.target.date)
        fine = _fill_from_coarse(mean, inputs.target.coarse)
        unc = None
        if spread is not None:
            unc = np.where(np.isnan(fine), np.nan, spread).astype(np.float32)
        return Prediction(fine, unc)


def time_blend(
    preds: np.ndarray, refs: Sequence[Scene], date: dt.date
) -> tuple[np.ndarray, np.ndarray | None]:
    """Inverse-time blend of per-reference predictions (R, band, y, x), NaN left out.

    Returns ``(mean, spread)``: (band, y, x) float64, NaN where no reference has a
    value; ``spread`` is the weighted standard deviation of the predictions (None with
    one reference).
    """
    weights = inverse_time_weights(refs, date)
    w = np.where(np.isnan(preds), 0.0, weights[:, None, None, None])
    wsum = w.sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.nansum(preds * w, axis=0) / wsum
        var = np.nansum(w * (preds - mean) ** 2, axis=0) / wsum
    mean = np.where(wsum > 0, mean, np.nan)
    return mean, (np.sqrt(np.nan_to_num(var)) if len(refs) > 1 else None)


#: Box widths (fine px) ``smoothed_change`` chooses from; 1 is the raw coarse change.
CHANGE_WINDOWS: tuple[int, ...] = (1, 9, 17, 33, 65)
#: Width of an unfitted ``smoothed_change`` (``fit`` replaces it by the rule's choice).
DEFAULT_WINDOW = 33
#: How :func:`choose_smoothing` chooses with one clear pair (no cross-date task to score).
ONE_PAIR_REASON = (
    "one clear pair, no change to score: the box that best turns its coarse image into its "
    "fine image (the change is sampled as that image is)"
)
#: ... and with none at all.
NO_PAIR_REASON = "no clear pair: the smallest window (1 = the unsmoothed change) assumes nothing"


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


#: Stream blends the start rule chooses from: the nearest reference alone, or both
#: references inverse-time weighted (``smoothed_change`` / ``smoothed_change_blend``).
BLENDS: tuple[str, ...] = ("time", "nearest")


@dataclass(frozen=True)
class StartChoice:
    """The naive start chosen on the training dates (:func:`choose_smoothing`).

    Attributes
    ----------
    window : box width (fine px) of the smoothed coarse change.
    blend : ``"time"`` (both references, inverse-time weights) or ``"nearest"``.
    errors : {(window, blend): summed per-task MSE (reflectance^2)}; empty when
        the training dates could not score anything.
    reason : why the choice was made without scores (empty when ``errors`` decided).
    """

    window: int
    blend: str
    errors: dict[tuple[int, str], float] = field(default_factory=dict)
    reason: str = ""

    def summary(self) -> dict[str, Any]:
        """JSON-ready: window, blend and how they were chosen."""
        how = self.reason or f"lowest MSE over {len(self.errors)} (window, blend) on the tasks"
        return {"window": self.window, "blend": self.blend, "chosen_by": how}


def blend_smoothed(
    refs: Sequence[Scene], target: Scene, window: int, blend: str
) -> tuple[np.ndarray, np.ndarray | None]:
    """Smoothed-change prediction of ``target`` from ``refs`` blended by ``blend``.

    Returns ``(mean, spread)``: (band, y, x) float64, NaN where no reference has a
    value; ``spread`` is the weighted standard deviation of the per-reference
    predictions (None with one reference used).
    """
    refs = tuple(refs) if blend == "time" else (nearest_ref(refs, target.date),)
    preds = np.stack([smoothed_change_prediction(r, target.coarse, window) for r in refs])
    return time_blend(preds, refs, target.date)


def rule_tasks(pairs: Sequence[Scene]) -> list[tuple[tuple[Scene, ...], Scene]]:
    """Each clear pair predicted from the others by the shared reference-pair rule.

    The references are those :func:`pipeline.models.pairs.choose_scenes` gives a
    fused day (the nearest pair before and after, one where a side has none),
    so the gaps scored are the gaps the model will predict, not every pair of
    dates (an 80-day task says little about a 16-day fusion).
    """
    clear = sorted((p for p in pairs if p.fine is not None), key=lambda p: p.date)
    tasks = []
    for target in clear:
        others = [p for p in clear if p.date != target.date]
        if others:
            tasks.append((choose_scenes(others, target.date, (1, 2)), target))
    return tasks


def choose_smoothing(
    pairs: Sequence[Scene],
    windows: Sequence[int] = CHANGE_WINDOWS,
    blends: Sequence[str] = BLENDS,
) -> StartChoice:
    """Window and blend with the lowest MSE on the gap-matched training tasks.

    The one rule behind ``smoothed_change`` (``blends=("nearest",)``),
    ``smoothed_change_blend`` (``("time",)``) and the start of every learned model
    that corrects a smoothed change (both: the start is whichever of the two
    baselines the training dates prefer). Each task of :func:`rule_tasks` is
    predicted with every (window, blend) and scored against the target's fine
    image (valid pixels; the per-task MSEs summed). Ties go to the smaller window,
    then to the earlier blend in ``blends``.

    With one clear pair there is no change to score; the window is then the one
    :func:`pair_window` gives (the reason says so; the blend is moot with one
    reference). With none, the smallest window.
    """
    windows = sorted(int(w) for w in windows)
    tasks = rule_tasks(pairs)
    if not tasks:
        clear = [p for p in pairs if p.fine is not None]
        if not clear:
            return StartChoice(windows[0], blends[0], reason=NO_PAIR_REASON)
        window, by_window = pair_window(clear[0], windows)
        scored = {(w, blends[0]): e for w, e in by_window.items()}
        return StartChoice(window, blends[0], scored, reason=ONE_PAIR_REASON)
    errors: dict[tuple[int, str], float] = {}
    for w in windows:
        for blend in blends:
            total = 0.0
            for refs, target in tasks:
                err = blend_smoothed(refs, target, w, blend)[0] - target.fine
                total += float(np.nanmean(err**2)) if np.isfinite(err).any() else 0.0
            errors[(w, blend)] = total
    best = min(errors, key=lambda k: (errors[k], k[0], list(blends).index(k[1])))
    return StartChoice(best[0], best[1], errors)


def pair_window(pair: Scene, windows: Sequence[int]) -> tuple[int, dict[int, float]]:
    """The box width that best maps one pair's coarse image onto its fine image.

    Returns ``(window, errors)``: ``errors[w]`` is the mean squared difference
    (reflectance^2, valid pixels, each band's mean difference removed: a radiometric
    bias is the same for every box) between ``box_w(coarse)`` and ``fine``; ties go
    to the smaller window. Why this sizes the change's smoothing: the coarse change
    is sampled exactly as the coarse image is (same footprint, same resampling to the
    fine grid, same misregistration), so the box that best interpolates the image is
    the one the evidence supports for its change; a change is usually smoother than
    the image, so it errs small. Measured: lgc-2004 (16 px block-mean MODIS) 9 px, and
    the target's smoothed change is best at 9 px too (RMSE 0.0209 vs 0.0221 raw,
    0.0243 at 33 px); estarfm-2001, either pair alone, 9 px (its target is best at
    25-65 px; 9 px still beats the raw change). ``benchmarks/fusion-accuracy-notes.md``.
    """
    errors = {}
    for w in sorted(int(v) for v in windows):
        diff = box_mean(pair.coarse, w) - pair.fine
        diff = diff - np.nanmean(diff, axis=(1, 2), keepdims=True)
        errors[w] = float(np.nanmean(diff**2)) if np.isfinite(diff).any() else np.inf
    return min(errors, key=lambda w: (errors[w], w)), errors


def choose_window(
    pairs: Sequence[Scene], windows: Sequence[int] = CHANGE_WINDOWS, blend: str = "nearest"
) -> int:
    """The box width :func:`choose_smoothing` gives for one fixed ``blend``."""
    return choose_smoothing(pairs, windows, (blend,)).window


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
        self.params["window"] = choose_window(list(pairs) + list(val), blend=self.blend)
        return FitReport()

    def predict(self, inputs: FusionInput) -> Prediction:
        window = int(self.params["window"])
        mean, spread = blend_smoothed(inputs.refs, inputs.target, window, self.blend)
        fine = _fill_from_coarse(mean, inputs.target.coarse)
        unc = None
        if spread is not None:
            unc = np.where(np.isnan(fine), np.nan, spread).astype(np.float32)
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
    "smoothed_change_tblend",  # pipeline.models.blend: per-pixel change weights
)
