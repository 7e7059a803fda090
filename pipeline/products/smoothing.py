"""Gap filling and smoothing of daily series: weighted Whittaker and Savitzky-Golay.

Both act along ``time`` per pixel. On Dask they run chunk-parallel through
``xarray.apply_ufunc(dask="parallelized")`` with time as the core dim, so the
input is rechunked to one time chunk first.
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


def _smooth_block(
    values: np.ndarray, weights: np.ndarray, method: Method, lam: float, window: int
) -> np.ndarray:
    """Smooth every series of a block (..., time) -> float32 (..., time)."""
    flat_v = values.reshape(-1, values.shape[-1]).astype(np.float64)
    flat_w = weights.reshape(-1, weights.shape[-1]).astype(np.float64)
    out = np.empty_like(flat_v)
    for i in range(flat_v.shape[0]):
        if method == "whittaker":
            out[i] = whittaker(flat_v[i], flat_w[i], lam)
        else:
            out[i] = savgol(flat_v[i], flat_w[i], window)
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
