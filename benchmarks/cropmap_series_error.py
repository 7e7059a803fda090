"""Where a crop map's series go wrong: smoothed NDVI of each series against the world's truth.

The three-regime comparison (:mod:`benchmarks.cropmap_accuracy`) says *whether* the fused
seamless series classifies better than the Landsat-only one; this says *when* and *why*:
per month, the error of the daily NDVI each classifier's features are built from
(Whittaker-smoothed, the same weights as the features), and of the raw values the fused
series feeds the smoother, against the noise-free truth of the demo world. Only the
demo world has that truth, so this runs on its regime stores.

Usage::

    python -m benchmarks.cropmap_series_error --regimes /tmp/regimes [--per-field 10]

Prints a Markdown table and writes ``<out>/series-error.json``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from pipeline.products.cropmap import sample_pixels
from pipeline.products.features import smoothed_series
from pipeline.products.indices import ndvi
from pipeline.products.labels import load_labels
from pipeline.products.source import FUSED, OBSERVED, open_fused
from pipeline.store.read import FILLED


def _pixel_line(ds: xr.Dataset, rows: np.ndarray, cols: np.ndarray) -> xr.Dataset:
    """The series of the given pixels as a (time, 1, n) dataset (products act on (y, x))."""
    pts = ds.isel(y=xr.DataArray(rows, dims="s"), x=xr.DataArray(cols, dims="s"))
    return pts.drop_vars(["y", "x"], errors="ignore").rename(s="x").expand_dims("y", axis=1)


def _truth_ndvi(world, days: np.ndarray, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """(time, n) float32 noise-free NDVI of the world at the pixels on each day."""
    out = np.empty((days.size, rows.size), np.float32)
    for t, day in enumerate(pd.DatetimeIndex(days).date):
        truth = world.truth(day)
        red, nir = truth[2][rows, cols], truth[3][rows, cols]
        out[t] = (nir - red) / np.maximum(nir + red, 1e-6)
    return out


def series_error(store: Path, world_root: Path, per_field: int = 10) -> list[dict]:
    """Monthly NDVI error of the fused and Landsat-only series of one store, vs truth.

    Parameters
    ----------
    store : fused store of a regime run; ``world_root`` the demo world it was fused from.
    per_field : pixels drawn per field (the same draw as the classifier's, seed 0).

    Returns
    -------
    One dict per month: ``month`` (YYYY-MM), ``rmse_fused`` and ``rmse_landsat`` (smoothed
    daily NDVI vs truth, all sampled pixel-days), ``rmse_raw_fused`` / ``rmse_raw_filled``
    (the values the fused series feeds its smoother, on its fused / filled pixel-days),
    ``share_observed`` (share of pixel-days with a clear Landsat observation),
    ``share_flat_fused`` (fused pixel-days whose 3 x 3 NIR neighbourhood is flat: STARFM's
    coarse fallback) and ``rmse_raw_fused_sharp`` (the fused pixel-days that are not).
    """
    from pipeline.synth import open_world

    ds = open_fused(store)
    labels = load_labels(world_root / "truth" / "fields.parquet", ds["red"].isel(time=0))
    ones = xr.DataArray(np.ones((1, *labels.classes.shape), np.float32), dims=("feature", "y", "x"))
    picked = sample_pixels(ones, labels, max_per_group=per_field)
    line = _pixel_line(ds, picked.rows, picked.cols).compute()
    days = line["time"].values
    truth = _truth_ndvi(open_world(world_root), days, picked.rows, picked.cols)
    smoothed = {
        name: smoothed_series(line, observed_only=only, bands=())["ndvi"].values[:, 0]
        for name, only in (("fused", False), ("landsat", True))
    }
    raw = ndvi(line["red"], line["nir"]).values[:, 0]
    q = line["quality"].values[:, 0]
    flat = _flat_3x3(ds["nir"])[:, picked.rows, picked.cols]
    months = pd.DatetimeIndex(days).strftime("%Y-%m").to_numpy()
    rows = []
    for month in np.unique(months):
        m = months == month
        row = {"month": str(month), "share_observed": float(((q[m] & OBSERVED) > 0).mean())}
        for name, series in smoothed.items():
            row[f"rmse_{name}"] = _rmse(series[m] - truth[m])
        for name, bit in (("fused", FUSED), ("filled", FILLED)):
            sel = (q[m] & bit) > 0
            row[f"rmse_raw_{name}"] = _rmse((raw[m] - truth[m])[sel]) if sel.any() else None
        fused = (q[m] & FUSED) > 0
        row["share_flat_fused"] = float(flat[m][fused].mean()) if fused.any() else None
        sharp = fused & ~flat[m]
        row["rmse_raw_fused_sharp"] = _rmse((raw[m] - truth[m])[sharp]) if sharp.any() else None
        rows.append(row)
    return rows


def _flat_3x3(nir: xr.DataArray) -> np.ndarray:
    """(time, y, x) bool: the pixel's 3 x 3 neighbourhood is constant (a 480 m value).

    STARFM gives a pixel the target's coarse value when no candidate of its window
    survives; those pixels form flat 480 m blocks, which no fine-scale value does.
    """
    from scipy import ndimage

    values = nir.values
    size = (1, 3, 3)
    spread = ndimage.maximum_filter(values, size) - ndimage.minimum_filter(values, size)
    return spread < 1e-6


def _rmse(err: np.ndarray) -> float:
    err = err[np.isfinite(err)]
    return float(np.sqrt(np.mean(err**2))) if err.size else float("nan")


def to_markdown(found: dict[str, list[dict]]) -> str:
    """One table: regime x month, smoothed and raw NDVI RMSE, observed share."""

    def f(v: float | None) -> str:
        return "-" if v is None or not np.isfinite(v) else f"{v:.3f}"

    lines = [
        "| regime | month | observed share | RMSE smoothed fused | RMSE smoothed Landsat-only "
        "| RMSE raw fused days | of which flat (coarse fallback) | RMSE raw fused, not flat "
        "| RMSE raw filled days |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for regime, rows in found.items():
        for r in rows:
            lines.append(
                f"| {regime} | {r['month']} | {r['share_observed']:.3f} | {f(r['rmse_fused'])} "
                f"| {f(r['rmse_landsat'])} | {f(r['rmse_raw_fused'])} | {f(r['share_flat_fused'])} "
                f"| {f(r['rmse_raw_fused_sharp'])} | {f(r['rmse_raw_filled'])} |"
            )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--regimes", type=Path, required=True, help="WORKDIR of --regimes")
    parser.add_argument("--per-field", type=int, default=10)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/cropmap-accuracy"))
    args = parser.parse_args()
    found = {}
    for run in sorted(args.regimes.glob("run-*")):
        regime = run.name.removeprefix("run-")
        world = args.regimes / f"world-{regime}"
        store = run / "fusion.zarr"
        if store.exists() and (world / "world.json").exists():
            found[regime] = series_error(store, world, args.per_field)
    args.out.mkdir(parents=True, exist_ok=True)
    stamp = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M")
    (args.out / "series-error.json").write_text(
        json.dumps({"date": stamp, "rows": found}, indent=1)
    )
    print(to_markdown(found))


if __name__ == "__main__":
    main()
