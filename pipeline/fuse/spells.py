"""Training spells: a clear pair date made a gap and filled as a run fills it, for the filled sigma.

A run's filled pixel-day (cloudy or missing coarse image) takes its value from the
gap filler and its sigma from two parts (:func:`pipeline.fuse.gapfill.fill_gaps`) that
can each be off: the nearest valid days' correlated sigma and the filler's own
(pooled) variance. Their scales are calibrated here on spells withheld inside the
training period, never on a day the run is scored on:

each inner clear pair ``P`` of a sample window (:func:`pipeline.fuse.calibrate.sample_windows`)
is left out; the days between its neighbouring clear pairs are fused from those two
pairs (as a target day would be with ``P`` unknown), the neighbours themselves are
observed; then a spell of ``2k + 1`` days centred on ``P`` (each of :data:`HALF_WIDTHS`,
inside the neighbours) is made a gap, on top of the days whose coarse image is cloudy
or missing, and filled with the run's filler and fused sigma. The filled value at ``P``
is compared with ``P``'s clear fine observation. Longer spells weigh the pooled part
(its random walk) more, so the residuals over all ``k`` fix both scales
(:func:`pipeline.fuse.sigma_fit.fill_scales`).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import numpy as np

from pipeline.fuse import sigma_fit
from pipeline.fuse.gapfill import DEFAULT_METHOD, gap_day_parts, next_to

if TYPE_CHECKING:
    from pipeline.fuse.calibrate import SeriesCalibration

#: Half-widths (days) of the spells made a gap around a left-out pair: 1 day up to 2-week spells.
HALF_WIDTHS = (0, 1, 2, 4, 7)
#: Residuals kept per window and half-width (a deterministic subsample keeps transfers small).
_MAX_PER_SPELL = 20_000


@dataclass(frozen=True)
class SpellResiduals:
    """Residuals of filled training spells (worker -> client).

    Attributes
    ----------
    err : (band, n) float32 |filled value - clear fine observation| at the left-out pair.
    ends : (n,) float32 mean over bands of the ends' correlated variance (reflectance^2).
    pooled : (n,) float32 mean over bands of the filler's own variance (reflectance^2).
    half : (n,) int16 the spell's half-width ``k`` (days), the stratum of the fit.
    fell : (n,) bool whether either end of the spell is a coarse-fallback day
        (:func:`~pipeline.fuse.calibrate.fallback_days`): such days are fitted apart.
    """

    err: np.ndarray
    ends: np.ndarray
    pooled: np.ndarray
    half: np.ndarray
    fell: np.ndarray

    @classmethod
    def concat(cls, parts: list[SpellResiduals], n_bands: int) -> SpellResiduals:
        """All windows' residuals as one (empty arrays when there are none)."""
        if not parts:
            none = np.zeros(0, np.float32)
            rows = np.zeros((n_bands, 0), np.float32)
            return cls(rows, none, none, np.zeros(0, np.int16), np.zeros(0, bool))
        return cls(*(np.concatenate([getattr(p, f) for p in parts], axis=-1) for f in _FIELDS))


_FIELDS = ("err", "ends", "pooled", "half", "fell")


def _fused_series(
    fine: np.ndarray,
    coarse: dict[dt.date, np.ndarray],
    ends: tuple[int, int],
    dates: tuple[dt.date, ...],
    model_key: str,
    bands: tuple[str, ...],
) -> tuple[np.ndarray, np.ndarray, list[dt.date]]:
    """The padded daily series from pair ``ends[0]`` to ``ends[1]``: observed ends, fused days.

    Returns values and the model's raw sigma, both (day, band, py, px) float32 (NaN where a
    day's coarse image is missing or invalid, or the model gives no sigma), and the days.
    """
    from pipeline.fuse.worker import _MODELS
    from pipeline.models.base import FusionInput, Scene
    from pipeline.models.pairs import fit_to_model

    model = _MODELS[model_key]
    a, b = ends
    days = [dates[a] + dt.timedelta(days=i) for i in range((dates[b] - dates[a]).days + 1)]
    scenes = {dates[k]: Scene(dates[k], coarse[dates[k]], fine[k]) for k in ends}
    values = np.full((len(days), *fine.shape[1:]), np.nan, np.float32)
    sigma = np.full_like(values, np.nan)
    values[0], values[-1] = fine[a], fine[b]
    for i, day in enumerate(days[1:-1], start=1):
        if day not in coarse:
            continue
        refs = tuple(scenes[d] for d in fit_to_model(tuple(scenes), day, model.n_refs))
        pred = model.predict(FusionInput(refs, Scene(day, coarse[day]), bands))
        values[i] = pred.fine
        if pred.uncertainty is not None:
            sigma[i] = pred.uncertainty
    return values, sigma, days


def _spell(
    values: np.ndarray,
    sigma: np.ndarray,
    fell: np.ndarray,
    q: np.ndarray,
    centre: int,
    half: int,
    method: str,
) -> tuple[np.ndarray, ...]:
    """Make days ``centre +- half`` (inside the ends) a gap and fill them: at ``centre`` the
    (band, n) filled value, the (n,) mean ends' variance, (n,) mean pooled variance and
    (n,) whether an end is a coarse-fallback day (``fell``: (day, y, x) bool)."""
    held = values.copy()
    lo, hi = max(1, centre - half), min(len(values) - 2, centre + half)
    held[lo : hi + 1] = np.nan
    value, ends, pooled = gap_day_parts(held, sigma, q, method, centre)
    flag = next_to(np.isfinite(held).all(axis=1), fell)[centre]
    # variances as fill_gaps gives them (a sigma of sqrt(max(var, 0))), means over bands
    ends, pooled = (np.maximum(v, 0.0).mean(axis=0) for v in (ends, pooled))
    return value, ends, pooled, flag.ravel()


def _series_sigma(
    values: np.ndarray, model_sigma: np.ndarray, calib: SeriesCalibration
) -> np.ndarray:
    """(day, band, y, x) float32 sigma of the series as a run gives it: observed ends
    :data:`~pipeline.fuse.calibrate.OBS_SIGMA`, fused days their calibrated sigma."""
    from pipeline.fuse.calibrate import OBS_SIGMA
    from pipeline.fuse.seamless import _fused_sigma

    sigma = _fused_sigma(model_sigma, calib)
    sigma[[0, -1]] = OBS_SIGMA
    return np.where(np.isfinite(values).all(axis=1)[:, None], sigma, np.nan).astype(np.float32)


def pair_spells(
    fine: np.ndarray,
    coarse: dict[dt.date, np.ndarray],
    dates: tuple[dt.date, ...],
    k: int,
    core: tuple[slice, slice],
    model_key: str,
    bands: tuple[str, ...],
    calib: SeriesCalibration,
    method: str = DEFAULT_METHOD,
) -> SpellResiduals:
    """Residuals of the spells around pair ``k`` left out between pairs ``k - 1`` and ``k + 1``.

    Parameters
    ----------
    fine : (pair, band, py, px) float32 clear pairs' fine window (padded by the model's halo).
    coarse : per day, (band, py, px) float32 coarse-on-fine window (absent: no coarse image).
    dates : the pairs' dates, ascending; ``k`` an inner one.
    core : slices of the unpadded window inside the padded one.
    calib : the run's calibration of the fused sigma and ``q`` (fitted before this).
    """
    from pipeline.fuse.calibrate import fallback_days  # calibrate imports this module

    values, model_sigma, days = _fused_series(fine, coarse, (k - 1, k + 1), dates, model_key, bands)
    values, model_sigma = values[(..., *core)], model_sigma[(..., *core)]
    sigma = _series_sigma(values, model_sigma, calib)
    fused = np.isfinite(values).all(axis=1)
    fused[[0, -1]] = False  # the neighbouring pairs are observed
    fell = fallback_days(model_sigma, fused, calib)
    fell = np.zeros_like(fused) if fell is None else fell
    truth = fine[k][(..., *core)].reshape(len(bands), -1)
    centre = days.index(dates[k])
    q = np.asarray(calib.q, np.float64)
    parts = []
    for half in HALF_WIDTHS:
        if half and centre - half < 1 and centre + half > len(days) - 2:
            break  # the spell already reaches both neighbours: longer ones are the same
        value, ends, pooled, near = _spell(values, sigma, fell, q, centre, half, method)
        err = np.abs(value - truth)
        ok = np.isfinite(err).all(axis=0) & np.isfinite(ends) & np.isfinite(pooled)
        arrays = [a.astype(np.float32) for a in (err[:, ok], ends[ok], pooled[ok])]
        arrays += [np.full(int(ok.sum()), half, np.int16), near[ok]]
        parts.append(SpellResiduals(*sigma_fit.subsample(arrays, _MAX_PER_SPELL)))
    return SpellResiduals.concat(parts, len(bands))


def window_spells(
    fine: np.ndarray,
    coarse: dict[dt.date, np.ndarray],
    dates: tuple[dt.date, ...],
    core: tuple[slice, slice],
    model_key: str,
    bands: tuple[str, ...],
    calib: SeriesCalibration,
    min_clear: float = 0.5,
    method: str = DEFAULT_METHOD,
) -> SpellResiduals:
    """:func:`pair_spells` of every inner pair clear in one sample window (worker).

    Parameters are those of :func:`pair_spells`; ``min_clear``: a pair is a reference
    when this fraction of the window is clear (the plan's rule).
    """
    keep = [
        k
        for k in range(len(dates))
        if np.isfinite(fine[k][(..., *core)]).all(axis=0).mean() >= min_clear
    ]
    fine, dates = fine[keep], tuple(dates[k] for k in keep)
    parts = [
        pair_spells(fine, coarse, dates, k, core, model_key, bands, calib, method)
        for k in range(1, len(dates) - 1)
    ]
    return SpellResiduals.concat(parts, len(bands))


def spell_task(
    fine: np.ndarray,
    small: np.ndarray,
    factor: int,
    days: tuple[dt.date, ...],
    dates: tuple[dt.date, ...],
    *args: object,
) -> SpellResiduals:
    """:func:`window_spells` of one sample window after replicating its daily coarse window
    ``small`` ((day, band, yc, xc), one per ``days``) onto the fine one."""
    coarse = (
        small.repeat(factor, axis=-2)
        .repeat(factor, axis=-1)[..., : fine.shape[-2], : fine.shape[-1]]
        .astype(np.float32)
    )
    by_day = dict(zip(days, coarse, strict=True))
    return window_spells(fine.astype(np.float32), by_day, dates, *args)  # type: ignore[arg-type]


def fill_calibration(calib: SeriesCalibration, spells: SpellResiduals) -> SeriesCalibration:
    """``calib`` with the filled sigma's two scales fitted on the training spells (unchanged
    when there are too few), and apart on the spells next to a coarse-fallback day (whose
    ends' sigma is the coarse image's, a different error: ``benchmarks/seamless.md``)."""
    factors = calib.factors(spells.err.shape[0])
    n_bands = spells.err.shape[0]

    def fit(keep: np.ndarray) -> tuple[float, float] | None:
        z = (spells.err[:, keep] / factors[:, None]).ravel().astype(np.float64)
        return sigma_fit.fill_scales(
            z,
            np.tile(spells.ends[keep].astype(np.float64), n_bands),
            np.tile(spells.pooled[keep].astype(np.float64), n_bands),
            np.tile(spells.half[keep], n_bands),
        )

    both = fit(np.ones(spells.fell.shape, bool))
    if both is None:
        return calib
    rest, fell = fit(~spells.fell), fit(spells.fell)
    if rest is None or fell is None:  # too few of one kind: one pair for all
        return replace(calib, fill_end=both[0], fill_pooled=both[1])
    return replace(calib, fill_end=rest[0], fill_pooled=rest[1], fill_fallback=fell)
