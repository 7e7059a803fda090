"""Train-or-load the run's model into a directory (``config.json`` + ``weights.safetensors``).

The directory name is a hash of everything training depends on (model spec,
bands, pair dates, STAC item ids), so a rerun of the same region (a resumed or
killed run) reuses the same weights and writes bit-identical values instead of
retraining with possibly different results.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import numpy as np

from pipeline.config import RunConfig
from pipeline.cube.cubes import Cubes
from pipeline.models.base import Scene
from pipeline.models.registry import create_model, load_model, model_class


def _training_key(cfg: RunConfig, cubes: Cubes) -> str:
    facts = {
        "model": cfg.model.model_dump(mode="json"),
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


def model_dir_for(cfg: RunConfig, cubes: Cubes, root: Path, *, progress: bool = True) -> Path:
    """``model.weights`` if given (checked by loading it), else a trained model under ``root``.

    Classic models (STARFM, baselines) are saved untrained with their parameters.
    """
    spec = cfg.model
    if spec.weights is not None:
        load_model(spec.weights)  # fails early, one line, on a bad directory
        return Path(spec.weights)
    target = Path(root) / f"{spec.name}-{_training_key(cfg, cubes)}"
    if (target / "weights.safetensors").exists():
        return target
    params = dict(spec.params)
    if model_class(spec.name).trainable:
        train = {"epochs": spec.epochs, "patch": spec.patch_size, "batch_size": spec.batch_size}
        params = {**train, "seed": spec.seed, **params}
    model = create_model(spec.name, cfg.bands, spec.size, **params)
    if model.trainable:
        model.fit(pair_scenes(cubes), bands=cfg.bands, progress=progress)
    tmp = target.with_name(target.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    model.save(tmp)
    tmp.rename(target)  # atomic: a killed run never leaves a half-written model to reuse
    return target
