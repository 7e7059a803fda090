"""Synthetic lazy cubes of any size for the pipeline benchmarks (no STAC, no COG reading).

A field map drifts linearly in time; fine scenes exist every ``revisit`` days
(and on the last day) and are cloud-free, coarse scenes every day as 16 x 16
block means on the coarse grid, exactly what :class:`pipeline.fuse.dispatch.Sources`
receives from the cubes in a real run. Like the real loader, every chunk is its
own task that makes its pixels on the worker (seeded by its position): nothing
is embedded in the graph, so a task graph over a few chunks stays small.
"""

from __future__ import annotations

import datetime as dt

import dask.array as da
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


def _field(n_bands: int, y0: int, x0: int, ny: int, nx: int) -> np.ndarray:
    """(band, y, x) float32 field of the chunk at pixel (y0, x0), seeded by that position."""
    return smooth_field(np.random.default_rng((y0, x0)), (n_bands, ny, nx))


def _chunk(drift: np.ndarray, factor: int, block_info: dict | None = None) -> np.ndarray:
    """One (time, band, y, x) chunk: its field plus each day's drift.

    ``factor`` > 1 makes a coarse chunk: the block means of the fine field under it.
    """
    info = block_info[None]
    (t0, t1), _, (y0, y1), (x0, x1) = info["array-location"]
    n_bands = info["chunk-shape"][1]
    base = _field(n_bands, y0 * factor, x0 * factor, (y1 - y0) * factor, (x1 - x0) * factor)
    base = base.reshape(n_bands, y1 - y0, factor, x1 - x0, factor).mean((2, 4))
    return (base[None] + drift[t0:t1, None, None, None]).astype(np.float32)


def _cube(
    drift: np.ndarray,
    factor: int,
    size: int,
    when: list[dt.date],
    bands: tuple[str, ...],
    chunk: int,
) -> xr.DataArray:
    n = size // factor
    step = max(1, chunk // factor)
    tiles = tuple(min(step, n - i) for i in range(0, n, step))
    data = da.map_blocks(
        _chunk,
        drift,
        factor,
        chunks=((1,) * len(when), (len(bands),), tiles, tiles),
        dtype=np.float32,
        meta=np.empty((0, 0, 0, 0), np.float32),
    )
    coords = {"time": [np.datetime64(d, "ns") for d in when], "band": list(bands)}
    return xr.DataArray(data, dims=("time", "band", "y", "x"), coords=coords)


def make_sources(size: int, n_days: int, n_bands: int = 3, chunk: int = 128) -> Sources:
    """Dask-backed (time, band, y, x) float32 fine and coarse cubes of a ``size``² region."""
    drift = 0.002 * np.arange(n_days, dtype=np.float32)
    fine_idx = pair_days(n_days)
    all_days = days(n_days)
    bands = BANDS[n_bands]
    return Sources(
        fine=_cube(drift[fine_idx], 1, size, [all_days[i] for i in fine_idx], bands, chunk),
        coarse=_cube(drift, FACTOR, size, all_days, bands, chunk),
        factor=FACTOR,
        pairs=tuple(all_days[i] for i in fine_idx),
    )


def grid(size: int) -> Grid:
    """A 30 m UTM 32N grid of ``size``² pixels."""
    centres = 15 + 30 * np.arange(size, dtype=np.float64)
    return Grid(y=5_000_000 - centres, x=600_000 + centres, crs_wkt=CRS.from_epsg(32632).to_wkt())
