"""Pipeline efficiency and scaling of the distributed fusion (:mod:`benchmarks.fuse_run`).

* efficiency: raw in-memory forward time / distributed time, same pixels, days and model
  (goal >= 0.8), with the per-function task seconds that explain the difference;
* scaling: time as the region grows 1x, 4x, 16x in pixels and as the season
  doubles, and with 1 vs 2 workers (goal: <= 1.1x per doubling beyond linear);
* memory: peak RSS per worker as the region grows (goal: <= 1.2x from 1x to 16x).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from benchmarks.common import load
from benchmarks.fuse_run import Case, distributed_pass, raw_pass


def efficiency_row(case: Case) -> dict[str, Any]:
    """Raw forward seconds, distributed seconds and their ratio for one case."""
    raw, raw_cpu = raw_pass(case)
    load_raw = load()
    dist = distributed_pass(case)
    return {
        "model": f"{case.model} ({case.model_size})",
        "worker_env": "dask default" if case.dask_default_env else "pipeline",
        "size": case.size,
        "days": case.n_days,
        "raw_s": raw,
        "raw_cpu_s": raw_cpu,
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
    """The STARFM efficiency row of ``result`` (from :func:`run`) with that worker environment."""
    return next(
        r
        for r in result["efficiency"]
        if r["model"].startswith("starfm") and r["worker_env"] == worker_env
    )


def _row(case: Case) -> dict[str, Any]:
    result = distributed_pass(case).to_dict()
    return {"size": case.size, "days": case.n_days, "workers": case.workers, **result}


def run(quick: bool = False) -> dict[str, Any]:
    """Efficiency (STARFM 7 px window and the naive baseline), then the scaling series."""
    quick_plan = ((64, 128), (8, 16), 64)
    sizes, seasons, base = quick_plan if quick else ((64, 128, 256), (8, 16, 32), 64)
    short, eff_size = seasons[0], sizes[-2]
    starfm = Case(eff_size, short, model="starfm", model_size="tiny")
    # the cheap naive case first: it also takes the one-time costs of the first pass
    efficiency = [
        efficiency_row(Case(eff_size, short)),
        efficiency_row(replace(starfm, dask_default_env=True)),
        efficiency_row(starfm),
    ]
    region = [_row(Case(s, short)) for s in sizes]
    season = [region[0]] + [_row(Case(base, n)) for n in seasons[1:]]
    workers = [_row(Case(eff_size, seasons[1], workers=w)) for w in (1, 2)]
    for r in region + season:
        r["pixels"] = r["size"] ** 2
    return {
        "efficiency": efficiency,
        "region": region,
        "region_per_doubling": per_doubling(region, "pixels"),
        "season": season,
        "season_per_doubling": per_doubling(season, "days"),
        "workers": workers,
        "speedup_2_workers": workers[0]["seconds"] / workers[1]["seconds"],
        "memory_growth_16x": region[-1]["rss_peak_mib"] / region[0]["rss_peak_mib"],
    }
