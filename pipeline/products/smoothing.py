"""Gap filling and smoothing of daily series: weighted Whittaker and Savitzky-Golay.

Both act along ``time`` per pixel. On Dask they run chunk-parallel through
``xarray.apply_ufunc(dask="parallelized")`` with time as the core dim, so the
input is rechunked to one time chunk first. Within a chunk every pixel is solved
at once (:func:`whittaker_pixels`: a banded Cholesky stepping over the days with
numpy over all pixels; :func:`savgol_pixels`: vectorised gap filling and
``savgol_filter(axis=-1)``) instead of a Python loop over pixels.
The single-series :func:`whittaker` and :func:`savgol` are the reference the
vectorised forms are tested against (equal within 1e-6).
"""

from __future__ import annotations

from functools import lru_cache
from typing import Literal

import numpy as np
import xarray as xr
from scipy.linalg import solveh_banded
from scipy.signal import savgol_filter

Method = Literal["whittaker", "savgol"]

#: Default Whittaker smoothness for daily NDVI (larger = smoother; units day^4 for order 2).
DEFAULT_LAMBDA = 400.0


@lru_cache(maxsize=16)
def _penalty_bands(n: int, order: int) -> np.ndarray:
    """Upper banded form (order + 1, n) of D'D; D (n - order, n) the ``order``-th differences."""
    d = np.diff(np.eye(n), n=order, axis=0)
    dtd = d.T @ d
    bands = np.zeros((order + 1, n))
    for k in range(order + 1):
        bands[order - k, k:] = np.diagonal(dtd, offset=k)
    return bands


def whittaker(
    y: np.ndarray, w: np.ndarray, lam: float = DEFAULT_LAMBDA, order: int = 2
) -> np.ndarray:
    """Weighted Whittaker smoother of one series: argmin_z sum w (y - z)^2 + lam |D^order z|^2.

    Solves (W + lam D'D) z = W y, a symmetric positive-definite banded system, with
    ``scipy.linalg.solveh_banded`` in O(n). Samples with weight 0 or NaN value are
    gaps: the smoother fills them (the penalty interpolates a polynomial of degree
    ``2 * order - 1`` across them).

    Parameters
    ----------
    y : (n,) values, NaN allowed.
    w : (n,) weights >= 0.
    lam : smoothness; ``order`` : difference order (2 = curvature penalty).

    Returns
    -------
    (n,) float64 smoothed and gap-filled series; all NaN when fewer than ``order``
    samples carry weight (the system would be singular).
    """
    valid = np.isfinite(y) & (w > 0)
    if valid.sum() < max(order, 2):
        return np.full(y.shape, np.nan)
    wv = np.where(valid, w, 0.0)
    ab = _penalty_bands(y.size, order) * lam
    ab[-1] += wv
    return solveh_banded(ab, wv * np.where(valid, y, 0.0), check_finite=False)


def savgol(y: np.ndarray, w: np.ndarray, window: int = 31, polyorder: int = 2) -> np.ndarray:
    """Savitzky-Golay smoothing after linear interpolation over gaps (weight 0 or NaN).

    S-G takes no weights, so weights only decide which samples are kept; ends are
    held constant at the first/last kept value. ``window`` in days (odd).
    """
    valid = np.isfinite(y) & (w > 0)
    if valid.sum() < 2:
        return np.full(y.shape, np.nan)
    t = np.arange(y.size)
    filled = np.interp(t, t[valid], y[valid])
    win = min(window, y.size - (1 - y.size % 2))
    if win <= polyorder:
        return filled
    return savgol_filter(filled, win, polyorder, mode="interp")


#: Pixels per solve: keeps the working arrays (8 x 365 days x 1024 px x 8 B = 24 MB) near
#: the caches; the row-wise steps are memory-bound, and larger batches ran slower.
SOLVE_PIXELS = 1024


def _banded_cholesky(diag: np.ndarray, off: np.ndarray) -> list[np.ndarray]:
    """Cholesky factors of P banded SPD matrices sharing their off-diagonals.

    ``diag`` (n, P): main diagonals (penalty + each pixel's weights); ``off`` (p, n):
    ``off[d - 1, i] = A[i, i - d]``, the same for every pixel (the penalty alone).
    Returns ``low`` with ``low[d][i] = L[i, i - d]`` (d = 0 .. p), each (n, P).
    Row by row with numpy over all pixels: LAPACK's banded Cholesky pays a call per
    column, so for bandwidth 2 the pixel-vectorised loop is the fast one.
    """
    p = off.shape[0]
    low = [np.zeros(diag.shape) for _ in range(p + 1)]
    for i in range(diag.shape[0]):
        for d in range(min(p, i), 0, -1):
            j = i - d  # L[i, j] = (A[i, j] - sum_k L[i, j - k] L[j, j - k]) / L[j, j]
            acc = np.full(diag.shape[1], off[d - 1, i])
            for k in range(1, min(p - d, j) + 1):
                acc -= low[d + k][i] * low[k][j]
            low[d][i] = acc / low[0][j]
        acc = diag[i].copy()
        for d in range(1, min(p, i) + 1):
            acc -= low[d][i] ** 2
        low[0][i] = np.sqrt(acc)
    return low


def _cholesky_solve(low: list[np.ndarray], rhs: np.ndarray) -> np.ndarray:
    """Solve L L' z = rhs for every column (pixel) of ``rhs`` (n, P)."""
    n, p = rhs.shape[0], len(low) - 1
    y = np.empty(rhs.shape)
    for i in range(n):
        acc = rhs[i].copy()
        for d in range(1, min(p, i) + 1):
            acc -= low[d][i] * y[i - d]
        y[i] = acc / low[0][i]
    z = np.empty(rhs.shape)
    for i in range(n - 1, -1, -1):
        acc = y[i].copy()
        for d in range(1, min(p, n - 1 - i) + 1):
            acc -= low[d][i + d] * z[i + d]
        z[i] = acc / low[0][i]
    return z


def whittaker_pixels(
    y: np.ndarray, w: np.ndarray, lam: float = DEFAULT_LAMBDA, order: int = 2
) -> np.ndarray:
    """:func:`whittaker` of many series at once: (P, n) pixels x days -> (P, n) float64.

    The same banded system per pixel, solved by a banded Cholesky that runs over the
    ``n`` days with every step vectorised over the pixels (no pixel loop); the
    penalty's off-diagonals are shared, only the diagonal carries each pixel's weights.
    Pixels with fewer than ``max(order, 2)`` weighted samples come back all NaN.
    """
    n = y.shape[-1]
    out = np.empty(y.shape, np.float64)
    pen = _penalty_bands(n, order) * lam  # upper form: pen[order - d, i] = A[i - d, i]
    # lower form row i: A[i, i - d] = A[i - d, i] (symmetric)
    off = np.stack([pen[order - d] for d in range(1, order + 1)])
    for p0 in range(0, y.shape[0], SOLVE_PIXELS):
        # (n, P) C-ordered: each day's row of pixels is contiguous for the row-wise steps
        yb = np.ascontiguousarray(y[p0 : p0 + SOLVE_PIXELS].T)
        wb = np.ascontiguousarray(w[p0 : p0 + SOLVE_PIXELS].T)
        valid = np.isfinite(yb) & (wb > 0)
        wv = np.where(valid, wb, 0.0)
        singular = valid.sum(axis=0) < max(order, 2)
        wv[:, singular] = 1.0  # any solvable system; replaced by NaN below
        low = _banded_cholesky(pen[order][:, None] + wv, off)
        z = _cholesky_solve(low, wv * np.where(valid, yb, 0.0))
        z[:, singular] = np.nan
        out[p0 : p0 + SOLVE_PIXELS] = z.T
    return out


def _fill_gaps(y: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """Linear interpolation over the invalid days of every row (ends held), as ``np.interp``."""
    n = y.shape[-1]
    t = np.arange(n)[None, :]
    prev = np.maximum.accumulate(np.where(valid, t, -1), axis=-1)
    nxt = np.minimum.accumulate(np.where(valid, t, n)[:, ::-1], axis=-1)[:, ::-1]
    rows = np.arange(y.shape[0])[:, None]
    y_prev = y[rows, np.clip(prev, 0, n - 1)]
    y_next = y[rows, np.clip(nxt, 0, n - 1)]
    with np.errstate(invalid="ignore", divide="ignore"):
        inner = (y_next - y_prev) / (nxt - prev) * (t - prev) + y_prev
    out = np.where(prev < 0, y_next, np.where(nxt >= n, y_prev, inner))
    return np.where(valid, y, out)


def savgol_pixels(y: np.ndarray, w: np.ndarray, window: int = 31, polyorder: int = 2) -> np.ndarray:
    """:func:`savgol` of many series at once: (P, n) pixels x days -> (P, n) float64."""
    valid = np.isfinite(y) & (w > 0)
    filled = _fill_gaps(np.where(valid, y, 0.0), valid)
    n = y.shape[-1]
    win = min(window, n - (1 - n % 2))
    out = filled if win <= polyorder else savgol_filter(filled, win, polyorder, axis=-1)
    out[valid.sum(axis=-1) < 2] = np.nan
    return out


def _smooth_block(
    values: np.ndarray, weights: np.ndarray, method: Method, lam: float, window: int
) -> np.ndarray:
    """Smooth every series of a block (..., time) -> float32 (..., time)."""
    flat_v = values.reshape(-1, values.shape[-1]).astype(np.float64)
    flat_w = weights.reshape(-1, weights.shape[-1]).astype(np.float64)
    if method == "whittaker":
        out = whittaker_pixels(flat_v, flat_w, lam)
    else:
        out = savgol_pixels(flat_v, flat_w, window)
    return out.reshape(values.shape).astype(np.float32)


def smooth(
    values: xr.DataArray,
    weights: xr.DataArray,
    method: Method = "whittaker",
    lam: float = DEFAULT_LAMBDA,
    window: int = 31,
) -> xr.DataArray:
    """Smooth and gap-fill a (time, y, x) series chunk-parallel on Dask.

    Parameters
    ----------
    values : (time, y, x) float, NaN = no value (e.g. NDVI).
    weights : (time, y, x) float32 in [0, 1] (:func:`~pipeline.products.indices.quality_weights`).
    method : ``"whittaker"`` (weighted, ``lam``) or ``"savgol"`` (``window`` days).

    Returns
    -------
    xarray.DataArray (time, y, x) float32, lazy when the input is dask-backed.
    """
    if method not in ("whittaker", "savgol"):
        raise ValueError(f"unknown smoother {method!r}; use whittaker or savgol")
    if values.chunks is not None:
        values = values.chunk({"time": -1})
        weights = weights.chunk(dict(zip(values.dims, values.chunks, strict=True)))
    out = xr.apply_ufunc(
        _smooth_block,
        values,
        weights,
        input_core_dims=[["time"], ["time"]],
        output_core_dims=[["time"]],
        dask="parallelized",
        output_dtypes=[np.float32],
        kwargs={"method": method, "lam": lam, "window": window},
    )
    param = {"lambda": lam} if method == "whittaker" else {"window_days": window}
    out.attrs = {"smoother": method, **param}
    return out.transpose(*values.dims).rename(values.name)
