"""Train a model on a manifest's other dates, predict the target date, score it.

The model never sees the target date's fine image: it is trained (when
trainable) on every other date that has a fine image, and predicts from the
pairs the shared reference-pair rule gives (:mod:`pipeline.models.pairs`: the
nearest pair before and after, fitted to what the model accepts).

Every result carries the naive baselines scored on the same target from the
same references (:data:`~pipeline.models.baselines.NAIVE_MODELS`, the best by
RMSE named), and for a learned model its own *start* (the untrained network,
which returns its base) and the gain of training over that start: a learned
model is only worth its cost where it beats both.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.errors import InputError
from pipeline.evaluate.checks import check_scorable
from pipeline.evaluate.manifest import Dataset, load_manifest
from pipeline.evaluate.rasters import coregister_dataset, load_dataset, scene_on
from pipeline.metrics import score
from pipeline.models.base import FusionInput, FusionModel, Prediction, Scene
from pipeline.models.baselines import NAIVE_MODELS
from pipeline.models.pairs import choose_scenes
from pipeline.models.registry import create_model, model_class

#: Metrics kept for the baseline and start rows (the full set is in ``overall``).
SHORT = ("rmse", "cc", "ssim")


@dataclass(frozen=True)
class Evaluation:
    """One evaluation: the JSON-ready ``result``, and the arrays for figures.

    Attributes
    ----------
    result : {"model", "dataset", "target_date", "convention", "per_band", "overall",
        "seconds": {"train", "predict"}, "params", "size", "refs", "baselines",
        "best_baseline", "gain_over_best_baseline", and for learned models "training"}.
    truth : (band, y, x) float32 target fine image (NaN where masked).
    prediction : the model's :class:`~pipeline.models.base.Prediction`.
    bands : band names.
    model : the fitted model (for figures of its training curve).
    """

    result: dict[str, Any]
    truth: np.ndarray
    prediction: Prediction
    bands: tuple[str, ...]
    model: Any = None


def choose_refs(pairs: list[Scene], target: Scene, n_refs: tuple[int, ...]) -> tuple[Scene, ...]:
    """The shared pair rule (:func:`pipeline.models.pairs.choose_scenes`), kept for callers."""
    return choose_scenes(pairs, target.date, n_refs)


def _params(model: Any) -> int:
    count = getattr(model, "parameter_count", None)
    return int(count()) if callable(count) else 0


def _short(overall: dict[str, float]) -> dict[str, float]:
    return {k: float(overall[k]) for k in SHORT}


def baseline_rows(
    dataset: Dataset, pairs: list[Scene], target: Scene, names: tuple[str, ...] = NAIVE_MODELS
) -> dict[str, dict[str, float]]:
    """RMSE/CC/SSIM of each naive model on ``target`` (same rule, same training dates)."""
    manifest, rows = dataset.manifest, {}
    for name in names:
        model = create_model(name, bands=manifest.bands, size="full")
        if model.trainable:
            model.fit(pairs, bands=manifest.bands, progress=False)
        refs = choose_scenes(pairs, target.date, model.n_refs)
        pred = model.predict(FusionInput(refs, Scene(target.date, target.coarse), manifest.bands))
        rows[name] = _short(_score(dataset, target, pred).overall)
    return rows


def _score(dataset: Dataset, target: Scene, pred: Prediction) -> Any:
    manifest = dataset.manifest
    assert target.fine is not None
    return score(
        target.fine,
        pred.fine,
        manifest.bands,
        ratio=1.0 / manifest.ratio,
        mask=dataset.masks[target.date],
    )


def _training_rows(
    model: FusionModel, dataset: Dataset, target: Scene, inputs: FusionInput, end_rmse: float
) -> dict[str, Any] | None:
    """Start (untrained network) vs trained on the target date, plus the engine's report."""
    start_state = getattr(model, "start_state", None)
    report = getattr(model, "report", None)
    if start_state is None or report is None:
        return None
    trained_state = {k: v.clone() for k, v in model.net.state_dict().items()}  # type: ignore[attr-defined]
    model.net.load_state_dict(start_state)  # type: ignore[attr-defined]
    start = _short(_score(dataset, target, model.predict(inputs)).overall)
    model.net.load_state_dict(trained_state)  # type: ignore[attr-defined]
    return {
        "start": start,
        "gain_over_start": 1.0 - end_rmse / start["rmse"] if start["rmse"] > 0 else 0.0,
        **report.summary(),
    }


def evaluate_on(
    dataset: Dataset,
    target_date: Any,
    model_name: str,
    *,
    size: str = "tiny",
    progress: bool = False,
    baselines: bool = True,
    coregister: str = "auto",
    **params: Any,
) -> Evaluation:
    """Train on every other clear date of ``dataset``, predict ``target_date``, score it.

    ``coregister`` (``auto``, ``require``, ``off``): shift the coarse images onto the
    fine grid first, estimated without the target date's fine image
    (:func:`~pipeline.evaluate.rasters.coregister_dataset`).
    """
    manifest = dataset.manifest
    dataset, coregistration = coregister_dataset(dataset, coregister, exclude={target_date})
    target = scene_on(dataset, target_date)
    pairs = [s for s in dataset.scenes if s.fine is not None and s.date != target.date]
    check_scorable(dataset, target, pairs)
    if getattr(model_class(model_name), "needs_ratio", False):
        params.setdefault("ratio", round(manifest.ratio))  # the grids', not a default 16
    model = create_model(model_name, bands=manifest.bands, size=size, **params)
    if len(pairs) < min(model.n_refs):
        raise InputError(
            f"manifest {manifest.path}: dates: model {model_name} needs {min(model.n_refs)} "
            f"reference pair(s) besides the target date, found {len(pairs)}"
        )
    start = time.perf_counter()
    if model.trainable:
        model.fit(pairs, bands=manifest.bands, progress=progress)
    trained = time.perf_counter()
    refs = choose_scenes(pairs, target.date, model.n_refs)
    inputs = FusionInput(refs, Scene(target.date, target.coarse), manifest.bands)
    prediction = model.predict(inputs)
    predicted = time.perf_counter()
    scores = _score(dataset, target, prediction)
    result: dict[str, Any] = {
        "model": model_name,
        "dataset": manifest.name,
        "target_date": target.date.isoformat(),
        "convention": scores.convention,
        "per_band": scores.per_band,
        "overall": scores.overall,
        "seconds": {"train": trained - start, "predict": predicted - trained},
        "params": _params(model),
        "size": size,
        "refs": [r.date.isoformat() for r in refs],
        "coregistration": coregistration.to_dict(),
    }
    training = _training_rows(model, dataset, target, inputs, scores.overall["rmse"])
    if training is not None:
        result["training"] = training
    if baselines:
        rows = baseline_rows(dataset, pairs, target)
        best = min(rows, key=lambda n: rows[n]["rmse"])
        result["baselines"] = rows
        result["best_baseline"] = {"model": best, **rows[best]}
        result["gain_over_best_baseline"] = 1.0 - scores.overall["rmse"] / rows[best]["rmse"]
    return Evaluation(result, target.fine, prediction, manifest.bands, model)  # type: ignore[arg-type]


def evaluate(
    manifest_path: str | Path,
    model_name: str,
    *,
    size: str = "tiny",
    epochs: int | None = None,
    progress: bool = False,
    baselines: bool = True,
    coregister: str = "auto",
    **params: Any,
) -> Evaluation:
    """Evaluate ``model_name`` on the manifest's ``predict`` date.

    Raises :class:`~pipeline.errors.InputError` (one line) for manifest, model
    and data problems: unknown model, fewer pairs than the model needs, a target
    date without a fine image to score against, degenerate (all-invalid or
    constant) truth or references.
    """
    manifest = load_manifest(manifest_path)
    dataset = load_dataset(manifest)
    if epochs is not None:
        params["epochs"] = epochs
    return evaluate_on(
        dataset,
        manifest.predict,
        model_name,
        size=size,
        progress=progress,
        baselines=baselines,
        coregister=coregister,
        **params,
    )
