"""Pipeline efficiency and scaling of the distributed fusion (:mod:`benchmarks.fuse_run`).

* efficiency: raw in-memory forward time / distributed time, same pixels, days and model
  (goal >= 0.8), with the per-function task seconds that explain the difference;
* scaling: time as the season doubles and with 1 vs 2 workers (goal: <= 1.1x
  per doubling beyond linear);
* memory (and time) as the region grows 1x, 4x, 16x in pixels: peak RSS per
  worker (goal: <= 1.2x from 1x to 16x) with the inputs streamed in groups and,
  as the "before", persisted over the whole region (one group). The case is
  chosen so that whole-region inputs would dominate the worker's memory: 6 bands,
  :data:`MEMORY_DAYS` days (a scene every 8 days), 64² blocks, a group budget of
  :data:`MEMORY_WINDOW_MIB` MiB per worker (scaled down with the region, as a
  Landsat tile's default budget is to the tile).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from benchmarks.common import load
from benchmarks.fuse_run import WHOLE_REGION, Case, distributed_pass, raw_pass

#: The memory series: days, bands, block size (px) and group budget (MiB per worker).
MEMORY_DAYS, MEMORY_BANDS, MEMORY_CHUNK, MEMORY_WINDOW_MIB = 48, 6, 64, 8.0


def efficiency_row(case: Case) -> dict[str, Any]:
    """Raw forward seconds, distributed seconds and their ratio for one case."""
    raw, raw_cpu = raw_pass(case)
    load_raw = load()
    tiled, tiled_cpu = raw_pass(case, tiled=True)
    dist = distributed_pass(case)
    return {
        "model": f"{case.model} ({case.model_size})",
        "worker_env": case.worker_env,
        "size": case.size,
        "chunk": case.chunk,
        "days": case.n_days,
        "raw_s": raw,
        "raw_cpu_s": raw_cpu,
        "raw_tiled_s": tiled,
        "raw_tiled_cpu_s": tiled_cpu,
        "efficiency_tiled_cpu": tiled_cpu / dist.cpu_seconds,
        "load_raw": load_raw,
        **{f"dist_{k}": v for k, v in dist.to_dict().items()},
        "efficiency": raw / dist.seconds,
        "efficiency_cpu": raw_cpu / dist.cpu_seconds,
    }


def per_doubling(rows: Sequence[dict[str, Any]], work_key: str) -> list[float]:
    """Time growth per doubling of work beyond linear, between successive rows (1.0 = linear)."""
    out = []
    for a, b in itertools.pairwise(rows):
        work = b[work_key] / a[work_key]
        excess = (b["seconds"] / a["seconds"]) / work
        out.append(excess ** (1 / math.log2(work)))
    return out


def starfm_efficiency(result: dict[str, Any], worker_env: str = "pipeline") -> dict[str, Any]:
    """The first (128² block) STARFM efficiency row of ``result`` with that worker environment."""
    return next(
        r
        for r in result["efficiency"]
        if r["model"].startswith("starfm") and r["worker_env"] == worker_env
    )


def _row(case: Case) -> dict[str, Any]:
    result = distributed_pass(case).to_dict()
    return {"size": case.size, "days": case.n_days, "workers": case.workers, **result}


def memory_case(size: int, streamed: bool, days: int = MEMORY_DAYS) -> Case:
    """The region-growth case of ``size``²: streamed in groups, or one whole-region group."""
    window = MEMORY_WINDOW_MIB if streamed else WHOLE_REGION
    return Case(size, days, n_bands=MEMORY_BANDS, chunk=MEMORY_CHUNK, window_mib=window)


def run(quick: bool = False) -> dict[str, Any]:
    """Efficiency (STARFM 7 px window and the naive baseline), then the scaling series."""
    quick_plan = ((64, 128), (8, 16), 64, 128, 8, 16, 128)
    full_plan = ((256, 512, 1024), (8, 16, 32), 64, 256, 16, MEMORY_DAYS, 512)
    sizes, seasons, base, eff_size, eff_days, mem_days, default_size = (
        quick_plan if quick else full_plan
    )
    starfm = Case(eff_size, eff_days, model="starfm", model_size="tiny")
    # the cheap naive case first: it also takes the one-time costs of the first pass
    efficiency = [
        efficiency_row(Case(eff_size, eff_days)),
        *(efficiency_row(replace(starfm, worker_env=e)) for e in ("dask default", "glibc dynamic")),
        efficiency_row(starfm),
        # the store's default chunk: 256² blocks (64² in the quick plan), 4 of them
        efficiency_row(replace(starfm, size=default_size, chunk=default_size // 2)),
    ]
    region = [_row(memory_case(s, True, mem_days)) for s in sizes]
    whole = [_row(memory_case(s, False, mem_days)) for s in sizes]
    season = [_row(Case(base, n)) for n in seasons]
    # a model that does work (STARFM) on 4 blocks: naive_change on one block measured
    # only the fixed costs, which a second worker cannot share
    workers = [_row(replace(starfm, workers=w)) for w in (1, 2)]
    for r in region + whole + season:
        r["pixels"] = r["size"] ** 2
    return {
        "efficiency": efficiency,
        "region": region,
        "region_per_doubling": per_doubling(region, "pixels"),
        "region_whole": whole,
        "season": season,
        "season_per_doubling": per_doubling(season, "days"),
        "workers": workers,
        "speedup_2_workers": workers[0]["seconds"] / workers[1]["seconds"],
        "memory_growth_16x": region[-1]["rss_peak_mib"] / region[0]["rss_peak_mib"],
        "memory_growth_16x_whole": whole[-1]["rss_peak_mib"] / whole[0]["rss_peak_mib"],
    }
