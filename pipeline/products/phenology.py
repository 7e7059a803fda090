"""Per-pixel land-surface phenology from a smoothed daily NDVI series.

Method (amplitude threshold, as in TIMESAT's "seasonal amplitude" rule):

* peak (POS) = day of the series maximum; ``peak`` its NDVI.
* left / right base = minimum NDVI before / after the peak; ``amplitude`` =
  peak - mean(left base, right base).
* SOS = the day the rising limb crosses left base + ``threshold`` x (peak - left base);
  EOS = the day the falling limb crosses right base + ``threshold`` x (peak - right base);
  linear interpolation between days gives sub-day values. Defaults: ``threshold`` 0.2
  for SOS/EOS, and 0.5 for the green-up / senescence mid-points ``sos50``/``eos50``.
* ``length`` = EOS - SOS (days); ``integral`` = sum over SOS..EOS of (NDVI - base) x 1 day
  (the "small integral", NDVI·day).

Days are day-of-year of the first year of the series (float32; > 365 if it spans years).
Pixels whose amplitude is below ``min_amplitude`` (bare soil, water, built-up) get
NaN timing metrics.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import xarray as xr

METRICS: tuple[str, ...] = (
    "sos", "pos", "eos", "sos50", "eos50", "peak", "amplitude", "length", "integral",
)  # fmt: skip

UNITS = {"peak": "NDVI", "amplitude": "NDVI", "length": "days", "integral": "NDVI day"}


def _crossing(v: np.ndarray, thr: np.ndarray, peak: np.ndarray, rising: bool) -> np.ndarray:
    """Fractional index where each row of ``v`` (pixels, time) crosses ``thr`` next to its peak."""
    n = v.shape[1]
    idx = np.arange(n)[None, :]
    rows = np.arange(v.shape[0])
    if rising:
        below = (idx < peak[:, None]) & (v < thr[:, None])
        i0 = np.where(below, idx, -1).max(axis=1)  # last day below before the peak
        i1 = np.clip(i0 + 1, 0, n - 1)
    else:
        below = (idx > peak[:, None]) & (v < thr[:, None])
        i1 = np.where(below, idx, n).min(axis=1)  # first day below after the peak
        i0 = np.clip(i1 - 1, 0, n - 1)
    ok = (i0 >= 0) & (i1 < n)
    i0c, i1c = np.clip(i0, 0, n - 1), np.clip(i1, 0, n - 1)
    v0, v1 = v[rows, i0c], v[rows, i1c]
    step = np.where(np.abs(v1 - v0) > 1e-9, (thr - v0) / np.where(v1 == v0, 1, v1 - v0), 0.0)
    return np.where(ok, i0c + np.clip(step, 0, 1), np.nan)


def metrics_block(
    v: np.ndarray, threshold: float = 0.2, mid: float = 0.5, min_amplitude: float = 0.1
) -> np.ndarray:
    """Phenology of a block of series.

    Parameters
    ----------
    v : (..., time) smoothed daily NDVI, float; all-NaN series give NaN metrics.

    Returns
    -------
    (..., len(METRICS)) float32; timing metrics as day index from the series start.
    """
    shape = v.shape[:-1]
    v2 = v.reshape(-1, v.shape[-1]).astype(np.float64)
    empty = ~np.isfinite(v2).any(axis=1)
    v2 = np.where(
        np.isfinite(v2), v2, np.nanmin(np.where(empty[:, None], 0, v2), axis=1, keepdims=True)
    )
    peak_i = v2.argmax(axis=1)
    peak = v2.max(axis=1)
    idx = np.arange(v2.shape[1])[None, :]
    base_l = np.where(idx <= peak_i[:, None], v2, np.inf).min(axis=1)
    base_r = np.where(idx >= peak_i[:, None], v2, np.inf).min(axis=1)
    amp = peak - 0.5 * (base_l + base_r)
    out = {"peak": peak, "amplitude": amp, "pos": peak_i.astype(np.float64)}
    for name, frac in (("", threshold), ("50", mid)):
        out["sos" + name] = _crossing(v2, base_l + frac * (peak - base_l), peak_i, rising=True)
        out["eos" + name] = _crossing(v2, base_r + frac * (peak - base_r), peak_i, rising=False)
    out["length"] = out["eos"] - out["sos"]
    base = np.where(idx <= peak_i[:, None], base_l[:, None], base_r[:, None])
    inside = (idx >= out["sos"][:, None]) & (idx <= out["eos"][:, None])
    out["integral"] = np.where(inside, v2 - base, 0.0).sum(axis=1)
    res = np.stack([out[m] for m in METRICS], axis=-1)
    no_season = (amp < min_amplitude) | empty
    res[no_season] = np.nan
    res[no_season & ~empty, METRICS.index("peak")] = peak[no_season & ~empty]
    res[no_season & ~empty, METRICS.index("amplitude")] = amp[no_season & ~empty]
    return res.reshape(*shape, len(METRICS)).astype(np.float32)


def phenology(
    ndvi_smooth: xr.DataArray, threshold: float = 0.2, mid: float = 0.5, min_amplitude: float = 0.1
) -> xr.Dataset:
    """Per-pixel phenology metrics of a smoothed daily NDVI (time, y, x), chunk-parallel.

    Returns
    -------
    xarray.Dataset of (y, x) float32 variables named as :data:`METRICS`; timing in
    day-of-year of the first year (see module docstring), with ``units`` attrs.
    """
    v = ndvi_smooth.chunk({"time": -1}) if ndvi_smooth.chunks is not None else ndvi_smooth
    stacked = xr.apply_ufunc(
        metrics_block,
        v,
        input_core_dims=[["time"]],
        output_core_dims=[["metric"]],
        dask="parallelized",
        output_dtypes=[np.float32],
        dask_gufunc_kwargs={"output_sizes": {"metric": len(METRICS)}},
        kwargs={"threshold": threshold, "mid": mid, "min_amplitude": min_amplitude},
    )
    t0 = pd.Timestamp(ndvi_smooth["time"].values[0])
    doy0 = float(t0.dayofyear)
    out = xr.Dataset()
    for k, name in enumerate(METRICS):
        da = stacked.isel(metric=k, drop=True).astype(np.float32)
        if name in ("sos", "pos", "eos", "sos50", "eos50"):
            da = da + np.float32(doy0)
            da.attrs = {"units": f"day of year {t0.year}", "long_name": name}
        else:
            da.attrs = {"units": UNITS[name], "long_name": name}
        out[name] = da
    out.attrs = {
        "method": "amplitude threshold (TIMESAT-style), see pipeline.products.phenology",
        "threshold": threshold,
        "mid_threshold": mid,
        "min_amplitude": min_amplitude,
    }
    return out
