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
  be; the scale ``s`` makes ``|error| <= s * u`` hold for 68.27 % of the
  band-pixels, ``u`` being the model's sigma (RMS over bands) or 1 when the
  model gives none (then ``s`` is the error's 1-sigma itself). One scale per
  model, pooled over bands, because the store keeps one sigma per pixel-day.
  The daily random-walk variance ``q`` of the gap filler (per band) is the
  mean squared change between consecutive clear pairs divided by their days
  apart, on the same windows.
"""

from __future__ import annotations

import datetime as dt
import itertools
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from pipeline.evaluate.calibration import ONE_SIGMA
from pipeline.fuse.plan import FuseTask
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
#: Residuals kept per window (a deterministic subsample keeps the transfer small).
_MAX_RESIDUALS = 50_000


@dataclass(frozen=True)
class SeriesCalibration:
    """The run's sigma calibration (see the module docstring).

    Attributes
    ----------
    scale : multiplies the model's sigma (RMS over bands; 1 if none) into a calibrated 1-sigma.
    q : per band, the daily random-walk variance of the gap filler (reflectance^2 per day).
    samples : band-pixels ``scale`` was fitted on (0: no pair could be left out; the fused
        sigma is then the model's own, or :data:`PRIOR_SIGMA`).
    """

    scale: float
    q: tuple[float, ...]
    samples: int


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


def window_residuals(
    fine: np.ndarray,
    coarse: np.ndarray,
    dates: tuple[dt.date, ...],
    core: tuple[slice, slice],
    model_key: str,
    bands: tuple[str, ...],
    min_clear: float = 0.5,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Leave-one-pair-out ``|error| / u`` and pair-change sums of one sample window (worker).

    Parameters
    ----------
    fine, coarse : (pair, band, y, x) float32 clear pairs' fine and coarse-on-fine window
        (padded by the model's halo), NaN = invalid.
    dates : the pairs' dates, ascending.
    core : slices of the unpadded window inside the padded one.
    min_clear : a pair is a reference when this fraction of the window is clear.

    Returns
    -------
    ``z`` (n,) float64 standardized absolute errors; per band the summed squared daily
    change rate between consecutive pairs and its count (for ``q``).
    """
    from pipeline.fuse.worker import _MODELS
    from pipeline.models.base import FusionInput, Scene

    model = _MODELS[model_key]
    scenes = [Scene(d, coarse[k], fine[k]) for k, d in enumerate(dates)]
    # only pairs clear in the window are references, as in the plan's rule
    scenes = [
        s for s in scenes if np.isfinite(s.fine[(..., *core)]).all(axis=0).mean() >= min_clear
    ]
    z = []
    for k, scene in enumerate(scenes):
        refs = tuple(scenes[j] for j in (k - 1, k + 1) if 0 <= j < len(scenes))
        if not refs:
            continue
        if len(refs) not in model.n_refs:
            nearest = min(refs, key=lambda r: abs((r.date - scene.date).days))
            refs = (nearest,) if 1 in model.n_refs else (nearest, nearest)
        pred = model.predict(FusionInput(refs, Scene(scene.date, scene.coarse), bands))
        err = np.abs(pred.fine - scene.fine)[(..., *core)]
        u = rms_sigma(
            None if pred.uncertainty is None else pred.uncertainty[(..., *core)], err.shape
        )
        ratio = (err / np.broadcast_to(u, err.shape)).ravel()
        z.append(ratio[np.isfinite(ratio)])
    sums, counts = np.zeros(len(bands)), np.zeros(len(bands))
    for a, b in itertools.pairwise(scenes):
        rate = (b.fine - a.fine)[(..., *core)].astype(np.float64) ** 2 / (b.date - a.date).days
        ok = np.isfinite(rate)
        sums += np.where(ok, rate, 0.0).sum(axis=(1, 2))
        counts += ok.sum(axis=(1, 2))
    found = np.concatenate(z) if z else np.zeros(0)
    if found.size > _MAX_RESIDUALS:
        found = found[np.random.default_rng(0).choice(found.size, _MAX_RESIDUALS, replace=False)]
    return found, sums, counts


def rms_sigma(sigma: np.ndarray | None, shape: tuple[int, ...]) -> np.ndarray:
    """RMS over bands of a (band, y, x) sigma as float64 (y, x), at least :data:`U_FLOOR`;
    ones where the model has none."""
    if sigma is None:
        return np.ones(shape[-2:])
    return np.maximum(np.sqrt(np.mean(np.square(sigma, dtype=np.float64), axis=0)), U_FLOOR)


def _window_task(
    fine: np.ndarray, small: np.ndarray, factor: int, *args: object
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """:func:`window_residuals` after replicating the coarse window onto the fine one."""
    coarse = small.repeat(factor, axis=-2).repeat(factor, axis=-1)[
        ..., : fine.shape[-2], : fine.shape[-1]
    ]
    return window_residuals(fine.astype(np.float32), coarse.astype(np.float32), *args)  # type: ignore[arg-type]


def fit_calibration(
    client: Client,
    sources: Sources,
    model_key: str,
    bands: tuple[str, ...],
    halo: int,
    min_clear: float,
) -> SeriesCalibration:
    """The run's :class:`SeriesCalibration`, fitted on the pair dates of the sample windows.

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
    for y0, y1, x0, x1 in sample_windows((ny, nx), f):
        py0, px0 = max(0, y0 - halo) // f * f, max(0, x0 - halo) // f * f
        py1, px1 = min(ny, y1 + halo), min(nx, x1 + halo)
        core = (slice(y0 - py0, y1 - py0), slice(x0 - px0, x1 - px0))
        small = coarse[:, :, py0 // f : -(-py1 // f), px0 // f : -(-px1 // f)]
        args = (pairs, core, model_key, bands, min_clear)
        tasks.append(dask.delayed(_window_task)(fine[:, :, py0:py1, px0:px1], small, f, *args))
    results = client.compute(tasks, sync=True) if tasks else []
    z = np.concatenate([r[0] for r in results]) if results else np.zeros(0)
    sums = np.sum([r[1] for r in results], axis=0) if results else np.zeros(len(bands))
    counts = np.sum([r[2] for r in results], axis=0) if results else np.zeros(len(bands))
    with np.errstate(invalid="ignore", divide="ignore"):
        q = np.where(counts > 0, sums / np.maximum(counts, 1), PRIOR_Q)
    scale = float(np.quantile(z, ONE_SIGMA)) if z.size else 1.0
    return SeriesCalibration(scale, tuple(float(v) for v in q), int(z.size))
