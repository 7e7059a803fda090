"""The store layout: grid, variables, encodings, CF attributes and the empty template.

Every data variable is ``(time, y, x)`` and chunked for time-series reads: one
chunk holds ``chunks.time`` days (default 366, a whole season; never more than
the time axis of the new store, so a short run's daily map reads one chunk per
block, not a mostly empty 366-day chunk) of one spatial
block of ``chunks.y`` x ``chunks.x`` pixels (default 256 x 256). A pixel's whole
season is then one chunk read; a daily map is ``n_blocks`` reads. The spatial
block is also the unit of work of the fusion (one Dask task writes exactly the
chunks of one block and one time window, so no two tasks ever touch one chunk).

With ``sharding`` the block becomes one Zarr v3 shard holding 4 x 4 inner
chunks, which keeps the file count low on object stores.

Values are stored as float32 rounded to :data:`SCALE` (1e-4 reflectance), NaN
for "no value": plain ``xarray.open_zarr`` then gives float32. (CF int16 packing
decodes to float64 from Zarr, whose JSON attributes cannot type ``scale_factor``
as float32 -- every reader paid double memory for it.)

``block_done`` ``(time, yblock, xblock)`` uint8 is the completion record, stored
as a *coordinate* without spatial dims: readers that iterate data variables
(``ds.rio.reproject``, ``to_netcdf`` of a map) skip it. It is 1 once
the block's values for that day are written (written after them, so a value
under a 0 is never trusted; readers may ignore it, ``quality == 0`` also means
"not written yet"); 2 when written but provisional (no later pair yet, see
:mod:`pipeline.store.write`).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import dask.array as da
import numpy as np
import pandas as pd
import xarray as xr

from pipeline.store.cf import geospatial_bounds, global_attrs, time_coverage, variable_cf

#: ``quality`` bit flags (uint8). 0 means "not written yet". ``OUTSIDE``: the pixel lies
#: outside every source's coverage (NaN, excluded from all statistics); ``FILLED``: a gap
#: day (no clear coarse image) filled from the pixel's daily series (temporal model).
OBSERVED, FUSED, SINGLE_PAIR, GAP, OUTSIDE, FILLED = 1, 2, 4, 8, 16, 32

#: Version of this layout, stored in the attrs and checked when a store is reused.
#: 2: float32 values (was int16 x 1e-4), ``block_done`` a coordinate, CF/ACDD attributes.
LAYOUT_VERSION = 2

#: Resolution of every value variable: stored values are rounded to 1e-4 reflectance.
SCALE = np.float32(1e-4)
INT16_FILL = np.int16(-32768)
TIME_UNITS = "days since 1970-01-01"


@dataclass(frozen=True, eq=False)
class Grid:
    """The fine grid of a store.

    Attributes
    ----------
    y, x : (ny,), (nx,) float64 pixel-centre coordinates in metres of ``crs_wkt``;
        ``y`` decreasing (north up).
    crs_wkt : WKT2 of the grid CRS.
    """

    y: np.ndarray
    x: np.ndarray
    crs_wkt: str

    @classmethod
    def from_geobox(cls, geobox: Any) -> Grid:
        """The grid of an odc-geo ``GeoBox`` (what the cubes are loaded on)."""
        coords = geobox.coords
        return cls(
            y=np.asarray(coords["y"].values, dtype=np.float64),
            x=np.asarray(coords["x"].values, dtype=np.float64),
            crs_wkt=geobox.crs.to_wkt(),
        )

    @property
    def shape(self) -> tuple[int, int]:
        return (self.y.size, self.x.size)

    def same_as(self, other: Grid) -> bool:
        """Same pixel centres (to a millimetre) and the same CRS."""
        from pyproj import CRS

        return (
            self.shape == other.shape
            and bool(np.allclose(self.y, other.y, atol=1e-3, rtol=0))
            and bool(np.allclose(self.x, other.x, atol=1e-3, rtol=0))
            and CRS.from_wkt(self.crs_wkt) == CRS.from_wkt(other.crs_wkt)
        )

    def spatial_ref(self) -> xr.DataArray:
        """The CF grid-mapping coordinate (rioxarray reads ``crs_wkt`` and ``GeoTransform``)."""
        from pyproj import CRS

        attrs = CRS.from_wkt(self.crs_wkt).to_cf()
        attrs["spatial_ref"] = self.crs_wkt
        dx = float(self.x[1] - self.x[0]) if self.x.size > 1 else 30.0
        dy = float(self.y[1] - self.y[0]) if self.y.size > 1 else -30.0
        left, top = self.x[0] - dx / 2, self.y[0] - dy / 2
        attrs["GeoTransform"] = f"{left} {dx} 0.0 {top} 0.0 {dy}"
        return xr.DataArray(np.int32(0), attrs=attrs)


@dataclass(frozen=True)
class StoreLayout:
    """Which variables, how chunked, how encoded.

    Attributes
    ----------
    bands : canonical reflectance bands fused by the run, e.g. ("red", "nir").
    chunk_time, chunk_y, chunk_x : Zarr chunk (or shard) in days and fine pixels.
    sharding : pack each block into one Zarr v3 shard of 4 x 4 inner chunks.
    """

    bands: tuple[str, ...]
    chunk_time: int = 366
    chunk_y: int = 256
    chunk_x: int = 256
    sharding: bool = False

    @property
    def has_ndvi(self) -> bool:
        return "red" in self.bands and "nir" in self.bands

    @property
    def packed(self) -> tuple[str, ...]:
        """Variables stored as int16 x 1e-4, decoded to float32 with NaN for fill."""
        return (*self.bands, *(("ndvi",) if self.has_ndvi else ()), "uncertainty")

    @property
    def variables(self) -> tuple[str, ...]:
        """Every ``(time, y, x)`` data variable, in write order (``quality`` last)."""
        return (*self.packed, "ref_before_days", "ref_after_days", "quality")

    def n_blocks(self, grid: Grid) -> tuple[int, int]:
        """Blocks along y and x (the last ones may be partial)."""
        ny, nx = grid.shape
        return (-(-ny // self.chunk_y), -(-nx // self.chunk_x))

    def store_chunk_time(self, n_time: int) -> int:
        """Days per Zarr chunk of a new store of ``n_time`` days (never more than the axis)."""
        return max(1, min(self.chunk_time, n_time))

    def _chunking(self, n_time: int, grid: Grid) -> dict[str, Any]:
        ny, nx = grid.shape
        outer = (self.store_chunk_time(n_time), min(self.chunk_y, ny), min(self.chunk_x, nx))
        if not self.sharding:
            return {"chunks": outer}
        inner = (outer[0], max(1, -(-outer[1] // 4)), max(1, -(-outer[2] // 4)))
        return {"chunks": inner, "shards": outer}

    def encoding(self, n_time: int, grid: Grid) -> dict[str, dict[str, Any]]:
        """xarray ``to_zarr`` encodings of every variable and coordinate."""
        chunking = self._chunking(n_time, grid)
        # zarr's default zstd: a noisy 45-day 256 x 256 reflectance block on the 1e-4 grid
        # took 6.3 MiB as float32 vs 4.1 MiB as int16 (1.56x); blosc byte or bit shuffle
        # compressed it worse (7.9 / 7.4 MiB). The price of float32 for every reader.
        packed = {
            "dtype": "float32",
            "_FillValue": np.float32(np.nan),  # unwritten chunks read as missing, not 0.0
        }
        enc: dict[str, dict[str, Any]] = {name: {**packed, **chunking} for name in self.packed}
        for name in ("ref_before_days", "ref_after_days"):
            # -1 ("no pair") is a value, not missing data: a Zarr fill, no CF _FillValue
            enc[name] = {
                "dtype": "int16",
                "fill_value": np.int16(-1),
                "_FillValue": None,
                **chunking,
            }
        enc["quality"] = {"dtype": "uint8", "_FillValue": None, **chunking}
        done_chunks = (self.store_chunk_time(n_time), 1, 1)
        enc["block_done"] = {"dtype": "uint8", "_FillValue": None, "chunks": done_chunks}
        enc["time"] = {"units": TIME_UNITS, "calendar": "proleptic_gregorian", "dtype": "int32"}
        return enc


def _var_attrs(name: str) -> dict[str, Any]:
    if name == "ndvi":
        return {
            "long_name": "normalized difference vegetation index (nir - red) / (nir + red)",
            "units": "1",
        }
    if name == "uncertainty":
        return {
            "long_name": "predicted 1-sigma error of the fused reflectance, RMS over bands",
            "units": "1",
        }
    if name.startswith("ref_"):
        side = "back to" if "before" in name else "forward to"
        return {
            "long_name": f"days from the target day {side} the reference pair used (-1 = none)",
            "units": "days",
        }
    if name == "quality":
        return {
            "long_name": "quality flags (0 = not written yet)",
            "flag_masks": [OBSERVED, FUSED, SINGLE_PAIR, GAP, OUTSIDE, FILLED],
            "flag_meanings": "observed fused single_pair gap outside_coverage filled",
        }
    return {"long_name": f"{name} surface reflectance (fused daily)", "units": "1"}


#: Values quantised at once (float64 temporaries of ~24 bytes each).
_QUANTIZE_SLAB = 1 << 20


def quantize(values: np.ndarray) -> np.ndarray:
    """Float32 values rounded to the store's 1e-4 resolution (NaN kept).

    The same information as the former int16 packing, and it lets the
    compressor find repeated bytes.
    """
    values = np.asarray(values)
    if values.ndim == 0 or values.size <= _QUANTIZE_SLAB:
        return _quantize(values)
    # slab by slab along the first axis: whole, the float64 temporaries of a task's window
    # were 4x its float32 size (the same operations on each value, so the same bits)
    out = np.empty(values.shape, np.float32)
    rows = max(1, _QUANTIZE_SLAB // values[0].size)
    for r in range(0, values.shape[0], rows):
        out[r : r + rows] = _quantize(values[r : r + rows])
    return out


def _quantize(values: np.ndarray) -> np.ndarray:
    steps = round(1 / float(SCALE))  # 10 000 steps per reflectance unit, exact in float64
    # k / 10 000 in float64, then the nearest float32: what a reader types as 0.1234
    return (np.round(np.asarray(values, dtype=np.float64) * steps) / steps).astype(np.float32)


def _coords(grid: Grid, days: list[dt.date]) -> dict[str, Any]:
    time = pd.DatetimeIndex([pd.Timestamp(d) for d in days]).as_unit("ns")
    return {
        "time": ("time", time, {"standard_name": "time", "axis": "T"}),
        "y": ("y", grid.y, {"standard_name": "projection_y_coordinate", "units": "m", "axis": "Y"}),
        "x": ("x", grid.x, {"standard_name": "projection_x_coordinate", "units": "m", "axis": "X"}),
        "spatial_ref": grid.spatial_ref(),
    }


def build_template(grid: Grid, days: list[dt.date], layout: StoreLayout, region: str) -> xr.Dataset:
    """The lazy, empty dataset of a store (write it with ``compute=False``).

    Parameters
    ----------
    grid : the fine grid.
    days : consecutive target days (the time axis).
    layout : variables and chunking.
    region : region name, stored in the attrs and checked on reuse.

    Returns
    -------
    Dataset of dask arrays full of the fill values; only metadata and
    coordinates are written when saved with ``compute=False``.
    """
    shape = (len(days), *grid.shape)
    chunks = (layout.chunk_time, layout.chunk_y, layout.chunk_x)
    nan = da.full(shape, np.nan, dtype=np.float32, chunks=chunks)
    data_vars: dict[str, Any] = {name: (("time", "y", "x"), nan) for name in layout.packed}
    minus_one = da.full(shape, -1, dtype=np.int16, chunks=chunks)
    data_vars["ref_before_days"] = (("time", "y", "x"), minus_one)
    data_vars["ref_after_days"] = (("time", "y", "x"), minus_one)
    data_vars["quality"] = (("time", "y", "x"), da.zeros(shape, dtype=np.uint8, chunks=chunks))
    done_shape = (len(days), *layout.n_blocks(grid))
    done = da.zeros(done_shape, dtype=np.uint8, chunks=(layout.chunk_time, 1, 1))
    # a coordinate, not a data variable: readers iterating data variables skip it
    coords = {**_coords(grid, days), "block_done": (("time", "yblock", "xblock"), done)}
    ds = xr.Dataset(data_vars, coords=coords)
    for name in layout.variables:
        ds[name].attrs.update(
            _var_attrs(name), **variable_cf(name, layout.bands), grid_mapping="spatial_ref"
        )
    ds["block_done"].attrs["long_name"] = (
        "0 not written, 1 written, 2 written from the last pair only (provisional)"
    )
    bounds = geospatial_bounds(grid.y, grid.x, grid.crs_wkt)
    ds.attrs.update(
        **global_attrs(region, layout.bands, bounds),
        **time_coverage(ds["time"].values),
        stf_region=region,
        stf_layout_version=LAYOUT_VERSION,
        stf_bands=list(layout.bands),
        stf_chunks=[layout.chunk_time, layout.chunk_y, layout.chunk_x],
    )
    return ds
