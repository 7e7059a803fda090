"""Task budget: dask graph sizes of each stage, per reader and chunking, and a tile-year.

For each demo world (served by ``rustac`` on loopback, searched like a run; no pixel is
read) the graphs are built lazily and counted after dask's optimisation, each cube on
its own (distinct keys):

* ``clear``: the cubes stage's clear-fraction pass (reads every asset once);
* ``fine`` / ``coarse``: the cubes the fuse stage streams (each chunk computed once);
* ``fuse``: the fuse stage's own tasks, ``blocks x (1 inputs + ceil(days / batch_days)
  predict + 1 write)`` plus the block clear fractions (one task per pair and read chunk).

Three builds of the same cubes: ``before``, the per-asset odc-stac graph on the
chunking of main before the task budget (one-day chunks of the store block, fine 256 px
and coarse 16 px, also for the clear pass); ``assets``, the per-asset odc-stac graph on
the chunking rules (:mod:`pipeline.cube.chunking`); ``after``, the scene reader
(:mod:`pipeline.cube.scene_read`: one task per cube chunk, all bands) on those rules.
The tile-year projection scales the measured tasks per chunk by a Landsat tile-year's
chunks (7000 px, 365 days, 46 scenes, 6 bands; a scene-reader chunk holds every band).
``python -m benchmarks.task_budget [--skip before] WORLD:START:END ...`` prints JSON rows;
``... --share WORLD:START:END`` runs the cubes' reads of both readers on a LocalCluster
and prints their task counts, wall time and the scheduler thread's share of it.
"""

from __future__ import annotations

import contextlib
import json
import math
import sys
import threading
from pathlib import Path
from typing import Any
from unittest import mock

import dask

from pipeline.cube import scenes
from pipeline.cube.load import READERS
from pipeline.cube.scene_read import OdcSceneReader

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


def _tasks(arr: Any) -> int:
    """Keys of the optimised graph of one dask array (computed on its own)."""
    (optimised,) = dask.optimize(arr)
    return len(optimised.__dask_graph__())


def _split(fine: Any, coarse: Any, clear_pass: bool) -> dict[str, int]:
    """Tasks and chunks of the fine and of the coarse cube, counted apart.

    (The earlier count, ``graph_tasks`` of one cube with an empty slice of the other,
    counted the merged graph once per array: up to twice the tasks of both cubes.)
    """
    pick = (lambda c: c["clear_fraction"].data) if clear_pass else (lambda c: c.data)
    return {
        "fine": _tasks(pick(fine)),
        "coarse": _tasks(pick(coarse)),
        "fine_chunks": _chunks(fine),
        "coarse_chunks": _chunks(coarse),
    }


#: Scene reader per build: per-asset odc-stac (+ masking steps) or one task per chunk.
READ = {
    "before": lambda: scenes.AssetScenes(READERS["odc"]),
    "assets": lambda: scenes.AssetScenes(READERS["odc"]),
    "after": OdcSceneReader,
}


def counts(cfg: Any, result: Any, which: str = "after") -> dict[str, Any]:
    """Graph sizes of the stages for ``cfg`` over the searched items (no pixel read)."""
    from pipeline.cube.grid import grid_anchor, target_grids

    grids = target_grids(cfg, grid_anchor(result.fine))
    items = (result.fine, result.coarse, READ[which](), grids)
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


def measure(root: Path, start: str, end: str, skip: tuple[str, ...] = ()) -> dict[str, Any]:
    """Counts of each build (``after``, ``assets``, ``before``; less ``skip``) for one season."""
    from pipeline.catalog.search import search_items
    from pipeline.catalog.server import serve_catalog
    from pipeline.synth.world import open_world

    world = open_world(root)
    with serve_catalog(world.stac_dir) as url:
        cfg = _config(world, url, start, end)
        result = search_items(cfg, url)
    row: dict[str, Any] = {"world": str(root), "start": start, "end": end}
    for which in ("after", "assets", "before"):
        if which in skip:
            continue
        with (
            mock.patch.object(scenes, "cube_chunking", _before)
            if which == "before"
            else (contextlib.nullcontext())
        ):
            row[which] = counts(cfg, result, which)
    return row


def scheduler_share(root: Path, start: str, end: str, which: str = "after") -> dict[str, Any]:
    """The cubes stage's reads on a LocalCluster (2 workers x 1 thread): tasks, wall, scheduler.

    Computes the clear pass and then every chunk of the fine and coarse cubes (persisted,
    then released), as the cubes and fuse stages read them. ``scheduler_cpu_s`` is the CPU
    time of the scheduler's event-loop thread (in this process); its share of the wall
    time is the scheduler overhead; ``workers_cpu_s`` the CPU time the two workers spent.
    """
    import time

    from distributed import Client, LocalCluster, wait

    from benchmarks.chain_case import TaskCounter, _rusage, _scheduler_done, _thread_cpu
    from pipeline.catalog.search import search_items
    from pipeline.catalog.server import serve_catalog
    from pipeline.cube.grid import grid_anchor, target_grids
    from pipeline.synth.world import open_world

    world = open_world(root)
    with serve_catalog(world.stac_dir) as url:
        cfg = _config(world, url, start, end)
        result = search_items(cfg, url)
    grids = target_grids(cfg, grid_anchor(result.fine))
    items = (result.fine, result.coarse, READ[which](), grids)
    with (
        LocalCluster(n_workers=2, threads_per_worker=1, dashboard_address=None) as cluster,
        Client(cluster) as client,
    ):
        client.register_plugin(TaskCounter())
        tid = client.run_on_scheduler(threading.get_native_id)
        workers0 = sum(w["cpu_s"] for w in client.run(_rusage).values())
        wall0, cpu0 = time.perf_counter(), _thread_cpu(tid)
        clear = scenes.lazy_scenes(cfg, *items, clear_pass=True)
        dask.compute(*(c["clear_fraction"].data for c in clear))
        cubes = client.persist([c.data for c in scenes.lazy_scenes(cfg, *items)])
        wait(cubes)
        del cubes
        wall, cpu = time.perf_counter() - wall0, _thread_cpu(tid) - cpu0
        workers = sum(w["cpu_s"] for w in client.run(_rusage).values()) - workers0
        tasks = client.run_on_scheduler(_scheduler_done)
    return {
        "which": which,
        "tasks": tasks,
        "wall_s": round(wall, 2),
        "workers_cpu_s": round(workers, 2),
        "scheduler_cpu_s": round(cpu, 2),
        "scheduler_share": round(cpu / wall, 4),
    }


def _tile_chunks(which: str) -> dict[str, int]:
    """Chunks (time x band x y x x) of a tile-year's four cubes under one chunking."""
    from pipeline.cube.chunking import (
        CLEAR_COARSE_DAYS,
        CLEAR_PX,
        COARSE_CLEAR_PX,
        COARSE_DAYS,
        FINE_READ_PX,
    )

    # a scene-reader chunk holds every band; a per-asset chunk one band
    bands, coarse_px = 1 if which == "after" else 6, math.ceil(TILE_PX / 16)
    if which == "before":
        fine = coarse = (1, BEFORE["fine"])
        clear_fine, clear_coarse = fine, (1, BEFORE["coarse"])
        coarse = (1, BEFORE["coarse"])
    else:
        fine, coarse = (1, FINE_READ_PX), (COARSE_DAYS, FINE_READ_PX // 16)
        clear_fine, clear_coarse = (1, CLEAR_PX), (CLEAR_COARSE_DAYS, COARSE_CLEAR_PX)

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
    read_chunks = chunks["fine"] // TILE_SCENES // (1 if which == "after" else 6)
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
    """``python -m benchmarks.task_budget [--skip before] /tmp/w512:2024-06-01:2024-07-15 ...``.

    Prints one JSON row per world and season.
    """
    args = list(sys.argv[1:] if argv is None else argv)
    if args[:1] == ["--share"]:  # --share WORLD:START:END: scheduler share of each reader
        root, start, end = args[1].split(":")
        for which in ("after", "assets"):
            print(json.dumps(scheduler_share(Path(root), start, end, which)), flush=True)
        return
    skip: tuple[str, ...] = ()
    if args[:1] == ["--skip"]:
        skip, args = tuple(args[1].split(",")), args[2:]
    for spec in args:
        root, start, end = spec.split(":")
        row = measure(Path(root), start, end, skip)
        row["tile_year"] = {w: project(row, w) for w in ("after", "assets", "before") if w in row}
        print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()


def _arrow(row: dict[str, Any], key: str, builds: tuple[str, ...]) -> str:
    """``before → assets → after`` counts of one column; ``—`` for a build not measured."""
    return " → ".join(f"{row[w][key]:,}" if w in row else "—" for w in builds)


def _size(row: dict[str, Any]) -> int:
    """Pixel-days of a row (the projection uses the largest row that has a build)."""
    return int(row["after"]["shape"][0] ** 2 * row["after"]["days"])


def section(rows: list[dict[str, Any]], notes: tuple[str, ...] = ()) -> list[str]:
    """Markdown lines of the task-budget section of results.md; ``notes``: bullets first."""
    from pipeline.cube.chunking import CLEAR_PX, COARSE_DAYS, FINE_READ_PX

    measured = tuple(w for w in ("before", "assets", "after") if any(w in r for r in rows))
    builds = " → ".join(measured)
    head = (
        f"| grid | days | scenes fine + coarse | clear pass {builds} | "
        f"fine cube {builds} | coarse cube {builds} | fuse tasks |"
    )
    lines = [
        "## Task budget",
        "",
        "Dask tasks of each stage's optimised graph (`python -m benchmarks.task_budget`; graphs "
        "built from the served demo world's items, nothing read; 6 bands; each cube counted on "
        "its own). Before: the per-asset odc-stac graph on one-day chunks of the store block "
        "(fine 256 px, coarse 16 px), the clear pass on the same chunks. Assets: the same "
        f"per-asset graph on the chunking rules (`pipeline/cube/chunking.py`: fine reads "
        f"{FINE_READ_PX} px, coarse chunks of {COARSE_DAYS} days under them, the clear pass in "
        f"scene-sized tasks ≤ {CLEAR_PX} px). After: the scene reader "
        "(`pipeline/cube/scene_read.py`) on those rules, one task per cube chunk (every band "
        "and QA asset read, masked, scaled and same-day merged in it) and one plan per cube. "
        "Fuse tasks = blocks × (1 inputs + ⌈days/8⌉ predict + 1 write) + pairs × read chunks.",
        "",
        *(f"- {note}" for note in notes),
        "",
        head,
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        a = r["after"]
        lines.append(
            f"| {a['shape'][0]}² | {a['days']} | {a['fine_scenes']} + {a['coarse_days']} | "
            f"{_arrow(r, 'clear', measured)} | {_arrow(r, 'fine', measured)} | "
            f"{_arrow(r, 'coarse', measured)} | {_arrow(r, 'fuse', measured)} |"
        )

    def parts(which: str) -> str:
        row = max((r for r in rows if which in r), key=_size)
        p = row["tile_year"][which]
        return (
            f"{which} {p['total']:,} (clear {p['clear']:,}, fine {p['fine']:,}, coarse "
            f"{p['coarse']:,}, fuse {p['fuse']:,}; from the {row['after']['shape'][0]}² × "
            f"{row['after']['days']}-day row)"
        )

    lines += [
        "",
        f"Projected to a tile-year ({TILE_PX}² px, {TILE_DAYS} days, {TILE_SCENES} scenes, "
        "6 bands) from the tasks per chunk of the largest row with that build: "
        + "; ".join(parts(w) for w in measured)
        + ".",
    ]
    return lines
