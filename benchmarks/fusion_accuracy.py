"""Fusion accuracy benchmark: every model on the real datasets and the synthetic world.

Run from the repository root (writes benchmarks/fusion-accuracy.md, .json and .png)::

    .venv/bin/python benchmarks/fusion_accuracy.py

The learned models run at the settings in :data:`MODELS` (sized for a 2-core
CPU; the md says which). The synthetic world is generated into a temporary
folder (160 x 160 px, three clear dates) and deleted afterwards.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pipeline.evaluate.figures import plot_evaluation  # noqa: E402
from pipeline.evaluate.runner import Evaluation, evaluate  # noqa: E402

BASELINES = ("naive_fine", "naive_coarse", "naive_change")
#: Training schedule of the learned models on this shared 2-core CPU (see NOTES).
SCHEDULE: dict[str, Any] = {
    "epochs": 5,
    "steps_per_epoch": 12,
    "batch_size": 8,
    "patch": 32,
    "patience": 2,
}
#: model -> (size, parameter overrides) used in the benchmark.
MODELS: dict[str, tuple[str, dict[str, Any]]] = {
    "naive_fine": ("full", {}),
    "naive_coarse": ("full", {}),
    "naive_change": ("full", {}),
    "starfm": ("full", {"window": int(os.environ.get("STARFM_WINDOW", "31"))}),
    "resstf": ("full", {"width": 32, **SCHEDULE}),
    "edcstfn": ("full", dict(SCHEDULE)),
}
NOTES = """## What it took (tuning log, honest)

1. First version: nets predicted `fine ref + raw MODIS change + learned correction` with
   inverse-time blending; on estarfm-2001 that is `naive_change` (RMSE 0.0082, CC 0.906)
   while `naive_fine` has CC 0.935; short CPU training did not close the CC gap.
2. Analysis (no training): the 30 m-resampled real MODIS change is noisy below the MODIS
   pixel. Averaging it over ~33 px and blending pairs with the ResStf paper's
   NDVI/NDBI-change weights gives RMSE 0.0066 / CC 0.936 on estarfm-2001.
3. Nets now start from `fine ref + box_w(MODIS change)` (zero-initialised last layer) and
   blend streams with those weights; `w` is chosen from {1, 9, 17, 33} by validation loss
   on the training dates only (held-back rows), and early stopping counts the untrained
   net as epoch 0. Training patches carry `halo` px of context outside the loss.
4. Result: ResStf beats every baseline on estarfm-2001 (w = 33 selected). EDCSTFN does
   NOT in this run (its compound-loss training moved it off the start point while the
   validation MSE on the training dates improved), and neither net beats `naive_change`
   on the synthetic world (a smoothing window > 1 was selected there). The goal is
   therefore NOT met for EDCSTFN (estarfm) and for both nets (synthetic); the next steps
   are a validation split on a held-back *date* rather than rows and longer GPU schedules.
5. On lgc-2004 (one pair) the nets can only train on the same-date pair and select w = 1,
   i.e. they equal `naive_change`.
6. The CPU was shared with ~6 other jobs (load average 10-24 on 2 cores): timings are
   inflated; ResStf runs at width 32 (0.15 M params) instead of 64; the `full` presets
   (30 epochs x 40 steps) are meant for a GPU.
"""
COLUMNS = ("rmse", "ssim", "cc", "uiqi", "psnr", "sam_deg", "ergas")


def synthetic_manifest(folder: Path) -> Path | None:
    """Export three clear dates of a small demo world; None when synth is unavailable."""
    try:
        from pipeline.synth import WorldSpec, build_world
        from pipeline.synth.export import export_manifest
    except ImportError:
        return None
    world = build_world(folder / "world", WorldSpec.tiny(width=160, height=160))
    return export_manifest(world, folder / "export", bands=("green", "red", "nir"))


def run_all(manifests: dict[str, Path]) -> dict[str, dict[str, Evaluation]]:
    """Evaluate every model of :data:`MODELS` on every manifest."""
    results: dict[str, dict[str, Evaluation]] = {}
    for dataset, manifest in manifests.items():
        for model, (size, params) in MODELS.items():
            ev = evaluate(manifest, model, size=size, **params)
            results.setdefault(dataset, {})[model] = ev
            o = ev.result["overall"]
            print(f"{dataset:15s} {model:13s} rmse {o['rmse']:.4f} cc {o['cc']:.4f}", flush=True)
    return results


def goal_lines(results: dict[str, dict[str, Evaluation]]) -> list[str]:
    """Does every learned model beat every naive baseline on mean RMSE and mean CC?"""
    lines = []
    for dataset, by_model in results.items():
        best_rmse = min(by_model[b].result["overall"]["rmse"] for b in BASELINES)
        best_cc = max(by_model[b].result["overall"]["cc"] for b in BASELINES)
        for model in ("resstf", "edcstfn"):
            o = by_model[model].result["overall"]
            ok = o["rmse"] < best_rmse and o["cc"] > best_cc
            lines.append(
                f"- {dataset} / {model}: RMSE {o['rmse']:.4f} vs best baseline {best_rmse:.4f}, "
                f"CC {o['cc']:.4f} vs {best_cc:.4f} -> **{'beats' if ok else 'does NOT beat'}**"
            )
    return lines


def table(results: dict[str, dict[str, Evaluation]]) -> list[str]:
    head = "| dataset | model | size | params | " + " | ".join(COLUMNS) + " | train s | predict s |"
    lines = [head, "|" + "---|" * (len(COLUMNS) + 6)]
    for dataset, by_model in results.items():
        for model, ev in by_model.items():
            r = ev.result
            vals = " | ".join(f"{r['overall'][c]:.4f}" for c in COLUMNS)
            lines.append(
                f"| {dataset} | {model} | {r['size']} | {r['params']:,} | {vals} | "
                f"{r['seconds']['train']:.1f} | {r['seconds']['predict']:.1f} |"
            )
    return lines


def figure(results: dict[str, dict[str, Evaluation]], path: Path) -> None:
    """NIR truth / prediction / error for each model on the first dataset, stacked."""
    dataset, by_model = next(iter(results.items()))
    nir = list(next(iter(by_model.values())).bands).index("nir")
    truth = next(iter(by_model.values())).truth[nir]
    preds = np.stack([ev.prediction.fine[nir] for ev in by_model.values()])
    plot_evaluation(
        np.broadcast_to(truth, preds.shape),
        preds,
        tuple(by_model),
        f"{dataset}: NIR per model",
        path,
    )


def main() -> None:
    import torch

    torch.set_num_threads(max(1, os.cpu_count() or 1))
    started = dt.datetime.now()
    manifests = {
        "real/estarfm-2001": ROOT / "manifests/estarfm-2001.yaml",
        "real/lgc-2004": ROOT / "manifests/lgc-2004.yaml",
    }
    with tempfile.TemporaryDirectory() as tmp:
        synth = synthetic_manifest(Path(tmp))
        if synth is not None:
            manifests["synthetic"] = synth
        results = run_all(manifests)
    figure(results, ROOT / "benchmarks/fusion-accuracy.png")
    settings = "\n".join(f"- `{m}`: size `{s}`, overrides `{p}`" for m, (s, p) in MODELS.items())
    md = [
        "# Fusion accuracy",
        "",
        f"Generated by `.venv/bin/python benchmarks/fusion_accuracy.py` on {started:%Y-%m-%d %H:%M}"
        f" ({(dt.datetime.now() - started).total_seconds():.0f} s). Machine: {platform.platform()},"
        f" {os.cpu_count()} CPU cores (shared with other jobs), torch {torch.__version__}, no GPU.",
        "",
        "Each model is trained only on the dates other than the target (self-supervised pairs),"
        " then predicts the target from the nearest pair before and after (one pair on lgc-2004).",
        " Metrics: band means over green/red/nir; conventions in `pipeline/metrics.py`.",
        "",
        "## Settings",
        settings,
        "",
        "## Results (overall = band means; SAM in degrees)",
        *table(results),
        "",
        "## Goal: learned models beat every naive baseline on mean RMSE and mean CC",
        *goal_lines(results),
        "",
        "![NIR per model](fusion-accuracy.png)",
        "",
    ]
    md += [NOTES]
    (ROOT / "benchmarks/fusion-accuracy.md").write_text("\n".join(md))
    rows = {d: {m: ev.result for m, ev in by.items()} for d, by in results.items()}
    (ROOT / "benchmarks/fusion-accuracy.json").write_text(json.dumps(rows, indent=1))
    print("\n".join(goal_lines(results)))


if __name__ == "__main__":
    main()
