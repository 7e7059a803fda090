"""Peak memory of one fuse task's write step on one block, code states side by side.

The write step of a fuse task (:func:`pipeline.fuse.worker.write_window` without the
coverage cut: the seamless window, the block dataset, the store's region write) on a
synthetic block as ``assemble_day`` gives it (observed, fused, fused without a model
sigma, gap pixel-days; one all-gap day), written into a prepared store. Each code
state runs in its own fresh process (``PYTHONPATH`` = its tree), one after the other:

    python -m benchmarks.task_memory --days 184 --size 256 \\
        --tree before=/tmp/old-tree --tree after=.

prints one JSON row per tree: the RSS with the inputs held (``held_mib``), the peak RSS
of the process (``peak_mib``), their difference (``working_mib``, what the step adds),
its CPU seconds, and a digest of what was written (the same in every state when the
results are).
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

FRACTIONS = {"observed": 0.08, "fused": 0.55, "gap": 0.37}  # the 184-day demo's mix, roughly


def synthetic_days(n_days: int, size: int, bands: int = 3, seed: int = 0) -> list[dict]:
    """(n_days) dicts of (band, y, x) float32 values/sigma, (y, x) quality and ref days."""
    from pipeline.store.layout import FUSED, GAP, OBSERVED

    rng = np.random.default_rng(seed)
    shape = (size, size)
    days = []
    for t in range(n_days):
        draw = rng.random(shape, np.float32)
        quality = np.where(draw < FRACTIONS["observed"], OBSERVED, FUSED).astype(np.uint8)
        quality[draw > 1 - FRACTIONS["gap"]] = GAP
        values = rng.uniform(0.05, 0.4, (bands, *shape)).astype(np.float32)
        values[:, quality == GAP] = np.nan
        sigma = rng.uniform(0.002, 0.03, (bands, *shape)).astype(np.float32)
        sigma[:, (quality != FUSED) | (draw < 0.12)] = np.nan  # some fused without a sigma
        if t == n_days // 2:  # a day with neither a prediction nor an observation
            quality[:] = GAP
            values = np.full((1, *shape), np.nan, np.float32)
            sigma = values
        days.append({
            "values": values,
            "sigma": sigma,
            "quality": quality,
            "ref_before_days": np.full(shape, t % 8, np.int16),
            "ref_after_days": np.full(shape, 8 - t % 8, np.int16),
        })  # fmt: skip
    return days


def _rss_mib() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def _write_step(days: list[dict], size: int, bands: tuple[str, ...], url: str) -> None:
    """Seamless window, block dataset and region write: what ``write_window`` does."""
    from pipeline.fuse import worker
    from pipeline.fuse.calibrate import SeriesCalibration
    from pipeline.store.layout import Grid, StoreLayout
    from pipeline.store.write import DONE, prepare_store, write_block

    n = len(days)
    grid = Grid(
        y=5_000_000 - 15 - 30 * np.arange(size, dtype=np.float64),
        x=600_000 + 15 + 30 * np.arange(size, dtype=np.float64),
        crs_wkt=_crs(),
    )
    layout = StoreLayout(bands, chunk_time=n, chunk_y=size, chunk_x=size)
    prepare_store(
        url, grid, [dt.date(2024, 4, 15) + dt.timedelta(i) for i in range(n)], layout, "m"
    )
    calib = SeriesCalibration(1.3, (2e-5,) * len(bands), 90, coarse_sigma=0.02)
    cover = np.ones((size, size), bool)
    window = worker.seamless_window(days, cover, calib, n_bands=len(bands))
    ds = worker._block_dataset(window, layout)
    del window
    region = {"time": slice(0, n), "y": slice(0, size), "x": slice(0, size)}
    write_block(url, ds, region, (0, 0), np.full(n, DONE, np.uint8))


def _crs() -> str:
    from pyproj import CRS

    return CRS.from_epsg(32632).to_wkt()


def child(days: int, size: int) -> dict:
    """Run the write step once in this process; return its row."""
    import xarray as xr

    bands = ("green", "red", "nir")
    with tempfile.TemporaryDirectory(prefix="stf-taskmem-") as tmp:
        _write_step(synthetic_days(4, 16), 16, bands, f"{tmp}/warm.zarr")  # imports, numba
        inputs = synthetic_days(days, size)
        held = _rss_mib()
        cpu = time.process_time()
        _write_step(inputs, size, bands, f"{tmp}/task.zarr")
        cpu = time.process_time() - cpu
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        ds = xr.open_zarr(f"{tmp}/task.zarr", consolidated=False)
        digest = hashlib.sha256()
        for name in sorted(ds.data_vars):
            digest.update(np.ascontiguousarray(ds[name].values).tobytes())
    return {
        "days": days,
        "size": size,
        "bands": len(bands),
        "held_mib": round(held, 1),
        "peak_mib": round(peak, 1),
        "working_mib": round(peak - held, 1),
        "cpu_s": round(cpu, 2),
        "digest": digest.hexdigest()[:16],
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=184)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--tree", action="append", default=[], help="LABEL=DIR (repeatable)")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(child(args.days, args.size)))
        return
    here = Path(__file__).resolve().parents[1]
    for spec in args.tree or [f"this={here}"]:
        label, tree = spec.split("=", 1)
        env = {**os.environ, "PYTHONPATH": f"{Path(tree).resolve()}:{here}"}
        cmd = [sys.executable, "-m", "benchmarks.task_memory", "--child",
               "--days", str(args.days), "--size", str(args.size)]  # fmt: skip
        out = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True, cwd=tree)
        row = {"tree": label, **json.loads(out.stdout.strip().splitlines()[-1])}
        print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
