"""Can a per-pixel blend of the two smoothed-change streams beat the day blend?

    OMP_NUM_THREADS=1 nice -n 5 python benchmarks/blend_diagnosis.py
        [--datasets synthetic,estarfm-2001] [--out benchmarks/blend-diagnosis.json]

The start of ``resstf_prior``/``edcstfn`` and the best naive model on the synthetic
season (``smoothed_change_blend``) predict a date from the reference-pair rule's pairs
before and after it: two streams ``P_k = fine_k + box_w(coarse_t - coarse_k)``, blended
by one inverse-time weight per stream for the whole image. Where the land changed
between reference k and the target, stream k carries the smeared coarse change and the
other stream may be right. Measured here, numpy only, on the start rule's training tasks
(:func:`pipeline.models.baselines.rule_tasks`, two-reference tasks only) and the
manifest's ``predict`` date (RMSE band means; the target scored as the benchmark scores
it, training tasks on their manifest masks):

* ``day``: the day blend (today);
* ``oracle``: per pixel the stream with the smaller error over the bands (upper bound);
* ``change``: STARFM's temporal weight, ``w_k ∝ 1 / (|box_v(dC_k)| + eps)`` (band mean of
  the smoothed coarse change's magnitude), alone and times the day weight; ``v``, ``eps``
  and the day factor chosen on the training tasks (the whole grid on the target too);
* ``oracle_weight``: per pixel the best weight in [0, 1] (the bound of every blend);
* ``smoothed_change_tblend``: the registered naive model (:mod:`pipeline.models.blend`);
* ``logistic``: ``w_1 = sigmoid(log(d_2 / d_1) + theta . g)`` with antisymmetric
  per-pixel features ``g`` (log-ratios of the change magnitudes at several windows and of
  the days, a constant), ``theta`` fitted by least squares of the blended prediction on
  the training tasks and scored on the target.

Only the training pairs reach a rule or a fit; the target's fine image only scores.
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
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pipeline.evaluate.manifest import load_manifest  # noqa: E402
from pipeline.evaluate.rasters import coregister_dataset, load_dataset, scene_on  # noqa: E402
from pipeline.metrics import valid_mask  # noqa: E402
from pipeline.models import FusionInput, Scene, create_model  # noqa: E402
from pipeline.models.baselines import box_mean, choose_window, rule_tasks  # noqa: E402
from pipeline.models.pairs import choose_scenes  # noqa: E402

MAG_WINDOWS = (1, 9, 17, 33)
EPSILONS = (1e-3, 3e-3, 1e-2, 3e-2, 1e-1)
DAY_POWERS = (0.0, 1.0)
FEATURE_WINDOWS = (1, 9, 33)
FIT_PIXELS = 60_000


@dataclass
class Case:
    """Two streams of one task: predictions, change magnitudes, days, truth, mask."""

    date: dt.date
    preds: np.ndarray  # (2, B, y, x) float64
    mags: dict[int, np.ndarray]  # window -> (2, y, x) band-mean |box_v(dC_k)|
    days: np.ndarray  # (2,) |days| to each reference
    truth: np.ndarray  # (B, y, x)
    mask: np.ndarray  # (y, x) bool


def make_case(refs: tuple[Scene, ...], target: Scene, window: int, mask: np.ndarray) -> Case:
    """The two smoothed-change streams of ``target`` from ``refs`` and their features."""
    changes = [target.coarse.astype(np.float64) - r.coarse for r in refs]
    preds = np.stack([r.fine + box_mean(c, window) for r, c in zip(refs, changes, strict=True)])
    windows = sorted(set(MAG_WINDOWS) | set(FEATURE_WINDOWS))
    mags = {v: np.stack([np.abs(box_mean(c, v)).mean(0) for c in changes]) for v in windows}
    days = np.array([abs((r.date - target.date).days) for r in refs], dtype=np.float64)
    assert target.fine is not None
    return Case(target.date, preds, mags, np.maximum(days, 1.0), target.fine, mask)


def blend(case: Case, w1: np.ndarray | float) -> np.ndarray:
    """``w1 P_1 + (1 - w1) P_2``; where one stream is NaN the other alone."""
    p1, p2 = case.preds
    out = w1 * p1 + (1 - w1) * p2
    out = np.where(np.isnan(p1), p2, out)
    return np.where(np.isnan(p2), p1, out)


def rmse(case: Case, pred: np.ndarray) -> float:
    """Band-mean RMSE over the case's mask and pixels finite in both images."""
    ok = valid_mask(case.truth, pred, case.mask)
    return float(np.mean([np.sqrt(np.mean((pred[b] - case.truth[b])[ok] ** 2))
                          for b in range(len(pred))]))  # fmt: skip


def day_w1(case: Case, power: float = 1.0) -> float:
    """Inverse-time weight of stream 1 (``power`` 0: equal weights)."""
    inv = case.days**-power
    return float(inv[0] / inv.sum())


def oracle(case: Case) -> np.ndarray:
    """Per pixel the stream with the smaller squared error summed over bands."""
    err = np.nansum((case.preds - case.truth[None]) ** 2, axis=1)
    return blend(case, (err[0] <= err[1]).astype(np.float64)[None])


def oracle_weight(case: Case) -> np.ndarray:
    """Per pixel the weight in [0, 1] with the least squared error over bands (the bound
    of every per-pixel blend of the two streams; the choice above is one of them)."""
    p1, p2 = case.preds
    d = p1 - p2
    w = np.nansum(d * (case.truth - p2), axis=0) / np.maximum(np.nansum(d * d, axis=0), 1e-12)
    return blend(case, np.clip(w, 0.0, 1.0)[None])


def change_w1(case: Case, v: int, eps: float, power: float) -> np.ndarray:
    """STARFM-style temporal weight of stream 1, (1, y, x): 1/(|dC|+eps), times days^-power."""
    inv = (case.days**-power)[:, None, None] / (case.mags[v] + eps)
    return (inv[0] / inv.sum(0))[None]


def features(case: Case) -> np.ndarray:
    """(F, y, x) antisymmetric features of the logit of stream 1 (constant first)."""
    log_mag = [np.log(case.mags[v][1] + 1e-3) - np.log(case.mags[v][0] + 1e-3)
               for v in FEATURE_WINDOWS]  # fmt: skip
    shape = case.mags[1].shape[1:]
    day_ratio = np.full(shape, np.log(case.days[1] / case.days[0]))
    return np.stack([np.ones(shape), day_ratio, *log_mag])


def logistic_w1(case: Case, theta: np.ndarray) -> np.ndarray:
    """``sigmoid(log(d_2/d_1) + theta . features)``, (1, y, x)."""
    z = np.log(case.days[1] / case.days[0]) + np.tensordot(theta, features(case), axes=1)
    return (1.0 / (1.0 + np.exp(-np.clip(z, -30, 30))))[None]


def fit_logistic(cases: list[Case], seed: int = 0) -> np.ndarray:
    """Least squares of the blended prediction over a pixel sample of ``cases``."""
    from scipy.optimize import least_squares

    rng = np.random.default_rng(seed)
    rows = []
    per_case = max(1, FIT_PIXELS // max(1, len(cases)))
    for case in cases:
        ok = case.mask & np.isfinite(case.truth).all(0) & np.isfinite(case.preds).all((0, 1))
        ys, xs = np.nonzero(ok)
        pick = rng.choice(len(ys), min(per_case, len(ys)), replace=False)
        ys, xs = ys[pick], xs[pick]
        offset = np.log(case.days[1] / case.days[0])
        rows.append((features(case)[:, ys, xs], offset, case.preds[:, :, ys, xs],
                     case.truth[:, ys, xs]))  # fmt: skip
    feats = np.concatenate([r[0] for r in rows], axis=1)
    offset = np.concatenate([np.full(r[0].shape[1], r[1]) for r in rows])
    p1 = np.concatenate([r[2][0] for r in rows], axis=1)
    p2 = np.concatenate([r[2][1] for r in rows], axis=1)
    truth = np.concatenate([r[3] for r in rows], axis=1)

    def residual(theta: np.ndarray) -> np.ndarray:
        w = 1.0 / (1.0 + np.exp(-np.clip(offset + theta @ feats, -30, 30)))
        return (w * p1 + (1 - w) * p2 - truth).ravel()

    return least_squares(residual, np.zeros(len(feats)), method="lm").x


def mean_rmse(cases: list[Case], pred_of: Callable[[Case], np.ndarray]) -> float:
    """Mean over ``cases`` of each case's band-mean RMSE."""
    return float(np.mean([rmse(c, pred_of(c)) for c in cases]))


def diagnose_cases(
    train: list[Case], target: Case, borrowed: dict[str, Any] | None = None
) -> dict[str, Any]:
    """Every blend on the training tasks and on the target (module doc).

    Without training cases (a set with two training dates has no two-reference task)
    the rule's setting and the logistic ``theta`` come from ``borrowed`` (another set's
    result), so the figure says whether they transfer between sets.
    """
    if not train:
        return target_only(target, borrowed)
    out: dict[str, Any] = {}
    for name, fn in (("day", lambda c: blend(c, day_w1(c))), ("oracle", oracle),
                     ("oracle_weight", oracle_weight),
                     ("equal", lambda c: blend(c, 0.5))):  # fmt: skip
        out[name] = {"train": mean_rmse(train, fn), "target": rmse(target, fn(target))}
    grid = {}
    for v in MAG_WINDOWS:
        for eps in EPSILONS:
            for power in DAY_POWERS:

                def fn(c: Case, v=v, eps=eps, power=power) -> np.ndarray:
                    return blend(c, change_w1(c, v, eps, power))

                grid[f"v{v}_eps{eps:g}_days{power:g}"] = {
                    "train": mean_rmse(train, fn), "target": rmse(target, fn(target))
                }  # fmt: skip
    chosen = min(grid, key=lambda k: grid[k]["train"])
    best_alone = min((k for k in grid if k.endswith("days0")), key=lambda k: grid[k]["train"])
    out["change"] = {"chosen_on_train": chosen, **grid[chosen],
                     "chosen_without_days": best_alone, "without_days": grid[best_alone],
                     "grid": grid}  # fmt: skip
    theta = fit_logistic(train)
    names = ["const", "log_day_ratio", *(f"log_mag_ratio_v{v}" for v in FEATURE_WINDOWS)]
    out["logistic"] = {
        "theta": dict(zip(names, theta.tolist(), strict=True)),
        "train": mean_rmse(train, lambda c: blend(c, logistic_w1(c, theta))),
        "target": rmse(target, blend(target, logistic_w1(target, theta))),
    }  # fmt: skip
    return out


def target_only(target: Case, borrowed: dict[str, Any] | None) -> dict[str, Any]:
    """The blends scored on the target alone, settings borrowed from another set."""
    out: dict[str, Any] = {"note": "no two-reference training task: settings borrowed"}
    out["day"] = {"target": rmse(target, blend(target, day_w1(target)))}
    out["oracle"] = {"target": rmse(target, oracle(target))}
    out["oracle_weight"] = {"target": rmse(target, oracle_weight(target))}
    out["equal"] = {"target": rmse(target, blend(target, 0.5))}
    grid = {}
    for v in MAG_WINDOWS:
        for eps in EPSILONS:
            for power in DAY_POWERS:
                w1 = change_w1(target, v, eps, power)
                grid[f"v{v}_eps{eps:g}_days{power:g}"] = {"target": rmse(target, blend(target, w1))}
    out["change"] = {"grid": grid, "best_on_target": min(grid, key=lambda k: grid[k]["target"])}
    if borrowed:
        chosen = borrowed["change"]["chosen_on_train"]
        out["change"].update({"borrowed": chosen, **grid[chosen]})
        theta = np.array(list(borrowed["logistic"]["theta"].values()))
        w1 = logistic_w1(target, theta)
        out["logistic"] = {"theta_borrowed": borrowed["logistic"]["theta"],
                           "target": rmse(target, blend(target, w1))}  # fmt: skip
    return out


def dataset_cases(manifest_path: Path) -> tuple[list[Case], Case, dict[str, Any]]:
    """Training cases (two-reference rule tasks) and the target case of one manifest."""
    manifest = load_manifest(manifest_path)
    dataset, _ = coregister_dataset(load_dataset(manifest), "auto", exclude={manifest.predict})
    target = scene_on(dataset, manifest.predict)
    pairs = [s for s in dataset.scenes if s.fine is not None and s.date != target.date]
    window = choose_window(pairs, blend="time")
    tasks = [(refs, t) for refs, t in rule_tasks(pairs) if len(refs) == 2]
    train = [make_case(refs, t, window, dataset.masks[t.date]) for refs, t in tasks]
    refs = choose_scenes(pairs, target.date, (1, 2))
    case = make_case(tuple(refs), target, window, dataset.masks[target.date])
    model = create_model("smoothed_change_tblend", bands=manifest.bands)
    model.fit(pairs, bands=manifest.bands, progress=False)
    pred = model.predict(FusionInput(refs, Scene(target.date, target.coarse), manifest.bands))
    facts = {"target": target.date.isoformat(), "refs": [r.date.isoformat() for r in refs],
             "window": window, "train_tasks": [t.date.isoformat() for _, t in tasks],
             "smoothed_change_tblend": {"target": rmse(case, pred.fine.astype(np.float64)),
                                        "setting": model.params["change_blend"]}}  # fmt: skip
    return train, case, facts


def synthetic(folder: Path) -> Path:
    """The synthetic season's manifest of ``benchmarks/fusion_accuracy.py``."""
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from fusion_accuracy import synthetic_manifest

    path = synthetic_manifest(folder)
    if path is None:
        raise SystemExit("blend_diagnosis: pipeline.synth is unavailable; install the package")
    return path


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--datasets", default="synthetic,estarfm-2001")
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args(argv)
    began, cpu = time.time(), time.process_time()
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.datasets.split(","):
            path = synthetic(Path(tmp)) if name == "synthetic" else ROOT / f"manifests/{name}.yaml"
            train, target, facts = dataset_cases(path)
            borrowed = next((r for r in results.values() if "logistic" in r and
                             "theta" in r["logistic"]), None)  # fmt: skip
            results[name] = {**facts, **diagnose_cases(train, target, borrowed)}
            print(name, json.dumps({k: v for k, v in results[name].items()
                                    if k != "change"}, default=str), flush=True)  # fmt: skip
    results["_run"] = {
        "command": " ".join(["python", *sys.argv]),
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": platform.platform(), "wall_s": time.time() - began,
        "cpu_s": time.process_time() - cpu, "load_average_end": os.getloadavg(),
    }  # fmt: skip
    text = json.dumps(results, indent=1, default=str)
    if args.out:
        args.out.write_text(text + "\n")
    else:
        print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
