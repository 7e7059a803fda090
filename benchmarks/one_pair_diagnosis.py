"""What one reference pair can tell a fusion model: the start rule's window and two
one-pair training tasks, measured on the real sets.

    OMP_NUM_THREADS=1 nice -n 5 python benchmarks/one_pair_diagnosis.py
        [--datasets lgc-2004,estarfm-2001] [--steps 400] [--out benchmarks/one-pair-diagnosis.json]

For each manifest's ``predict`` date and each training pair used alone as the reference
(co-registered as ``stf evaluate`` does; RMSE as the benchmark scores it, band means
over the manifest's mask):

* ``window``: the change's box width the pair itself supports
  (:func:`pipeline.models.baselines.pair_window`, the start rule with one pair) against
  the target's RMSE of ``fine_ref + box_w(coarse change)`` for every candidate ``w``;
* ``kernel``: a least-squares interpolation kernel (k x k per band) mapping the pair's
  coarse image onto its fine image, applied to the coarse change instead of the box;
* ``resstf compensation``: the published ResStf (``small``, ``--steps`` steps, one
  network per pair learning ``fine - coarse`` from the coarse image) used as a change
  compensation, ``fine_ref + box_w(change) + f(c_t) - f(c_ref)`` (f = 0 is the start),
  inverse-time blended over the manifest's references; ``half`` adds half of it.

Only the untrained references' fine images and the coarse images reach a model; the
target's fine image only scores.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
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
from pipeline.models import Prediction, Scene, create_model  # noqa: E402
from pipeline.models.base import inverse_time_weights  # noqa: E402
from pipeline.models.baselines import CHANGE_WINDOWS, box_mean, pair_window  # noqa: E402
from pipeline.models.pairs import choose_scenes  # noqa: E402

KERNELS = (9, 17, 25)


def fit_kernel(coarse: np.ndarray, fine: np.ndarray, k: int, n: int = 40_000) -> np.ndarray:
    """(k, k) ridge least-squares kernel with ``correlate(coarse - mean) ~ fine - mean``."""
    from numpy.lib.stride_tricks import sliding_window_view

    win = sliding_window_view(np.pad(coarse, k // 2, mode="edge"), (k, k))
    ys, xs = np.nonzero(np.isfinite(fine) & np.isfinite(coarse))
    pick = np.random.default_rng(0).choice(len(ys), min(n, len(ys)), replace=False)
    x = np.nan_to_num(win[ys[pick], xs[pick]].reshape(len(pick), -1) - np.nanmean(coarse))
    y = fine[ys[pick], xs[pick]] - np.nanmean(fine)
    gram = x.T @ x + 1e-6 * len(pick) * np.eye(x.shape[1])
    return np.linalg.solve(gram, x.T @ y).reshape(k, k)


def probe_pair(rmse: Any, ref: Scene, target: Scene) -> dict[str, Any]:
    """Window and kernel probes of one reference pair (module doc)."""
    from scipy.ndimage import correlate

    change = target.coarse - ref.coarse
    chosen, errors = pair_window(ref, CHANGE_WINDOWS)
    boxes = {w: rmse(ref.fine + box_mean(change, w)) for w in CHANGE_WINDOWS}
    kernels = {}
    for k in KERNELS:
        smooth = [correlate(np.nan_to_num(change[b]), fit_kernel(ref.coarse[b], ref.fine[b], k),
                            mode="nearest") for b in range(len(change))]  # fmt: skip
        kernels[k] = rmse(ref.fine + np.stack(smooth))
    return {
        "ref": ref.date.isoformat(), "pair_window": chosen, "pair_window_mse": errors,
        "target_rmse_by_window": boxes, "target_best_window": min(boxes, key=boxes.get),
        "target_rmse_by_kernel": kernels,
    }  # fmt: skip


def resstf_compensation(
    rmse: Any, pairs: list[Scene], target: Scene, bands: tuple[str, ...], steps: int
) -> dict[str, Any]:
    """ResStf's same-date residual as a change compensation (module doc)."""
    began = time.process_time()
    model = create_model("resstf", bands=bands, size="small", budget_steps=steps)
    model.fit(pairs, bands=bands, progress=False)
    refs = choose_scenes(pairs, target.date, (1, 2))
    weights = inverse_time_weights(refs, target.date)

    def residual(ref: Scene, coarse: np.ndarray, date: dt.date) -> np.ndarray:
        return model._run_tiled([ref], Scene(date, coarse)) - coarse

    comp = {r.date: residual(r, target.coarse, target.date) - residual(r, r.coarse, r.date)
            for r in refs}  # fmt: skip
    rows = {}
    for w in (1, 9, 17, 33):
        base = [r.fine + box_mean(target.coarse - r.coarse, w) for r in refs]
        rows[w] = {
            name: rmse(sum(k * (b + share * comp[r.date])
                           for k, b, r in zip(weights, base, refs, strict=True)))
            for name, share in (("start", 0.0), ("comp", 1.0), ("half", 0.5))
        }  # fmt: skip
    sr = sum(k * (target.coarse + residual(r, target.coarse, target.date))
             for k, r in zip(weights, refs, strict=True))  # fmt: skip
    return {
        "refs": [r.date.isoformat() for r in refs], "by_window": rows, "resstf_sr": rmse(sr),
        "steps": model.report.steps, "cpu_s": time.process_time() - began,
    }  # fmt: skip


def diagnose(name: str, steps: int) -> dict[str, Any]:
    """Every probe on one manifest (``manifests/<name>.yaml``)."""
    manifest = load_manifest(ROOT / "manifests" / f"{name}.yaml")
    dataset, _ = coregister_dataset(load_dataset(manifest), "auto", exclude={manifest.predict})
    target = scene_on(dataset, manifest.predict)
    pairs = [s for s in dataset.scenes if s.fine is not None and s.date != target.date]

    def rmse(pred: np.ndarray) -> float:
        return float(_score(dataset, target, Prediction(pred.astype(np.float32))).overall["rmse"])

    out = {"target": target.date.isoformat(), "pairs": [probe_pair(rmse, r, target) for r in pairs]}
    if steps > 0:
        out["resstf_compensation"] = resstf_compensation(rmse, pairs, target, manifest.bands, steps)
    return out


def main(argv: list[str] | None = None) -> int:
    import torch

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--datasets", default="lgc-2004,estarfm-2001")
    ap.add_argument("--steps", type=int, default=400, help="ResStf steps (0: skip it)")
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    began, cpu = time.time(), time.process_time()
    results = {d: diagnose(d, args.steps) for d in args.datasets.split(",")}
    results["_run"] = {
        "command": " ".join(sys.argv),
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": platform.platform(), "wall_s": time.time() - began,
        "cpu_s": time.process_time() - cpu, "load_average_end": os.getloadavg(),
        "torch": torch.__version__,
    }  # fmt: skip
    text = json.dumps(results, indent=1, default=str)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
