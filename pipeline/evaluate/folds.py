"""Fold-wise evaluation: every date with a fine image predicted from the others.

One target date says little about a model (estarfm-2001 has one standard
target); with three or more clear dates each takes its turn as the held-out
target, trained on and predicted from the remaining ones with the shared pair
rule, and the mean and spread over folds are reported next to the same
statistics of the best naive baseline.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from pipeline.errors import InputError
from pipeline.evaluate.manifest import load_manifest
from pipeline.evaluate.rasters import load_dataset
from pipeline.evaluate.runner import SHORT, evaluate_on

#: Fewest dates with a fine image for fold-wise evaluation (each fold keeps two).
MIN_DATES = 3


def _stats(values: list[float]) -> dict[str, float]:
    arr = np.asarray(values, dtype=np.float64)
    return {"mean": float(arr.mean()), "std": float(arr.std(ddof=1)) if arr.size > 1 else 0.0}


def evaluate_folds(
    manifest_path: str | Path, model_name: str, *, size: str = "tiny", **params: Any
) -> dict[str, Any]:
    """Leave-one-date-out evaluation of ``model_name`` over a manifest.

    Returns
    -------
    {"model", "dataset", "folds": [per-fold result (see runner.Evaluation.result)],
     "summary": {metric: {"mean", "std"}}, "best_baseline": {metric: {"mean", "std"}}}
    where the best baseline of each fold is the naive model with the lowest RMSE there.
    """
    manifest = load_manifest(manifest_path)
    dataset = load_dataset(manifest)
    dates = [s.date for s in dataset.scenes if s.fine is not None]
    if len(dates) < MIN_DATES:
        raise InputError(
            f"manifest {manifest.path}: dates: fold-wise evaluation needs {MIN_DATES} dates "
            f"with a fine image, found {len(dates)}; evaluate its predict date instead"
        )
    folds = [evaluate_on(dataset, d, model_name, size=size, **params).result for d in dates]
    summary = {m: _stats([f["overall"][m] for f in folds]) for m in SHORT}
    best = {m: _stats([f["best_baseline"][m] for f in folds]) for m in SHORT}
    return {
        "model": model_name,
        "dataset": manifest.name,
        "folds": folds,
        "summary": summary,
        "best_baseline": best,
    }
