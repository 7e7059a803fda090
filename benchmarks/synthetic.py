"""Synthetic lazy cubes of any size for the pipeline benchmarks (no STAC, no COG reading).

A field map drifts linearly in time; fine scenes exist every ``revisit`` days
(and on the last day) and are cloud-free, coarse scenes every day as 16 x 16
block means on the coarse grid, exactly what :class:`pipeline.fuse.dispatch.Sources`
receives from the cubes in a real run.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import xarray as xr
from pyproj import CRS

from benchmarks.common import BANDS, smooth_field
from pipeline.fuse.dispatch import Sources
from pipeline.store.layout import Grid

DAY0 = dt.date(2024, 6, 1)
FACTOR = 16


def days(n_days: int) -> list[dt.date]:
    """``n_days`` consecutive days from :data:`DAY0`."""
    return [DAY0 + dt.timedelta(days=i) for i in range(n_days)]


def pair_days(n_days: int, revisit: int = 8) -> list[int]:
    """Day indices with a fine scene: every ``revisit`` days and the last day."""
    return sorted({*range(0, n_days, revisit), n_days - 1})


def _cube(
    data: np.ndarray, when: list[dt.date], bands: tuple[str, ...], chunk: int
) -> xr.DataArray:
    coords = {"time": [np.datetime64(d, "ns") for d in when], "band": list(bands)}
    array = xr.DataArray(data, dims=("time", "band", "y", "x"), coords=coords)
    return array.chunk({"time": 1, "y": chunk, "x": chunk})


def make_sources(size: int, n_days: int, n_bands: int = 3, chunk: int = 128) -> Sources:
    """Dask-backed (time, band, y, x) float32 fine and coarse cubes of a ``size``² region."""
    rng = np.random.default_rng(0)
    base = smooth_field(rng, (n_bands, size, size))
    drift = 0.002 * np.arange(n_days, dtype=np.float32)[:, None, None, None]
    coarse_base = base.reshape(n_bands, size // FACTOR, FACTOR, size // FACTOR, FACTOR).mean((2, 4))
    fine_idx = pair_days(n_days)
    all_days = days(n_days)
    bands = BANDS[n_bands]
    return Sources(
        fine=_cube(base[None] + drift[fine_idx], [all_days[i] for i in fine_idx], bands, chunk),
        coarse=_cube(coarse_base[None] + drift, all_days, bands, max(1, chunk // FACTOR)),
        factor=FACTOR,
        pairs=tuple(all_days[i] for i in fine_idx),
    )


def grid(size: int) -> Grid:
    """A 30 m UTM 32N grid of ``size``² pixels."""
    centres = 15 + 30 * np.arange(size, dtype=np.float64)
    return Grid(y=5_000_000 - centres, x=600_000 + centres, crs_wkt=CRS.from_epsg(32632).to_wkt())
