"""One read task per (scene days, spatial chunk): every asset read, scaled, masked and merged.

odc-stac builds one open task per asset and item and one read task per asset and chunk,
then the cube builder adds masking, stacking and same-day merges, so a graph holds
~5-9 tasks per fine band-chunk and ~20 per coarse one (``benchmarks/results.md``,
"Task budget"). :class:`OdcSceneReader` builds the same cube with ONE task per chunk of
the (time, band, y, x) cube: the task reads every reflectance and QA asset of the items
of its days over its window through odc-loader's public reader
(:class:`~pipeline.cube.load.RetryingRioDriver`: the href signed and the window checked
and retried inside the task), applies scale, nodata and QA masks
(:mod:`pipeline.cube.mask`'s rules, in numpy) and merges same-day items (first valid
value in item order), so the graph is O(days x chunks).

The clear-fraction pass is fused the same way: one task per (days, window) counts the
pixels valid in every band, without building the float cube, and one small sum per time
chunk turns the counts into fractions.

odc-stac stays the source of truth for what is read: items are parsed by
``odc.stac.parse_items`` with the same per-asset configuration the per-asset reader
gives ``odc.stac.load``, the load parameters come from ``odc.loader.resolve_load_cfg``,
and an item is read for a chunk exactly when odc-stac would (its footprint's tiles,
``GeoboxTiles.tiles``), so values and masks are identical to the per-asset path.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, cast

import dask
import dask.array as da
import numpy as np
import pystac
import xarray as xr
from odc.geo.geobox import GeoBox, GeoboxTiles
from odc.geo.xr import xr_coords
from odc.loader import RasterBandMetadata, RasterLoadParams, RasterSource, resolve_load_cfg

from pipeline.cube.load import AssetSpec, RetryingRioDriver
from pipeline.cube.mask import qa_assets
from pipeline.sensors import Sensor

#: ``Sources[i][key]``: the odc-loader source of asset ``key`` of item ``i``.
Sources = tuple[Mapping[str, RasterSource], ...]


@dataclass(frozen=True)
class SceneSet:
    """The items of one collection to read as a (time, band, y, x) cube.

    Attributes
    ----------
    items : STAC items, in time order.
    sensor : asset keys, scaling and QA rules of their collection.
    bands : canonical band names, in output order.
    specs : reflectance assets of ``bands`` then their QA assets (``asset_specs``).
    geobox : the target grid.
    chunks : dask chunks ``{"time": days, "y": px, "x": px}``; all bands in one chunk.
    days : day label (datetime64[ns], midnight) per item; items sharing one are merged.
    """

    items: tuple[pystac.Item, ...]
    sensor: Sensor
    bands: tuple[str, ...]
    specs: tuple[AssetSpec, ...]
    geobox: GeoBox
    chunks: Mapping[str, int]
    days: tuple[np.datetime64, ...]


@dataclass(frozen=True)
class _Plan:
    """Everything a read task needs, shipped once per cube (one graph key), not per task.

    Attributes
    ----------
    sources : per item, asset key -> odc-loader source (unsigned href).
    groups : per time chunk, per day, the indices of the day's items in item order.
    tiles : per item, the (iy, ix) chunks its footprint touches (as odc-stac bins them).
    grid : the target grid cut into the cube's spatial chunks.
    load : asset key -> odc-loader load parameters (dtype, fill value, resampling).
    sensor, bands : scaling and masking rules, output band order.
    driver, env, state : odc-loader driver (signs, checks, retries), the client's
        rasterio environment and the load's global context.
    """

    sources: Sources
    groups: tuple[tuple[tuple[int, ...], ...], ...]
    tiles: tuple[frozenset[tuple[int, int]], ...]
    grid: GeoboxTiles
    load: Mapping[str, RasterLoadParams]
    sensor: Sensor
    bands: tuple[str, ...]
    driver: RetryingRioDriver
    env: dict[str, Any]
    state: Any


class OdcSceneReader:
    """Builds scene cubes with one task per chunk, reading through odc-loader (picklable).

    Parameters
    ----------
    signer : makes each href readable right before it is opened, inside the task
        (:class:`pipeline.catalog.signing.AssetSigner`); None reads hrefs as they are.
    """

    def __init__(self, signer: Callable[[str], str] | None = None) -> None:
        self.signer = signer

    def __call__(self, scenes: SceneSet, clear_pass: bool = False) -> xr.DataArray:
        """The masked, same-day-merged (time, band, y, x) float32 cube of ``scenes`` (lazy).

        With ``clear_pass`` the cube carries a lazy ``clear_fraction`` (time,) float64
        coordinate computed by fused count tasks (computing it reads every asset once).
        """
        plan, days = _plan(scenes, RetryingRioDriver(self.signer))
        token = dask.base.tokenize(
            [[s.uri for s in src.values()] for src in plan.sources],
            scenes.specs,
            scenes.bands,
            str(scenes.geobox),
            dict(scenes.chunks),
            days,
            self.signer,
        )
        shared = dask.delayed(plan, name=f"scene-plan-{token}", traverse=False)
        tchunks = tuple(len(g) for g in plan.groups)
        ychunks, xchunks = _spatial_chunks(plan.grid)
        data = da.map_blocks(
            _read_block,
            shared,
            name=f"scenes-{token}",
            chunks=(tchunks, (len(scenes.bands),), ychunks, xchunks),
            dtype=np.float32,
            meta=np.empty((0, 0, 0, 0), np.float32),
        )
        coords = {"time": days, "band": list(scenes.bands), **xr_coords(scenes.geobox)}
        cube = xr.DataArray(
            data, dims=("time", "band", "y", "x"), coords=coords, name=scenes.sensor.role
        )
        if clear_pass:
            clear = _clear_fraction(shared, plan, (tchunks, ychunks, xchunks), token)
            cube = cube.assign_coords(clear_fraction=("time", clear))
        return cube


def _plan(scenes: SceneSet, driver: RetryingRioDriver) -> tuple[_Plan, np.ndarray]:
    """The read plan of ``scenes`` and the cube's day labels (sorted, unique)."""
    import odc.stac

    collections = {str(it.collection_id) for it in scenes.items}
    per_asset = {a.key: {"data_type": a.dtype, "nodata": a.nodata} for a in scenes.specs}
    stac_cfg = {c: {"assets": per_asset} for c in collections}
    keys = [a.key for a in scenes.specs]
    parsed = list(odc.stac.parse_items(scenes.items, cfg=stac_cfg))
    grid = GeoboxTiles(scenes.geobox, (scenes.chunks["y"], scenes.chunks["x"]))
    days = np.unique(np.asarray(scenes.days, dtype="datetime64[ns]"))
    per_day = [tuple(i for i, d in enumerate(scenes.days) if d == day) for day in days]
    step = scenes.chunks["time"]
    load = resolve_load_cfg(
        {a.key: RasterBandMetadata(a.dtype, a.nodata) for a in scenes.specs},
        {a.key: a.resampling for a in scenes.specs},
        fail_on_error=True,
    )
    plan = _Plan(
        sources=tuple(_raster_sources(p, keys) for p in parsed),
        # no item: one empty time chunk, so the cube is a valid (0, band, y, x) array
        groups=tuple(tuple(per_day[i : i + step]) for i in range(0, len(per_day), step)) or ((),),
        tiles=tuple(_tiles(p, grid) for p in parsed),
        grid=grid,
        load=load,  # type: ignore[arg-type]  # raster bands only: RasterLoadParams
        sensor=scenes.sensor,
        bands=scenes.bands,
        driver=driver,
        env=driver.capture_env(),
        state=driver.new_load(scenes.geobox, chunks=dict(scenes.chunks)),
    )
    return plan, days


def _raster_sources(item: Any, keys: Sequence[str]) -> dict[str, RasterSource]:
    """Asset key -> odc-loader source of one parsed item (every key is a raster asset)."""
    sources = item.resolve_bands(keys)
    return {k: cast(RasterSource, sources[k]) for k in keys}


def _tiles(item: Any, grid: GeoboxTiles) -> frozenset[tuple[int, int]]:
    """Chunks (iy, ix) the item's footprint touches, as odc-stac bins items; all without one."""
    geom = item.safe_geometry(grid.base.crs)
    if geom is None:  # no footprint: read it everywhere (the read finds what overlaps)
        ny, nx = grid.shape.yx
        return frozenset((y, x) for y in range(ny) for x in range(nx))
    return frozenset(grid.tiles(geom))


def _spatial_chunks(grid: GeoboxTiles) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """Pixel sizes of the chunks along y and along x."""
    ny, nx = grid.shape.yx
    return (
        tuple(grid.chunk_shape((i, 0)).y for i in range(ny)),
        tuple(grid.chunk_shape((0, j)).x for j in range(nx)),
    )


def _read_block(plan: _Plan, block_id: tuple[int, ...] | None = None) -> np.ndarray:
    """Task: the (days, band, y, x) float32 block ``block_id`` of the cube, NaN = unusable."""
    assert block_id is not None  # dask passes it to every map_blocks call
    it, _, iy, ix = block_id
    gbox = cast(GeoBox, plan.grid[iy, ix])  # a chunk of a GeoBox is a GeoBox
    days = _touching(plan, plan.groups[it], (iy, ix))
    raw = _read_all(plan, [i for items in days for i in items], gbox)
    out = np.full((len(days), len(plan.bands), *gbox.shape.yx), np.nan, np.float32)
    for t, items in enumerate(days):
        for i in items:
            # same-day merge: per pixel and band, the first valid value in item order
            np.copyto(out[t], _masked_scene(plan, raw[i]), where=np.isnan(out[t]))
    return out


def _touching(plan: _Plan, days: Sequence[Sequence[int]], tile: tuple[int, int]) -> list[list[int]]:
    """Per day, its items whose footprint touches chunk ``tile`` (the others are not opened)."""
    return [[i for i in items if tile in plan.tiles[i]] for items in days]


def _read_all(plan: _Plan, items: Sequence[int], gbox: GeoBox) -> dict[int, dict[str, np.ndarray]]:
    """Every asset of ``items`` over ``gbox``: item -> asset key -> native-dtype pixels.

    Read one after the other in the load's rasterio environment, as odc-loader's own
    read task does (a thread pool per task was measured to double the CPU time on
    local files: each new thread sets up its own GDAL environment); a failed read raises.
    """
    with plan.driver.restore_env(plan.env, plan.state) as ctx:
        return {i: {k: _read_asset(plan, ctx, i, k, gbox) for k in plan.sources[i]} for i in items}


def _masked_scene(plan: _Plan, raw: Mapping[str, np.ndarray]) -> np.ndarray:
    """(band, y, x) float32 reflectance of one item's ``raw`` assets, NaN = nodata/QA-invalid."""
    sensor = plan.sensor
    qa_of = qa_assets(sensor, plan.bands)
    invalid = {key: sensor.invalid_from_qa(raw[key]) for key in dict.fromkeys(qa_of.values())}
    out = np.empty((len(plan.bands), *next(iter(raw.values())).shape), np.float32)
    for b, band in enumerate(plan.bands):
        out[b] = sensor.to_reflectance(raw[sensor.asset_for(band)])
        if band in qa_of:
            out[b][invalid[qa_of[band]]] = np.nan
    return out


def _read_asset(plan: _Plan, ctx: Any, item: int, key: str, gbox: GeoBox) -> np.ndarray:
    """Native-dtype pixels of asset ``key`` of ``item`` over ``gbox``, fill value where none.

    The reader returns the window of ``gbox`` the asset covers; odc-loader pastes it into
    a chunk filled with the fill value, and so does this (one source per item).
    """
    cfg = plan.load[key]
    dst = np.full(gbox.shape.yx, cfg.fill_value, dtype=cfg.dtype)
    roi, pixels = plan.driver.open(plan.sources[item][key], ctx).read(cfg, gbox)
    dst[roi] = pixels
    return dst


def _clear_fraction(
    shared: Any, plan: _Plan, chunks: tuple[tuple[int, ...], ...], token: str
) -> da.Array:
    """(time,) float64 lazy fraction of pixels valid in every band, from fused count tasks."""
    tchunks, ychunks, xchunks = chunks
    counts = da.map_blocks(
        _count_block,
        shared,
        name=f"scene-clear-{token}",
        chunks=(tchunks, (1,) * len(ychunks), (1,) * len(xchunks)),
        dtype=np.int64,
        meta=np.empty((0, 0, 0), np.int64),
    )
    pixels = plan.grid.base.shape.y * plan.grid.base.shape.x
    # integer counts: the fraction is exactly the mean of the clear mask, whatever the order;
    # one aggregate per time chunk over all its windows (no tree of partial sums)
    whole = {1: max(1, len(ychunks)), 2: max(1, len(xchunks))}
    return counts.sum(axis=(1, 2), split_every=whole) / pixels


def _count_block(plan: _Plan, block_id: tuple[int, ...] | None = None) -> np.ndarray:
    """Task: (days, 1, 1) int64 pixels of the window valid in every band after the merge."""
    assert block_id is not None
    it, iy, ix = block_id
    gbox = cast(GeoBox, plan.grid[iy, ix])  # a chunk of a GeoBox is a GeoBox
    days = _touching(plan, plan.groups[it], (iy, ix))
    out = np.zeros((len(days), 1, 1), np.int64)
    for t, items in enumerate(days):
        if items:  # a day at a time: the task holds one day's assets, not its whole window
            raw = _read_all(plan, items, gbox)
            out[t] = int(_clear_mask(plan, [raw[i] for i in items]).sum())
    return out


def _clear_mask(plan: _Plan, scenes: Sequence[Mapping[str, np.ndarray]]) -> np.ndarray:
    """(y, x) bool: every band valid in at least one of a day's ``scenes`` (raw assets).

    A merged band is valid where any item's is (the merge takes the first valid value);
    an item's band is valid where its DN is not nodata and its QA does not flag it.
    Computed one band at a time, without the float cube.
    """
    sensor = plan.sensor
    qa_of = qa_assets(sensor, plan.bands)
    keys = dict.fromkeys(qa_of.values())
    invalid = [{key: sensor.invalid_from_qa(raw[key]) for key in keys} for raw in scenes]
    clear: np.ndarray | None = None
    for band in plan.bands:
        valid: np.ndarray | None = None
        for raw, bad in zip(scenes, invalid, strict=True):
            ok = raw[sensor.asset_for(band)] != sensor.nodata
            if band in qa_of:
                ok &= ~bad[qa_of[band]]
            valid = ok if valid is None else valid | ok
        assert valid is not None  # scenes is never empty
        clear = valid if clear is None else clear & valid
    assert clear is not None
    return clear
