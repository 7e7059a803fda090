"""Fitting a calibrated 1-sigma to training residuals: band factors, scale + floor, bridge q,
and the two scales of a filled day's sigma.

Pure numpy, no I/O: :mod:`pipeline.fuse.calibrate` gathers the residuals of the run's
training (pair) dates and turns these fits into its :class:`SeriesCalibration`.
Every fit targets the fractions of a normal error, 68.27 % within 1 sigma and
95.45 % within 2 sigma (:data:`pipeline.evaluate.calibration.ONE_SIGMA`, ``TWO_SIGMA``).

Why two parameters for the fused sigma: a pure scale ``s * u`` places the 1-sigma
quantile exactly, but the model's spread ``u`` ranks errors only loosely (pixels it
calls certain, e.g. one spectral candidate, still carry misregistration and residual
cloud), so the standardized error is heavy-tailed and the 2-sigma fraction falls
short. ``sigma = sqrt((s u)^2 + floor^2)`` gives those pixels an error of their own;
``s`` and ``floor`` are chosen together to place both quantiles as well as they can.
"""

from __future__ import annotations

import numpy as np

from pipeline.evaluate.calibration import ONE_SIGMA, TWO_SIGMA

#: Candidate floors, as multiples of the median |error| (0 = a pure scale).
_FLOOR_STEPS = np.linspace(0.0, 2.0, 21)
#: Candidate scales, as multiples of the pure scale that covers 68.27 %.
_SCALE_STEPS = np.linspace(0.05, 1.6, 32)
#: Residuals the scale and floor are fitted on (a deterministic subsample keeps it ~1 s).
_MAX_FIT = 100_000
#: Bisection steps of a monotone coverage (2^-40 of the bracket: far below 1e-4 reflectance).
_BISECT = 40


def subsample(arrays: list[np.ndarray], limit: int) -> list[np.ndarray]:
    """The same deterministic subset (at most ``limit``) of the last axis of every array.

    Keeps the residuals a fit (or a transfer to the client) holds bounded; the seed is
    fixed so a run's calibration is reproducible.
    """
    n = arrays[0].shape[-1]
    if n <= limit:
        return arrays
    keep = np.sort(np.random.default_rng(0).choice(n, limit, replace=False))
    return [a[..., keep] for a in arrays]


def band_factors(err: np.ndarray, u: np.ndarray) -> np.ndarray:
    """Per band, its share of the pixel sigma: the 68.27 % quantile of ``|err_b| / u``.

    Parameters
    ----------
    err : (band, n) float |error| (reflectance).
    u : (n,) float > 0, the model's sigma (RMS over bands).

    Returns
    -------
    (band,) float64 normalised to an RMS over bands of 1 (ones when ``n`` is 0).
    """
    if err.shape[1] == 0:
        return np.ones(err.shape[0])
    f = np.quantile(err / u[None], ONE_SIGMA, axis=1).astype(np.float64)
    f = np.maximum(f, 1e-6)
    return f / np.sqrt(np.mean(f**2))


def _coverage(z: np.ndarray, sigma: np.ndarray, k: float = 1.0) -> float:
    return float(np.mean(z <= k * sigma))


def misfit(z: np.ndarray, sigma: np.ndarray) -> float:
    """How far ``z / sigma`` is from a normal |error| at 1 and 2 sigma: the summed squared
    logs of its 68.27 % quantile over 1 and its 95.45 % quantile over 2 (0 = both placed)."""
    with np.errstate(invalid="ignore", divide="ignore"):  # 0 / 0: an exact fit, no residual
        q1, q2 = np.quantile(z / sigma, [ONE_SIGMA, TWO_SIGMA])
    return float(np.log(max(q1, 1e-12)) ** 2 + np.log(max(q2, 1e-12) / 2) ** 2)


def scale_and_floor(z: np.ndarray, u: np.ndarray) -> tuple[float, float]:
    """``(s, floor)`` of ``sigma = sqrt((s u)^2 + floor^2)`` placing both normal quantiles.

    Parameters
    ----------
    z : (n,) float |error| already divided by its band factor (reflectance).
    u : (n,) float > 0, the model's sigma of each (RMS over bands; 1 when none).

    Returns
    -------
    The pair of least :func:`misfit` over a grid of floors (multiples of the median
    ``z``) and scales. Where the error's tail is heavier than any sigma of ``u`` can
    follow (an error the model's spread does not see at all), no pair places both
    quantiles; the least-squares pair then misses each by a similar ratio, the
    1-sigma fraction above 68.27 % and the 2-sigma one below 95.45 % (a Student-t-like
    compromise rather than an exact 1 sigma and a short 2 sigma). ``(1.0, 0.0)`` when
    ``z`` is empty.
    """
    if z.size == 0:
        return 1.0, 0.0
    z, u = subsample([z, u], _MAX_FIT)
    median = float(np.median(z))
    s68 = float(np.quantile(z / u, ONE_SIGMA))
    best = (np.inf, s68, 0.0)
    for floor in _FLOOR_STEPS * median:
        for s in _SCALE_STEPS * s68:
            miss = misfit(z, np.sqrt((s * u) ** 2 + floor**2))
            if miss < best[0]:
                best = (miss, float(s), float(floor))
    return best[1], best[2]


def bridge_q(err: np.ndarray, h: np.ndarray, w2: np.ndarray, end_sigma: float) -> float | None:
    """Daily variance ``q`` with 68.27 % of ``err <= sqrt(q h + w2 end_sigma^2)``.

    Parameters
    ----------
    err : (m,) |value - its neighbours interpolated in time| of one band (reflectance).
    h : (m,) Brownian-bridge days ``d0 d1 / (d0 + d1)``.
    w2 : (m,) sum of the squared interpolation weights.
    end_sigma : 1-sigma of each end (a clear observation's noise).

    Returns
    -------
    ``q`` in reflectance^2 per day, or None for fewer than 100 residuals.
    """
    if err.size < 100:
        return None
    noise = w2 * end_sigma**2
    lo, hi = 0.0, float(np.quantile(err**2 / h, 0.999)) * 2 + 1e-12
    for _ in range(_BISECT):
        mid = (lo + hi) / 2
        if _coverage(err, np.sqrt(mid * h + noise)) < ONE_SIGMA:
            lo = mid
        else:
            hi = mid
    return hi


#: Candidate scales of a filled day's ends' sigma and of the filler's own sigma, as multiples
#: of the pure scale of their sum that covers 68.27 % (0: that part left out).
_END_STEPS = np.linspace(0.0, 2.0, 41)
_POOLED_STEPS = np.linspace(0.0, 3.0, 31)


def fill_scales(
    z: np.ndarray, ends: np.ndarray, pooled: np.ndarray, strata: np.ndarray
) -> tuple[float, float] | None:
    """``(a, b)`` of a filled day's ``sigma = sqrt(a^2 ends + b^2 pooled)`` placing both quantiles.

    Parameters
    ----------
    z : (n,) float |error| of filled training spells divided by its band factor (reflectance).
    ends : (n,) float the ends' correlated variance (reflectance^2), as the filler gives it.
    pooled : (n,) float the gap filler's own variance (reflectance^2): the smoother's
        posterior, with the random walk ``q`` between the valid days.
    strata : (n,) int the spell's half-width: the misfit is averaged over strata, so that one
        pair of scales holds for short spells and long ones (the random walk weighs more).

    Returns
    -------
    The pair of least mean :func:`coverage_misfit` over the strata on a grid of multiples
    of the pure scale, or None for fewer than 100 residuals.
    """
    ok = np.isfinite(z) & np.isfinite(ends) & np.isfinite(pooled) & (ends + pooled > 0)
    if ok.sum() < 100:
        return None
    z, ends, pooled, strata = z[ok], ends[ok], pooled[ok], strata[ok]
    z, ends, pooled, strata = subsample([z, ends, pooled, strata], _MAX_FIT)
    s68 = float(np.quantile(z / np.sqrt(ends + pooled), ONE_SIGMA))
    groups = [
        (z[strata == k] ** 2, ends[strata == k], pooled[strata == k]) for k in np.unique(strata)
    ]
    groups = [g for g in groups if g[0].size >= 50]
    best = (np.inf, s68, s68)
    for a in _END_STEPS * s68:
        for b in _POOLED_STEPS * s68:
            miss = np.mean([coverage_misfit(z2, a**2 * e + b**2 * p) for z2, e, p in groups])
            if miss < best[0]:
                best = (float(miss), float(a), float(b))
    return best[1], best[2]


def coverage_misfit(z2: np.ndarray, var: np.ndarray) -> float:
    """How far the fractions of ``z^2 <= var`` and ``z^2 <= 4 var`` are from 68.27 % and
    95.45 %, each in units of its tolerance (0.05 and 0.03): a quantile-free :func:`misfit`
    (comparisons only, so a grid of a few hundred candidates costs well under a second)."""
    within1, within2 = np.mean(z2 <= var), np.mean(z2 <= 4 * var)
    return float(((within1 - ONE_SIGMA) / 0.05) ** 2 + ((within2 - TWO_SIGMA) / 0.03) ** 2)


def fallback_errors(
    fell: np.ndarray,
    fine: np.ndarray,
    coarse: np.ndarray,
    keep: list[int],
    core: tuple[slice, slice],
    min_count: int,
) -> np.ndarray:
    """(band, k) errors of a coarse fallback: the left-out pairs' own fallback pixels, or,
    where fewer than ``min_count`` fell back, every pixel's ``|fine - coarse|``.

    The fallback pixels are where the model found no fine candidate (cloudy references,
    small fields), not a random sample of the window, so their sigma is fitted on their
    own errors when there are enough (on the demo the two agree within 2 %:
    ``benchmarks/seamless.md``).
    """
    if fell.shape[1] >= min_count:
        return fell
    n_bands = fine.shape[1]
    diffs = [np.abs(fine[k] - coarse[k])[(..., *core)].reshape(n_bands, -1) for k in keep]
    out = np.concatenate([np.zeros((n_bands, 0)), *diffs], axis=1)
    return out[:, np.isfinite(out).all(axis=0)]
