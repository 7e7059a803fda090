"""The cubes' chunking: graph size follows spatial chunks, chunk bytes stay bounded."""

from __future__ import annotations

import math

import pytest

from pipeline.catalog.search import search_items
from pipeline.config import parse_config
from pipeline.cube.chunking import CLEAR_PX, COARSE_DAYS, FINE_READ_PX, cube_chunking
from pipeline.cube.grid import grid_anchor, target_grids
from pipeline.cube.scene_read import OdcSceneReader
from pipeline.cube.scenes import graph_tasks, lazy_scenes
from pipeline.synth import World
from tests.cube.conftest import tiny_config


def _cfg(block: int = 256) -> object:
    return parse_config(
        {
            "region": {"name": "r", "bbox": [9.9, 45.0, 10.0, 45.1]},
            "time": {"start": "2024-06-01", "end": "2024-06-30"},
            "stac": {"url": "demo"},
            "chunks": {"y": block, "x": block},
        }
    )


def test_fine_chunks_are_whole_blocks_up_to_the_read_size() -> None:
    tile = cube_chunking(_cfg(256), (7000, 7000))
    assert tile.fine == {"time": 1, "y": FINE_READ_PX, "x": FINE_READ_PX}
    assert FINE_READ_PX % 256 == 0
    odd = cube_chunking(_cfg(384), (7000, 7000))
    assert odd.fine["y"] % 384 == 0 and odd.fine["y"] >= FINE_READ_PX
    small = cube_chunking(_cfg(64), (96, 96))
    assert small.fine["y"] == 128  # whole blocks: dask cuts the 96 px grid to one chunk


def test_coarse_chunks_hold_many_days_under_one_fine_chunk() -> None:
    c = cube_chunking(_cfg(256), (7000, 7000))
    assert c.coarse == {"time": COARSE_DAYS, "y": FINE_READ_PX // 16, "x": FINE_READ_PX // 16}


def test_clear_pass_tasks_are_scene_sized_and_bounded() -> None:
    c = cube_chunking(_cfg(256), (7000, 7000))
    assert c.clear_fine == {"time": 1, "y": CLEAR_PX, "x": CLEAR_PX}
    assert c.clear_coarse["y"] == math.ceil(7000 / 16)  # a tile's whole coarse grid
    assert cube_chunking(_cfg(256), (544, 544)).clear_fine == {"time": 1, "y": 544, "x": 544}


def _graph(world: World, url: str, block: int, end: str, clear_pass: bool) -> tuple[int, int]:
    """Tasks of the cubes' graph and the number of their chunks (fine + coarse)."""
    cfg = tiny_config(world, chunks={"y": block, "x": block}, time=_time(end))
    result = search_items(cfg, url)
    grids = target_grids(cfg, grid_anchor(result.fine))
    fine, coarse = lazy_scenes(cfg, result.fine, result.coarse, OdcSceneReader(), grids, clear_pass)
    chunks = sum(math.prod(c.data.numblocks) for c in (fine, coarse))
    return graph_tasks(fine, coarse, clear_pass), chunks


def _time(end: str) -> dict[str, object]:
    return {"start": "2024-06-01", "end": end, "search_margin_days": 0}


@pytest.mark.parametrize("clear_pass", [False, True])
def test_cube_graphs_follow_read_chunks_not_blocks_or_coarse_days(
    tiny_world: World, stac_url: str, clear_pass: bool
) -> None:
    """16x more store blocks: same graph; 3.5x more days: tasks follow the read chunks.

    Before the chunking rules the coarse cube had one chunk per day and 16 px block,
    so both ratios were the full ones (scenes x chunks); the per-asset reader then
    added ~4-5 tasks per asset and chunk, the scene reader one task per chunk (two
    keys per time chunk in the clear pass: its sum) and one plan per cube.
    """
    base, base_chunks = _graph(tiny_world, stac_url, 64, "2024-06-10", clear_pass)
    assert _graph(tiny_world, stac_url, 16, "2024-06-10", clear_pass)[0] == base
    # 10 -> 35 days: 1 -> 4 Landsat scenes (read once each) but 1 -> 2 coarse time chunks
    longer, chunks = _graph(tiny_world, stac_url, 64, "2024-07-05", clear_pass)
    # fine chunks + coarse chunks (32 days, or CLEAR_COARSE_DAYS = 8 in the clear pass)
    assert (base_chunks, chunks) == ((3, 9) if clear_pass else (2, 6))
    assert base <= 2 * base_chunks + 2 and longer <= 2 * chunks + 2
