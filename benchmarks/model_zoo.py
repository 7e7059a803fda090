"""Model-zoo benchmark: GAN-STFM, SwinSTFM and STFDiff against the best naive baseline.

One command regenerates ``benchmarks/model-zoo.md`` (+ ``.json``, ``.png`` and the
reliability PNGs)::

    .venv/bin/python benchmarks/model_zoo.py [--steps 150] [--jobs 3] [--datasets a,b]
    .venv/bin/python benchmarks/model_zoo.py --render      # re-render the md from the json
                                                           # (+ the rows of a killed run)

A run over some datasets replaces only their rows: the rows of ``model-zoo.json``
are merged per (dataset, model), each row keeps the header of the run that made it
(command, date, machine, budget, load), and the page lists every run it shows.

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
import time
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
#: Dataset order of the table (and of a full run: the real single-pair set last).
DATASETS = ("synthetic-season", "estarfm-2001", "lgc-2004")


def _load() -> str:
    return "load average " + ", ".join(f"{v:.1f}" for v in os.getloadavg())


def _one(manifest: Path, name: str, steps: int) -> dict[str, Any]:
    """Evaluate one model on one manifest; a model that cannot run is a 'skipped' row."""
    from pipeline.evaluate.calibration import calibrate
    from pipeline.evaluate.runner import evaluate

    size, family = MODELS[name]
    cpu0 = time.process_time()
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
        "notes": {k: v for k, v in training.items()
                  if k.startswith(("loss_share", "autoenc", "linear_start", "few_dates"))},
        "seconds": {**r["seconds"], "cpu_all": time.process_time() - cpu0},
        "params": r["params"],
        "overall": r["overall"],  # every metric
    }  # fmt: skip
    sigma = ev.prediction.uncertainty
    if sigma is not None:
        row["calibration"] = calibrate(ev.prediction.fine, sigma, ev.truth).to_dict()
    return row


def _dataset_rows(
    dataset: str, manifest: Path, names: list[str], header: dict[str, Any]
) -> list[dict[str, Any]]:
    """Every model on one dataset (one worker process, one torch thread)."""
    import torch

    torch.set_num_threads(1)
    rows = []
    for name in names:
        print(f"{dataset}: {name} ({_load()})", flush=True)
        load = _load()
        row = _one(manifest, name, int(header["steps"]))
        rows.append({**row, "dataset": dataset, "run": header, "load": [load, _load()]})
        with PARTS.open("a") as parts:  # one short line per write: whole lines on append
            parts.write(json.dumps(rows[-1], default=str) + "\n")
    return rows


def run(args: argparse.Namespace) -> dict[str, Any]:
    """All models on all datasets; returns the json document."""
    import torch

    from benchmarks.fusion_accuracy import synthetic_manifest

    names = [m for m in MODELS if not args.models or m in args.models.split(",")]
    header: dict[str, Any] = {
        "command": " ".join([COMMAND, *sys.argv[1:]]),
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": f"{platform.node()} {platform.machine()}, {os.cpu_count()} cores shared "
        f"with other jobs, torch {torch.__version__}, CPU only (no GPU lent to this task)",
        "load_start": _load(), "steps": args.steps, "overrides": OVERRIDES,
    }  # fmt: skip
    results: dict[str, Any] = {**header, "rows": []}
    PARTS.unlink(missing_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        manifests = dict(REAL)
        synth = synthetic_manifest(Path(tmp))
        if synth is not None:
            manifests["synthetic-season"] = synth
        wanted = args.datasets.split(",") if args.datasets else list(manifests)
        chosen = sorted((d for d in manifests if d in wanted), key=DATASETS.index)
        with ProcessPoolExecutor(max_workers=args.jobs) as pool:
            futures = [pool.submit(_dataset_rows, d, manifests[d], names, header) for d in chosen]
            for future in futures:
                results["rows"] += future.result()
    results["load_end"] = _load()
    PARTS.unlink(missing_ok=True)
    return results


def from_parts() -> dict[str, Any]:
    """The rows of a killed run from its :data:`PARTS`, as a json document."""
    rows = [json.loads(line) for line in PARTS.read_text().splitlines() if line.strip()]
    return {"rows": rows}


def _legacy_header(doc: dict[str, Any]) -> dict[str, Any]:
    """The run header of a json written before rows carried their own."""
    keys = ("command", "date", "machine", "load_start", "load_end", "steps")
    return {k: doc[k] for k in keys if k in doc}


def merge(old: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    """``old``'s rows with ``new``'s replacing those of the same (dataset, model).

    Rows are ordered by dataset (synthetic season, estarfm-2001, lgc-2004, others) and
    then by :data:`MODELS`; every row keeps its run header (``run``), so a partial run
    never relabels or drops the rows of datasets it did not touch.
    """
    legacy = _legacy_header(old)
    rows: dict[tuple[str, str], dict[str, Any]] = {}
    for row in old.get("rows", []):
        rows[(row["dataset"], row["model"])] = {"run": legacy, **row}
    for row in new.get("rows", []):
        rows[(row["dataset"], row["model"])] = row
    order = [*DATASETS, *sorted({d for d, _ in rows} - set(DATASETS))]
    models = list(MODELS)
    keys = sorted(rows, key=lambda k: (order.index(k[0]), models.index(k[1])))
    runs = list({json.dumps(rows[k]["run"], sort_keys=True): rows[k]["run"] for k in keys}.values())
    return {"runs": runs, "rows": [rows[k] for k in keys]}


def _f(value: float | None, fmt: str = ".4f") -> str:
    return "-" if value is None or not np.isfinite(value) else format(value, fmt)


def table_lines(rows: list[dict[str, Any]]) -> list[str]:
    """The main table: one line per (dataset, model)."""
    head = ("| dataset | model | family | start RMSE | trained RMSE | gain over start | "
            "best naive (RMSE) | gain over best naive | CC | steps | task | "
            "Spearman(sigma, abs err) | train s | predict s | CPU s |")  # fmt: skip
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
            f"{r['seconds']['train']:.0f} | {r['seconds']['predict']:.0f} | "
            f"{_f(r['seconds'].get('cpu_all'), '.0f')} |"
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


def linear_lines(rows: list[dict[str, Any]]) -> list[str]:
    """Held-back RMSE at the start, after the closed-form linear start and at the end."""
    lines = ["| dataset | model | held-back | start | closed-form linear (kept) | end |",
             "|---|---|---|---|---|---|"]  # fmt: skip
    for r in rows:
        closed = r.get("notes", {}).get("linear_start")
        if "skipped" in r or not closed:
            continue
        start, end = r["held_back_rmse"]
        lines.append(
            f"| {r['dataset']} | {r['model']} | {r.get('validation', '-')} | {_f(start)} | "
            f"{_f(closed.get('val_rmse'))} ({'yes' if closed.get('kept') else 'no'}) | {_f(end)} |"
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
        "Runs shown (a run over some datasets replaces only their rows):", "",
        *run_lines(results), "",
        "Budget: the `steps` column, optimiser steps per model (`budget_steps`, no wall-clock "
        "budget, so the figures do not depend on the load; the engine may stop earlier on its "
        "held-back data and keeps its start when training does not beat it); `CPU s` is the "
        "process CPU time of the whole evaluation (training, prediction, baselines), against "
        "the small presets' default training budget of 300 s. Sizes: `small` presets. RMSE, "
        "CC on reflectance, mean over bands; gains are 1 - RMSE / reference.", "",
        *table_lines(rows), "", *(["Not run:", *skipped, ""] if skipped else []),
        "![RMSE per dataset](model-zoo.png)", "",
        "## Closed-form linear start (held-back RMSE)", "", *linear_lines(rows), "",
        "## Loss-term shares (first and last epoch)", "", *shares_lines(rows), "",
        "## Calibration of the predicted uncertainty", "", *pngs, "",
    ]  # fmt: skip
    notes = OUT / "model-zoo-notes.md"
    lines += [notes.read_text()] if notes.exists() else []
    return "\n".join(lines) + "\n"


def run_lines(results: dict[str, Any]) -> list[str]:
    """One bullet per run whose rows the page shows: command, date, machine, load, overrides."""
    runs = results.get("runs") or [_legacy_header(results)]
    lines = []
    for run_ in runs:
        end = f", {run_['load_end']} at the end" if "load_end" in run_ else ""
        over = run_.get("overrides")
        lines.append(
            f"- `{run_.get('command', '?')}`, {run_.get('date', '?')}: {run_.get('machine', '?')}; "
            f"{run_.get('load_start', '?')} at the start{end}"
            + (f"; overrides of the small presets {json.dumps(over)}" if over else "")
        )
    return lines


def _args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=150, help="optimiser steps per model")
    parser.add_argument("--jobs", type=int, default=3, help="datasets run in parallel")
    parser.add_argument("--datasets", default="", help="comma list (default: all three)")
    parser.add_argument("--models", default="", help="comma list (default: all three)")
    parser.add_argument("--render", action="store_true", help="only re-render from the json")
    return parser.parse_args()


if __name__ == "__main__":
    args = _args()
    data = OUT / "model-zoo.json"
    old = json.loads(data.read_text()) if data.exists() else {}
    if not args.render:
        data.write_text(json.dumps(merge(old, run(args)), indent=1, default=str))
    elif PARTS.exists():
        data.write_text(json.dumps(merge(old, from_parts()), indent=1, default=str))
    (OUT / "model-zoo.md").write_text(render(json.loads(data.read_text())))
    print(f"wrote {OUT / 'model-zoo.md'}")
