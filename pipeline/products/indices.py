"""Spectral indices and per-day quality weights from the fused store.

Indices take reflectance in [0, 1] (float32, NaN = no value) and return float32.
The weight functions turn the store's calibrated per-pixel-day ``uncertainty`` (or, in a
store without it, its provenance flags) into a confidence in [0, 1] used by the smoothers
(:mod:`pipeline.products.smoothing`).
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from pipeline.fuse.calibrate import OBS_SIGMA
from pipeline.products.source import (
    FILLED,
    FUSED,
    GAP,
    OBSERVED,
    OUTSIDE,
    SINGLE_PAIR,
    band_factors,
)

#: Weight of a clear Landsat observation (the value *is* the measurement).
W_OBSERVED = 1.0
#: Weight of a fused value on a pair date (``d = 0``) and far from any pair.
W_FUSED_NEAR, W_FUSED_FAR = 0.7, 0.2
#: e-folding distance (days) of the fused weight from the nearest reference pair.
TAU_DAYS = 16.0
#: Factor on fused values predicted from one reference pair only (no bracketing).
SINGLE_PAIR_FACTOR = 0.8
#: Reference 1-sigma (reflectance) that weighs 1: a clear Landsat observation's sensor noise.
SIGMA_REF = float(OBS_SIGMA)
#: Smallest weight of a pixel-day with a value and a finite sigma (sigma >= 0.5 reflectance):
#: such a day barely moves the fit, yet is never dropped and keeps the system well posed.
W_MIN = 1e-4


def _ratio(a: xr.DataArray, b: xr.DataArray) -> xr.DataArray:
    den = a + b
    return xr.where(np.abs(den) > 1e-6, (a - b) / den, np.nan).astype(np.float32)


def ndvi(red: xr.DataArray, nir: xr.DataArray) -> xr.DataArray:
    """NDVI = (nir - red) / (nir + red); NaN where the denominator vanishes."""
    return _ratio(nir, red).rename("ndvi")


def ndwi(green: xr.DataArray, nir: xr.DataArray) -> xr.DataArray:
    """NDWI (McFeeters 1996) = (green - nir) / (green + nir): open water > 0, vegetation < 0."""
    return _ratio(green, nir).rename("ndwi")


def evi(blue: xr.DataArray, red: xr.DataArray, nir: xr.DataArray) -> xr.DataArray:
    """EVI (MODIS form) = 2.5 (nir - red) / (nir + 6 red - 7.5 blue + 1)."""
    den = nir + 6.0 * red - 7.5 * blue + 1.0
    out = xr.where(np.abs(den) > 1e-6, 2.5 * (nir - red) / den, np.nan)
    return out.astype(np.float32).rename("evi")


#: Attributes of each product variable: its own, never inherited from an input variable.
ATTRS: dict[str, dict[str, object]] = {
    "ndvi": {"long_name": "normalized difference vegetation index (nir - red) / (nir + red)"},
    "evi": {
        "long_name": "enhanced vegetation index 2.5 (nir - red) / (nir + 6 red - 7.5 blue + 1)"
    },
    "ndwi": {"long_name": "normalized difference water index (green - nir) / (green + nir)"},
    "weight": {
        "long_name": "confidence of the daily value used by the smoother (0 = ignored)",
        "comment": "inverse variance relative to a clear observation: clip((0.005 / sigma)^2,"
        " 1e-4, 1), sigma the store's calibrated uncertainty (reflectance) of the pixel-day"
        " (observed, fused or filled); 0 gap, outside coverage or no value. Stores without"
        " uncertainty: 1 observed; fused 0.7 at a reference pair decaying to 0.2"
        " (e-folding 16 days), x 0.8 with a single pair; 0 otherwise",
    },
    "ndvi_smooth": {"long_name": "smoothed, gap-filled daily NDVI"},
}


def with_attrs(da: xr.DataArray, name: str) -> xr.DataArray:
    """``da`` named ``name`` carrying exactly the attributes of :data:`ATTRS` (units ``1``)."""
    return da.rename(name).drop_attrs(deep=False).assign_attrs(units="1", **ATTRS[name])


def indices(ds: xr.Dataset) -> xr.Dataset:
    """Every index whose bands the store has: ``ndvi`` always, ``evi`` (blue), ``ndwi`` (green)."""
    out = {"ndvi": ndvi(ds["red"], ds["nir"])}
    if "blue" in ds:
        out["evi"] = evi(ds["blue"], ds["red"], ds["nir"])
    if "green" in ds:
        out["ndwi"] = ndwi(ds["green"], ds["nir"])
    return xr.Dataset({name: with_attrs(da, name) for name, da in out.items()})


def quality_weights(
    quality: np.ndarray, ref_before: np.ndarray | None = None, ref_after: np.ndarray | None = None
) -> np.ndarray:
    """Confidence of each daily value from the provenance flags alone (no sigma).

    The fallback of :func:`weights_of` for stores without ``uncertainty``; it ignores
    each fused day's error, so stores with it use :func:`sigma_weights`.
    The function (float32, same shape as ``quality``)::

        observed                 -> 1.0
        fused, nearest pair d days away
                                 -> W_FAR + (W_NEAR - W_FAR) * exp(-d / 16)   (0.7 at d=0 -> 0.2)
                                    x 0.8 if only one reference pair was used
        gap (or no flag)         -> 0

    ``d = min(ref_before, ref_after)`` over the sides that exist (``-1`` = none);
    without the reference-day variables fused values get ``W_FUSED_FAR``.

    Parameters
    ----------
    quality : uint8 bit flags (1 observed, 2 fused, 4 single_pair, 8 gap), any shape.
    ref_before, ref_after : int16 days to the reference pair, same shape, ``-1`` = none.
    """
    q = np.asarray(quality).astype(np.uint8)
    if ref_before is None or ref_after is None:
        fused_w = np.full(q.shape, W_FUSED_FAR, np.float32)
    else:
        big = np.float32(1e4)
        b = np.where(np.asarray(ref_before) >= 0, ref_before, big).astype(np.float32)
        a = np.where(np.asarray(ref_after) >= 0, ref_after, big).astype(np.float32)
        d = np.minimum(a, b)
        fused_w = W_FUSED_FAR + (W_FUSED_NEAR - W_FUSED_FAR) * np.exp(-d / TAU_DAYS)
    fused_w = np.where(q & SINGLE_PAIR, fused_w * SINGLE_PAIR_FACTOR, fused_w)
    w = np.where(q & FUSED, fused_w, 0.0)
    w = np.where(q & OBSERVED, W_OBSERVED, w)
    w = np.where(q & GAP, 0.0, w)
    return w.astype(np.float32)


def sigma_weights(quality: np.ndarray, uncertainty: np.ndarray) -> np.ndarray:
    """Inverse-variance weight of each daily value from the store's calibrated sigma.

    The function (float32, same shape as ``quality``)::

        w = clip((SIGMA_REF / sigma)^2, W_MIN, 1)     SIGMA_REF = 0.005 reflectance

    for every pixel-day flagged observed, fused or filled whose sigma is finite, and 0 for
    gaps, outside-coverage pixels and days without a value or flag. The weighted Whittaker
    fit minimises ``sum w (y - z)^2``, so weights proportional to ``1 / sigma^2`` make it
    the maximum-likelihood smoother under independent Gaussian errors: a fused day with
    sigma 0.05 counts 1/100 of a clear observation, a filled day at its own (larger)
    sigma still pulls the curve where nothing else does. Observed days take their own
    sensor-noise sigma (the store's 0.005; :data:`SIGMA_REF` where it has none), so they
    weigh 1. The upper bound 1 (sigma below the sensor noise is not believed) and the
    lower bound :data:`W_MIN` keep the banded system well conditioned.

    Parameters
    ----------
    quality : uint8 bit flags (1 observed, 2 fused, 4 single_pair, 8 gap, 16 outside
        coverage, 32 filled), any shape.
    uncertainty : float32 calibrated 1-sigma (reflectance, RMS over bands), same shape;
        NaN where there is no value.
    """
    q = np.asarray(quality).astype(np.uint8)
    sigma = np.asarray(uncertainty, dtype=np.float32)
    sigma = np.where((q & OBSERVED) > 0, np.where(np.isfinite(sigma), sigma, SIGMA_REF), sigma)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        # sigma <= SIGMA_REF (0 included) is clipped to 1, never divided by zero
        w = np.clip((SIGMA_REF / np.maximum(sigma, SIGMA_REF)) ** 2, W_MIN, 1.0)
    valued = (q & (OBSERVED | FUSED | FILLED)) > 0
    keep = valued & ((q & (GAP | OUTSIDE)) == 0) & np.isfinite(sigma)
    return np.where(keep, w, 0.0).astype(np.float32)


def weights_of(ds: xr.Dataset) -> xr.DataArray:
    """Smoother weights of a store dataset, lazily (dims (time, y, x), float32 in [0, 1]).

    :func:`sigma_weights` from the calibrated ``uncertainty`` when the store has it (every
    store written by ``stf run``), else :func:`quality_weights` from the flags and the
    reference-day variables (stores written before the uncertainty existed).
    """
    if "uncertainty" in ds:
        func, args = sigma_weights, [ds["quality"], ds["uncertainty"]]
    else:
        func, args = quality_weights, [ds["quality"]]
        if "ref_before_days" in ds and "ref_after_days" in ds:
            args += [ds["ref_before_days"], ds["ref_after_days"]]
    weight = xr.apply_ufunc(
        func, *args, dask="parallelized", output_dtypes=[np.float32], keep_attrs=False
    )
    return with_attrs(weight, "weight")


def ndvi_sigma_ratio(red: np.ndarray, nir: np.ndarray, f_red: float, f_nir: float) -> np.ndarray:
    """NDVI's 1-sigma per unit of the store's sigma, over that of equal band errors.

    First-order propagation with independent red and NIR errors,
    ``sigma_ndvi = 2 sqrt((nir sigma_red)^2 + (red sigma_nir)^2) / (nir + red)^2``,
    with ``sigma_b = u f_b`` (the store's ``u`` times the band's factor) over the same
    with ``sigma_b = u``: ``sqrt((nir f_red)^2 + (red f_nir)^2) / sqrt(nir^2 + red^2)``.
    Multiplying ``u`` by it gives the reflectance sigma whose :func:`sigma_weights` is
    NDVI's inverse variance relative to a clear observation's. NaN where both are 0.

    Parameters
    ----------
    red, nir : float32 reflectance, same shape.
    f_red, f_nir : the bands' factors (:func:`pipeline.products.source.band_factors`).
    """
    red, nir = np.asarray(red, np.float64), np.asarray(nir, np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        out = np.hypot(nir * f_red, red * f_nir) / np.hypot(nir, red)
    return out.astype(np.float32)


def _variable_weights(
    quality: np.ndarray, uncertainty: np.ndarray, ratio: np.ndarray | float
) -> np.ndarray:
    """:func:`sigma_weights` of ``uncertainty * ratio``; observed days keep their own sigma."""
    observed = (np.asarray(quality).astype(np.uint8) & OBSERVED) > 0
    return sigma_weights(quality, np.where(observed, uncertainty, uncertainty * ratio))


def weights_for(ds: xr.Dataset, variable: str) -> xr.DataArray:
    """Smoother weights of one smoothed variable from its own sigma (dims (time, y, x)).

    ``ndvi``: the store's sigma propagated through NDVI (:func:`ndvi_sigma_ratio`); a band:
    the store's sigma times the band's factor. The store's ``uncertainty`` is the RMS over
    bands, so its :func:`weights_of` over-weights days whose error sits in bands the
    variable does not use. Without the run's band factors (or ``uncertainty``) in the store,
    or for another variable: :func:`weights_of`.
    """
    factors = band_factors(ds)
    if "uncertainty" not in ds or not factors or variable not in {"ndvi", *factors}:
        return weights_of(ds)
    q, u = ds["quality"], ds["uncertainty"]
    if variable == "ndvi":
        if not {"red", "nir"} <= set(factors):
            return weights_of(ds)
        ratio = xr.apply_ufunc(
            ndvi_sigma_ratio, ds["red"], ds["nir"], factors["red"], factors["nir"],
            dask="parallelized", output_dtypes=[np.float32],
        )  # fmt: skip
    else:
        ratio = xr.full_like(u, factors[variable])
    weight = xr.apply_ufunc(
        _variable_weights, q, u, ratio, dask="parallelized", output_dtypes=[np.float32]
    )
    return with_attrs(weight, "weight")
