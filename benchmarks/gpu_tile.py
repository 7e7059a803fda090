"""One tile end to end on a GPU worker: synthetic world -> STAC -> cubes -> model -> fuse -> store.

The world is built on the fly (``WorldSpec`` of the plan's size and days, light
clouds), served by ``rustac`` on loopback for the search, then the run's own
stage functions (:mod:`pipeline.stages`, the ones ``flows/`` calls) run one after the
other with ``compute.gpu: true``: the LocalCluster's worker advertises ``GPU=1``
and the fuse tasks ask for it. Seconds per stage are measured around each step.
"""

from __future__ import annotations

import datetime as dt
import shutil
import time
from pathlib import Path
from typing import Any

#: The default CNN of the end-to-end tile and its epoch budget there.
TILE_MODEL = "resstf"
TILE_EPOCHS = 5


def _config(world: Any, url: str, plan: Any, workdir: Path) -> Any:
    from pipeline.config import parse_config

    w, s, e, n = world.bbox
    start = world.spec.start
    return parse_config(
        {
            "region": {"name": "gpu-tile", "bbox": [w + 1e-3, s + 1e-3, e - 1e-3, n - 1e-3]},
            "time": {
                "start": start.isoformat(),
                "end": (start + dt.timedelta(days=plan.days - 1)).isoformat(),
                "search_margin_days": 0,
            },
            "bands": ["green", "red", "nir"],
            "stac": {"url": url},
            "model": {
                "name": TILE_MODEL,
                "size": plan.size,
                "epochs": 1 if plan.device == "cpu" else TILE_EPOCHS,
            },
            "compute": {"gpu": True, "n_workers": 1, "threads_per_worker": 4},
            "output_root": str(workdir / "run"),
            "store": {"path": "tile.zarr"},
        }
    )


def _timed(stages: dict[str, float], name: str, fn: Any) -> Any:
    start = time.perf_counter()
    value = fn()
    stages[name] = round(time.perf_counter() - start, 2)
    return value


def _world_spec(plan: Any) -> Any:
    from pipeline.synth import WorldSpec

    start = dt.date(2024, 6, 1)
    # exactly the run's days and few clouds: the build (about 8 CPU-s for 512² x 39 days on
    # these cores, growing with pixels x days) must stay well under a minute at 2048² x 30
    end = start + dt.timedelta(days=plan.days - 1)
    return WorldSpec(width=plan.world, height=plan.world, start=start, end=end, cloudiness=0.1)


def end_to_end(plan: Any, workdir: Path, seconds_left: float) -> dict[str, Any]:
    """Build, serve, search, load, train, fuse one tile; seconds per stage and the store's facts."""
    from pipeline import stages
    from pipeline.catalog.server import serve_catalog
    from pipeline.synth import build_world

    if plan.world <= 0:
        return {"skipped": "no tile asked (--tile 0)"}
    if seconds_left < (60 if plan.device == "cuda" else 1):
        return {"skipped": f"budget ({seconds_left:.0f} s left)"}
    shutil.rmtree(workdir, ignore_errors=True)
    seconds: dict[str, float] = {}
    world = _timed(
        seconds, "build_world", lambda: build_world(workdir / "world", _world_spec(plan))
    )
    with serve_catalog(world.stac_dir) as url:
        cfg = _config(world, url, plan, workdir)
        items = _timed(seconds, "search", lambda: stages.search(cfg))
    cube_set = _timed(seconds, "cubes", lambda: stages.cubes(cfg, items))
    trained = _timed(seconds, "model", lambda: stages.model(cfg, cube_set))
    fused = _timed(seconds, "fuse", lambda: stages.fuse(cfg, cube_set, trained))
    coreg = cube_set.cubes.coregistration
    return {
        "tile_px": plan.world,
        "days": plan.days,
        "model": f"{TILE_MODEL} {plan.size}",
        "stages_s": seconds,
        "total_s": round(sum(seconds.values()), 2),
        "pairs": [p.date.isoformat() for p in cube_set.cubes.pairs],
        "coregistration": coreg.to_dict() if coreg is not None else None,
        "store": fused.url,
        "store_mib": round(_size(Path(fused.url)) / 2**20, 1),
        "pixel_days": plan.world**2 * plan.days,
    }


def _size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) if path.exists() else 0
