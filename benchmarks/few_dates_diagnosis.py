"""What two training dates can teach a learned fusion model, measured on estarfm-2001.

    OMP_NUM_THREADS=1 nice -n 5 python benchmarks/few_dates_diagnosis.py
        [--dataset estarfm-2001] [--models resstf_prior,edcstfn] [--budget-steps 400]
        [--out benchmarks/few-dates-diagnosis.json]

With training pairs A < B (estarfm-2001: 05-24 and 08-12, target 07-11, co-registered as
``stf evaluate`` does), the only cross-date tasks are "B from A" and "A from B". For each
model (``small`` preset, ``date_fallback = "reverse"``, one torch thread) and each fold
(train one direction outside held-back blocks, validate the other direction on the blocks,
:mod:`pipeline.models.few_dates`), the held-back (reverse-task) RMSE and the target's RMSE of:

(i) the start; (ii) the closed-form linear path alone (forced, whatever the validation
says), with its per-band gain on the coarse-change channels; (iii) the fold's training
(closed form kept if it helped, then a quarter of the budget in steps, early stopped on
the reverse task); (iv) that correction shrunk toward the start, ``start + s (trained -
start)`` for every ``s`` of the grid; and the rule itself (``s`` chosen on both folds'
reverse tasks, final fit on both directions). The target's fine image only scores.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pipeline.evaluate.manifest import load_manifest  # noqa: E402
from pipeline.evaluate.rasters import coregister_dataset, load_dataset, scene_on  # noqa: E402
from pipeline.evaluate.runner import _score  # noqa: E402
from pipeline.models import FusionInput, Scene, create_model  # noqa: E402
from pipeline.models import few_dates as fd  # noqa: E402
from pipeline.models.pairs import choose_scenes  # noqa: E402


def change_gains(model: Any) -> dict[str, Any] | None:
    """The linear path's response to a uniform coarse change, as a gain matrix.

    ``gain[b][c]``: the fine change the path adds in band ``b`` per unit of coarse change
    in band ``c`` (reflectance per reflectance; the start assumes 0 beside the change it
    adds itself, so 0.1 on the diagonal means the fine change is the coarse change plus
    10 %), summed over the taps of the three channels a uniform change moves (the
    standardised target coarse image, the raw and the smoothed change; the products vanish
    where the fine reference equals the coarse one). ``bias``: reflectance.
    """
    layer = getattr(model.net, "linear_path", None)
    if layer is None:
        return None
    w = layer.weight.detach().double().sum((2, 3)).numpy()  # (B, C)
    n, std = w.shape[0], np.asarray(model.params["band_std"], float)
    gain = (w[:, :n] + w[:, 3 * n : 4 * n] + w[:, 5 * n : 6 * n]) * std[:, None] / std[None, :]
    bias = layer.bias.detach().double().numpy() * std
    return {"gain": gain.round(4).tolist(), "bias": bias.round(5).tolist()}


def diagnose_model(name: str, dataset: Any, target: Scene, pairs: list[Scene], budget: int) -> dict:
    """Every variant of the module doc for one model."""
    from pipeline.models.training import validate

    bands = dataset.manifest.bands
    model = create_model(name, bands=bands, size="small", date_fallback="reverse",
                         budget_steps=budget)  # fmt: skip
    refs = choose_scenes(pairs, target.date, model.n_refs)
    inputs = FusionInput(refs, Scene(target.date, target.coarse), bands)

    def target_rmse() -> float:
        return float(_score(dataset, target, model.predict(inputs)).overall["rmse"])

    began = time.process_time()
    model.set_band_stats(pairs)
    model.select_start(pairs)
    model.start_state = {k: v.clone() for k, v in model.net.state_dict().items()}
    out: dict[str, Any] = {"start_target_rmse": target_rmse(), "blend": model.blend_name(),
                           "window": model.params["change_window"], "folds": []}  # fmt: skip
    tasks = fd.two_tasks(model, pairs)
    folds = []
    for k in range(2):
        setup = fd.fold_plan(model, tasks[k], tasks[1 - k], pairs)
        batches = setup.held.grid()
        model.net.load_state_dict(model.start_state)
        setup.linear_only = True
        forced = fd.symmetric_linear_start(model, setup, batches, math.inf)
        linear = {"held_rmse": math.sqrt(validate(model, batches)), "target_rmse": target_rmse(),
                  "gains": change_gains(model)}  # fmt: skip
        fd._thaw(model)
        fold = fd.run_fold(model, fd.fold_plan(model, tasks[k], tasks[1 - k], pairs), budget // 4)
        shrunk = {}
        for s in fd.SHRINK_GRID:
            fd.shrink(model, fold.state, s)
            shrunk[str(s)] = {"held_rmse": math.sqrt(fold.curve[s]), "target_rmse": target_rmse()}
        model.net.load_state_dict(model.start_state)
        folds.append(fold)
        out["folds"].append({**fold.summary(), "linear_forced": linear, "by_shrink": shrunk,
                             "linear_pixels": forced.get("pixels")})  # fmt: skip
    s = fd.choose_shrink(folds)
    steps, _ = fd.final_fit(model, pairs, folds, s, budget - budget // 4 * 2)
    out["rule"] = {"shrink": s, "final_steps": steps, "target_rmse": target_rmse(),
                   "gains": change_gains(model)}  # fmt: skip
    out["cpu_s"] = time.process_time() - began
    return out


def main(argv: list[str] | None = None) -> int:
    import torch

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dataset", default="estarfm-2001")
    ap.add_argument("--models", default="resstf_prior,edcstfn")
    ap.add_argument("--budget-steps", type=int, default=400)
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    began, cpu = time.time(), time.process_time()
    manifest = load_manifest(ROOT / "manifests" / f"{args.dataset}.yaml")
    dataset, _ = coregister_dataset(load_dataset(manifest), "auto", exclude={manifest.predict})
    target = scene_on(dataset, manifest.predict)
    pairs = [s for s in dataset.scenes if s.fine is not None and s.date != target.date]
    results: dict[str, Any] = {"dataset": args.dataset, "target": target.date.isoformat(),
                               "pairs": [p.date.isoformat() for p in pairs]}  # fmt: skip
    for name in args.models.split(","):
        results[name] = diagnose_model(name, dataset, target, pairs, args.budget_steps)
        print(name, json.dumps(results[name]["rule"], default=str), flush=True)
    results["_run"] = {
        "command": " ".join(sys.argv), "budget_steps": args.budget_steps,
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": platform.platform(), "wall_s": time.time() - began,
        "cpu_s": time.process_time() - cpu, "load_average_end": os.getloadavg(),
        "torch": torch.__version__, "omp_num_threads": os.environ.get("OMP_NUM_THREADS"),
    }  # fmt: skip
    text = json.dumps(results, indent=1, default=lambda v: float(np.asarray(v)))
    print(text)
    if args.out:
        args.out.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
