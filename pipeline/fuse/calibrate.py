"""What makes a block's series seamless besides the fusion: source coverage and sigma calibration.

* **coverage** (per task, on the worker, from the task's own inputs): a pixel is
  inside the sources' coverage when any source scene of the task's days (a
  coarse day or a fine observation of the window) has a valid value there;
  reference pairs dated outside the window do not count, since nothing of the
  window could be fused or filled from them alone. Pixels
  outside (beyond the sources' footprints) are never filled and carry the
  ``outside`` quality bit. With daily coarse scenes a covered pixel cloudy on
  every day of a window is practically impossible; a window of a few cloudy
  days could mark covered pixels as outside: the stated limit of deciding
  coverage from data.
* **calibration** (once per run, before any block is written, so every block
  and every tiling gets the same one), fitted on the training (pair) dates
  only, on a few fixed sample windows of the grid: each clear pair is left out
  once and predicted from its neighbouring clear pairs, as a target day would
  be. Three parts, because one scale cannot place both the 1- and the 2-sigma
  quantile of a heavy-tailed error:

  - per band a factor ``f_b`` (RMS over bands 1): band ``b``'s sigma is the
    pixel-day's sigma times ``f_b`` (green errors are a fraction of NIR ones; the
    store keeps one sigma per pixel-day, the RMS over bands, and the factors
    in the provenance);
  - the fused sigma ``sqrt((scale * u)^2 + floor^2)``, ``u`` the model's sigma
    (RMS over bands; 1 when the model gives none): ``scale`` and ``floor`` are
    chosen together so that ``|error_b| / f_b`` lies within 1 sigma for 68.27 %
    and within 2 sigma for as close to 95.45 % as the pair allows (the floor is
    the error a model's own spread misses: misregistration, unflagged cloud);
  - the gap filler's daily variance ``q`` per band: each inner clear pair is
    also predicted by interpolating its two neighbours in time (a gap as long
    as their distance, clear ends), and ``q`` is the variance per day of a
    Brownian bridge that covers 68.27 % of those errors (the mean squared
    change rate between consecutive pairs where fewer than three pairs exist);
  - the filled sigma's two scales, of its ends' correlated sigma and of the gap
    filler's own variance: fitted in a second round, with the three parts above, on spells
    withheld around each inner pair and filled as a run fills them
    (:mod:`pipeline.fuse.spells`).
"""

from __future__ import annotations

import datetime as dt
import itertools
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from pipeline.fuse import sigma_fit
from pipeline.fuse.gapfill import DEFAULT_METHOD
from pipeline.fuse.plan import FuseTask
from pipeline.fuse.spells import SpellResiduals, fill_calibration, spell_task
from pipeline.fuse.tiles import crop

if TYPE_CHECKING:
    from distributed import Client

    from pipeline.fuse.dispatch import Sources

#: 1-sigma of a clear Landsat observation (reflectance; C2 L2 SR is good to ~0.005).
OBS_SIGMA = np.float32(0.005)
#: Fused 1-sigma used when a block has no pair to calibrate on and the model gives none.
PRIOR_SIGMA = np.float32(0.02)


#: Smallest model sigma (reflectance) the scale multiplies: a model that reports 0 (one
#: candidate, two identical references) is not certain, and 0 would make the ratio infinite.
U_FLOOR = 0.002
#: Daily random-walk variance (reflectance^2 per day) when no two clear pairs share a window.
PRIOR_Q = 1e-4
#: Sample windows (fine pixels a side, how many) the run's calibration is fitted on.
SAMPLE_SIZE, SAMPLE_COUNT = 128, 4
#: Side (fine pixels) of the sample windows of the filled sigma's spells: each left-out pair
#: fuses every day to its neighbours there, so they are smaller than the fused ones.
SPELL_SIZE = 64
#: Residuals kept per window (a deterministic subsample keeps the transfer small).
_MAX_RESIDUALS = 50_000
#: Fallback residuals a window needs to fit the coarse fallback's sigma on them alone.
_MIN_FALLBACK = 500


@dataclass(frozen=True)
class SeriesCalibration:
    """The run's sigma calibration (see the module docstring).

    Attributes
    ----------
    scale : multiplies the model's sigma (RMS over bands; 1 if none) into a calibrated 1-sigma.
    q : per band, the daily random-walk variance of the gap filler (reflectance^2 per day).
    samples : band-pixels ``scale`` was fitted on (0: no pair could be left out; the fused
        sigma is then the model's own, or :data:`PRIOR_SIGMA`).
    floor : reflectance added in quadrature to ``scale * u`` (0: a pure scale).
    band_factors : per band, its sigma over the pixel-day's (RMS over bands 1; empty: all 1).
    coarse_sigma : 1-sigma (RMS over bands) of fused pixels where a model that reports a
        sigma gave none: it found no fine candidate and fell back to the coarse value
        (STARFM); fitted on the left-out pairs' own fallback pixels
        (:func:`~pipeline.fuse.sigma_fit.fallback_errors`;
        0: none fitted).
    fill_end, fill_pooled : scales of a filled day's sigma, ``sqrt(fill_end^2 ends +
        fill_pooled^2 pooled)``, the ends' correlated variance and the gap filler's own
        (:func:`pipeline.fuse.gapfill.fill_gaps`), fitted on training spells
        (:mod:`pipeline.fuse.spells`; 1, 1: none fitted).
    fill_fallback : the same two scales for a filled day next to a coarse-fallback day
        (:func:`fallback_days`), whose ends' sigma is :attr:`coarse_sigma` (empty: none
        fitted, the two above hold).
    """

    scale: float
    q: tuple[float, ...]
    samples: int
    floor: float = 0.0
    band_factors: tuple[float, ...] = ()
    coarse_sigma: float = 0.0
    fill_end: float = 1.0
    fill_pooled: float = 1.0
    fill_fallback: tuple[float, ...] = ()

    def factors(self, n_bands: int) -> np.ndarray:
        """(band,) float64 :attr:`band_factors`, ones when none were fitted."""
        if len(self.band_factors) != n_bands:
            return np.ones(n_bands)
        return np.asarray(self.band_factors, np.float64)

    def fused(self, u: np.ndarray | np.floating) -> np.ndarray:
        """Calibrated 1-sigma (RMS over bands) of fused values whose model sigma is ``u``."""
        return np.sqrt(np.square(self.scale * u) + self.floor**2)


def fallback_days(
    model_sigma: np.ndarray, fused: np.ndarray, calib: SeriesCalibration
) -> np.ndarray | None:
    """(time, y, x) bool fused pixel-days that carry the coarse fallback's sigma: the model
    (one that reports a sigma) gave none there; None when the calibration has no such sigma.

    Parameters
    ----------
    model_sigma : (time, band, y, x) the model's raw sigma, NaN where it gave none.
    fused : (time, y, x) bool fused pixel-days.
    """
    if not calib.coarse_sigma:
        return None
    return fused & ~np.isfinite(model_sigma).all(axis=1)


def coverage(task: FuseTask, coarse: np.ndarray, obs: np.ndarray) -> np.ndarray:
    """(y, x) bool: block pixels where a coarse day or a fine observation of the window is valid.

    Parameters
    ----------
    coarse : (date, band, py, px) coarse scenes on the padded fine window, one per
        :func:`~pipeline.fuse.worker.coarse_dates` of the task.
    obs : (date, band, y, x) fine observations of the window's days, on the block.
    """
    from pipeline.fuse.worker import coarse_dates

    block = task.block
    days = set(task.coarse_days)
    own = [i for i, d in enumerate(coarse_dates(task)) if d in days]
    cover = np.zeros((block.y1 - block.y0, block.x1 - block.x0), bool)
    for stack in (crop(coarse[own], block), obs):
        if stack.size:
            cover |= np.isfinite(stack).all(axis=1).any(axis=0)
    return cover


def sample_windows(
    shape: tuple[int, int], factor: int, size: int = SAMPLE_SIZE, count: int = SAMPLE_COUNT
) -> list[tuple[int, int, int, int]]:
    """Fixed windows (y0, y1, x0, x1) spread over the grid, aligned to whole coarse pixels.

    They depend on the grid only (not on the store's chunks), so every tiling
    of a run gets the same calibration.
    """
    side = max(factor, min(size, shape[0], shape[1]) // factor * factor)
    per_axis = max(1, round(count**0.5))
    out = []
    for fy in np.linspace(0, 1, per_axis + 2)[1:-1]:
        for fx in np.linspace(0, 1, per_axis + 2)[1:-1]:
            y0 = int(fy * (shape[0] - side)) // factor * factor
            x0 = int(fx * (shape[1] - side)) // factor * factor
            out.append((y0, min(shape[0], y0 + side), x0, min(shape[1], x0 + side)))
    return sorted(set(out))


@dataclass(frozen=True)
class Residuals:
    """Training residuals of one or more sample windows (worker -> client).

    Attributes
    ----------
    err : (band, n) float32 |left-out pair - fusion of its neighbours| (reflectance).
    u : (n,) float32 the model's sigma there (RMS over bands, at least :data:`U_FLOOR`).
    gap_err : (band, m) float32 |left-out pair - its neighbours interpolated in time|.
    gap_h : (m,) float32 the Brownian-bridge days ``d0 d1 / (d0 + d1)`` of each.
    gap_w2 : (m,) float32 ``w0^2 + w1^2``, the interpolation weights' share of the ends' noise.
    sums, counts : (band,) summed squared daily change rate between consecutive pairs, count.
    coarse_err : (band, k) float32 errors of a coarse fallback (:func:`sigma_fit.fallback_errors`).
    has_sigma : whether the model reports a sigma (else ``u`` is all ones).
    """

    err: np.ndarray
    u: np.ndarray
    gap_err: np.ndarray
    gap_h: np.ndarray
    gap_w2: np.ndarray
    sums: np.ndarray
    counts: np.ndarray
    coarse_err: np.ndarray | None = None
    has_sigma: bool = False

    @classmethod
    def concat(cls, parts: list[Residuals], n_bands: int) -> Residuals:
        """All windows' residuals as one (empty arrays when there are none)."""
        if not parts:
            none, rows = np.zeros(0, np.float32), np.zeros((n_bands, 0), np.float32)
            return cls(rows, none, rows, none, none, np.zeros(n_bands), np.zeros(n_bands), rows)
        cat = {f: np.concatenate([_field(p, f, n_bands) for p in parts], axis=-1) for f in _CAT}
        sums = np.sum([p.sums for p in parts], axis=0)
        counts = np.sum([p.counts for p in parts], axis=0)
        return cls(**cat, sums=sums, counts=counts, has_sigma=any(p.has_sigma for p in parts))


_CAT = ("err", "u", "gap_err", "gap_h", "gap_w2", "coarse_err")


def _field(part: Residuals, name: str, n_bands: int) -> np.ndarray:
    value = getattr(part, name)
    return np.zeros((n_bands, 0), np.float32) if value is None else value


def _fused_residuals(
    scenes: list, core: tuple[slice, slice], model_key: str, bands: tuple[str, ...]
) -> tuple[np.ndarray, np.ndarray, np.ndarray, bool]:
    """Each pair left out once and fused from its neighbours: (band, n) |error| and (n,) u
    where the model gave a sigma, (band, k) |error| where a model that reports one gave none
    (its coarse fallback), and whether the model reported a sigma."""
    from pipeline.fuse.worker import _MODELS
    from pipeline.models.base import FusionInput, Scene

    model = _MODELS[model_key]
    errs, us = [np.zeros((len(bands), 0), np.float32)], [np.zeros(0, np.float32)]
    fallback = [np.zeros((len(bands), 0), np.float32)]
    has_sigma = False
    for k, scene in enumerate(scenes):
        refs = tuple(scenes[j] for j in (k - 1, k + 1) if 0 <= j < len(scenes))
        if not refs:
            continue
        if len(refs) not in model.n_refs:
            nearest = min(refs, key=lambda r: abs((r.date - scene.date).days))
            refs = (nearest,) if 1 in model.n_refs else (nearest, nearest)
        pred = model.predict(FusionInput(refs, Scene(scene.date, scene.coarse), bands))
        err = np.abs(pred.fine - scene.fine)[(..., *core)]
        sig = None if pred.uncertainty is None else pred.uncertainty[(..., *core)]
        has_sigma = has_sigma or sig is not None
        u = np.broadcast_to(rms_sigma(sig, err.shape), err.shape[-2:]).ravel()
        err = err.reshape(len(bands), -1)
        ok = np.isfinite(err).all(axis=0) & np.isfinite(u)
        errs.append(err[:, ok].astype(np.float32))
        us.append(u[ok].astype(np.float32))
        if sig is not None:  # valued, but no sigma: the model's coarse fallback
            fallback.append(err[:, np.isfinite(err).all(axis=0) & ~np.isfinite(u)])
    fell = np.concatenate(fallback, axis=1).astype(np.float32)
    return np.concatenate(errs, axis=1), np.concatenate(us), fell, has_sigma


def _gap_residuals(scenes: list, core: tuple[slice, slice]) -> tuple[np.ndarray, ...]:
    """Each inner pair predicted by interpolating its neighbours in time: |error|, h, w0^2+w1^2."""
    n_bands = scenes[0].fine.shape[0] if scenes else 0
    errs, hs, ws = [np.zeros((n_bands, 0), np.float32)], [np.zeros(0)], [np.zeros(0)]
    for a, mid, b in zip(scenes, scenes[1:], scenes[2:], strict=False):
        d0, d1 = (mid.date - a.date).days, (b.date - mid.date).days
        w1 = d0 / (d0 + d1)
        guess = (1 - w1) * a.fine + w1 * b.fine
        err = np.abs(guess - mid.fine)[(..., *core)].reshape(n_bands, -1)
        err = err[:, np.isfinite(err).all(axis=0)]
        errs.append(err.astype(np.float32))
        hs.append(np.full(err.shape[1], d0 * d1 / (d0 + d1)))
        ws.append(np.full(err.shape[1], (1 - w1) ** 2 + w1**2))
    return np.concatenate(errs, axis=1), np.concatenate(hs), np.concatenate(ws)


def window_residuals(
    fine: np.ndarray,
    coarse: np.ndarray,
    dates: tuple[dt.date, ...],
    core: tuple[slice, slice],
    model_key: str,
    bands: tuple[str, ...],
    min_clear: float = 0.5,
) -> Residuals:
    """Leave-one-pair-out residuals of one sample window (worker), see :class:`Residuals`.

    Parameters
    ----------
    fine, coarse : (pair, band, y, x) float32 clear pairs' fine and coarse-on-fine window
        (padded by the model's halo), NaN = invalid.
    dates : the pairs' dates, ascending.
    core : slices of the unpadded window inside the padded one.
    min_clear : a pair is a reference when this fraction of the window is clear.
    """
    from pipeline.models.base import Scene

    # only pairs clear in the window are references, as in the plan's rule
    keep = [
        k
        for k in range(len(dates))
        if np.isfinite(fine[k][(..., *core)]).all(axis=0).mean() >= min_clear
    ]
    scenes = [Scene(dates[k], coarse[k], fine[k]) for k in keep]
    err, u, fell, has_sigma = _fused_residuals(scenes, core, model_key, bands)
    err, u = sigma_fit.subsample([err, u], _MAX_RESIDUALS)
    gap_err, gap_h, gap_w2 = sigma_fit.subsample(list(_gap_residuals(scenes, core)), _MAX_RESIDUALS)
    (coarse_err,) = sigma_fit.subsample(
        [sigma_fit.fallback_errors(fell, fine, coarse, keep, core, _MIN_FALLBACK)], _MAX_RESIDUALS
    )
    sums, counts = np.zeros(len(bands)), np.zeros(len(bands))
    for a, b in itertools.pairwise(keep):
        days = (dates[b] - dates[a]).days
        rate = (fine[b] - fine[a])[(..., *core)].astype(np.float64) ** 2 / days
        ok = np.isfinite(rate)
        sums += np.where(ok, rate, 0.0).sum(axis=(1, 2))
        counts += ok.sum(axis=(1, 2))
    return Residuals(err, u, gap_err, gap_h.astype(np.float32), gap_w2.astype(np.float32),
                     sums, counts, coarse_err.astype(np.float32), has_sigma)  # fmt: skip


def rms_sigma(sigma: np.ndarray | None, shape: tuple[int, ...]) -> np.ndarray:
    """RMS over bands of a (band, y, x) sigma as float64 (y, x), at least :data:`U_FLOOR`;
    ones where the model has none."""
    if sigma is None:
        return np.ones(shape[-2:])
    return np.maximum(np.sqrt(np.mean(np.square(sigma, dtype=np.float64), axis=0)), U_FLOOR)


def _window_task(fine: np.ndarray, small: np.ndarray, factor: int, *args: object) -> Residuals:
    """:func:`window_residuals` after replicating the coarse window onto the fine one."""
    coarse = small.repeat(factor, axis=-2).repeat(factor, axis=-1)[
        ..., : fine.shape[-2], : fine.shape[-1]
    ]
    return window_residuals(fine.astype(np.float32), coarse.astype(np.float32), *args)  # type: ignore[arg-type]


def calibration_from(res: Residuals) -> SeriesCalibration:
    """Fit the :class:`SeriesCalibration` to the training residuals (module docstring)."""
    factors = sigma_fit.band_factors(res.err, res.u)
    z = (res.err / factors[:, None]).ravel()
    u = np.broadcast_to(res.u, res.err.shape).ravel().astype(np.float64)
    scale, floor = sigma_fit.scale_and_floor(z, u)
    with np.errstate(invalid="ignore", divide="ignore"):
        q = np.where(res.counts > 0, res.sums / np.maximum(res.counts, 1), PRIOR_Q)
    for b in range(len(q)):  # the bridge fit where enough inner pairs exist
        fitted = sigma_fit.bridge_q(res.gap_err[b], res.gap_h, res.gap_w2, float(OBS_SIGMA))
        q[b] = q[b] if fitted is None else fitted
    samples = int(res.err.size)
    bands = tuple(float(v) for v in factors) if samples else ()
    coarse = 0.0
    if res.has_sigma and res.coarse_err is not None and res.coarse_err.size:
        # a coarse fallback's error is the fine-coarse disagreement of the pairs: one
        # constant sigma (u = 1), placed on both quantiles like the fused one
        zc = (res.coarse_err / factors[:, None]).ravel().astype(np.float64)
        s_c, f_c = sigma_fit.scale_and_floor(zc, np.ones_like(zc))
        coarse = float(np.hypot(s_c, f_c))
    q_out = tuple(float(v) for v in q)
    return SeriesCalibration(scale, q_out, samples, floor, bands, coarse)


def _window_cuts(
    shape: tuple[int, int], factor: int, halo: int, size: int = SAMPLE_SIZE
) -> list[tuple[tuple[int, int, int, int], tuple[slice, slice]]]:
    """Per sample window, its padded fine window (py0, py1, px0, px1), starting on a whole
    coarse pixel, and the slices of the window itself inside it."""
    out = []
    for y0, y1, x0, x1 in sample_windows(shape, factor, size):
        py0, px0 = max(0, y0 - halo) // factor * factor, max(0, x0 - halo) // factor * factor
        py1, px1 = min(shape[0], y1 + halo), min(shape[1], x1 + halo)
        out.append(((py0, py1, px0, px1), (slice(y0 - py0, y1 - py0), slice(x0 - px0, x1 - px0))))
    return out


def fit_calibration(
    client: Client,
    sources: Sources,
    model_key: str,
    bands: tuple[str, ...],
    halo: int,
    min_clear: float,
    method: str = DEFAULT_METHOD,
) -> SeriesCalibration:
    """The run's :class:`SeriesCalibration`, fitted on the pair dates of the sample windows.

    Two rounds: the fused sigma, band factors and ``q`` on each pair left out, then the
    filled sigma on training spells filled with that fused sigma (:mod:`pipeline.fuse.spells`).
    The model must already be installed on the workers (the run's model plugin).
    """
    import dask

    f = sources.factor
    ny, nx = sources.fine.sizes["y"], sources.fine.sizes["x"]
    fine_index = {d: i for i, d in enumerate(sources.dates("fine"))}
    coarse_index = {d: i for i, d in enumerate(sources.dates("coarse"))}
    pairs = tuple(p for p in sources.pairs if p in fine_index and p in coarse_index)
    fine = sources.fine.data[[fine_index[p] for p in pairs]]
    coarse = sources.coarse.data[[coarse_index[p] for p in pairs]]
    tasks = []
    for (py0, py1, px0, px1), core in _window_cuts((ny, nx), f, halo):
        small = coarse[:, :, py0 // f : -(-py1 // f), px0 // f : -(-px1 // f)]
        args = (pairs, core, model_key, bands, min_clear)
        tasks.append(dask.delayed(_window_task)(fine[:, :, py0:py1, px0:px1], small, f, *args))
    results = client.compute(tasks, sync=True) if tasks else []
    calib = calibration_from(Residuals.concat(list(results), len(bands)))
    if not calib.samples or len(pairs) < 3:
        return calib
    # the days between the first and last pair: each left-out pair's spells are fused on them
    days = tuple(d for d in coarse_index if pairs[0] <= d <= pairs[-1])
    daily = sources.coarse.data[[coarse_index[d] for d in days]]
    tasks = []
    for (py0, py1, px0, px1), core in _window_cuts((ny, nx), f, halo, SPELL_SIZE):
        small = daily[:, :, py0 // f : -(-py1 // f), px0 // f : -(-px1 // f)]
        args = (days, pairs, core, model_key, bands, calib, min_clear, method)
        tasks.append(dask.delayed(spell_task)(fine[:, :, py0:py1, px0:px1], small, f, *args))
    spells = SpellResiduals.concat(list(client.compute(tasks, sync=True)), len(bands))
    return fill_calibration(calib, spells)
