"""A fuse task's window made seamless, strip by strip: calibrated sigma, coverage, filled gaps.

A task's window is one block over a store time chunk (up to 366 days). Stacking
its days and working on them whole held ~25 float32-sized copies of every
pixel-day at once (float64 sigma planes, the gap filler's copies), so a worker's
memory grew with the days of its tasks (``benchmarks/results.md``, "Full chain at
growing sizes"). Every step here but two works per pixel series (the gap fillers,
the calibration's maps, the coverage), so the window is worked on in strips of
rows whose pixel-days are bounded (:data:`STRIP_PIXEL_DAYS`); the two window-wide
statistics (the typical model sigma of a pixel the model gave none, and the
fallback process variance when the run has no calibration) are taken on the
whole window first. Only the outputs and the stacked values are held whole.
The strips give the same bits as the whole window (``tests/fuse/test_seamless.py``).
"""

from __future__ import annotations

import numpy as np

from pipeline.fuse.calibrate import (
    OBS_SIGMA,
    PRIOR_SIGMA,
    U_FLOOR,
    SeriesCalibration,
    fallback_days,
)
from pipeline.fuse.gapfill import DEFAULT_METHOD, fill_gaps, process_variance
from pipeline.store.layout import FILLED, FUSED, GAP, OBSERVED, OUTSIDE

#: Pixel-days of one strip (~150 bytes of temporaries each: ~75 MB a strip).
STRIP_PIXEL_DAYS = 1 << 19


def _model_u(model_sigma: np.ndarray) -> np.ndarray:
    """(time, y, x) float64 RMS over bands of the model's sigma, at least :data:`U_FLOOR`."""
    with np.errstate(invalid="ignore"):  # NaN where the model gave no sigma: kept NaN
        rms = np.sqrt(np.mean(np.square(model_sigma, dtype=np.float64), axis=1))
        return np.maximum(rms, U_FLOOR)


def _fused_sigma(
    model_sigma: np.ndarray, calib: SeriesCalibration, typical: float | None = None
) -> np.ndarray:
    """Calibrated 1-sigma (time, band, y, x) of fused pixel-days from the model's.

    ``typical``: the window's median model sigma (RMS over bands), for pixels without one;
    None: the median of ``model_sigma``'s own (1.0 where it has none).
    """
    u = _model_u(model_sigma)
    if not calib.samples:  # no pair to calibrate on: the model's own sigma, else a prior
        pixel = np.where(np.isfinite(u), u, PRIOR_SIGMA)
    else:
        if typical is None:
            typical = float(np.nanmedian(u)) if np.isfinite(u).any() else 1.0
        # a model without sigma was calibrated with u = 1; a missing pixel takes the typical u,
        # or, where the calibration knows it, the sigma of the coarse fallback it got there
        missing = calib.coarse_sigma or calib.fused(np.float64(typical))
        pixel = np.where(np.isfinite(u), calib.fused(np.where(np.isfinite(u), u, 1.0)), missing)
    return pixel[:, None] * calib.factors(model_sigma.shape[1])[None, :, None, None]


def _strips(days: list[dict[str, np.ndarray]], rows: int, limit: int) -> list[slice]:
    """Row slices whose pixel-days stay under ``limit`` (at least one row each)."""
    width = days[0]["quality"].shape[1]
    step = max(1, limit // max(1, len(days) * width))
    return [slice(r, min(r + step, rows)) for r in range(0, rows, step)]


def _stack(
    days: list[dict[str, np.ndarray]], key: str, full: tuple[int, ...], rows: slice
) -> np.ndarray:
    """(time, band, rows, x) float32 of ``key`` (1-band placeholders broadcast over bands)."""
    out = np.empty((full[0], full[1], rows.stop - rows.start, full[3]), np.float32)
    for i, day in enumerate(days):
        out[i] = day[key][:, rows]
    return out


def _typical_u(
    days: list[dict[str, np.ndarray]], strips: list[slice], full: tuple[int, ...]
) -> float:
    """The window's median model sigma (RMS over bands) over pixel-days that have one; 1.0 if none.

    Taken strip by strip over the finite values only: the same value as ``np.nanmedian``
    of the whole window (the median of the same numbers).
    """
    finite = []
    for rows in strips:
        u = _model_u(_stack(days, "sigma", full, rows))
        finite.append(u[np.isfinite(u)])
    values = np.concatenate(finite)
    return float(np.median(values)) if values.size else 1.0


def seamless_window(
    days: list[dict[str, np.ndarray]],
    cover: np.ndarray,
    calib: SeriesCalibration,
    method: str = DEFAULT_METHOD,
    n_bands: int | None = None,
    strip_pixel_days: int = STRIP_PIXEL_DAYS,
) -> dict[str, np.ndarray]:
    """Stack a window's days and make it seamless: calibrated sigma, coverage, filled gaps.

    Returns ``values`` (time, band, y, x) float32, ``uncertainty`` (time, y, x)
    float32 (RMS over bands of the calibrated sigma), ``quality`` (time, y, x)
    uint8 and the two ``ref_*_days`` (time, y, x) int16. Outside ``cover`` ((y, x) bool)
    every pixel-day is NaN and ``OUTSIDE``; inside, gaps become ``FILLED``
    (a gap stays ``GAP`` only where a pixel has no valid day in the window).
    ``n_bands``: the store's band count (a window whose every day is a gap holds
    only 1-band placeholders); default: the widest day. ``strip_pixel_days``: the
    pixel-days worked on at once (memory only; the result does not depend on it).
    """
    shape = days[0]["quality"].shape
    n_bands = n_bands or max(day["values"].shape[0] for day in days)
    full = (len(days), n_bands, *shape)
    quality = np.stack([day["quality"] for day in days])
    values = _stack(days, "values", full, slice(0, shape[0]))
    values[np.broadcast_to((quality == GAP)[:, None], full)] = np.nan
    strips = _strips(days, shape[0], strip_pixel_days)
    typical = 1.0
    if calib.samples and not calib.coarse_sigma:  # only then does a missing sigma take it
        typical = _typical_u(days, strips, full)
    q = np.asarray(calib.q) if calib.q else process_variance(values, masked=True)
    unc = np.empty(quality.shape, np.float32)
    for rows in strips:
        part = _seamless_strip(days, values[:, :, rows], quality[:, rows], cover[rows],
                               calib, (q, typical), method, rows)  # fmt: skip
        values[:, :, rows], unc[:, rows] = part
    return {
        "values": values,
        "uncertainty": unc,
        "quality": quality,
        "ref_before_days": np.stack([day["ref_before_days"] for day in days]),
        "ref_after_days": np.stack([day["ref_after_days"] for day in days]),
    }


def _seamless_strip(
    days: list[dict[str, np.ndarray]],
    values: np.ndarray,
    quality: np.ndarray,
    cover: np.ndarray,
    calib: SeriesCalibration,
    window: tuple[np.ndarray, float],
    method: str,
    rows: slice,
) -> tuple[np.ndarray, np.ndarray]:
    """One strip of :func:`seamless_window`: (values, uncertainty) of its rows; ``quality``
    (a view of the window's) gets its ``FILLED`` and ``OUTSIDE`` flags in place.

    ``window``: the window-wide ``q`` (band,) and typical model sigma.
    """
    q, typical = window
    full = (values.shape[0], values.shape[1], *quality.shape[1:])
    model_sigma = _stack(days, "sigma", full, rows)
    observed, fused = (quality & OBSERVED) > 0, (quality & FUSED) > 0
    fused_sigma = _fused_sigma(model_sigma, calib, typical)
    sigma = np.where(observed[:, None], OBS_SIGMA, np.where(fused[:, None], fused_sigma, np.nan))
    sigma = sigma.astype(np.float32)
    del fused_sigma
    fell = fallback_days(model_sigma, fused, calib)
    del model_sigma
    result = fill_gaps(values, sigma, cover, q, method, calib.fill_end, calib.fill_pooled,
                       fallback=fell, fallback_scales=calib.fill_fallback)  # fmt: skip
    del sigma
    quality[result.filled] = FILLED
    quality[:, ~cover] = OUTSIDE
    out = np.where(quality[:, None] == OUTSIDE, np.nan, result.values).astype(np.float32)
    with np.errstate(invalid="ignore"):
        unc = np.sqrt(np.mean(np.square(result.sigma, dtype=np.float64), axis=1))
    valued = (quality & (OBSERVED | FUSED | FILLED)) > 0
    return out, np.where(valued, unc, np.nan).astype(np.float32)
