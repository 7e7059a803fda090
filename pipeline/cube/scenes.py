"""The lazy scene cubes of a run: items read as masked reflectance on the run's grids.

Nothing is read here: the functions build the dask graphs with the chunks of
:mod:`pipeline.cube.chunking` through a :class:`SceneReader`: the odc backend's
:class:`~pipeline.cube.scene_read.OdcSceneReader` (one task per cube chunk, every
asset read, masked and merged in it), or :class:`AssetScenes` around a per-asset
:class:`~pipeline.cube.load.Reader` (stackstac, or a reader a test injects: one read
task per asset and chunk, then masking and same-day merges as dask steps).
:func:`graph_tasks` counts those graphs, which is how the task budget is measured
(``benchmarks/task_budget.py``, ``benchmarks/results.md``).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Protocol

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
from pipeline.cube.scene_read import SceneSet
from pipeline.errors import InputError
from pipeline.sensors import Sensor, sensor


class SceneReader(Protocol):
    """Reads a :class:`SceneSet` as a masked, same-day-merged (time, band, y, x) float32 cube.

    ``time`` is the sorted distinct day labels; with ``clear_pass`` the cube carries a
    lazy ``clear_fraction`` (time,) coordinate (the fraction of pixels valid in every band).
    """

    def __call__(self, scenes: SceneSet, clear_pass: bool = False) -> xr.DataArray: ...


class AssetScenes:
    """A :class:`SceneReader` from a per-asset :class:`Reader`: masking and merges as dask steps.

    Parameters
    ----------
    read : reads each asset onto the grid (stackstac, odc-stac, or a test's fake).
    """

    def __init__(self, read: Reader) -> None:
        self.read = read

    def __call__(self, scenes: SceneSet, clear_pass: bool = False) -> xr.DataArray:
        """The cube of ``scenes`` built from the reader's raw per-asset Dataset (lazy)."""
        raw = self.read(scenes.items, scenes.specs, scenes.geobox, scenes.chunks)
        raw = raw.assign_coords(time=[_naive_utc(item_datetime(it)) for it in scenes.items])
        cube = masked_cube(raw, scenes.sensor, scenes.bands)
        days = xr.DataArray(np.array(scenes.days, dtype="datetime64[ns]"), dims="time")
        cube = merge_same_day(cube, days)
        if clear_pass:
            cube = cube.assign_coords(clear_fraction=("time", clear_fraction(cube).data))
        return cube


def lazy_scenes(
    cfg: RunConfig,
    fine_items: Sequence[pystac.Item],
    coarse_items: Sequence[pystac.Item],
    read: SceneReader,
    grids: tuple[GeoBox, GeoBox],
    clear_pass: bool = False,
) -> tuple[xr.DataArray, xr.DataArray]:
    """The fine and coarse (time, band, y, x) float32 cubes, same-day scenes merged (lazy).

    Parameters
    ----------
    cfg : run configuration (bands, collections, chunks, region).
    fine_items, coarse_items : the items to read, in time order.
    read : the scene reader (odc backend, or :class:`AssetScenes` around another reader).
    grids : the fine and the coarse GeoBox.
    clear_pass : chunk for the clear-fraction pass (scene-sized) instead of for fusion;
        the cubes then carry a lazy ``clear_fraction`` (time,) coordinate.
    """
    geobox, coarse_geobox = grids
    chunking = cube_chunking(cfg, (geobox.shape.y, geobox.shape.x))
    fine_chunks = chunking.clear_fine if clear_pass else chunking.fine
    coarse_chunks = chunking.clear_coarse if clear_pass else chunking.coarse
    fine_sensor, coarse_sensor = sensor(cfg.collections.fine), sensor(cfg.collections.coarse)
    lon = float(np.mean(cfg.region.bounds()[::2]))
    fine = _scene_set(fine_items, fine_sensor, cfg.bands, geobox, fine_chunks, "nearest", lon)
    coarse = _scene_set(
        coarse_items, coarse_sensor, cfg.bands, coarse_geobox, coarse_chunks, "average", None
    )
    return read(fine, clear_pass), read(coarse, clear_pass)


def graph_tasks(fine: xr.DataArray, coarse: xr.DataArray, clear_pass: bool = False) -> int:
    """Tasks of the optimised graph that computes the cubes (or their clear fractions).

    With ``clear_pass`` the cubes must come from :func:`lazy_scenes` with ``clear_pass``.
    Keys are counted once: ``dask.optimize`` hands every collection the merged graph.
    """
    if clear_pass:
        arrays = (fine["clear_fraction"].data, coarse["clear_fraction"].data)
    else:
        arrays = (fine.data, coarse.data)
    optimised = dask.optimize(*arrays)
    return len(set().union(*(a.__dask_graph__().keys() for a in optimised)))


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


def _scene_set(
    items: Sequence[pystac.Item],
    sensor_: Sensor,
    bands: tuple[str, ...],
    geobox: GeoBox,
    chunks: dict[str, int],
    resampling: str,
    lon: float | None,
) -> SceneSet:
    """What to read of ``items``; day labels are local solar days at ``lon`` (None: UTC)."""
    specs = asset_specs(sensor_, bands, resampling)
    _check_assets(items, specs)
    days = tuple(_days(items, lon).values)
    return SceneSet(tuple(items), sensor_, tuple(bands), tuple(specs), geobox, chunks, days)


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
