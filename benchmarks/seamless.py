"""Gap-filling methods compared on a demo store: ``python -m benchmarks.seamless [STORE]``.

Reads a fused demo store (default ``demo-out/fusion.zarr``, written by ``stf demo``)
and the demo world's truth, rebuilds the series as the fuse stage saw it before
filling (observed + fused pixel-days; filled ones back to gaps) and fills it
again with each method of :mod:`pipeline.fuse.gapfill`, with the run's
calibration (``q`` from the provenance). Two tests, both against the world's
noise-free truth, pixels inside the coverage only:

* **real gaps**: the pixel-days the run filled (cloudy or missing coarse days);
* **withheld spells**: runs of 1-6 consecutive fused days (days without a
  Landsat scene, so no neighbour used them as a reference) withheld at random
  per pixel and filled from the rest.

Per method: RMSE and MAE of the filled values and the shares within 1 and 2
sigma. Writes ``benchmarks/seamless.json`` and prints the table.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

from pipeline.evaluate.calibration import within_sigma
from pipeline.fuse.calibrate import OBS_SIGMA
from pipeline.fuse.gapfill import METHODS, Filled, fill_gaps
from pipeline.store.layout import FILLED, FUSED, OBSERVED, OUTSIDE


def _load(url: str) -> tuple:
    from pipeline.demo import demo_world_root
    from pipeline.report import _truth, crop_to_world
    from pipeline.store.write import open_store
    from pipeline.synth import build_world

    world = build_world(demo_world_root())
    ds = open_store(url)
    prov = json.loads(ds.attrs["stf_provenance"])
    ds, rows, cols = crop_to_world(ds, world)
    bands = tuple(ds.attrs["stf_bands"])
    days = [pd.Timestamp(t).date() for t in ds["time"].values]
    values = np.stack([ds[b].values for b in bands], axis=1)
    truth = np.stack([_truth(world, d, bands, rows, cols) for d in days])
    landsat = np.isin(days, list(world.landsat_dates()))
    return ds, prov, values, truth, landsat


def _withhold(fused: np.ndarray, landsat: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """(time, y, x) bool: per pixel and 8-day period a spell of 1-6 fused non-Landsat days."""
    n = fused.shape[0]
    periods = -(-n // 8)
    first = rng.integers(0, 8, (periods, *fused.shape[1:]))
    length = rng.integers(1, 7, (periods, *fused.shape[1:]))
    t = np.arange(n)
    offset = (t % 8)[:, None, None]
    held = (offset >= first[t // 8]) & (offset < first[t // 8] + length[t // 8])
    return held & fused & ~landsat[:, None, None]


def _score(filled: Filled, truth: np.ndarray, target: np.ndarray) -> dict[str, float]:
    err = (filled.values - truth).transpose(1, 0, 2, 3)[:, target]
    sig = filled.sigma.transpose(1, 0, 2, 3)[:, target]
    ok = np.isfinite(err)
    return {
        "rmse": float(np.sqrt(np.mean(err[ok] ** 2))),
        "mae": float(np.mean(np.abs(err[ok]))),
        **within_sigma(err, sig),
    }


def main(url: str = "demo-out/fusion.zarr") -> dict:
    start = time.perf_counter()
    ds, prov, values, truth, landsat = _load(url)
    quality = ds["quality"].values
    seamless = prov["model"]["seamless"]  # this run's calibration (older runs: previous_runs)
    q = np.asarray(seamless["q"])
    cover = ~((quality & OUTSIDE) > 0).all(axis=0)
    valid = (quality & (OBSERVED | FUSED)) > 0
    unc = ds["uncertainty"].values
    sigma = np.where(quality & OBSERVED, OBS_SIGMA, unc)[:, None].repeat(values.shape[1], 1)
    before = np.where(valid[:, None], values, np.nan)
    real_gaps = ((quality & FILLED) > 0) & cover
    held = _withhold((quality & FUSED) > 0, landsat, np.random.default_rng(0))
    spells = np.where(held[:, None], np.nan, before)
    out: dict = {"store": url, "q": q.tolist(), "real_gap_pixel_days": int(real_gaps.sum()),
                 "withheld_pixel_days": int(held.sum()), "methods": {}}  # fmt: skip
    for method in METHODS:
        real = fill_gaps(before, sigma, cover, q, method)
        spell = fill_gaps(spells, sigma, cover, q, method)
        out["methods"][method] = {
            "real_gaps": _score(real, truth, real_gaps),
            "withheld_spells": _score(spell, truth, held),
        }
    out["seconds"] = round(time.perf_counter() - start, 1)
    Path("benchmarks/seamless.json").write_text(json.dumps(out, indent=1))
    for method, res in out["methods"].items():
        for test, r in res.items():
            print(
                f"{method:7s} {test:16s} RMSE {r['rmse']:.4f} MAE {r['mae']:.4f} "
                f"1s {r['within_1sigma']:.3f} 2s {r['within_2sigma']:.3f} n {r['count']}"
            )
    return out


if __name__ == "__main__":
    main(*sys.argv[1:])
