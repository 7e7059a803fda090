"""Temporal gap filling of one block's daily series: every covered pixel gets a value every day.

The fusion gives a value on days whose coarse image is clear at a pixel (and
the observation on clear Landsat days); a cloudy or missing coarse image
leaves a gap. This module fills those pixel-days from the block's own daily
series (one spatial block, the task's whole time window), each filled value
with a 1-sigma that grows with the distance to the valid days around it.

Two methods, same inputs and outputs, compared in ``benchmarks/seamless.md``:

* ``"linear"``: the coarse change interpolated in time. Between the nearest
  valid days ``t0 < t < t1`` of a pixel the value is interpolated linearly;
  for a fusion that is linear in the coarse change (fine ref + coarse change)
  this is the fusion of the coarse image interpolated between its valid days.
  Variance: the interpolation weights applied to the neighbours' variances plus
  a Brownian-bridge term ``q (t - t0)(t1 - t) / (t1 - t0)``; past the last (or
  before the first) valid day the nearest value is carried with ``+ q d``.
* ``"kalman"``: a local-level state-space model per pixel and band
  (HISTARFM-like): the state follows a random walk with daily variance ``q``,
  every valid value is a measurement with its own variance (its calibrated
  sigma squared), and a Kalman filter followed by a Rauch-Tung-Striebel
  smoother gives the mean and variance of every day. Only gap days take the
  smoothed value; valid days keep theirs.

The sigma :func:`fill_gaps` gives a filled day is the same for both methods, two parts
with a scale each (fitted on training spells, :mod:`pipeline.fuse.spells`):

* the filler's own variance (the smoother's posterior, or for ``"linear"`` the weighted
  ends' variances plus the bridge ``q h``): it pools every valid day near the gap as an
  independent measurement, so it shrinks where many valid days surround a short gap and
  grows with the gap; it ranks the filled errors best of the terms tried
  (``benchmarks/seamless.md``);
* the ends' *correlated* sigma (the nearest valid days' sigmas weighted and added, not
  their variances): fused days share reference pairs and the coarse sensor's
  misregistration, so their errors are correlated in time and pooling alone under-states
  a filled day's error (0.555 within 1 sigma instead of 0.68 before this term existed).

``q`` (reflectance^2 per day, per band) comes from the run's calibration
(:mod:`pipeline.fuse.calibrate`: the squared change between consecutive clear
pairs per day apart, training dates only); without one it is fitted on the
valid days of the series (:func:`process_variance`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

#: Gap-filling methods; the default won the comparison in ``benchmarks/seamless.md``.
METHODS = ("kalman", "linear")
DEFAULT_METHOD = "kalman"

#: Smallest daily process variance (reflectance^2): a flat series still lets sigma grow.
Q_FLOOR = 1e-6
#: Prior variance of the Kalman state before any measurement (diffuse: reflectance is O(0.1)).
_PRIOR_VAR = 1.0


@dataclass(frozen=True)
class Filled:
    """A gap-filled series.

    Attributes
    ----------
    values : (time, band, y, x) float32 reflectance; NaN only where a pixel has no valid day.
    sigma : (time, band, y, x) float32 1-sigma of ``values`` (reflectance).
    filled : (time, y, x) bool, pixel-days that were gaps and now hold a value.
    """

    values: np.ndarray
    sigma: np.ndarray
    filled: np.ndarray


def process_variance(values: np.ndarray, masked: bool = False) -> np.ndarray:
    """Daily random-walk variance per band, fitted on consecutive valid days.

    Parameters
    ----------
    values : (time, band, y, x) reflectance, NaN = not valid.
    masked : a pixel-day is valid only when every band is finite (as :func:`fill_gaps`
        masks them); False: each band's own finite values.

    Returns
    -------
    (band,) float64 ``q`` in reflectance^2 per day (at least :data:`Q_FLOOR`).
    """
    # band by band: one float64 (time, y, x) plane at a time, not the whole window's
    valid = np.isfinite(values).all(axis=1) if masked else None
    out = np.full(values.shape[1], Q_FLOOR)
    for b in range(values.shape[1]):
        band = values[:, b] if valid is None else np.where(valid, values[:, b], np.nan)
        step = np.diff(band.astype(np.float64), axis=0)
        d = step[np.isfinite(step)]
        if d.size:
            out[b] = max(float(np.mean(d**2)), Q_FLOOR)
    return out


def _neighbours(valid: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Index of the nearest valid day on/before and on/after each day (-1 / T where none)."""
    n = valid.shape[0]
    steps = np.arange(n).reshape(-1, *([1] * (valid.ndim - 1)))
    before = np.maximum.accumulate(np.where(valid, steps, -1), axis=0)
    after = np.minimum.accumulate(np.where(valid, steps, n)[::-1], axis=0)[::-1]
    return before, after


def fill_linear(
    values: np.ndarray, sigma: np.ndarray, q: np.ndarray, correlated: bool = False
) -> tuple[np.ndarray, ...]:
    """Linear interpolation in time between the nearest valid days (see module docstring).

    Parameters
    ----------
    values, sigma : (time, n) float64 series of one band (NaN = gap) and their 1-sigma.
    q : daily process variance of that band.
    correlated : the two ends' errors are fully correlated (their sigmas add, not their
        variances): fused days share reference pairs, so their errors do.

    Returns
    -------
    (values, variance), both (time, n) float64; NaN where a series has no valid day.
    """
    n = values.shape[0]
    valid = np.isfinite(values)
    before, after = _neighbours(valid)
    cols = np.arange(values.shape[1])[None, :]
    t = np.arange(n)[:, None]
    b_ok, a_ok = before >= 0, after < n
    v0 = np.where(b_ok, values[np.clip(before, 0, n - 1), cols], np.nan)
    v1 = np.where(a_ok, values[np.clip(after, 0, n - 1), cols], np.nan)
    s0 = np.where(b_ok, sigma[np.clip(before, 0, n - 1), cols], np.nan) ** 2
    s1 = np.where(a_ok, sigma[np.clip(after, 0, n - 1), cols], np.nan) ** 2
    d0, d1 = (t - before).astype(np.float64), (after - t).astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        w1 = np.where(b_ok & a_ok, d0 / np.maximum(d0 + d1, 1), np.where(a_ok, 1.0, 0.0))
        w0 = 1.0 - w1
        ends = (w0 * np.sqrt(s0) + w1 * np.sqrt(s1)) ** 2 if correlated else w0**2 * s0 + w1**2 * s1
        both = ends + q * d0 * d1 / np.maximum(d0 + d1, 1)
        out = np.where(b_ok & a_ok, w0 * v0 + w1 * v1, np.where(b_ok, v0, v1))
        var = np.where(b_ok & a_ok, both, np.where(b_ok, s0 + q * d0, s1 + q * d1))
    return out, var


def fill_kalman(values: np.ndarray, sigma: np.ndarray, q: np.ndarray) -> tuple[np.ndarray, ...]:
    """Kalman filter + Rauch-Tung-Striebel smoother of a daily random walk, per series.

    Parameters
    ----------
    values, sigma : (time, n) float64 series of one band (NaN = gap) and their 1-sigma
        (the measurement noise of each valid value).
    q : daily process variance of that band.

    Returns
    -------
    (values, variance), both (time, n) float64 smoothed; NaN where a series has no valid day.
    """
    n = values.shape[0]
    mean = np.zeros_like(values)
    var = np.zeros_like(values)
    m, p = np.zeros(values.shape[1]), np.full(values.shape[1], _PRIOR_VAR)
    r = np.where(np.isfinite(sigma), sigma, 0.0) ** 2
    for t in range(n):
        if t:
            p = p + q
        ok = np.isfinite(values[t])
        gain = np.where(ok, p / (p + r[t]), 0.0)
        m = m + gain * np.where(ok, values[t] - m, 0.0)
        p = (1.0 - gain) * p
        mean[t], var[t] = m, p
    for t in range(n - 2, -1, -1):
        # the smoother gain of a random walk: filtered variance over the next day's prediction
        c = var[t] / (var[t] + q)
        mean[t] = mean[t] + c * (mean[t + 1] - mean[t])
        var[t] = var[t] + c**2 * (var[t + 1] - (var[t] + q))
    none = ~np.isfinite(values).any(axis=0)
    mean[:, none], var[:, none] = np.nan, np.nan
    return mean, var


def bridge_days(valid: np.ndarray) -> np.ndarray:
    """Days of random-walk variance ``q`` in the bridge sigma of each day (see :func:`fill_linear`).

    Parameters
    ----------
    valid : (time, ...) bool, days with a value.

    Returns
    -------
    (time, ...) float64: ``d0 d1 / (d0 + d1)`` between the nearest valid days, the distance
    to the only one past either end, 0 on valid days, NaN where no day is valid.
    """
    n = valid.shape[0]
    before, after = _neighbours(valid)
    t = np.arange(n).reshape(-1, *([1] * (valid.ndim - 1)))
    d0, d1 = (t - before).astype(np.float64), (after - t).astype(np.float64)
    b_ok, a_ok = before >= 0, after < n
    with np.errstate(invalid="ignore", divide="ignore"):
        both = d0 * d1 / np.maximum(d0 + d1, 1)
    return np.where(b_ok & a_ok, both, np.where(b_ok, d0, np.where(a_ok, d1, np.nan)))


def next_to(valid: np.ndarray, flag: np.ndarray) -> np.ndarray:
    """(time, ...) bool: days whose nearest valid day before or after (or itself) is flagged.

    Parameters
    ----------
    valid, flag : (time, ...) bool, same shape.
    """
    n = valid.shape[0]
    before, after = _neighbours(valid)
    near = np.where(before >= 0, np.take_along_axis(flag, np.clip(before, 0, n - 1), 0), False)
    return near | np.where(after < n, np.take_along_axis(flag, np.clip(after, 0, n - 1), 0), False)


def _scale_maps(
    valid: np.ndarray,
    fallback: np.ndarray | None,
    cols: np.ndarray,
    scales: tuple[float, float],
    fallback_scales: tuple[float, ...],
) -> tuple[np.ndarray | float, np.ndarray | float]:
    """Squared (end, pooled) scales of each (time, col) day: ``fallback_scales`` where the
    nearest valid day before or after is a coarse fallback, ``scales`` elsewhere."""
    if fallback is None or len(fallback_scales) != 2:
        return scales[0] ** 2, scales[1] ** 2
    near = next_to(valid, fallback.reshape(valid.shape[0], -1)[:, cols])
    a2 = np.where(near, fallback_scales[0] ** 2, scales[0] ** 2)
    return a2, np.where(near, fallback_scales[1] ** 2, scales[1] ** 2)


def _fillers(method: str) -> tuple[Callable[..., tuple[np.ndarray, ...]], ...]:
    """(the method's filler, the bridge of the sigma): the compiled loops of
    :mod:`pipeline.fuse.gapfill_kernels` (same bits, a fraction of the time) where numba is."""
    from pipeline.fuse import gapfill_kernels as k

    if not k.has_kernels():
        return (fill_kalman if method == "kalman" else fill_linear), fill_linear

    def kalman(values: np.ndarray, sigma: np.ndarray, q: float) -> tuple[np.ndarray, ...]:
        return k.kalman(values, sigma, q, _PRIOR_VAR)

    return (kalman if method == "kalman" else k.linear), k.linear


def fill_gaps(
    values: np.ndarray,
    sigma: np.ndarray,
    cover: np.ndarray,
    q: np.ndarray | None = None,
    method: str = DEFAULT_METHOD,
    end_scale: float = 1.0,
    pooled_scale: float = 1.0,
    *,
    fallback: np.ndarray | None = None,
    fallback_scales: tuple[float, ...] = (),
) -> Filled:
    """Fill the gap pixel-days inside ``cover`` from the block's daily series.

    Parameters
    ----------
    values : (time, band, y, x) float32 reflectance; NaN = gap (a pixel-day is valid
        when every band is finite).
    sigma : (time, band, y, x) float32 calibrated 1-sigma of the valid values.
    cover : (y, x) bool, pixels inside the sources' coverage (only those are filled).
    q : (band,) daily random-walk variance (the run's calibration); None: fitted on
        the valid days of ``values`` (:func:`process_variance`).
    method : one of :data:`METHODS`.
    end_scale, pooled_scale : the run's calibration of a filled day's sigma
        (:mod:`pipeline.fuse.spells`): ``sqrt(end_scale^2 ends + pooled_scale^2 pooled)``,
        ``ends`` the nearest valid days' correlated variance, ``pooled`` the filler's own
        variance (module docstring). Only the sigma: the filled value uses ``q`` as given.
    fallback : (time, y, x) bool, valid days whose sigma is the coarse fallback's (a fused
        pixel where the model found no fine candidate), or None.
    fallback_scales : ``(end_scale, pooled_scale)`` of a gap day with such a day as either
        end (its error is the coarse image's, not the model's: scaled apart); empty: the same.

    Returns
    -------
    :class:`Filled`: valid pixel-days unchanged, gaps inside ``cover`` filled.
    """
    valid, gaps, cols, masked, q = _gap_setup(values, cover, q, method)
    out_v, out_s = values.copy(), sigma.copy()
    if not gaps.any():
        return Filled(out_v, out_s, gaps)
    t, nb = values.shape[:2]
    a2, p2 = _scale_maps(valid.reshape(t, -1)[:, cols], fallback, cols, (end_scale, pooled_scale),
                         fallback_scales)  # fmt: skip
    for b in range(nb):
        mean, ends, pooled = _band_parts(masked, sigma, cols, q, method, b)
        var = a2 * ends + p2 * pooled
        # out_v[:, b] is a strided view: reshape copies, so write the band back whole
        band_v, band_s = out_v[:, b].reshape(t, -1), out_s[:, b].reshape(t, -1)
        hole = gaps.reshape(t, -1)[:, cols]
        band_v[:, cols] = np.where(hole, mean, band_v[:, cols])
        band_s[:, cols] = np.where(hole, np.sqrt(np.maximum(var, 0.0)), band_s[:, cols])
        out_v[:, b], out_s[:, b] = band_v.reshape(gaps.shape), band_s.reshape(gaps.shape)
    filled = gaps & np.isfinite(out_v).all(axis=1)
    return Filled(out_v, out_s, filled)


def gap_day_parts(
    values: np.ndarray, sigma: np.ndarray, q: np.ndarray, method: str, day: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The filled value and both parts of its variance on ``day``, a gap at every pixel.

    One filler pass gives what :func:`fill_gaps` scales and adds (module docstring), so the
    spells of :mod:`pipeline.fuse.spells` fit the two scales without filling twice.

    Parameters
    ----------
    values : (time, band, y, x) float32 reflectance, NaN = gap; ``values[day]`` all NaN.
    sigma : (time, band, y, x) float32 calibrated 1-sigma of the valid values.
    q : (band,) daily random-walk variance (reflectance^2 per day).
    method : one of :data:`METHODS`.
    day : index of the gap day.

    Returns
    -------
    value : (band, y * x) float32 filled reflectance (NaN where a pixel has no valid day).
    ends, pooled : (band, y * x) float64 the ends' correlated variance and the filler's own
        (reflectance^2), unscaled.
    """
    cover = np.ones(values.shape[2:], bool)
    _, gaps, cols, masked, q = _gap_setup(values, cover, q, method)
    if not gaps[day].all():
        raise ValueError(f"day {day} is not a gap at every pixel")
    parts = [_band_parts(masked, sigma, cols, q, method, b) for b in range(values.shape[1])]
    value = np.stack([mean[day] for mean, _, _ in parts]).astype(np.float32)
    ends, pooled = (np.stack([part[k][day] for part in parts]) for k in (1, 2))
    return value, ends, pooled


def _gap_setup(
    values: np.ndarray, cover: np.ndarray, q: np.ndarray | None, method: str
) -> tuple[np.ndarray, ...]:
    """(valid (time, y, x), gaps (time, y, x), cols: flat indices of the pixels with a gap,
    masked: ``values`` NaN on invalid pixel-days, q (band,) float64) of a block's series."""
    if method not in METHODS:
        raise ValueError(f"unknown gap-filling method {method!r}; use one of {METHODS}")
    valid = np.isfinite(values).all(axis=1)
    gaps = ~valid & cover[None]
    masked = np.where(valid[:, None], values, np.nan)
    q = process_variance(masked) if q is None else np.asarray(q, np.float64)
    cols = np.flatnonzero(gaps.any(axis=0).ravel())  # only pixels with a gap are worked on
    return valid, gaps, cols, masked, q


def _band_parts(
    masked: np.ndarray, sigma: np.ndarray, cols: np.ndarray, q: np.ndarray, method: str, b: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(mean, ends, pooled) of band ``b`` at ``cols``: each (time, col) float64, the filler's
    mean and variance and the ends' correlated variance (module docstring)."""
    t = masked.shape[0]
    filler, bridge = _fillers(method)
    series = masked[:, b].reshape(t, -1)[:, cols].astype(np.float64)
    noise = sigma[:, b].reshape(t, -1)[:, cols].astype(np.float64)
    mean, pooled = filler(series, noise, q[b])
    # the filler's variance counts neighbouring fused days as independent measurements,
    # but their errors share reference pairs (and misregistration): the ends' correlated
    # variance (no random walk, that is in ``pooled``) is the second term
    _, ends = bridge(series, noise, 0.0, correlated=True)
    return mean, ends, pooled
