"""Why learned models do not beat their naive start: oracles and a short training run.

    OMP_NUM_THREADS=1 nice -n 5 python benchmarks/training_diagnosis.py [--steps 150]
        [--models edcstfn,resstf_prior] [--size small] [--patch 64] [--lr 5e-4,2e-3]
        [--oracles-only] [--out benchmarks/training-diagnosis.json]

On the synthetic season of ``benchmarks/fusion_accuracy.py`` (160 x 160 px, eleven
clear dates, target 2024-07-18, co-registered as ``stf evaluate`` does) it splits the
naive start's error on the target into what no model can remove and what is
structured, using the world's noise-free truth (never shown to a model):

* ``target noise``: the scored Landsat image's own sensor noise (|obs - truth|);
* ``start vs truth``: the start's error against the noise-free truth;
* ``clean refs``: the start built from noise-free fine references (the part of the
  error that is reference noise);
* oracles that add the true mean residual per *parcel* / per *class* to the start
  (what an unmixing of the coarse change by field / class could gain at most).

Then each learned model trains for ``--steps`` optimiser steps (one torch thread)
and prints its held-back loss per epoch against the start.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pipeline.config import BANDS  # noqa: E402
from pipeline.evaluate.manifest import load_manifest  # noqa: E402
from pipeline.evaluate.rasters import coregister_dataset, load_dataset, scene_on  # noqa: E402
from pipeline.models import FusionInput, Scene, create_model  # noqa: E402
from pipeline.models.base import inverse_time_weights  # noqa: E402
from pipeline.models.baselines import blend_smoothed, choose_smoothing  # noqa: E402
from pipeline.models.pairs import choose_scenes  # noqa: E402

EXPORT = ("green", "red", "nir")


def season(folder: Path) -> tuple[Any, list[Scene], Scene, tuple[int, ...]]:
    """World, training pairs, target scene (co-registered) and the exported band indices."""
    from pipeline.synth import WorldSpec, build_world
    from pipeline.synth.export import export_manifest

    spec = WorldSpec.tiny(width=160, height=160, end=dt.date(2024, 8, 31))
    world = build_world(folder / "world", spec)
    path = export_manifest(world, folder / "export", dates=world.landsat_dates(), bands=EXPORT)
    manifest = load_manifest(path)
    target_date = dt.date(2024, 7, 18)
    dataset, _ = coregister_dataset(load_dataset(manifest), "auto", exclude={target_date})
    target = scene_on(dataset, target_date)
    pairs = [s for s in dataset.scenes if s.fine is not None and s.date != target_date]
    return world, pairs, target, tuple(BANDS.index(b) for b in EXPORT)


def rmse(a: np.ndarray, b: np.ndarray) -> float:
    """Band-mean RMSE over pixels finite in both."""
    ok = np.isfinite(a) & np.isfinite(b)
    return float(np.mean([np.sqrt(np.mean((a[i] - b[i])[ok[i]] ** 2)) for i in range(len(a))]))


def group_oracle(start: np.ndarray, truth: np.ndarray, groups: np.ndarray) -> np.ndarray:
    """``start`` + the true mean residual of each group (per band)."""
    out = start.copy()
    ids = np.unique(groups)
    for b in range(len(start)):
        resid = truth[b] - start[b]
        sums = np.bincount(groups.ravel(), np.nan_to_num(resid).ravel(), minlength=ids.max() + 1)
        counts = np.bincount(groups.ravel(), minlength=ids.max() + 1)
        out[b] = start[b] + (sums / np.maximum(counts, 1))[groups]
    return out


def probe_features(refs: tuple[Scene, ...], target: Scene, window: int, blend: str) -> tuple:
    """(start, features (F, y, x)) of one task: what a pixel-wise linear model may use.

    The inputs of ``pair_features`` blended over the references as the start is, plus
    the fine reference's 3x3 / 5x5 local means minus itself (spatial denoising).
    """
    from scipy.ndimage import uniform_filter

    from pipeline.models.baselines import box_mean

    start = blend_smoothed(refs, target, window, blend)[0]
    w = inverse_time_weights(refs, target.date) if blend == "time" else None
    use = refs if w is not None else (refs[0],)
    w = w if w is not None else np.ones(1)
    ref_f = sum(wi * r.fine for wi, r in zip(w, use, strict=True))
    ref_c = sum(wi * r.coarse for wi, r in zip(w, use, strict=True))
    change = box_mean(target.coarse - ref_c, window)
    dev = ref_f - ref_c
    feats = [np.ones_like(start[:1]), ref_f, ref_c, target.coarse, target.coarse - ref_c, dev,
             change, (dev[:, None] * change[None]).reshape(-1, *dev.shape[1:])]  # fmt: skip
    for k in (3, 5):
        feats.append(uniform_filter(ref_f, (1, k, k), mode="nearest") - ref_f)
    return start, np.concatenate(feats).astype(np.float64)


def linear_probe(pairs: list[Scene], target: Scene, window: int, blend: str) -> dict:
    """Least-squares residual (fine - start) on the features, fitted on training tasks.

    ``transfer``: fitted on every training pair predicted from its neighbours (the
    gap-matched tasks), applied to the target; ``in-sample``: fitted on the target
    itself (an upper bound for a pixel-wise linear model of these inputs).
    """
    from pipeline.models.baselines import rule_tasks

    rows, ys = [], []
    for refs, tgt in rule_tasks(pairs):
        start, f = probe_features(refs, tgt, window, blend)
        rows.append(f.reshape(len(f), -1).T)
        ys.append((tgt.fine - start).reshape(len(start), -1).T)
    x, y = np.concatenate(rows), np.concatenate(ys)
    ok = np.isfinite(x).all(1) & np.isfinite(y).all(1)
    coef = np.linalg.lstsq(x[ok], y[ok], rcond=None)[0]
    refs = choose_scenes(pairs, target.date, (1, 2))
    start, f = probe_features(refs, target, window, blend)
    xt = f.reshape(len(f), -1).T
    pred = start + (np.nan_to_num(xt) @ coef).T.reshape(start.shape)
    yt = (target.fine - start).reshape(len(start), -1).T
    okt = np.isfinite(xt).all(1) & np.isfinite(yt).all(1)
    own = np.linalg.lstsq(xt[okt], yt[okt], rcond=None)[0]
    insample = start + (np.nan_to_num(xt) @ own).T.reshape(start.shape)
    return {
        "probe_transfer_rmse": rmse(pred, target.fine),
        "probe_in_sample_rmse": rmse(insample, target.fine),
        "probe_features": len(f),
    }


def oracles(world: Any, pairs: list[Scene], target: Scene, idx: tuple[int, ...]) -> dict:
    """The error decomposition of the module doc (reflectance RMSE, band mean)."""
    choice = choose_smoothing(pairs)
    refs = choose_scenes(pairs, target.date, (1, 2))
    start = blend_smoothed(refs, target, choice.window, choice.blend)[0]
    truth = world.truth(target.date)[list(idx)]
    clean_refs = tuple(Scene(r.date, r.coarse, world.truth(r.date)[list(idx)]) for r in refs)
    clean = blend_smoothed(clean_refs, target, choice.window, choice.blend)[0]
    land = world.landscape
    obs = target.fine
    return {
        "choice": {"window": choice.window, "blend": choice.blend},
        "refs": [r.date.isoformat() for r in refs],
        "start_rmse": rmse(start, obs),
        "target_noise_rmse": rmse(truth, obs),
        "start_vs_truth_rmse": rmse(start, truth),
        "clean_refs_start_vs_truth_rmse": rmse(clean, truth),
        "parcel_oracle_rmse": rmse(group_oracle(start, truth, land.parcel), obs),
        "class_oracle_rmse": rmse(group_oracle(start, truth, land.labels().astype(int)), obs),
        **linear_probe(pairs, target, choice.window, choice.blend),
    }


def train_once(name: str, pairs: list[Scene], target: Scene, args, lr: float) -> dict:
    """Train ``name`` for ``args.steps`` steps; held-back curve and target RMSE."""
    import torch

    torch.set_num_threads(1)
    params = {"budget_steps": args.steps, "budget_s": None, "patch": args.patch, "lr": lr,
              "steps_per_epoch": args.per_epoch, "patience": 100}  # fmt: skip
    model = create_model(name, bands=EXPORT, size=args.size, **params)
    began = time.perf_counter()
    report = model.fit(pairs, bands=EXPORT, progress=True)
    seconds = time.perf_counter() - began
    refs = choose_scenes(pairs, target.date, model.n_refs)
    inputs = FusionInput(refs, Scene(target.date, target.coarse), EXPORT)
    trained = rmse(model.predict(inputs).fine, target.fine)
    model.net.load_state_dict(model.start_state)
    start = rmse(model.predict(inputs).fine, target.fine)
    curve = [(h["epoch"], h["val_loss"] ** 0.5, h.get("loss")) for h in report.history]
    return {"model": name, "lr": lr, "steps": report.steps, "seconds": seconds,
            "validation": report.validation, "start_val_rmse": report.start_val_rmse,
            "end_val_rmse": report.end_val_rmse, "curve": curve,
            "target_start_rmse": start, "target_trained_rmse": trained,
            "window": model.params.get("change_window"), "blend": model.blend_name(),
            "halo": model.halo, "notes": report.notes}  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=150)
    ap.add_argument("--per-epoch", type=int, default=15)
    ap.add_argument("--models", default="edcstfn,resstf_prior")
    ap.add_argument("--size", default="small")
    ap.add_argument("--patch", type=int, default=64)
    ap.add_argument("--lr", default="5e-4")
    ap.add_argument("--oracles-only", action="store_true")
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args(argv)
    out: dict[str, Any] = {"machine": platform.platform(), "date": dt.datetime.now(dt.UTC)
                           .strftime("%Y-%m-%d %H:%M UTC"), "argv": sys.argv}  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        world, pairs, target, idx = season(Path(tmp))
        out["oracles"] = oracles(world, pairs, target, idx)
        print(json.dumps(out["oracles"], indent=1), flush=True)
        runs = []
        if not args.oracles_only:
            for name in args.models.split(","):
                for lr in (float(v) for v in args.lr.split(",")):
                    runs.append(train_once(name, pairs, target, args, lr))
                    print(json.dumps(runs[-1]), flush=True)
        out["runs"] = runs
    if args.out:
        args.out.write_text(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
