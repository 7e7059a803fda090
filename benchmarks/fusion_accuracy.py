"""Fusion accuracy benchmark: every model beside the strongest naive baselines.

One command regenerates ``benchmarks/fusion-accuracy.md`` (+ ``.json``, ``.png``)::

    .venv/bin/python benchmarks/fusion_accuracy.py [--budget-steps 40] [--budget 300]
        [--patch 64] [--size small] [--jobs 2] [--no-synthetic] [--models resstf,edcstfn]
        [--datasets estarfm-2001,lgc-2004]

Every model is trained only on the dates other than the target and predicts it
from the pairs of the shared reference-pair rule (:mod:`pipeline.models.pairs`).
Each table shows every naive model of :data:`pipeline.models.baselines.NAIVE_MODELS`
(``smoothed_change`` and its time-weighted blend included, window chosen on the
training dates), and for each model its RMSE gain over the best of them; for
learned models their own untrained start, the gain of training over it on the
target date, the optimiser steps and the held-back RMSE before/after training.
``--budget-steps`` is the number of optimiser steps per learned model (shared
between ResStf's per-pair streams); it replaces the wall-clock budget, so the
figures do not depend on how busy the machine is. Without it, ``--budget`` is
the CPU training budget in seconds per learned model (the ``full`` presets'
``budget_s`` is 300; a GPU uses ``budget_s_gpu``). ``--patch`` overrides the
learned models' training core (the presets' 128 px; the CPU cost of a step
grows with the square of core + context). ``--size`` picks the learned models'
preset where they have it (``small``: ``resstf_prior``, ``edcstfn``; default ``full``).
GAN-STFM, SwinSTFM and STFDiff are in ``benchmarks/model_zoo.py``. ``--jobs``
evaluates the (dataset, model) cases in that many processes (each
``FUSION_THREADS / jobs`` torch threads). The synthetic world (160 x 160 px, eleven
clear Landsat dates 2024-06..08, target 07-18) is generated into a temporary folder
unless ``--no-synthetic``.
Environment: ``STARFM_WINDOW`` (default 15), ``FUSION_THREADS`` (default 2).
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import json
import multiprocessing
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

from pipeline.errors import InputError  # noqa: E402
from pipeline.evaluate.figures import plot_evaluation  # noqa: E402
from pipeline.evaluate.runner import Evaluation, evaluate  # noqa: E402
from pipeline.models.baselines import NAIVE_MODELS  # noqa: E402
from pipeline.models.registry import model_class  # noqa: E402

LEARNED = ("resstf", "resstf_prior", "edcstfn")
#: model -> size; STARFM's window comes from the environment (see module doc).
MODELS: dict[str, str] = {
    **dict.fromkeys(NAIVE_MODELS, "full"),
    "starfm": "full",
    "estarfm": "full",
    "fitfc": "full",
    **dict.fromkeys(LEARNED, "full"),
}
COLUMNS = ("rmse", "ssim", "cc", "uiqi", "psnr", "sam_deg", "ergas")


def params_for(model: str, args: argparse.Namespace) -> dict[str, Any]:
    """Benchmark overrides of one model (the step or CPU budget for learned ones)."""
    if model == "starfm":
        return {"window": int(os.environ.get("STARFM_WINDOW", "15"))}
    if model not in LEARNED:
        return {}
    params: dict[str, Any] = {"budget_s": args.budget}
    if args.budget_steps is not None:
        params = {"budget_s": None, "budget_s_gpu": None, "budget_steps": args.budget_steps}
    if args.patch is not None:
        params["patch"] = args.patch
    return params


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


def run_one(
    dataset: str, manifest: Path, model: str, args: argparse.Namespace, threads: int
) -> Evaluation | str:
    """Evaluate one model on one manifest; prints its row (the fitted model is dropped).

    Returns the one-line reason instead where the manifest cannot serve the model (e.g.
    ESTARFM needs two reference pairs and lgc-2004 has one), so one such case does not
    lose the whole run."""
    import torch

    torch.set_num_threads(threads)
    presets = getattr(model_class(model), "presets", {})
    size = args.size if model in LEARNED and args.size in presets else MODELS[model]
    try:
        ev = evaluate(manifest, model, size=size, **params_for(model, args))
    except InputError as err:
        print(f"{dataset:18s} {model:22s} not run: {err}", flush=True)
        return str(err)
    o, t = ev.result["overall"], ev.result.get("training", {})
    steps = f" steps {t['steps']} start {t['start']['rmse']:.4f}" if t else ""
    print(f"{dataset:18s} {model:22s} rmse {o['rmse']:.4f} cc {o['cc']:.4f}{steps}", flush=True)
    return dataclasses.replace(ev, model=None)  # picklable, small


def run_all(
    manifests: dict[str, Path], models: list[str], args: argparse.Namespace, threads: int
) -> dict[str, dict[str, Evaluation | str]]:
    """Every (dataset, model) in ``args.jobs`` processes; results in the given order."""
    cases = [(d, m, model) for d, m in manifests.items() for model in models]
    # the longest first (learned models, the synthetic season's many dates): less idle tail
    cases.sort(key=lambda case: (case[2] not in LEARNED, case[0] != "synthetic"))
    jobs = max(1, min(int(args.jobs), len(cases)))
    per_job = max(1, threads // jobs)
    results: dict[str, dict[str, Evaluation | str]] = {d: {} for d in manifests}
    if jobs == 1:
        for d, m, model in cases:
            results[d][model] = run_one(d, m, model, args, per_job)
        return results
    with ProcessPoolExecutor(jobs, mp_context=multiprocessing.get_context("spawn")) as pool:
        futures = [
            (d, model, pool.submit(run_one, d, m, model, args, per_job)) for d, m, model in cases
        ]
        for d, model, future in futures:
            results[d][model] = future.result()
    return results


def _training_cells(r: dict[str, Any]) -> str:
    t = r.get("training")
    if not t:
        return " | | | |"
    return (
        f" {t['start']['rmse']:.4f} | {100 * t['gain_over_start']:+.1f} % | {t['steps']} |"
        f" {_f(t['start_val_rmse'])} -> {_f(t['end_val_rmse'])} |"
    )


def _f(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.4f}"


def table(dataset: str, by_model: dict[str, Evaluation]) -> list[str]:
    """One dataset: every model, its gain over the best naive model, start and gain."""
    any_result = next(iter(by_model.values())).result
    best = any_result["best_baseline"]
    lines = [
        f"### {dataset} (target {any_result['target_date']}; best naive baseline "
        f"`{best['model']}`: RMSE {best['rmse']:.4f}, CC {best['cc']:.4f})",
        "",
        "Naive baselines on the same target from the same references: "
        + "; ".join(
            f"`{n}` {b['rmse']:.4f} / {b['cc']:.4f}"
            for n, b in sorted(any_result["baselines"].items(), key=lambda kv: kv[1]["rmse"])
        )
        + " (RMSE / CC).",
        "",
        "| model | params | " + " | ".join(COLUMNS) + " | RMSE gain vs best naive "
        "| start RMSE | training gain | steps | held-back RMSE | train s | predict s |",
        "|" + "---|" * (len(COLUMNS) + 9),
    ]
    for model, ev in sorted(by_model.items(), key=lambda kv: kv[1].result["overall"]["rmse"]):
        r = ev.result
        vals = " | ".join(f"{r['overall'][c]:.4f}" for c in COLUMNS)
        lines.append(
            f"| {model} | {r['params']:,} | {vals} | {100 * r['gain_over_best_baseline']:+.1f} % |"
            f"{_training_cells(r)} {r['seconds']['train']:.1f} | {r['seconds']['predict']:.1f} |"
        )
    return [*lines, ""]


def goal_lines(results: dict[str, dict[str, Evaluation]]) -> list[str]:
    """Targets of issue 14: learned models beat every naive model (goal >= 10 % RMSE)."""
    lines = []
    for dataset, by_model in results.items():
        # every result carries the naive baselines on the same target (runner.baseline_rows)
        naive = list(next(iter(by_model.values())).result.get("baselines", {}).values())
        naive += [by_model[n].result["overall"] for n in NAIVE_MODELS if n in by_model]
        if not naive:
            continue
        best_rmse, best_cc = min(o["rmse"] for o in naive), max(o["cc"] for o in naive)
        for model in LEARNED:
            if model not in by_model:
                continue
            r = by_model[model].result
            o, gain = r["overall"], 1 - r["overall"]["rmse"] / best_rmse
            ok = o["rmse"] < best_rmse and o["cc"] > best_cc
            t = r.get("training", {})
            lines.append(
                f"- {dataset} / {model}: RMSE {o['rmse']:.4f} vs best naive {best_rmse:.4f} "
                f"({100 * gain:+.1f} %, goal +10 %), CC {o['cc']:.4f} vs {best_cc:.4f} -> "
                f"**{'beats' if ok else 'does NOT beat'}** every naive model; training gain "
                f"over its start {100 * t.get('gain_over_start', 0.0):+.1f} % "
                f"({t.get('steps', 0)} steps, {t.get('task', '')})"
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


def _budget_text(args: argparse.Namespace) -> str:
    """The learned models' training budget in words."""
    patch = "the preset's" if args.patch is None else f"{args.patch} px (override)"
    if args.budget_steps is not None:
        return (
            f"Training budget per learned model: {args.budget_steps} optimiser steps "
            f"(load-independent; ResStf's per-pair streams share them; early stopping may end "
            f"sooner), training core {patch}."
        )
    return f"CPU training budget per learned model: {args.budget:.0f} s of wall time."


def _args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget", type=float, default=300.0, help="CPU s per learned model")
    parser.add_argument(
        "--budget-steps", type=int, default=None, help="optimiser steps per learned model"
    )
    parser.add_argument("--patch", type=int, default=None, help="learned models' training core")
    parser.add_argument("--size", default=None, help="learned presets (default full)")
    parser.add_argument("--jobs", type=int, default=1, help="datasets evaluated in parallel")
    parser.add_argument("--no-synthetic", action="store_true", help="skip the synthetic world")
    parser.add_argument("--models", default=",".join(MODELS), help="comma-separated names")
    parser.add_argument("--datasets", default="estarfm-2001,lgc-2004", help="real manifests")
    return parser.parse_args()


def main() -> None:
    import torch

    args = _args()
    threads = int(os.environ.get("FUSION_THREADS", "2"))
    torch.set_num_threads(threads)
    started, t0 = dt.datetime.now(dt.UTC), time.perf_counter()
    models = [m for m in args.models.split(",") if m]
    manifests = {f"real/{d}": ROOT / f"manifests/{d}.yaml" for d in args.datasets.split(",") if d}
    with tempfile.TemporaryDirectory() as tmp:
        synth = None if args.no_synthetic else synthetic_manifest(Path(tmp))
        if synth is not None:
            manifests["synthetic"] = synth
        outcomes = run_all(manifests, models, args, threads)
    not_run = [
        f"- {d} / {m}: {r}"
        for d, by in outcomes.items()
        for m, r in by.items()
        if isinstance(r, str)
    ]
    results = {
        d: {m: r for m, r in by.items() if not isinstance(r, str)} for d, by in outcomes.items()
    }
    figure(results, ROOT / "benchmarks/fusion-accuracy.png")
    command = "python benchmarks/fusion_accuracy.py " + " ".join(sys.argv[1:])
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU"
    md = [
        "# Fusion accuracy",
        "",
        f"Generated by `{command.strip()}` on {started:%Y-%m-%d %H:%M} UTC "
        f"({time.perf_counter() - t0:.0f} s). Machine: {platform.platform()}, "
        f"{os.cpu_count()} CPU cores shared with other jobs (load average at the end "
        f"{os.getloadavg()[0]:.1f}), {args.jobs} parallel jobs of "
        f"{max(1, threads // max(1, args.jobs))} torch thread(s), "
        f"torch {torch.__version__}, {gpu}. "
        f"{_budget_text(args)} Learned models' preset: `{args.size or 'full'}`.",
        "",
        "Each model is trained only on the dates other than the target and predicts it from the"
        " shared pair rule's references. Metrics: band means; conventions in"
        " `pipeline/metrics.py`. *start RMSE*: the learned model's untrained network (zero head:"
        " its base); *training gain*: RMSE reduction of the trained model over that start on the"
        " target; *held-back RMSE*: the engine's validation set before -> after training (n/a:"
        " there is none, e.g. with one pair, whose only held-back task has its target as its"
        " reference). The learned models' start and its window are in the JSON (`start_rule`).",
        "",
        "## Results",
        "",
    ]
    for dataset, by_model in results.items():
        md += table(dataset, by_model)
    if not_run:
        md += ["Not run (the manifest cannot serve the model):", *not_run, ""]
    md += [
        "## Targets",
        *goal_lines(results),
        "",
        "![NIR per model](fusion-accuracy.png)",
        "",
    ]
    rows = {d: {m: ev.result for m, ev in by.items()} for d, by in results.items()}
    md += [
        "GAN-STFM, SwinSTFM and STFDiff: [model-zoo.md](model-zoo.md) (`benchmarks/model_zoo.py`).",
        "",
    ]
    notes = ROOT / "benchmarks/fusion-accuracy-notes.md"
    if notes.exists():
        md += [notes.read_text()]
    (ROOT / "benchmarks/fusion-accuracy.md").write_text("\n".join(md))
    (ROOT / "benchmarks/fusion-accuracy.json").write_text(json.dumps(rows, indent=1))
    print("\n".join(goal_lines(results)))


if __name__ == "__main__":
    main()
