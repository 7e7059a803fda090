"""Train a model on a manifest's other dates, predict the target date, score it.

The model never sees the target date's fine image: it is trained (when
trainable) on every other date that has a fine image, and predicts from the
nearest pair before and after the target (or the nearest one, for single-pair
models or when only one side exists).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.errors import InputError
from pipeline.evaluate.manifest import load_manifest
from pipeline.evaluate.rasters import coregister_dataset, load_dataset, scene_on
from pipeline.metrics import score
from pipeline.models.base import FusionInput, Prediction, Scene
from pipeline.models.registry import create_model


@dataclass(frozen=True)
class Evaluation:
    """One evaluation: the JSON-ready ``result``, and the arrays for figures.

    Attributes
    ----------
    result : {"model", "dataset", "target_date", "convention", "per_band", "overall",
        "seconds": {"train", "predict"}, "params", "size"}.
    truth : (band, y, x) float32 target fine image (NaN where masked).
    prediction : the model's :class:`~pipeline.models.base.Prediction`.
    bands : band names.
    """

    result: dict[str, Any]
    truth: np.ndarray
    prediction: Prediction
    bands: tuple[str, ...]


def choose_refs(pairs: list[Scene], target: Scene, n_refs: tuple[int, ...]) -> tuple[Scene, ...]:
    """Nearest pair before and after the target when the model takes two, else the nearest."""
    by_gap = sorted(pairs, key=lambda s: abs((s.date - target.date).days))
    before = [s for s in by_gap if s.date < target.date][:1]
    after = [s for s in by_gap if s.date > target.date][:1]
    if 2 in n_refs and len(pairs) >= 2:
        chosen = before + after if before and after else by_gap[:2]
    else:
        chosen = by_gap[:1]
    return tuple(sorted(chosen, key=lambda s: s.date))


def _params(model: Any) -> int:
    count = getattr(model, "parameter_count", None)
    return int(count()) if callable(count) else 0


def evaluate(
    manifest_path: str | Path,
    model_name: str,
    *,
    size: str = "tiny",
    epochs: int | None = None,
    progress: bool = False,
    coregister: str = "auto",
    **params: Any,
) -> Evaluation:
    """Evaluate ``model_name`` on the manifest's ``predict`` date.

    Raises :class:`~pipeline.errors.InputError` (one line) for manifest, model
    and data problems: unknown model, fewer pairs than the model needs, a target
    date without a fine image to score against. ``coregister`` (``auto``, ``require``,
    ``off``): shift the coarse images onto the fine grid, estimated without the target
    date's fine image (:func:`~pipeline.evaluate.rasters.coregister_dataset`).
    """
    manifest = load_manifest(manifest_path)
    dataset, coregistration = coregister_dataset(
        load_dataset(manifest), coregister, exclude={manifest.predict}
    )
    target = scene_on(dataset, manifest.predict)
    if target.fine is None:
        raise InputError(
            f"manifest {manifest.path}: predict: {manifest.predict} has no fine image to score"
        )
    pairs = [s for s in dataset.scenes if s.fine is not None and s.date != target.date]
    if epochs is not None:
        params["epochs"] = epochs
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
    refs = choose_refs(pairs, target, model.n_refs)
    prediction = model.predict(FusionInput(refs, Scene(target.date, target.coarse), manifest.bands))
    predicted = time.perf_counter()
    scores = score(
        target.fine,
        prediction.fine,
        manifest.bands,
        ratio=1.0 / manifest.ratio,
        mask=dataset.masks[target.date],
    )
    result = {
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
    return Evaluation(result, target.fine, prediction, manifest.bands)
