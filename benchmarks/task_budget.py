"""Task budget: dask graph sizes of each stage, before/after the chunking rules, and a tile-year.

For each demo world (served by ``rustac`` on loopback, searched like a run; no pixel is
read) the graphs are built lazily and counted after dask's optimisation:

* ``clear``: the cubes stage's clear-fraction pass (reads every asset once);
* ``fine`` / ``coarse``: the cubes the fuse stage streams (each chunk computed once);
* ``fuse``: the fuse stage's own tasks, ``blocks x (1 inputs + ceil(days / batch_days)
  predict + 1 write)`` plus the block clear fractions (one task per pair and read chunk).

"before" uses the chunking of main before this change (one-day chunks of the store
block, fine 256 px and coarse 16 px, also for the clear pass). The tile-year projection
scales the measured tasks per chunk by a Landsat tile-year's chunks (7000 px, 365 days,
46 scenes, 6 bands). ``python -m benchmarks.task_budget WORLD:START:END ...`` prints JSON.
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path
from typing import Any
from unittest import mock

from pipeline.cube import scenes

#: A Landsat tile-year: side (px), days, scenes (8-day revisit of Landsat 8 + 9).
TILE_PX, TILE_DAYS, TILE_SCENES = 7000, 365, 46
#: The chunking of main before the task budget (fine 256 px, coarse 16 px, one day).
BEFORE = {"fine": 256, "coarse": 16, "days": 1}


def _before(cfg: Any, fine_shape: tuple[int, int]) -> Any:
    from pipeline.cube.chunking import CubeChunking

    fine = {"time": 1, "y": BEFORE["fine"], "x": BEFORE["fine"]}
    coarse = {"time": 1, "y": BEFORE["coarse"], "x": BEFORE["coarse"]}
    return CubeChunking(fine, coarse, fine, coarse)


def _config(world: Any, url: str, start: str, end: str) -> Any:
    from pipeline.config import parse_config

    w, s, e, n = world.bbox
    return parse_config(
        {
            "region": {"name": "budget", "bbox": [w + 1e-3, s + 1e-3, e - 1e-3, n - 1e-3]},
            "time": {"start": start, "end": end, "search_margin_days": 0},
            "stac": {"url": url},
            "grid": {"coregister": "off"},
        }
    )


def _chunks(arr: Any) -> int:
    return math.prod(len(c) for c in arr.data.chunks)


def _split(fine: Any, coarse: Any, clear_pass: bool) -> dict[str, int]:
    """Tasks and chunks of the fine and of the coarse cube, counted apart."""
    none_f, none_c = fine.isel(time=slice(0, 0)), coarse.isel(time=slice(0, 0))
    return {
        "fine": scenes.graph_tasks(fine, none_c, clear_pass),
        "coarse": scenes.graph_tasks(none_f, coarse, clear_pass),
        "fine_chunks": _chunks(fine),
        "coarse_chunks": _chunks(coarse),
    }


def counts(cfg: Any, result: Any) -> dict[str, Any]:
    """Graph sizes of the stages for ``cfg`` over the searched items (no pixel read)."""
    from pipeline.cube.grid import grid_anchor, target_grids
    from pipeline.cube.load import READERS

    grids = target_grids(cfg, grid_anchor(result.fine))
    items = (result.fine, result.coarse, READERS["odc"], grids)
    fine, coarse = scenes.lazy_scenes(cfg, *items)
    ny, nx = grids[0].shape.y, grids[0].shape.x
    blocks = math.ceil(ny / cfg.chunks.y) * math.ceil(nx / cfg.chunks.x)
    days = len(cfg.time.days())
    read_chunks = math.prod(len(c) for c in fine.data.chunks[2:])
    n_pairs = fine.sizes["time"]  # at most: every clear scene with a coarse day
    fuse = blocks * (2 + math.ceil(days / cfg.compute.batch_days)) + n_pairs * read_chunks
    cubes = _split(fine, coarse, False)
    clear = _split(*scenes.lazy_scenes(cfg, *items, clear_pass=True), True)
    return {
        "shape": [ny, nx],
        "days": days,
        "fine_scenes": fine.sizes["time"],
        "coarse_days": coarse.sizes["time"],
        "clear": clear["fine"] + clear["coarse"],
        "fine": cubes["fine"],
        "coarse": cubes["coarse"],
        "fuse": fuse,
        "per_chunk": {
            "clear_fine": clear["fine"] / clear["fine_chunks"],
            "clear_coarse": clear["coarse"] / clear["coarse_chunks"],
            "fine": cubes["fine"] / cubes["fine_chunks"],
            "coarse": cubes["coarse"] / cubes["coarse_chunks"],
        },
    }


def measure(root: Path, start: str, end: str) -> dict[str, Any]:
    """Counts after and before the chunking rules for one world and season."""
    from pipeline.catalog.search import search_items
    from pipeline.catalog.server import serve_catalog
    from pipeline.synth.world import open_world

    world = open_world(root)
    with serve_catalog(world.stac_dir) as url:
        cfg = _config(world, url, start, end)
        result = search_items(cfg, url)
    after = counts(cfg, result)
    with mock.patch.object(scenes, "cube_chunking", _before):
        before = counts(cfg, result)
    return {"world": str(root), "start": start, "end": end, "after": after, "before": before}


def _tile_chunks(which: str) -> dict[str, int]:
    """Chunks (time x band x y x x) of a tile-year's four cubes under one chunking."""
    from pipeline.cube.chunking import CLEAR_PX, COARSE_CLEAR_PX, COARSE_DAYS, FINE_READ_PX

    bands, coarse_px = 6, math.ceil(TILE_PX / 16)
    if which == "before":
        fine = coarse = (1, BEFORE["fine"])
        clear_fine, clear_coarse = fine, (1, BEFORE["coarse"])
        coarse = (1, BEFORE["coarse"])
    else:
        fine, coarse = (1, FINE_READ_PX), (COARSE_DAYS, FINE_READ_PX // 16)
        clear_fine, clear_coarse = (1, CLEAR_PX), (COARSE_DAYS, COARSE_CLEAR_PX)

    def n(days_side: tuple[int, int], count: int, px: int) -> int:
        return math.ceil(count / days_side[0]) * math.ceil(px / days_side[1]) ** 2 * bands

    return {
        "fine": n(fine, TILE_SCENES, TILE_PX),
        "coarse": n(coarse, TILE_DAYS, coarse_px),
        "clear_fine": n(clear_fine, TILE_SCENES, TILE_PX),
        "clear_coarse": n(clear_coarse, TILE_DAYS, coarse_px),
    }


def project(row: dict[str, Any], which: str = "after") -> dict[str, int]:
    """Tasks of a tile-year from one measured row: tasks per chunk x the tile-year's chunks."""
    per, chunks = row[which]["per_chunk"], _tile_chunks(which)
    blocks = math.ceil(TILE_PX / 256) ** 2
    read_chunks = chunks["fine"] // TILE_SCENES // 6
    out = {
        "clear": per["clear_fine"] * chunks["clear_fine"]
        + per["clear_coarse"] * chunks["clear_coarse"],
        "fine": per["fine"] * chunks["fine"],
        "coarse": per["coarse"] * chunks["coarse"],
        "fuse": blocks * (2 + math.ceil(TILE_DAYS / 8)) + TILE_SCENES * read_chunks,
    }
    out["total"] = sum(out.values())
    return {k: round(v) for k, v in out.items()}


def main(argv: list[str] | None = None) -> None:
    """``python -m benchmarks.task_budget /tmp/w512:2024-06-01:2024-07-15 ...`` -> JSON rows."""
    rows = []
    for spec in sys.argv[1:] if argv is None else argv:
        root, start, end = spec.split(":")
        row = measure(Path(root), start, end)
        row["tile_year"] = {"after": project(row, "after"), "before": project(row, "before")}
        rows.append(row)
        print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()


def section(rows: list[dict[str, Any]], notes: tuple[str, ...] = ()) -> list[str]:
    """Markdown lines of the task-budget section of results.md; ``notes``: bullets first."""
    from pipeline.cube.chunking import CLEAR_PX, COARSE_DAYS, FINE_READ_PX

    head = (
        "| grid | days | scenes fine + coarse | clear pass before → after | "
        "fine cube before → after | coarse cube before → after | fuse tasks |"
    )
    lines = [
        "## Task budget",
        "",
        "Dask tasks of each stage's optimised graph (`python -m benchmarks.task_budget`; graphs "
        "built from the served demo world's items, nothing read; 6 bands). Before: one-day "
        "chunks of the store block (fine 256 px, coarse 16 px), the clear pass on the same "
        f"chunks. After (`pipeline/cube/chunking.py`): fine reads {FINE_READ_PX} px, coarse "
        f"chunks of {COARSE_DAYS} days under them, the clear pass in scene-sized tasks "
        f"(≤ {CLEAR_PX} px), block clear fractions one task per read chunk. Fuse tasks = "
        "blocks × (1 inputs + ⌈days/8⌉ predict + 1 write) + pairs × read chunks.",
        "",
        *(f"- {note}" for note in notes),
        "",
        head,
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        b, a = r["before"], r["after"]
        lines.append(
            f"| {a['shape'][0]}² | {a['days']} | {a['fine_scenes']} + {a['coarse_days']} | "
            f"{b['clear']:,} → {a['clear']:,} | {b['fine']:,} → {a['fine']:,} | "
            f"{b['coarse']:,} → {a['coarse']:,} | {b['fuse']:,} → {a['fuse']:,} |"
        )
    best = max(rows, key=lambda r: r["after"]["shape"][0] * r["after"]["days"])
    proj = best["tile_year"]
    lines += [
        "",
        f"Projected to a tile-year ({TILE_PX}² px, {TILE_DAYS} days, {TILE_SCENES} scenes, "
        f"6 bands) from the tasks per chunk of the {best['after']['shape'][0]}² × "
        f"{best['after']['days']}-day row: before {proj['before']['total']:,} tasks "
        f"(clear {proj['before']['clear']:,}, fine {proj['before']['fine']:,}, coarse "
        f"{proj['before']['coarse']:,}, fuse {proj['before']['fuse']:,}); after "
        f"{proj['after']['total']:,} (clear {proj['after']['clear']:,}, fine "
        f"{proj['after']['fine']:,}, coarse {proj['after']['coarse']:,}, fuse "
        f"{proj['after']['fuse']:,}).",
    ]
    return lines
