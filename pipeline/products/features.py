"""Classifier features from the dense daily series: composites of smoothed series + phenology.

Layout of the feature stack (``feature``, y, x) float32, recorded in its attrs so the
temporal network can fold it back into (channel, step):

* ``n_channels`` x ``n_steps`` temporal features, channel-major, named
  ``<channel>_doy<DDD>``: means of the smoothed daily NDVI and bands over
  ``period_days``-day periods of a *calendar* grid that starts on 1 January of
  each year (day of year 1, 11, 21, ...; the last period of a year is 5-6 days),
  ``DDD`` the period's first day of year. The same column is the same part of the
  season in every store and year, so one classifier serves them all. Periods the
  series covers only partly (its first and last) are means of the days present.
  A series over several years names them ``<channel>_<YYYY>doy<DDD>``;
* then the phenology metrics (:data:`pipeline.products.phenology.METRICS`), ``pheno_<m>``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

import numpy as np
import pandas as pd
import xarray as xr

from pipeline.errors import InputError
from pipeline.products.indices import ndvi, weights_for
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
    series that fusion is compared against. Otherwise each variable is weighted by its own
    sigma (:func:`~pipeline.products.indices.weights_for`: NDVI's propagated from red and
    NIR, a band's from its factor), not by the store's RMS over bands.
    """
    ds = working_chunks(ds)
    observed = xr.where((ds["quality"] & OBSERVED) > 0, np.float32(1), np.float32(0))

    def weight(variable: str) -> xr.DataArray:  # each variable by its own sigma
        return observed if observed_only else weights_for(ds, variable)

    out = {"ndvi": smooth(ndvi(ds["red"], ds["nir"]), weight("ndvi"), method, lam)}
    for b in bands:
        if b in ds:
            out[b] = smooth(ds[b].astype(np.float32), weight(b), method, lam)
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
    n_days = smoothed.sizes["time"]
    if n_days < period_days:
        # shorter than one composite: the phenology metrics are all NaN and a classifier
        # has nothing to learn from (HGB's binning failed on the empty columns)
        raise InputError(
            f"the series has {n_days} day(s), fewer than one {period_days}-day composite "
            f"period: crop-map features need at least {period_days} days; fuse a longer period"
        )
    keys, starts, labels = calendar_periods(pd.DatetimeIndex(smoothed["time"].values), period_days)
    period = xr.DataArray(keys, dims="time", coords={"time": smoothed["time"]}, name="period")
    comp = smoothed.groupby(period).mean().rename(period="time")
    channels = list(smoothed.data_vars)
    n_steps = comp.sizes["time"]
    parts, names = [], []
    for ch in channels:
        parts.append(comp[ch].transpose("time", "y", "x").drop_vars("time"))
        names += [f"{ch}_{label}" for label in labels]
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
        "period_grid": f"{period_days}-day periods from 1 January (day of year 1, 11, 21, ...)",
        "period_starts": [d.isoformat() for d in starts],
    }
    return stack


def calendar_periods(
    times: pd.DatetimeIndex, period_days: int = 10
) -> tuple[np.ndarray, list[dt.date], list[str]]:
    """The calendar period of every day and the periods' first days and column labels.

    Returns
    -------
    keys : (time,) int64 ``year * 1000 + first day of year of the period``, sorted as time.
    starts : first day of each period present (ascending).
    labels : ``doy<DDD>`` per period (``<YYYY>doy<DDD>`` when the series spans several years).
    """
    doy0 = ((times.dayofyear.to_numpy() - 1) // period_days) * period_days + 1
    keys = times.year.to_numpy().astype(np.int64) * 1000 + doy0
    uniq = np.unique(keys)
    starts = [dt.date(int(k // 1000), 1, 1) + dt.timedelta(days=int(k % 1000) - 1) for k in uniq]
    several = len({s.year for s in starts}) > 1
    labels = [
        f"{s.year}doy{k % 1000:03d}" if several else f"doy{k % 1000:03d}"
        for s, k in zip(starts, uniq, strict=True)
    ]
    return keys, starts, labels


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
