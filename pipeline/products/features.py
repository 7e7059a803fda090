"""Classifier features from the dense daily series: composites of smoothed series + phenology.

Layout of the feature stack (``feature``, y, x) float32, recorded in its attrs so the
temporal network can fold it back into (channel, step):

* ``n_channels`` x ``n_steps`` temporal features, channel-major, named ``<channel>_t<k>``:
  ``period_days``-day means of the smoothed daily NDVI and bands (steps counted from
  the first day of the series; a trailing partial period is dropped);
* then the phenology metrics (:data:`pipeline.products.phenology.METRICS`), ``pheno_<m>``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import xarray as xr

from pipeline.products.indices import ndvi, weights_of
from pipeline.products.phenology import phenology
from pipeline.products.smoothing import DEFAULT_LAMBDA, Method, smooth
from pipeline.products.source import OBSERVED, working_chunks

#: Bands whose smoothed series enter the features when the store has them.
FEATURE_BANDS: tuple[str, ...] = ("green", "red", "nir", "swir1")


def smoothed_series(
    ds: xr.Dataset,
    method: Method = "whittaker",
    lam: float = DEFAULT_LAMBDA,
    bands: Sequence[str] = FEATURE_BANDS,
    observed_only: bool = False,
) -> xr.Dataset:
    """Smoothed, gap-filled daily NDVI and bands (time, y, x) float32, lazy.

    ``observed_only=True`` keeps only clear Landsat observations (``quality`` bit 1,
    weight 1) and gap-fills them with the same smoother: the Landsat-only sparse
    series that fusion is compared against.
    """
    ds = working_chunks(ds)
    weight = weights_of(ds)
    if observed_only:
        weight = xr.where((ds["quality"] & OBSERVED) > 0, np.float32(1), np.float32(0))
    out = {"ndvi": smooth(ndvi(ds["red"], ds["nir"]), weight, method, lam)}
    for b in bands:
        if b in ds:
            out[b] = smooth(ds[b].astype(np.float32), weight, method, lam)
    return xr.Dataset(out)


def feature_stack(
    smoothed: xr.Dataset, period_days: int = 10, with_phenology: bool = True
) -> xr.DataArray:
    """Stack composites (and phenology of the smoothed NDVI) into (feature, y, x) float32.

    Parameters
    ----------
    smoothed : output of :func:`smoothed_series` (time, y, x) daily.
    period_days : composite length (days), e.g. 8 or 10.
    """
    comp = smoothed.coarsen(time=period_days, boundary="trim").mean()
    channels = list(smoothed.data_vars)
    n_steps = comp.sizes["time"]
    if n_steps == 0:
        raise ValueError(
            f"series of {smoothed.sizes['time']} days is shorter than one {period_days}-day period"
        )
    parts, names = [], []
    for ch in channels:
        parts.append(comp[ch].transpose("time", "y", "x").drop_vars("time"))
        names += [f"{ch}_t{k:02d}" for k in range(n_steps)]
    static: list[str] = []
    if with_phenology:
        pheno = phenology(smoothed["ndvi"])
        static = list(pheno.data_vars)
        parts += [pheno[m].expand_dims(time=1) for m in static]
        names += [f"pheno_{m}" for m in static]
    stack = xr.concat(parts, dim="time", coords="minimal", compat="override").rename(time="feature")
    stack = stack.assign_coords(feature=names).astype(np.float32).rename("features")
    stack.attrs = {
        "channels": channels,
        "n_channels": len(channels),
        "n_steps": n_steps,
        "static": static,
        "period_days": period_days,
    }
    return stack


def layout_of(features: xr.DataArray) -> tuple[int, int, int]:
    """(n_channels, n_steps, n_static) of a :func:`feature_stack` result."""
    a = features.attrs
    return int(a["n_channels"]), int(a["n_steps"]), len(a["static"])


def two_date_stack(
    bands: np.ndarray, names: Sequence[str]
) -> tuple[np.ndarray, tuple[int, int, int]]:
    """Features of a few single dates (no series): bands + NDVI per date, channel-major.

    Parameters
    ----------
    bands : (date, band, y, x) reflectance; ``names`` the band names (needs red, nir).

    Returns
    -------
    ((feature, y, x) float32, layout) with channels ``names + ndvi`` over ``date`` steps.
    """
    red, nir = bands[:, names.index("red")], bands[:, names.index("nir")]
    with np.errstate(invalid="ignore", divide="ignore"):
        nd = (nir - red) / (nir + red)
    chans = np.concatenate([bands, nd[:, None]], axis=1)  # (date, channel, y, x)
    stack = np.transpose(chans, (1, 0, 2, 3)).reshape(-1, *bands.shape[2:])
    return stack.astype(np.float32), (chans.shape[1], chans.shape[0], 0)
