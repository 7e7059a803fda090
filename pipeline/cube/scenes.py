"""The lazy scene cubes of a run: items read as masked reflectance on the run's grids.

Nothing is read here: the functions build the dask graphs (one read task per asset
and chunk, masking, same-day merges) with the chunks of :mod:`pipeline.cube.chunking`.
:func:`graph_tasks` counts those graphs, which is how the task budget is measured
(``pipeline.stages.size``, ``benchmarks/results.md``).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

import dask
import numpy as np
import pandas as pd
import pystac
import xarray as xr
from odc.geo.geobox import GeoBox

from pipeline.catalog.search import item_datetime
from pipeline.config import RunConfig
from pipeline.cube.chunking import cube_chunking
from pipeline.cube.load import AssetSpec, Reader
from pipeline.cube.mask import clear_fraction, masked_cube, merge_same_day, qa_assets
from pipeline.errors import InputError
from pipeline.sensors import Sensor, sensor


def lazy_scenes(
    cfg: RunConfig,
    fine_items: Sequence[pystac.Item],
    coarse_items: Sequence[pystac.Item],
    read: Reader,
    grids: tuple[GeoBox, GeoBox],
    clear_pass: bool = False,
) -> tuple[xr.DataArray, xr.DataArray]:
    """The fine and coarse (time, band, y, x) float32 cubes, same-day scenes merged (lazy).

    Parameters
    ----------
    cfg : run configuration (bands, collections, chunks, region).
    fine_items, coarse_items : the items to read, in time order.
    read : the reader (odc-stac or stackstac backend).
    grids : the fine and the coarse GeoBox.
    clear_pass : chunk for the clear-fraction pass (scene-sized) instead of for fusion.
    """
    geobox, coarse_geobox = grids
    chunking = cube_chunking(cfg, (geobox.shape.y, geobox.shape.x))
    fine_chunks = chunking.clear_fine if clear_pass else chunking.fine
    coarse_chunks = chunking.clear_coarse if clear_pass else chunking.coarse
    fine_sensor, coarse_sensor = sensor(cfg.collections.fine), sensor(cfg.collections.coarse)
    fine = _scenes(read, fine_items, fine_sensor, cfg.bands, geobox, fine_chunks, "nearest")
    coarse = _scenes(read, coarse_items, coarse_sensor, cfg.bands, coarse_geobox, coarse_chunks)
    lon = float(np.mean(cfg.region.bounds()[::2]))
    return (
        merge_same_day(fine, _days(fine_items, lon)),
        merge_same_day(coarse, _days(coarse_items, None)),
    )


def graph_tasks(fine: xr.DataArray, coarse: xr.DataArray, clear_pass: bool = False) -> int:
    """Tasks of the optimised graph that computes the cubes (or their clear fractions)."""
    arrays = (clear_fraction(fine), clear_fraction(coarse)) if clear_pass else (fine, coarse)
    optimised = dask.optimize(*arrays)
    return sum(len(a.__dask_graph__()) for a in optimised)


def asset_specs(sensor_: Sensor, bands: Sequence[str], resampling: str) -> list[AssetSpec]:
    """Reflectance assets of ``bands`` (``resampling``) plus their QA assets (nearest)."""
    specs = [
        AssetSpec(sensor_.asset_for(b), sensor_.dtype, sensor_.nodata, resampling) for b in bands
    ]
    qa_keys = dict.fromkeys(qa_assets(sensor_, tuple(bands)).values())
    # QA dtypes: Landsat QA_PIXEL and MOD09 state are uint16, MCD43A4 quality uint8.
    qa_dtype = "uint8" if sensor_.qa_per_band else "uint16"
    specs += [AssetSpec(k, qa_dtype, sensor_.qa_nodata, "nearest") for k in qa_keys]
    return specs


def _scenes(
    read: Reader,
    items: Sequence[pystac.Item],
    sensor_: Sensor,
    bands: tuple[str, ...],
    geobox: GeoBox,
    chunks: dict[str, int],
    resampling: str = "average",
) -> xr.DataArray:
    specs = asset_specs(sensor_, bands, resampling)
    _check_assets(items, specs)
    raw = read(items, specs, geobox, chunks)
    raw = raw.assign_coords(time=[_naive_utc(item_datetime(it)) for it in items])
    return masked_cube(raw, sensor_, bands)


def _check_assets(items: Sequence[pystac.Item], specs: Sequence[AssetSpec]) -> None:
    """InputError naming the first item whose STAC record lacks an asset the run reads."""
    for item in items:
        missing = [spec.key for spec in specs if spec.key not in item.assets]
        if missing:
            raise InputError(
                f"STAC item {item.id} ({item.collection_id}) has no asset(s) {missing}; "
                "the catalog record is incomplete: fix it or narrow the dates to skip it"
            )


def _naive_utc(when: dt.datetime) -> np.datetime64:
    return np.datetime64(pd.Timestamp(when).tz_convert("UTC").tz_localize(None), "ns")


def _days(items: Sequence[pystac.Item], lon: float | None) -> xr.DataArray:
    """Day label per item: UTC date, or the local solar date at longitude ``lon`` (degrees)."""
    shift = dt.timedelta(hours=lon / 15.0) if lon is not None else dt.timedelta(0)
    days = [np.datetime64((item_datetime(it) + shift).date(), "ns") for it in items]
    return xr.DataArray(np.array(days, dtype="datetime64[ns]"), dims="time")
