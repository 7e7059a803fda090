"""Crop-map accuracy: fused dense series vs Landsat-only sparse series, and a real-data check.

Usage::

    .venv/bin/python benchmarks/cropmap_accuracy.py --store demo-out/fusion.zarr \
        --labels demo-world/truth/fields.parquet --out benchmarks/cropmap-accuracy

1. On a fused store (layout of docs/CONTRACTS.md) with field labels: the same classifier
   on features of (a) the dense fused daily series (quality-weighted Whittaker) and
   (b) the Landsat-only series (clear observations only, ``quality`` bit 1, gap-filled
   by the same smoother). Same pixels, same field-separated split, same seed.
2. Real data (``tests/data/real/lgc-2004``): two Landsat TM dates with the
   4-class SVM map as labels, split by 32 x 32 px spatial blocks.

Writes ``<out>/results.json`` and confusion-matrix PNGs; prints Markdown tables.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from pipeline.products.cropmap import Samples, sample_pixels, train_and_assess
from pipeline.products.features import feature_stack, layout_of, smoothed_series, two_date_stack
from pipeline.products.labels import LabelGrid, block_groups, load_labels
from pipeline.products.source import open_fused

LGC = Path(__file__).resolve().parents[1] / "tests" / "data" / "real" / "lgc-2004"


def _same_pixels(features: xr.DataArray, like: Samples) -> Samples:
    """Feature rows of ``features`` at the pixels of ``like`` (NaN rows kept: HGB/RF/TCN cope)."""
    pts = features.isel(y=xr.DataArray(like.rows, dims="s"), x=xr.DataArray(like.cols, dims="s"))
    x = np.asarray(pts.transpose("s", "feature").values, np.float32)
    return Samples(x, like.y, like.groups, like.rows, like.cols)


def store_experiment(
    store: Path, labels_path: Path, classifiers: list[str], out: Path, prefix: str = "store"
) -> list[dict]:
    """Dense fused vs Landsat-only features on one store; one row per (series, classifier)."""
    ds = open_fused(store)
    labels = load_labels(labels_path, ds["red"].isel(time=0, drop=True))
    rows, base = [], None
    for series, observed_only in (("fused dense", False), ("Landsat only", True)):
        t0 = time.perf_counter()
        feats = feature_stack(smoothed_series(ds, observed_only=observed_only)).compute()
        t_feat = time.perf_counter() - t0
        base = base or sample_pixels(feats, labels)
        samples = _same_pixels(feats, base)
        for clf in classifiers:
            t0 = time.perf_counter()
            _, rep = train_and_assess(samples, clf, layout_of(feats), labels.class_names)
            stem = f"{prefix}-{series.split()[0].lower()}-{clf}"
            rep.save(out, stem)
            rows.append(_row("store", series, clf, rep, t_feat, time.perf_counter() - t0, stem))
            rows[-1]["crop_kappa"] = _crop_only_kappa(out / f"{stem}.json", labels)
    return rows


def landsat_only_dataset(world_root: Path) -> xr.Dataset:
    """The Landsat-only daily series of a demo world, shaped like a fused store.

    Every clear Landsat-like pixel (QA_PIXEL) on its acquisition day, NaN elsewhere;
    ``quality`` 1 (observed) there, 8 (gap) elsewhere. Read from the world's COGs exactly
    as the STAC items describe them, so it is the series a user gets without fusion.
    """
    import rioxarray  # noqa: F401  (registers .rio)

    from pipeline import sensors as s
    from pipeline.products.features import FEATURE_BANDS
    from pipeline.synth import open_world
    from pipeline.synth.measure import items, read
    from pipeline.synth.world import LANDSAT_COLLECTION

    world = open_world(world_root)
    days = np.array(world.spec.days(), dtype="datetime64[ns]")
    shape = (len(days), world.spec.height, world.spec.width)
    keys = {"green": "green", "red": "red", "nir": "nir08", "swir1": "swir16"}
    bands = {b: np.full(shape, np.nan, np.float32) for b in FEATURE_BANDS}
    quality = np.full(shape, 8, np.uint8)
    for item in items(world, LANDSAT_COLLECTION):
        t = int(np.searchsorted(days, np.datetime64(item["properties"]["datetime"][:10], "ns")))
        clear = ~s.LANDSAT_C2_L2.invalid_from_qa(read(item, "qa_pixel"))
        quality[t][clear] = 1
        for b in FEATURE_BANDS:
            refl = s.LANDSAT_C2_L2.to_reflectance(read(item, keys[b])).astype(np.float32)
            bands[b][t] = np.where(clear, refl, np.nan)
    t = world.grid.transform
    coords = {
        "time": days,
        "y": t.f + t.e * (np.arange(shape[1]) + 0.5),
        "x": t.c + t.a * (np.arange(shape[2]) + 0.5),
    }
    dims = ("time", "y", "x")
    data = {b: (dims, v) for b, v in bands.items()} | {"quality": (dims, quality)}
    return xr.Dataset(data, coords=coords).rio.write_crs(world.grid.crs.to_wkt())


def world_experiment(
    world_root: Path, classifiers: list[str], out: Path, per_field: int = 40
) -> list[dict]:
    """Landsat-only season on a demo world (no fusion): how separable its crops are.

    Features (same path as the store experiment's Landsat-only arm) are computed only at
    the sampled pixels (``per_field`` per field), which keeps a season of a 256 px world
    within minutes on two shared cores.
    """
    ds = landsat_only_dataset(world_root)
    labels = load_labels(world_root / "truth" / "fields.parquet", ds["red"].isel(time=0))
    ones = xr.DataArray(np.ones((1, *labels.classes.shape), np.float32), dims=("feature", "y", "x"))
    picked = sample_pixels(ones, labels, max_per_group=per_field)
    rows = xr.DataArray(picked.rows, dims="s")
    cols = xr.DataArray(picked.cols, dims="s")
    line = ds.isel(y=rows, x=cols).drop_vars(["y", "x"]).rename(s="x").expand_dims("y", axis=1)
    t0 = time.perf_counter()
    feats = feature_stack(smoothed_series(line, observed_only=True)).compute()
    t_feat = time.perf_counter() - t0
    x = np.asarray(feats.isel(y=0).transpose("x", "feature").values, np.float32)
    samples = Samples(x, picked.y, picked.groups, picked.rows, picked.cols)
    results = []
    for clf in classifiers:
        t0 = time.perf_counter()
        _, rep = train_and_assess(samples, clf, layout_of(feats), labels.class_names)
        stem = f"world-{world_root.name}-landsat-{clf}"
        rep.save(out, stem)
        label = f"world {world_root.name}"
        results.append(
            _row(label, "Landsat only", clf, rep, t_feat, time.perf_counter() - t0, stem)
        )
        results[-1]["crop_kappa"] = _crop_only_kappa(out / f"{stem}.json", labels)
    return results


#: The three cloud regimes of the comparison: world ``cloudiness`` (mean daily cloud fraction).
REGIMES: dict[str, float] = {"clearer": 0.2, "calibrated": 0.4, "cloudier": 0.6}
#: The full season of the comparison (the worlds are built 2024-04-01..10-31).
SEASON = ("2024-04-15", "2024-10-15")


def season_config(world: Any, out: Path, model: str = "starfm") -> Any:
    """A 6-band, full-season run over the whole of ``world`` (its grid, bbox inset by ~100 m)."""
    from pipeline.config import BANDS, parse_config

    w, s, e, n = world.bbox
    params = {"window": 5} if model == "starfm" else {}
    return parse_config(
        {
            "region": {"name": "regime", "bbox": [w + 1e-3, s + 1e-3, e - 1e-3, n - 1e-3]},
            "time": {"start": SEASON[0], "end": SEASON[1], "search_margin_days": 24},
            "bands": list(BANDS),
            "stac": {"url": "demo"},
            "model": {"name": model, "size": "tiny", "params": params},
            "compute": {"n_workers": 2, "threads_per_worker": 1, "batch_days": 8},
            "chunks": {"y": 128, "x": 128, "time": 366},
            "output_root": str(out),
            "store": {"path": "fusion.zarr"},
        }
    )


def fuse_season(world_root: Path, out: Path, model: str = "starfm") -> tuple[Path, float]:
    """Build nothing, fuse the season of the world at ``world_root``; (store path, seconds)."""
    import os

    from pipeline.demo import DEMO_WORLD_ENV
    from pipeline.run import run
    from pipeline.synth import open_world

    os.environ[DEMO_WORLD_ENV] = str(world_root)  # the ``demo`` endpoint serves this world
    cfg = season_config(open_world(world_root), out, model)
    t0 = time.perf_counter()
    summary = run(cfg, progress=False, log=lambda m: print(f"  [{world_root.name}] {m}"))
    return Path(summary.store), time.perf_counter() - t0


def regime_experiment(
    work: Path, size: int, classifiers: list[str], out: Path, model: str = "starfm"
) -> list[dict]:
    """Fused seamless vs Landsat-only season on the clearer, calibrated and cloudier worlds.

    Each world (``size`` px, seed 42, cloudiness of :data:`REGIMES`) is built under
    ``work`` (reused when complete), its season fused by ``stf run``'s chain, and both
    series classified by :func:`store_experiment` (same pixels, field split, classifier).
    """
    from pipeline.demo import build_demo_world

    rows = []
    for name, cloudiness in REGIMES.items():
        root = work / f"world-{name}"
        changes = {"width": size, "height": size, "cloudiness": cloudiness}
        t0 = time.perf_counter()
        build_demo_world(root, changes=changes)
        t_world = time.perf_counter() - t0
        store, t_fuse = fuse_season(root, work / f"run-{name}", model)
        labels = root / "truth" / "fields.parquet"
        found = store_experiment(store, labels, classifiers, out, prefix=name)
        extra = {"regime": name, "cloudiness": cloudiness, "flags": flag_shares(store)}
        extra |= {"world_s": round(t_world, 1), "fuse_s": round(t_fuse, 1), "size_px": size}
        rows += [r | extra | {"data": f"{name} (cloudiness {cloudiness})"} for r in found]
    return rows


def regimes_markdown(rows: list[dict], command: str, started: str, load: str) -> str:
    """The three-regime section: command, machine, load, date; kappa/OA/F1; flag shares."""
    import platform

    lines = [
        "## Three cloud regimes, full season: fused seamless vs Landsat-only",
        "",
        f"Command: `{command}`  ",
        f"Machine: {platform.node()} ({os.cpu_count()} CPUs, shared); started {started} UTC; "
        f"load average at start / end: {load} / {_load()}",
        "",
        "| regime | series | classifier | OA | kappa | crop-only kappa | test px | fuse s |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        ck = f"{r['crop_kappa']:.3f}" if r.get("crop_kappa") is not None else "-"
        lines.append(
            f"| {r['data']} | {r['series']} | {r['classifier']} | {r['oa']:.3f} | "
            f"{r['kappa']:.3f} | {ck} | {r['n_test']} | {r.get('fuse_s', '-')} |"
        )
    lines += ["", "Per-class F1:", ""]
    for r in rows:
        f1 = ", ".join(f"{k} {v:.3f}" for k, v in r["f1"].items())
        lines.append(f"- {r['regime']} / {r['series']} / {r['classifier']}: {f1}")
    lines += ["", "In-coverage pixel-days per flag (observed / fused / filled / gap):", ""]
    for r in {r["regime"]: r for r in rows}.values():
        f = r["flags"]
        lines.append(
            f"- {r['regime']}: {f['observed']:.3f} / {f['fused']:.3f} / {f['filled']:.3f} / "
            f"{f['gap']:.3f}"
        )
    return "\n".join(lines) + "\n"


def _load() -> str:
    return ", ".join(f"{v:.1f}" for v in os.getloadavg())


def flag_shares(store: Path) -> dict[str, float]:
    """Shares of the in-coverage pixel-days observed / fused / filled / gap in a store."""
    q = open_fused(store)["quality"].values
    inside = (q & 16) == 0
    n = max(int(inside.sum()), 1)
    return {k: float(((q & bit) > 0)[inside].sum() / n) for k, bit in FLAG_BITS.items()}


#: Quality bits reported per regime (docs/CONTRACTS.md).
FLAG_BITS = {"observed": 1, "fused": 2, "filled": 32, "gap": 8}


def _crop_only_kappa(report_json: Path, labels: LabelGrid) -> float | None:
    """Kappa over the crop classes only (rows/cols of non-crop classes dropped)."""
    crops = {"maize", "wheat", "rice", "soybean", "alfalfa"}
    rep = json.loads(report_json.read_text())
    keep = [i for i, c in enumerate(rep["classes"]) if c in crops]
    if len(keep) < 2:
        return None
    cm = np.asarray(rep["confusion"])[np.ix_(keep, keep)].astype(float)
    n = cm.sum()
    po, pe = np.trace(cm) / n, (cm.sum(0) @ cm.sum(1)) / n**2
    return float((po - pe) / (1 - pe))


def lgc_experiment(classifiers: list[str], out: Path) -> list[dict]:
    """Real Landsat TM (2 dates, green/red/nir) vs the SVM 4-class map, spatial-block split."""
    import rasterio

    def read(name: str) -> np.ndarray:
        with rasterio.open(LGC / name) as src:
            return src.read().astype(np.float32)

    bands = np.stack([read("Landsat20041126"), read("Landsat20041228")]) / 1e4  # int16 x 1e4
    svm = read("Landsat20041126_SVM_classification")[0].astype(np.int16)
    names = {1: "region1", 2: "region2", 3: "region3", 4: "region4"}
    labels = LabelGrid(svm, block_groups(svm.shape, 32), names)
    rows = []
    for series, dates in (("2 dates", [0, 1]), ("1 date (11-26)", [0])):
        stack, layout = two_date_stack(bands[dates], ["green", "red", "nir"])
        feats = xr.DataArray(stack, dims=("feature", "y", "x"))
        samples = sample_pixels(feats, labels, max_per_group=150)
        for clf in classifiers:
            t0 = time.perf_counter()
            _, rep = train_and_assess(samples, clf, layout, names)
            stem = f"lgc-{len(dates)}date-{clf}"
            rep.save(out, stem)
            rows.append(
                _row("lgc-2004 (real)", series, clf, rep, 0.0, time.perf_counter() - t0, stem)
            )
    return rows


def _row(data: str, series: str, clf: str, rep, t_feat: float, t_fit: float, stem: str) -> dict:
    return {
        "data": data, "series": series, "classifier": clf, "oa": rep.overall_accuracy,
        "kappa": rep.kappa, "n_test": rep.n, "f1": rep.f1, "features_s": round(t_feat, 1),
        "fit_s": round(t_fit, 1), "report": stem,
    }  # fmt: skip


def to_markdown(rows: list[dict]) -> str:
    """One table row per experiment."""
    cols = ["data", "series", "classifier", "OA", "kappa", "crop-only kappa", "test px"]
    head = "| " + " | ".join([*cols, "features s", "fit s"]) + " |"
    lines = [head, "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        ck = f"{r['crop_kappa']:.3f}" if r.get("crop_kappa") is not None else "-"
        lines.append(
            f"| {r['data']} | {r['series']} | {r['classifier']} | {r['oa']:.3f} | {r['kappa']:.3f} "
            f"| {ck} | {r['n_test']} | {r['features_s']} | {r['fit_s']} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", type=Path, help="fused store (e.g. demo-out/fusion.zarr)")
    parser.add_argument("--labels", type=Path, help="field polygons of the store's world")
    parser.add_argument(
        "--world",
        type=Path,
        action="append",
        default=[],
        help="demo world root: Landsat-only season classified without fusion (repeatable)",
    )
    parser.add_argument("--classifiers", nargs="+", default=["hgb", "rf", "tcn"])
    parser.add_argument("--out", type=Path, default=Path("benchmarks/cropmap-accuracy"))
    parser.add_argument("--skip-lgc", action="store_true")
    parser.add_argument(
        "--regimes",
        type=Path,
        metavar="WORKDIR",
        help="build the clearer/calibrated/cloudier worlds under WORKDIR, fuse a full season "
        "of each and compare fused vs Landsat-only (the three-regime comparison)",
    )
    parser.add_argument("--size", type=int, default=256, help="world size (px) for --regimes")
    parser.add_argument("--model", default="starfm", help="fusion model for --regimes")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    rows: list[dict] = []
    if args.store is not None:
        rows += store_experiment(args.store, args.labels, args.classifiers, args.out)
    if args.regimes is not None:
        started, load = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M"), _load()
        found = regime_experiment(args.regimes, args.size, args.classifiers, args.out, args.model)
        command = "python -m benchmarks.cropmap_accuracy " + " ".join(sys.argv[1:])
        text = regimes_markdown(found, command, started, load)
        (args.out / "regimes.md").write_text(text)
        rows += found
    for world_root in args.world:
        rows += world_experiment(world_root, args.classifiers, args.out)
    if not args.skip_lgc:
        rows += lgc_experiment(args.classifiers, args.out)
    (args.out / "results.json").write_text(json.dumps(rows, indent=2))
    print(to_markdown(rows))


if __name__ == "__main__":
    main()
