"""The cubes' chunking: graph size follows spatial chunks, chunk bytes stay bounded."""

from __future__ import annotations

import math

from pipeline.config import parse_config
from pipeline.cube.chunking import CLEAR_PX, COARSE_DAYS, FINE_READ_PX, cube_chunking


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
