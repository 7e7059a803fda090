"""The one-task-per-chunk scene reader: the per-asset cubes exactly, a graph of scenes x chunks."""

from __future__ import annotations

import datetime as dt
import math
from typing import Any

import dask
import numpy as np
import pytest
import xarray as xr

from pipeline.catalog.search import SearchResult, search_items
from pipeline.config import BANDS, RunConfig
from pipeline.cube import scenes
from pipeline.cube.chunking import CubeChunking
from pipeline.cube.grid import grid_anchor, target_grids
from pipeline.cube.load import READERS
from pipeline.cube.scene_read import OdcSceneReader
from pipeline.cube.scenes import AssetScenes, graph_tasks, lazy_scenes
from pipeline.synth import World
from tests.cube.conftest import tiny_config


def _cubes(
    cfg: RunConfig, result: SearchResult, read: scenes.SceneReader, clear_pass: bool
) -> tuple[xr.DataArray, xr.DataArray]:
    grids = target_grids(cfg, grid_anchor(result.fine))
    return lazy_scenes(cfg, result.fine, result.coarse, read, grids, clear_pass)


@pytest.fixture(scope="module")
def cloudy_result(tiny_world: World, stac_url: str, tiny_result: SearchResult) -> SearchResult:
    """Five weeks of Landsat items (some cloudy) with the trimmed MODIS days of ``tiny_result``."""
    cfg = tiny_config(tiny_world, time={"start": "2024-06-01", "end": "2024-07-05"})
    return SearchResult(search_items(cfg, stac_url).fine, tiny_result.coarse, stac_url)


def _same_day_twin(result: SearchResult) -> SearchResult:
    """``result`` plus a second scene on the first fine day: the cloudiest scene's files.

    The day then has two items, merged per pixel (first valid value in item order).
    """
    first = result.fine[0]
    other = max(result.fine[1:], key=lambda it: it.properties.get("eo:cloud_cover", 0))
    twin = other.clone()
    twin.id = f"{other.id}-twin"
    twin.datetime = first.datetime + dt.timedelta(minutes=1)
    twin.properties["datetime"] = twin.datetime.isoformat()
    return SearchResult([first, twin, *result.fine[1:]], result.coarse, result.url)


@pytest.mark.parametrize("clear_pass", [False, True])
def test_scene_reader_gives_the_per_asset_cubes_exactly(
    tiny_cfg: RunConfig, cloudy_result: SearchResult, clear_pass: bool
) -> None:
    result = _same_day_twin(cloudy_result)
    cfg = tiny_cfg.with_updates(bands=("green", "red", "nir"))
    old = _cubes(cfg, result, AssetScenes(READERS["odc"]), clear_pass)
    new = _cubes(cfg, result, OdcSceneReader(), clear_pass)
    assert new[0].sizes["time"] == len(result.fine) - 1  # the twin merged into its day
    for before, now in zip(old, new, strict=True):
        assert now.dims == before.dims and now.dtype == before.dtype == np.float32
        for name in ("time", "band", "y", "x"):
            np.testing.assert_array_equal(now[name].values, before[name].values)
        assert now["spatial_ref"].attrs == before["spatial_ref"].attrs
        np.testing.assert_array_equal(now.values, before.values)  # NaN masks included
        assert np.isfinite(now.values).any()
        if clear_pass:
            want, got = dask.compute(before["clear_fraction"].data, now["clear_fraction"].data)
            assert np.asarray(got).tobytes() == np.asarray(want).tobytes()
    assert np.isnan(new[0].values).any()  # clouds and shadows masked, also in the merged day


def _small_chunks(px: int, days: int) -> Any:
    def chunking(cfg: RunConfig, fine_shape: tuple[int, int]) -> CubeChunking:
        fine = {"time": 1, "y": px, "x": px}
        coarse = {"time": days, "y": max(1, px // 16), "x": max(1, px // 16)}
        return CubeChunking(fine, coarse, fine, coarse)

    return chunking


@pytest.mark.parametrize("clear_pass", [False, True])
def test_graph_grows_with_scenes_times_chunks_not_bands(
    tiny_cfg: RunConfig,
    tiny_result: SearchResult,
    monkeypatch: pytest.MonkeyPatch,
    clear_pass: bool,
) -> None:
    """One task per (days, window) chunk and one plan per cube, whatever the bands.

    The per-asset path has a read per asset and chunk plus masking and stacking steps,
    so its graph also grows with the bands (and is several times larger).
    """
    monkeypatch.setattr(scenes, "cube_chunking", _small_chunks(32, 4))
    read = OdcSceneReader()
    two = _cubes(tiny_cfg, tiny_result, read, clear_pass)
    six = _cubes(tiny_cfg.with_updates(bands=BANDS), tiny_result, read, clear_pass)
    fine, coarse = two
    windows = (96 // 32) ** 2
    coarse_windows = (6 // 2) ** 2
    fine_tasks = fine.sizes["time"] * windows + 1
    coarse_tasks = math.ceil(coarse.sizes["time"] / 4) * coarse_windows + 1
    if clear_pass:  # the count tasks, then one sum per time chunk (and its division)
        fine_tasks += fine.sizes["time"] * 2
        coarse_tasks += math.ceil(coarse.sizes["time"] / 4) * 2
    assert graph_tasks(*two, clear_pass) == fine_tasks + coarse_tasks
    assert graph_tasks(*six, clear_pass) == graph_tasks(*two, clear_pass)
    per_asset = _cubes(tiny_cfg, tiny_result, AssetScenes(READERS["odc"]), clear_pass)
    assert graph_tasks(*per_asset, clear_pass) > 3 * graph_tasks(*two, clear_pass)


def test_plan_is_shipped_once_per_cube(tiny_cfg: RunConfig, tiny_result: SearchResult) -> None:
    fine, coarse = _cubes(tiny_cfg, tiny_result, OdcSceneReader(), False)
    for cube in (fine, coarse):
        graph = dict(cube.data.__dask_graph__())
        plans = [k for k in graph if str(k).startswith("scene-plan-")]
        assert len(plans) == 1 and len(graph) == math.prod(cube.data.numblocks) + 1
