"""Model-zoo benchmark: GAN-STFM, SwinSTFM and STFDiff against the best naive baseline.

One command regenerates ``benchmarks/model-zoo.md`` (+ ``.json``, ``.png`` and the
reliability PNGs)::

    .venv/bin/python benchmarks/model_zoo.py [--steps 30] [--jobs 3] [--datasets a,b]
    .venv/bin/python benchmarks/model_zoo.py --render      # re-render the md from the json
                                                           # (or from the rows of a killed run)

Every model is scored with :func:`pipeline.evaluate.runner.evaluate` on the
manifest's ``predict`` date (trained on the other dates, references by the shared
pair rule, co-registration ``auto``) at its ``small`` preset with a *step budget*
(``budget_steps``; no wall-clock budget), so the figures do not depend on the
machine's load. Each row: family, the untrained start (each network's zero head
returns its physical base), the trained score, the gain over the start, the best
naive baseline (``smoothed_change_blend`` and friends, window chosen on the
training dates) and the gain over it, steps taken, the loss-term shares, and the
Spearman rank correlation of the predicted sigma with |error|.

Datasets: estarfm-2001 and lgc-2004 (``tests/data/real``) and the synthetic season
of :func:`benchmarks.fusion_accuracy.synthetic_manifest` (160 x 160 px, eleven
clear dates, target 07-18), generated into a temporary folder. One process per
dataset (``--jobs``), one torch thread each.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import sys
import tempfile
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pipeline.errors import StfError  # noqa: E402

OUT = ROOT / "benchmarks"
#: model -> (size, family), cheapest first.
MODELS: dict[str, tuple[str, str]] = {
    "swinstfm": ("small", "Transformer"),
    "ganstfm": ("small", "GAN"),
    "stfdiff": ("small", "diffusion"),
}
#: Benchmark overrides of the small presets, sized for a shared 2-core CPU (stated in the md).
OVERRIDES: dict[str, dict[str, Any]] = {
    "swinstfm": {"patch": 48, "tta": 2},
    "ganstfm": {"patch": 48, "tta": 2, "ae_steps": 40},
    "stfdiff": {"patch": 48, "samples": 3},
}
#: Rows of a run in progress, one JSON line each (survives a killed run; see --render).
PARTS = OUT / "model-zoo.parts.jsonl"
REAL = {"estarfm-2001": ROOT / "manifests/estarfm-2001.yaml",
        "lgc-2004": ROOT / "manifests/lgc-2004.yaml"}  # fmt: skip
COMMAND = ".venv/bin/python benchmarks/model_zoo.py"


def _load() -> str:
    return "load average " + ", ".join(f"{v:.1f}" for v in os.getloadavg())


def _one(manifest: Path, name: str, steps: int) -> dict[str, Any]:
    """Evaluate one model on one manifest; a model that cannot run is a 'skipped' row."""
    from pipeline.evaluate.calibration import calibrate
    from pipeline.evaluate.runner import evaluate

    size, family = MODELS[name]
    try:
        ev = evaluate(manifest, name, size=size, budget_steps=steps, budget_s=None,
                      **OVERRIDES[name])  # fmt: skip
    except StfError as exc:
        return {"model": name, "family": family, "skipped": str(exc).splitlines()[0]}
    except Exception as exc:  # one broken model must not lose the other rows
        return {"model": name, "family": family, "skipped": f"failed: {exc!r}"[:300]}
    r, training = ev.result, ev.result.get("training", {})
    row = {
        "dataset": r["dataset"], "model": name, "family": family, "size": size,
        "rmse": r["overall"]["rmse"], "cc": r["overall"]["cc"], "ssim": r["overall"]["ssim"],
        "start_rmse": training.get("start", {}).get("rmse"),
        "gain_over_start": training.get("gain_over_start"),
        "best_baseline": r["best_baseline"], "baselines": r["baselines"],
        "gain_over_best_baseline": r["gain_over_best_baseline"],
        "steps": training.get("steps"), "task": training.get("task"),
        "validation": training.get("validation"),
        "held_back_rmse": [training.get("start_val_rmse"), training.get("end_val_rmse")],
        "notes": {k: v for k, v in training.items() if k.startswith(("loss_share", "autoenc"))},
        "seconds": r["seconds"], "params": r["params"],
        "overall": r["overall"],  # every metric
    }  # fmt: skip
    sigma = ev.prediction.uncertainty
    if sigma is not None:
        row["calibration"] = calibrate(ev.prediction.fine, sigma, ev.truth).to_dict()
    return row


def _dataset_rows(
    dataset: str, manifest: Path, names: list[str], steps: int
) -> list[dict[str, Any]]:
    """Every model on one dataset (one worker process, one torch thread)."""
    import torch

    torch.set_num_threads(1)
    rows = []
    for name in names:
        print(f"{dataset}: {name} ({_load()})", flush=True)
        rows.append({**_one(manifest, name, steps), "dataset": dataset})
        with PARTS.open("a") as parts:  # one short line per write: whole lines on append
            parts.write(json.dumps(rows[-1], default=str) + "\n")
    return rows


def run(args: argparse.Namespace) -> dict[str, Any]:
    """All models on all datasets; returns the json document."""
    import torch

    from benchmarks.fusion_accuracy import synthetic_manifest

    names = list(MODELS)
    results: dict[str, Any] = {
        "command": " ".join([COMMAND, *sys.argv[1:]]),
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": f"{platform.node()} {platform.machine()}, {os.cpu_count()} cores shared "
        f"with other jobs, torch {torch.__version__}, CPU only (no GPU lent to this task)",
        "load_start": _load(), "steps": args.steps, "rows": [],
    }  # fmt: skip
    PARTS.unlink(missing_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        manifests = dict(REAL)
        synth = synthetic_manifest(Path(tmp))
        if synth is not None:
            manifests["synthetic-season"] = synth
        chosen = [d for d in manifests if not args.datasets or d in args.datasets.split(",")]
        with ProcessPoolExecutor(max_workers=args.jobs) as pool:
            futures = [
                pool.submit(_dataset_rows, d, manifests[d], names, args.steps) for d in chosen
            ]
            for future in futures:
                results["rows"] += future.result()
    results["load_end"] = _load()
    PARTS.unlink(missing_ok=True)
    return results


def from_parts() -> dict[str, Any]:
    """The json document of a killed run from its :data:`PARTS` (header from the last json)."""
    old = json.loads((OUT / "model-zoo.json").read_text())
    rows = [json.loads(line) for line in PARTS.read_text().splitlines() if line.strip()]
    note = " (run stopped before every row finished; rows so far)"
    return {**old, "rows": rows, "load_end": _load() + note}


def _f(value: float | None, fmt: str = ".4f") -> str:
    return "-" if value is None or not np.isfinite(value) else format(value, fmt)


def table_lines(rows: list[dict[str, Any]]) -> list[str]:
    """The main table: one line per (dataset, model)."""
    head = ("| dataset | model | family | start RMSE | trained RMSE | gain over start | "
            "best naive (RMSE) | gain over best naive | CC | steps | task | "
            "Spearman(sigma, abs err) | train s | predict s |")  # fmt: skip
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for r in rows:
        if "skipped" in r:
            continue
        best = r["best_baseline"]
        rho = r.get("calibration", {}).get("spearman")
        lines.append(
            f"| {r['dataset']} | {r['model']} | {r['family']} | {_f(r['start_rmse'])} | "
            f"**{_f(r['rmse'])}** | {_f(r['gain_over_start'], '+.1%')} | {best['model']} "
            f"({_f(best['rmse'])}) | {_f(r['gain_over_best_baseline'], '+.1%')} | "
            f"{_f(r['cc'], '.3f')} | {r['steps']} | {r['task']} | {_f(rho, '.3f')} | "
            f"{r['seconds']['train']:.0f} | {r['seconds']['predict']:.0f} |"
        )
    return lines


def shares_lines(rows: list[dict[str, Any]]) -> list[str]:
    """Loss-term shares at the first and last epoch (GAN-STFM, SwinSTFM)."""
    lines = ["| dataset | model | shares at start | shares at end | autoencoder MSE |",
             "|---|---|---|---|---|"]  # fmt: skip
    for r in rows:
        notes = r.get("notes", {})
        if "loss_share_start" not in notes:
            continue

        def fmt(d: dict[str, float]) -> str:
            return ", ".join(f"{k} {v:.0%}" for k, v in d.items())

        lines.append(
            f"| {r['dataset']} | {r['model']} | {fmt(notes['loss_share_start'])} | "
            f"{fmt(notes['loss_share_end'])} | {_f(notes.get('autoencoder_mse'), '.3f')} |"
        )
    return lines


def figure(rows: list[dict[str, Any]], path: Path) -> None:
    """RMSE per dataset: best naive baseline, each model's start and trained score."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    scored = [r for r in rows if "skipped" not in r]
    datasets = list(dict.fromkeys(r["dataset"] for r in scored))
    fig, axes = plt.subplots(1, len(datasets), figsize=(4.2 * len(datasets), 3.6), squeeze=False)
    for ax, dataset in zip(axes[0], datasets, strict=True):
        here = [r for r in scored if r["dataset"] == dataset]
        x = np.arange(len(here))
        ax.bar(x - 0.2, [r["start_rmse"] or np.nan for r in here], 0.4, label="start")
        ax.bar(x + 0.2, [r["rmse"] for r in here], 0.4, label="trained")
        ax.axhline(here[0]["best_baseline"]["rmse"], color="k", ls="--",
                   label=f"best naive ({here[0]['best_baseline']['model']})")  # fmt: skip
        ax.set_xticks(x, [r["model"] for r in here])
        ax.set_title(dataset)
        ax.set_ylabel("RMSE (reflectance)")
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def render(results: dict[str, Any]) -> str:
    """The markdown page."""
    from pipeline.evaluate.calibration import Calibration, plot_reliability

    rows = results["rows"]
    figure(rows, OUT / "model-zoo.png")
    pngs = []
    for dataset in dict.fromkeys(r["dataset"] for r in rows if "calibration" in r):
        curves = {r["model"]: Calibration(**r["calibration"]) for r in rows
                  if r.get("dataset") == dataset and "calibration" in r}  # fmt: skip
        png = OUT / f"model-zoo-{dataset}-reliability.png"
        plot_reliability(curves, png, f"reliability: {dataset}")
        pngs.append(f"![reliability {dataset}]({png.name})")
    skipped = [f"- {r['model']} on {r['dataset']}: {r['skipped']}" for r in rows if "skipped" in r]
    lines = [
        "# Model zoo: GAN-STFM, SwinSTFM, STFDiff against the best naive baseline", "",
        f"Command: `{results['command']}`. Date: {results['date']}. Machine: "
        f"{results['machine']}; {results['load_start']} at the start, {results['load_end']} "
        "at the end.", "",
        "Overrides of the small presets (CPU-sized): " + json.dumps(OVERRIDES) + ".", "",
        f"Budget: {results['steps']} optimiser steps per model (`budget_steps`, no wall-clock "
        "budget, so the figures do not depend on the load; the engine may stop earlier on its "
        "held-back data and keeps its start when training does not beat it). Sizes: `small` "
        "presets. RMSE, CC on reflectance, mean over bands; gains are 1 - RMSE / reference.", "",
        *table_lines(rows), "", *(["Not run:", *skipped, ""] if skipped else []),
        "![RMSE per dataset](model-zoo.png)", "",
        "## Loss-term shares (first and last epoch)", "", *shares_lines(rows), "",
        "## Calibration of the predicted uncertainty", "", *pngs, "",
    ]  # fmt: skip
    notes = OUT / "model-zoo-notes.md"
    lines += [notes.read_text()] if notes.exists() else []
    return "\n".join(lines) + "\n"


def _args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=30, help="optimiser steps per model")
    parser.add_argument("--jobs", type=int, default=3, help="datasets run in parallel")
    parser.add_argument("--datasets", default="", help="comma list (default: all three)")
    parser.add_argument("--render", action="store_true", help="only re-render from the json")
    return parser.parse_args()


if __name__ == "__main__":
    args = _args()
    data = OUT / "model-zoo.json"
    if not args.render:
        data.write_text(json.dumps(run(args), indent=1, default=str))
    elif PARTS.exists():
        data.write_text(json.dumps(from_parts(), indent=1, default=str))
    (OUT / "model-zoo.md").write_text(render(json.loads(data.read_text())))
    print(f"wrote {OUT / 'model-zoo.md'}")
