"""The gap fillers of :mod:`pipeline.fuse.gapfill` as compiled loops, one series at a time.

:func:`~pipeline.fuse.gapfill.fill_kalman` and :func:`~pipeline.fuse.gapfill.fill_linear`
work on whole (time, n) arrays: a dozen array operations per day, each allocating a
fresh temporary over every series. After the compiled STARFM they were the largest
part of a fuse task (profile of the 512² x 16-day chain, ``benchmarks/results.md``,
"Fuse stage profile"). Here each series is filtered / interpolated in registers.

Every value is computed with the same float64 operations in the same order as the
numpy versions (``x ** 2`` is ``x * x`` there too), so both give the same bits
(``tests/fuse/test_gapfill_kernels.py``); the numpy versions stay the reference and the
path where numba is missing.
"""

from __future__ import annotations

from typing import Any

import numpy as np

try:  # numba is a dependency; the numpy versions keep a broken install usable
    import numba
except ImportError:  # pragma: no cover - exercised only without numba
    numba = None  # type: ignore[assignment]

_compiled: dict[str, Any] = {}


def _kalman(values, sigma, q, prior, mean, var):
    """Filter + RTS smoother of each column of ``values`` (time, n) float64 into ``mean, var``.

    Days outer, series inner (contiguous rows), the state of every series in a vector.
    """
    n_t, n = values.shape
    m = np.zeros(n)
    p = np.full(n, prior)
    seen = np.zeros(n, np.bool_)
    for t in range(n_t):
        for j in range(n):
            pj = p[j] + q if t else p[j]
            s = sigma[t, j]
            r = (s if np.isfinite(s) else 0.0) ** 2
            v = values[t, j]
            ok = np.isfinite(v)
            seen[j] = seen[j] or ok
            gain = pj / (pj + r) if ok else 0.0
            m[j] = m[j] + gain * ((v - m[j]) if ok else 0.0)
            p[j] = (1.0 - gain) * pj
            mean[t, j], var[t, j] = m[j], p[j]
    for t in range(n_t - 2, -1, -1):
        for j in range(n):
            c = var[t, j] / (var[t, j] + q)
            mean[t, j] = mean[t, j] + c * (mean[t + 1, j] - mean[t, j])
            var[t, j] = var[t, j] + c**2 * (var[t + 1, j] - (var[t, j] + q))
    for j in range(n):
        if not seen[j]:
            for t in range(n_t):
                mean[t, j], var[t, j] = np.nan, np.nan


def _linear(values, sigma, q, correlated, out, var):
    """Interpolation between the nearest valid days of each column (see ``fill_linear``).

    Days outer, series inner: the next valid day of every day first (backwards), then the
    values with the last valid day carried forwards.
    """
    n_t, n = values.shape
    after = np.empty((n_t, n), np.int64)
    nxt = np.full(n, n_t)
    for t in range(n_t - 1, -1, -1):
        for j in range(n):
            if np.isfinite(values[t, j]):
                nxt[j] = t
            after[t, j] = nxt[j]
    before = np.full(n, -1)
    for t in range(n_t):
        for j in range(n):
            if np.isfinite(values[t, j]):
                before[j] = t
            b, a = before[j], after[t, j]
            b_ok, a_ok = b >= 0, a < n_t
            v0 = values[b, j] if b_ok else np.nan
            v1 = values[a, j] if a_ok else np.nan
            s0 = (sigma[b, j] if b_ok else np.nan) ** 2
            s1 = (sigma[a, j] if a_ok else np.nan) ** 2
            d0, d1 = np.float64(t - b), np.float64(a - t)
            span = max(d0 + d1, 1.0)
            w1 = d0 / span if (b_ok and a_ok) else (1.0 if a_ok else 0.0)
            w0 = 1.0 - w1
            if correlated:
                ends = (w0 * np.sqrt(s0) + w1 * np.sqrt(s1)) ** 2
            else:
                ends = w0**2 * s0 + w1**2 * s1
            both = ends + q * d0 * d1 / span
            if b_ok and a_ok:
                out[t, j], var[t, j] = w0 * v0 + w1 * v1, both
            elif b_ok:
                out[t, j], var[t, j] = v0, s0 + q * d0
            else:
                out[t, j], var[t, j] = v1, s1 + q * d1


def _jit(name: str, fn: Any) -> Any:
    """``fn`` compiled once per process (cached on disk by numba across processes)."""
    if name not in _compiled:
        _compiled[name] = numba.njit(cache=True, nogil=True)(fn)
    return _compiled[name]


def has_kernels() -> bool:
    """Whether the compiled fillers are available."""
    return numba is not None


def kalman(values: np.ndarray, sigma: np.ndarray, q: float, prior: float) -> tuple[np.ndarray, ...]:
    """Compiled :func:`~pipeline.fuse.gapfill.fill_kalman` (same bits).

    Parameters
    ----------
    values, sigma : (time, n) float64 series of one band (NaN = gap) and their 1-sigma.
    q : daily process variance (reflectance^2 per day).
    prior : variance of the state before any measurement.

    Returns
    -------
    (values, variance), both (time, n) float64; NaN where a series has no valid day.
    """
    mean, var = np.empty_like(values), np.empty_like(values)
    _jit("kalman", _kalman)(
        np.ascontiguousarray(values), np.ascontiguousarray(sigma), float(q), prior, mean, var
    )
    return mean, var


def linear(
    values: np.ndarray, sigma: np.ndarray, q: float, correlated: bool = False
) -> tuple[np.ndarray, ...]:
    """Compiled :func:`~pipeline.fuse.gapfill.fill_linear` (same bits); arguments as there."""
    out, var = np.empty_like(values), np.empty_like(values)
    _jit("linear", _linear)(
        np.ascontiguousarray(values), np.ascontiguousarray(sigma), float(q), correlated, out, var
    )
    return out, var
