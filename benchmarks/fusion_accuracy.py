"""Fusion accuracy benchmark: every model on the real datasets and the synthetic world.

Run from the repository root (writes benchmarks/fusion-accuracy.md, .json and .png)::

    .venv/bin/python benchmarks/fusion_accuracy.py

The learned models run at the settings in :data:`MODELS` (sized for a 2-core
CPU; the md says which). The synthetic world is generated into a temporary
folder (160 x 160 px, season 2024-06-01..08-31, all eleven clear Landsat dates
exported; the middle one, 2024-07-18, is the target) and deleted afterwards.
Eleven dates let the nets validate on a held-back *date* (``val_split="date"``)
and choose the stream blend there (``blend="auto"``); three dates would leave
them two training dates and no held-back date.

Environment: ``STARFM_WINDOW`` (default 15; the paper's 31 costs ~4x more CPU),
``FUSION_THREADS`` (torch threads, default 2). On lgc-2004 (one pair) only the
baselines and STARFM run: a net trained on a single same-date pair cannot learn
a temporal change and stays at its start, ``naive_change`` with smoothing.
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

from pipeline.evaluate import runner  # noqa: E402
from pipeline.evaluate.figures import plot_evaluation  # noqa: E402
from pipeline.evaluate.runner import Evaluation, evaluate  # noqa: E402

#: the model instances evaluate() built, so the md can say what training chose
_BUILT: list[Any] = []
_create = runner.create_model


def _recording_create(*args: Any, **kwargs: Any) -> Any:
    model = _create(*args, **kwargs)
    _BUILT.append(model)
    return model


runner.create_model = _recording_create

BASELINES = ("naive_fine", "naive_coarse", "naive_change")
#: Training schedule of the learned models on this shared 2-core CPU (see NOTES).
SCHEDULE: dict[str, Any] = {
    "epochs": 8,
    "steps_per_epoch": 15,
    "batch_size": 8,
    "patch": 32,
    "patience": 3,
}
#: model -> (size, parameter overrides) used in the benchmark.
MODELS: dict[str, tuple[str, dict[str, Any]]] = {
    "naive_fine": ("full", {}),
    "naive_coarse": ("full", {}),
    "naive_change": ("full", {}),
    "starfm": ("full", {"window": int(os.environ.get("STARFM_WINDOW", "15"))}),
    "resstf": ("full", {"width": 32, **SCHEDULE}),
    "edcstfn": ("full", dict(SCHEDULE)),
}
#: datasets on which only these models run (see the module docstring).
ONLY: dict[str, tuple[str, ...]] = {"real/lgc-2004": (*BASELINES, "starfm")}
NOTES = """## What it took (tuning log, honest)

1. First version: nets predicted `fine ref + raw MODIS change + learned correction` with
   inverse-time blending; on estarfm-2001 that is `naive_change` (RMSE 0.0082, CC 0.906)
   while `naive_fine` has CC 0.935; short CPU training did not close the CC gap.
2. Analysis (no training): the 30 m-resampled real MODIS change is noisy below the MODIS
   pixel. Averaging it over 33 px and blending the two pairs with the ResStf paper's
   NDVI/NDBI-change weights gives RMSE 0.0066 / CC 0.9359 on estarfm-2001 (inverse-time
   blending of the same streams: 0.0070 / 0.928, below `naive_fine`'s CC 0.9353).
3. Nets start from `fine ref + box_w(MODIS change)` (zero-initialised last layer, so the
   untrained net *is* that start) and early stopping counts the start as epoch 0.
4. Previous run (5 epochs x 12 steps, held-back *rows* of the training dates, three-date
   synthetic export): ResStf beat every baseline on estarfm-2001, EDCSTFN did not
   (0.0083 / 0.908), and neither beat `naive_change` on the synthetic world
   (ResStf 0.0103 / 0.963 vs 0.0093 / 0.968).
5. Diagnosis, EDCSTFN on estarfm-2001: with two training dates the only training tasks are
   0524 -> 0812 and back. Validation on held-back rows of those dates fell from 23.1e-5 to
   16.9e-5 in 8 epochs (lr 1e-4) while the RMSE on 2001-07-11 rose from 0.0066 (start) to
   0.0107: the net learns the 0524/0812 change, and rows of the same dates cannot detect
   that. Fix: `val_split="date"` validates on a held-back *date* (the interior pair
   nearest the middle, leave-one-date-out like the real target); with fewer than three
   training dates there is no such date and `date_fallback="start"` (the `full` preset)
   keeps the start (window still chosen on the rows) instead of training blind. So on
   estarfm-2001 both nets ARE their physically motivated start, not a trained
   correction, and the two rows are identical. `date_fallback="rows"` restores the old
   behaviour. The smoothing window chosen there was 33, the largest candidate, so the
   grid was extended to {1, 9, 17, 33, 65}; the rows of the training dates prefer 65
   (MSE 2.37e-4 vs 2.50e-4 at 33; 97 scored 2.42e-4 and was left out for its halo cost),
   which lifts CC from 0.9359 (33) to about 0.943, a clearer margin over `naive_fine`'s
   0.9353. (The test date's numbers for 49/65/97 were looked at too; the choice itself is
   made by the training-date rows only.)
6. Diagnosis, synthetic: (a) the three-date export left two training dates, 16 days apart
   around the target, so nothing could be validated on a date; (b) the NDVI/NDBI-change
   blend that helps on real MODIS *hurts* there (start 0.0100 vs 0.0093 with equal
   weights; both references are 8 days from the target, and averaging two independently
   noisy Landsat references is what wins). Fix: the synthetic world now spans
   2024-06-01..08-31 and exports all eleven clear Landsat dates (target 07-18, the
   middle); the nets train on nine, validate on one held-back date, choose the smoothing
   window there, and choose the blend (`blend="auto"`: index-change or inverse-time)
   by fusing that held-back date from its neighbours with both (on this world `index`
   won at the held-back date).
7. What training itself adds, measured on the synthetic held-back date (MSE x 1e5, epoch 0
   = start). Final run (above): ResStf 5.487 -> 5.448 (-0.7 %, epoch 3 kept), EDCSTFN
   rose to 6.3-9.4 and kept its start; the window chosen there was 1 (9 in the
   preliminary runs, whose window grid ended at 33 and so had other validation
   patches). Preliminary runs: ResStf 6.018 -> best 6.016 at lr 2e-4 (8 x 15 steps)
   and no improvement at
   lr 1e-3 (20 x 30 steps); EDCSTFN with the paper's compound loss (MSE + feature +
   0.8 (1 - MS-SSIM)) went 6.0 -> 10-15 at lr 5e-4 and at lr 1e-4 (20 x 30 steps) and
   early stopping kept the start. So on this CPU budget the learned correction (MODIS
   gain, within-pixel distribution of change) adds little or nothing: the goal is met
   by the nets' start points (smoothed change with validation-chosen window and blend),
   which the nets keep because validation on an unseen date says training did not help.
   A likely reason is that most of the start's error on an 8-day gap is Landsat noise in
   the reference and the target, which no change model removes (not verified). An
   MSE-only EDCSTFN run was started and stopped unfinished for time. Longer GPU schedules
   are the next step.
8. Schedule: 8 epochs x 15 steps x 8 patches of 32 px (+ halo), patience 3, on 2 threads;
   ResStf at width 32 (0.15 M params) instead of 64. The `full` presets (30 x 40) are
   meant for a GPU. STARFM runs at a 15 px window (`STARFM_WINDOW`; the paper's 31 px
   took ~7 min on the loaded machine); on lgc-2004 (one pair) only the baselines and
   STARFM run. Other models: see [model-zoo.md](model-zoo.md).
"""
COLUMNS = ("rmse", "ssim", "cc", "uiqi", "psnr", "sam_deg", "ergas")


def synthetic_manifest(folder: Path) -> Path | None:
    """Export three clear dates of a small demo world; None when synth is unavailable."""
    try:
        from pipeline.synth import WorldSpec, build_world
        from pipeline.synth.export import export_manifest
    except ImportError:
        return None
    spec = WorldSpec.tiny(width=160, height=160, end=dt.date(2024, 8, 31))
    world = build_world(folder / "world", spec)
    dates = world.landsat_dates()
    return export_manifest(world, folder / "export", dates=dates, bands=("green", "red", "nir"))


def run_all(manifests: dict[str, Path]) -> dict[str, dict[str, Evaluation]]:
    """Evaluate every model of :data:`MODELS` on every manifest."""
    results: dict[str, dict[str, Evaluation]] = {}
    for dataset, manifest in manifests.items():
        for model, (size, params) in MODELS.items():
            if dataset in ONLY and model not in ONLY[dataset]:
                continue
            ev = evaluate(manifest, model, size=size, **params)
            built = _BUILT[-1]
            report = getattr(built, "report", None)
            if report is not None and report.history:
                ev.result["training"] = {
                    "change_window": built.params.get("change_window"),
                    "blend": built.params.get("blend"),
                    "val_split": built.params.get("val_split"),
                    "epochs_run": report.epochs,
                    "val_loss": [h["val_loss"] for h in report.history],
                }
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
            if model not in by_model:
                continue
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


def training_lines(results: dict[str, dict[str, Evaluation]]) -> list[str]:
    """What each learned model chose and how its validation loss moved (epoch 0 = start)."""
    lines = []
    for dataset, by_model in results.items():
        for model, ev in by_model.items():
            t = ev.result.get("training")
            if not t:
                continue
            vals = ", ".join(f"{v * 1e5:.3f}" for v in t["val_loss"])
            best = int(np.argmin(t["val_loss"]))
            lines.append(
                f"- {dataset} / {model}: validation on held-back "
                f"{'date' if t['val_split'] == 'date' and dataset == 'synthetic' else 'rows'}; "
                f"change_window {t['change_window']}, blend `{t['blend']}`; val MSE x1e5 by "
                f"epoch [{vals}] -> weights of epoch {best} kept"
            )
    return lines


def zoo_lines(rows: dict[str, dict[str, dict[str, Any]]]) -> list[str]:
    """Every model on one page: ``rows`` (this benchmark's results) and the model zoo's.

    The zoo (``benchmarks/model_zoo.py``: ESTARFM, Fit-FC, GAN-STFM, SwinSTFM, STFDiff)
    writes ``model-zoo.json`` and the reliability PNGs; its rows join the table per
    dataset, sorted by RMSE. Its synthetic world (160 px, three dates) is not this
    benchmark's (eleven dates), so those rows stay a separate group. Empty if no zoo json.
    """
    path = ROOT / "benchmarks/model-zoo.json"
    if not path.exists():
        return []
    zoo = [r for r in json.loads(path.read_text())["rows"] if "skipped" not in r]
    groups: dict[str, list[tuple[str, dict[str, Any]]]] = {}
    for dataset, by_model in rows.items():
        name = dataset.removeprefix("real/")
        name = "synthetic (11 dates)" if name == "synthetic" else name
        groups.setdefault(name, []).extend(("accuracy", r) for r in by_model.values())
    for r in zoo:
        name = "synthetic (zoo: 3 dates)" if r["dataset"] == "synthetic" else r["dataset"]
        if all(r["model"] != other["model"] for _, other in groups.get(name, [])):
            groups.setdefault(name, []).append(("zoo", r))
    head = "| dataset | model | from | size | params | " + " | ".join(COLUMNS)
    head += " | train s | predict s | Spearman(sigma, abs err) |"
    lines = [
        "## Every model, with the model zoo",
        "",
        "Rows of this benchmark (`accuracy`) and of [model-zoo.md](model-zoo.md) (`zoo`,"
        " classic models at `small` windows, networks at `small` width trained 3 x 10 steps;"
        " settings and the per-family explanation of the ranking there), per dataset by RMSE."
        " No GPU was available: the papers' GPU training schedules were not run.",
        "",
        head,
        "|" + "---|" * (len(COLUMNS) + 8),
    ]
    for name, members in groups.items():
        for source, r in sorted(members, key=lambda m: m[1]["overall"]["rmse"]):
            vals = " | ".join(f"{r['overall'][c]:.4f}" for c in COLUMNS)
            rho = r.get("calibration", {}).get("spearman")
            lines.append(
                f"| {name} | {r['model']} | {source} | {r['size']} | {r['params']:,} | {vals} | "
                f"{r['seconds']['train']:.1f} | {r['seconds']['predict']:.1f} | "
                f"{'' if rho is None else f'{rho:.3f}'} |"
            )
    figures = sorted((ROOT / "benchmarks").glob("model-zoo-*-reliability.png"))
    lines += [
        "",
        "Calibration of the predicted 1-sigma (the `uncertainty` variable): observed RMS error"
        " per bin of predicted sigma, every model that returns one; on the diagonal = sigma"
        " is on the right scale. Spearman above ranks sigma against the absolute error.",
        "",
        *(f"![{png.stem}]({png.name})" for png in figures),
        "",
    ]
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

    torch.set_num_threads(int(os.environ.get("FUSION_THREADS", "2")))
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
        "## What training chose",
        *training_lines(results),
        "",
        "## Goal: learned models beat every naive baseline on mean RMSE and mean CC",
        *goal_lines(results),
        "",
        "![NIR per model](fusion-accuracy.png)",
        "",
    ]
    rows = {d: {m: ev.result for m, ev in by.items()} for d, by in results.items()}
    md += [*zoo_lines(rows), NOTES]
    (ROOT / "benchmarks/fusion-accuracy.md").write_text("\n".join(md))
    (ROOT / "benchmarks/fusion-accuracy.json").write_text(json.dumps(rows, indent=1))
    print("\n".join(goal_lines(results)))


if __name__ == "__main__":
    main()
