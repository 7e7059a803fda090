"""Model-zoo benchmark: GAN-STFM, SwinSTFM, STFDiff, ESTARFM, Fit-FC on real and synthetic data.

Run from the repository root (writes benchmarks/model-zoo.{md,json} and reliability PNGs)::

    .venv/bin/python benchmarks/model_zoo.py            # run everything, then render
    .venv/bin/python benchmarks/model_zoo.py --resume   # keep finished rows, run the rest
    .venv/bin/python benchmarks/model_zoo.py --resume --redo stfdiff  # run these models again
    .venv/bin/python benchmarks/model_zoo.py --render   # re-render the md from the json

Every model is scored with :func:`pipeline.evaluate.runner.evaluate` (trained on
the manifest's other dates, predicting its ``predict`` date) at the sizes in
:data:`MODELS`, chosen to fit a shared 2-core CPU; its predicted uncertainty is
checked with :mod:`pipeline.evaluate.calibration`. The synthetic world is
generated into a temporary folder (160 x 160 px, three clear dates).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pipeline.errors import StfError  # noqa: E402
from pipeline.evaluate.calibration import Calibration, calibrate, plot_reliability  # noqa: E402
from pipeline.evaluate.runner import evaluate  # noqa: E402
from pipeline.models.registry import create_model  # noqa: E402

OUT = ROOT / "benchmarks"
_TRAIN = {"epochs": 3, "steps_per_epoch": 10, "batch_size": 4, "patch": 32, "patience": 2,
          "tile": 512}  # fmt: skip
#: model -> (size, parameter overrides); "naive_change" is the reference every model must beat.
MODELS: dict[str, tuple[str, dict[str, Any]]] = {
    "naive_change": ("full", {}),
    "fitfc": ("small", {}),
    "estarfm": ("small", {}),
    "ganstfm": ("small", dict(_TRAIN)),
    "swinstfm": ("small", dict(_TRAIN)),
    "stfdiff": ("small", {**_TRAIN, "samples": 2}),
}
SELECT_CANDIDATES = ("naive_change", "fitfc", "estarfm")
METRICS = ("rmse", "ssim", "cc", "uiqi", "psnr", "sam_deg", "ergas")
_FIRST_COMMAND = ".venv/bin/python benchmarks/model_zoo.py"


def _synthetic_manifest(folder: Path) -> Path | None:
    try:
        from pipeline.synth import WorldSpec, build_world
        from pipeline.synth.export import export_manifest
    except ImportError:
        return None
    world = build_world(folder / "world", WorldSpec.tiny(width=160, height=160))
    return export_manifest(world, folder / "export", bands=("green", "red", "nir"))


def _full_params(name: str, bands: tuple[str, ...]) -> int:
    model = create_model(name, bands=bands, size="full", device="cpu")
    count = getattr(model, "parameter_count", None)
    return int(count()) if callable(count) else 0


def _one(manifest: Path, name: str) -> dict[str, Any]:
    size, params = MODELS[name]
    try:
        ev = evaluate(manifest, name, size=size, **params)
    except StfError as exc:  # a model that cannot run on a dataset is reported, not fatal
        return {"model": name, "size": size, "skipped": str(exc).splitlines()[0]}
    row = {**ev.result, "params_full": _full_params(name, ev.bands), "overrides": params}
    sigma = ev.prediction.uncertainty
    if sigma is not None:
        cal = calibrate(ev.prediction.fine, sigma, ev.truth)
        row["calibration"] = cal.to_dict()
        row["mean_sigma"] = float(np.nanmean(sigma))
    return row


def _select(manifest: Path) -> dict[str, Any]:
    from pipeline.evaluate.manifest import load_manifest
    from pipeline.evaluate.rasters import load_dataset
    from pipeline.select import select_model

    m = load_manifest(manifest)
    start = time.perf_counter()
    result = select_model(load_dataset(m).scenes, SELECT_CANDIDATES, m.bands, "tiny",
                          ratio=1.0 / m.ratio).to_dict()  # fmt: skip
    return {**result, "dataset": m.name, "seconds": time.perf_counter() - start}


def run(data: Path) -> dict[str, Any]:
    """Every model on every dataset, cheapest first; the json is rewritten after each row."""
    import torch

    torch.set_num_threads(2)
    results: dict[str, Any] = {"rows": [], "selection": []}
    if data.exists() and "--resume" in sys.argv:  # keep the rows a previous run finished
        results = json.loads(data.read_text())
        redo = _redo()
        results["rows"] = [r for r in results["rows"]
                           if "skipped" not in r and r["model"] not in redo]  # fmt: skip
    done = {(r["dataset"], r["model"]) for r in results["rows"]}
    command = " ".join([".venv/bin/python benchmarks/model_zoo.py", *sys.argv[1:]])
    results["commands"] = [*results.get("commands", [_FIRST_COMMAND]), command][-4:]
    results["machine"] = f"{platform.node()} {platform.machine()}, {os.cpu_count()} cores " \
        f"(shared with other jobs), torch {torch.__version__}, CPU only (no GPU)"  # fmt: skip
    results["date"] = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    with tempfile.TemporaryDirectory() as tmp:
        manifests = [ROOT / "manifests/estarfm-2001.yaml"]
        synth = _synthetic_manifest(Path(tmp))
        manifests += [synth] if synth else []
        manifests.append(ROOT / "manifests/lgc-2004.yaml")
        jobs = [(m, n) for n in MODELS if not MODELS[n][1] for m in manifests]
        # Networks: the small synthetic world first (cheapest), then the real scenes.
        jobs += [(m, n) for m in manifests[1:2] + manifests[:1] + manifests[2:]
                 for n in MODELS if MODELS[n][1]]  # fmt: skip
        names = {m: yaml.safe_load(m.read_text())["name"] for m in manifests}
        for manifest, name in jobs:
            if (names[manifest], name) in done:
                continue
            print(f"{manifest.parent.name}/{manifest.stem}: {name}", flush=True)
            results["rows"].append(_one(manifest, name))
            data.write_text(json.dumps(results, indent=1))
        if not results["selection"]:  # a resumed run keeps a finished selection
            results["selection"] = [_select(manifests[0])]
            data.write_text(json.dumps(results, indent=1))
    return results


def _redo() -> set[str]:
    """Models named by ``--redo a,b``: their finished rows are run again."""
    if "--redo" not in sys.argv:
        return set()
    return set(sys.argv[sys.argv.index("--redo") + 1].split(","))


def _calibration_figures(rows: list[dict[str, Any]]) -> list[str]:
    lines = []
    for dataset in dict.fromkeys(r.get("dataset") for r in rows if "calibration" in r):
        curves = {r["model"]: Calibration(**r["calibration"]) for r in rows
                  if r.get("dataset") == dataset and "calibration" in r}  # fmt: skip
        png = OUT / f"model-zoo-{dataset}-reliability.png"
        plot_reliability(curves, png, f"reliability: {dataset}")
        lines.append(f"![reliability {dataset}]({png.name})")
    return lines


def render(results: dict[str, Any]) -> str:
    """The markdown section of the benchmark."""
    notes = OUT / "model-zoo-notes.md"
    head = "| dataset | model | size | " + " | ".join(METRICS)
    head += (
        " | train s | predict s | params (size used) | params (full) | Spearman(sigma, abs error) |"
    )
    lines = ["# Model zoo: GAN-STFM, SwinSTFM, STFDiff, ESTARFM, Fit-FC", "",
             f"Machine: {results['machine']}. Date: {results['date']}.",
             "Commands, in order: " + ", then ".join(
                 f"`{c}`" for c in results.get("commands", [_FIRST_COMMAND])) + ".", "",
             f"Metrics: {results['rows'][0].get('convention', '')}.", "",
             head, "|" + "---|" * (head.count("|") - 1)]  # fmt: skip
    order = list(dict.fromkeys(r["dataset"] for r in results["rows"] if "dataset" in r))
    scored = [r for r in results["rows"] if "skipped" not in r]
    for r in sorted(scored, key=lambda r: (order.index(r["dataset"]), r["overall"]["rmse"])):
        o, s = r["overall"], r["seconds"]
        rho = r.get("calibration", {}).get("spearman", float("nan"))
        lines.append(
            f"| {r['dataset']} | {r['model']} | {r['size']} | "
            + " | ".join(f"{o[m]:.4f}" for m in METRICS)
            + f" | {s['train']:.1f} | {s['predict']:.1f} | {r['params']:,} | {r['params_full']:,}"
            f" | {rho:.3f} |"
        )
    skipped = [f"- {r['model']}: {r['skipped']}" for r in results["rows"] if "skipped" in r]
    seen = {(r["dataset"], r["model"]) for r in results["rows"] if "dataset" in r}
    datasets = dict.fromkeys(d for d, _ in seen)
    skipped += [f"- {m} on {d}: did not finish within the session's time limit"
                for d in datasets for m in MODELS if (d, m) not in seen
                and not (m == "estarfm" and d == "lgc-2004")]  # fmt: skip
    lines += ["", "Not run:" if skipped else "", *skipped, ""]
    lines += [
        "## Calibration of the predicted uncertainty",
        "",
        *_calibration_figures(results["rows"]),
        "",
    ]
    for sel in results["selection"]:
        lines += [f"## Automatic model choice on {sel['dataset']} (leave one pair out, tiny sizes)",
                  "", f"Rule: {sel['rule']}. Choice: **{sel['choice']}** "
                  f"({sel['seconds']:.0f} s).", "", "| candidate | mean RMSE | mean SSIM | folds |",
                  "|---|---|---|---|"]  # fmt: skip
        lines += [f"| {k} | {v['rmse']:.4f} | {v['ssim']:.4f} | {v['folds']} |"
                  for k, v in sel["summary"].items()]  # fmt: skip
    lines += ["", "Training settings of the learned models: " + json.dumps(_TRAIN), ""]
    lines += [notes.read_text()] if notes.exists() else []
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    data = OUT / "model-zoo.json"
    if "--render" not in sys.argv:
        run(data)
    (OUT / "model-zoo.md").write_text(render(json.loads(data.read_text())))
    print(f"wrote {OUT / 'model-zoo.md'}")
