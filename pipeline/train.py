"""Train-or-load the run's model into a directory (``config.json`` + ``weights.safetensors``).

The directory name is a hash of everything training depends on (model spec,
bands, pair dates, STAC item ids), so a rerun of the same region (a resumed or
killed run) reuses the same weights and writes bit-identical values instead of
retraining with possibly different results.

With ``model.select`` the model is first chosen among ``model.candidates`` by
leaving one clear pair out at a time (:func:`pipeline.select.select_model`);
the choice is trained like a configured model and its table, summary, choice and
rule are written as ``selection.json`` next to the weights. The key covers
``select`` and ``candidates``, so a resumed run finds the same directory and
reuses that choice instead of selecting again.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from pipeline.config import RunConfig
from pipeline.cube.cubes import Cubes
from pipeline.errors import InputError
from pipeline.models.base import Scene
from pipeline.models.registry import create_model, load_model, model_class

if TYPE_CHECKING:
    from pipeline.config import ModelSpec
    from pipeline.select import SelectionResult

#: File of a selected model's directory holding :meth:`SelectionResult.to_dict`.
SELECTION_FILE = "selection.json"


def _training_key(cfg: RunConfig, cubes: Cubes) -> str:
    # candidates and select_folds matter only when selecting: leaving them out otherwise
    # keeps the keys (and so the trained models) of runs configured before they existed
    unused = None if cfg.model.select else {"candidates", "select_folds", "select_budget_s"}
    facts = {
        "model": cfg.model.model_dump(mode="json", exclude=unused),
        "bands": list(cfg.bands),
        "pairs": [p.date.isoformat() for p in cubes.pairs],
        "items": sorted(cubes.fine_ids) + sorted(cubes.coarse_ids),
    }
    return hashlib.sha256(json.dumps(facts, sort_keys=True).encode()).hexdigest()[:16]


def pair_scenes(cubes: Cubes) -> list[Scene]:
    """The reference pairs as in-memory scenes (band, y, x) float32 (computes the dask arrays)."""
    import dask

    fine_days = {p: i for i, p in enumerate(cubes.fine["time"].values.astype("datetime64[D]"))}
    coarse_days = {
        p: i for i, p in enumerate(cubes.coarse_on_fine["time"].values.astype("datetime64[D]"))
    }
    fine_idx = [fine_days[np.datetime64(p.date, "D")] for p in cubes.pairs]
    coarse_idx = [coarse_days[np.datetime64(p.coarse_date, "D")] for p in cubes.pairs]
    fine, coarse = dask.compute(
        cubes.fine.isel(time=fine_idx).data, cubes.coarse_on_fine.isel(time=coarse_idx).data
    )
    return [
        Scene(p.date, coarse[i].astype(np.float32), fine[i].astype(np.float32))
        for i, p in enumerate(cubes.pairs)
    ]


def _params(spec: ModelSpec, name: str, ratio: int | None = None) -> dict[str, Any]:
    """Constructor parameters of model ``name`` under ``spec``.

    Trainable models get the spec's training settings (epochs, patch, batch size,
    seed); ``spec.params`` belong to ``spec.name`` and go to that model only.
    Models that need the coarse ratio (``needs_ratio``, Fit-FC) get ``ratio``
    (the grid's ``coarse_factor``) unless the params set it.
    """
    params = dict(spec.params) if name == spec.name else {}
    if ratio is not None and getattr(model_class(name), "needs_ratio", False):
        params.setdefault("ratio", ratio)
    if model_class(name).trainable:
        train = {"epochs": spec.epochs, "patch": spec.patch_size, "batch_size": spec.batch_size}
        params = {**train, "seed": spec.seed, **params}
    return params


def select_for(cfg: RunConfig, scenes: list[Scene]) -> SelectionResult:
    """Choose among ``cfg.model.candidates`` on ``scenes`` (>= 3 clear pairs, else InputError).

    Every candidate runs at ``cfg.model.size`` with its :func:`_params`; ERGAS uses
    the grid's fine/coarse ratio ``1 / coarse_factor``.
    """
    from pipeline.select import select_model

    spec = cfg.model
    if len(scenes) < 3:
        raise InputError(
            f"model selection needs >= 3 clear pairs, found {len(scenes)} over region "
            f"{cfg.region.name!r}; widen time.start..time.end or time.search_margin_days"
        )
    factor = cfg.grid.coarse_factor
    params = {name: _params(spec, name, factor) for name in spec.candidates}
    return select_model(
        scenes, spec.candidates, cfg.bands, spec.size,
        ratio=1.0 / cfg.grid.coarse_factor, params=params, max_folds=spec.select_folds,
        budget_s=spec.select_budget_s,
    )  # fmt: skip


def read_selection(model_dir: Path) -> dict[str, Any] | None:
    """The ``selection.json`` of a model directory (None when the model was not selected)."""
    path = Path(model_dir) / SELECTION_FILE
    return json.loads(path.read_text()) if path.exists() else None


def model_dir_for(cfg: RunConfig, cubes: Cubes, root: Path, *, progress: bool = True) -> Path:
    """``model.weights`` if given (checked by loading it), else a trained model under ``root``.

    Classic models (STARFM, baselines) are saved untrained with their parameters.
    With ``model.select`` the directory is ``select-<key>`` and also holds
    :data:`SELECTION_FILE`.
    """
    spec = cfg.model
    if spec.weights is not None:
        load_model(spec.weights)  # fails early, one line, on a bad directory
        return Path(spec.weights)
    prefix = "select" if spec.select else spec.name
    target = Path(root) / f"{prefix}-{_training_key(cfg, cubes)}"
    if (target / "weights.safetensors").exists():
        return target
    name, selection = spec.name, None
    scenes = pair_scenes(cubes) if spec.select or model_class(name).trainable else []
    if spec.select:
        selection = select_for(cfg, scenes)
        name = selection.choice
    model = create_model(name, cfg.bands, spec.size, **_params(spec, name, cfg.grid.coarse_factor))
    if model.trainable:
        model.fit(scenes, bands=cfg.bands, progress=progress)
    tmp = target.with_name(target.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    model.save(tmp)
    if selection is not None:
        (tmp / SELECTION_FILE).write_text(json.dumps(selection.to_dict(), indent=1))
    tmp.rename(target)  # atomic: a killed run never leaves a half-written model to reuse
    return target
