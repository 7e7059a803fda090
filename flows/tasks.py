"""One Prefect task per pipeline stage; each passes a config and artefact paths, never arrays.

Each task calls the stage function of :mod:`pipeline.stages` that ``pipeline.run.run``
calls, saves its artefact in the run directory and returns the path; the next task
loads the artefact from it.

Caching: a task's key is its inputs (the frozen run config and the paths), the
content of the files those paths name (so new search results invalidate the
cubes, a retrained model invalidates fusion) and the task's source: a rerun of
an unchanged region skips every completed fusion step. Search results age: they are
cached for 6 hours only. Products and feeds are never cached: their input is the
store URL, whose content a re-fuse changes under the same name (a run only reaches
them when it fused something, see :mod:`flows.incremental`).
Retries cover transient STAC/blob-store failures; the pipeline's own writes are
idempotent region writes, so a retried fuse resumes where it stopped.

``pipeline.stages`` is imported inside the tasks: a task may execute on a Dask
worker, and building deployments must not need the full scientific stack.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import inspect
from dataclasses import replace
from pathlib import Path
from typing import Any

from prefect import task
from prefect.cache_policies import NO_CACHE
from prefect.context import TaskRunContext

from pipeline.config import ProductsSpec, RunConfig

RETRIES: dict[str, Any] = {"retries": 2, "retry_delay_seconds": [10, 60]}


def _fingerprint(value: Any) -> str:
    """``repr`` of a value; for a path, also its file bytes (or the names and sizes of its tree)."""
    if not isinstance(value, Path) or not value.exists():
        return repr(value)
    if value.is_file():
        return f"{value}:{hashlib.sha256(value.read_bytes()).hexdigest()}"
    files = sorted(p for p in value.rglob("*") if p.is_file())
    return f"{value}:" + ",".join(f"{p.relative_to(value)}={p.stat().st_size}" for p in files)


def step_key(context: TaskRunContext, parameters: dict[str, Any]) -> str:
    """Cache key: the task's source, its inputs and the content of the paths among them."""
    source = inspect.getsource(context.task.fn)
    parts = [source, *(f"{k}={_fingerprint(v)}" for k, v in sorted(parameters.items()))]
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()


@task(cache_key_fn=step_key, cache_expiration=dt.timedelta(hours=6), **RETRIES)
def search(cfg: RunConfig, workdir: Path) -> Path:
    """STAC search; the :class:`~pipeline.stages.Items` are saved under ``workdir``."""
    from pipeline import stages

    return stages.search(cfg).save(workdir)


@task(cache_key_fn=step_key, **RETRIES)
def cubes(cfg: RunConfig, items: Path, workdir: Path) -> Path:
    """Load and mask the cubes, find the pairs; the :class:`~pipeline.stages.CubeSet` is saved."""
    from pipeline import stages

    loaded = stages.Items.load(items)
    cube_set = stages.cubes(cfg, loaded, log=print)  # the size line, in the flow's log
    return replace(cube_set, items_path=items).save(workdir)


@task(cache_key_fn=step_key, **RETRIES)
def model(cfg: RunConfig, cube_set: Path) -> Path:
    """Train (or select and train) the configured model, or load ``model.weights``."""
    from pipeline import stages

    return stages.model(cfg, stages.CubeSet.load(cube_set, cfg)).directory


@task(cache_key_fn=step_key, retries=1)
def fuse(cfg: RunConfig, cube_set: Path, model_dir: Path, resume: bool = True) -> str:
    """Fuse the window's days into the store (region writes); returns the store URL."""
    from pipeline import stages

    loaded = stages.CubeSet.load(cube_set, cfg)
    return stages.fuse(cfg, loaded, stages.TrainedModel.load(model_dir), resume=resume).url


@task(cache_policy=NO_CACHE, retries=1)
def products(store: str, spec: ProductsSpec, out_dir: Path, run_id: str) -> dict[str, Path]:
    """NDVI smoothing, phenology, crop map from the store (the products stage)."""
    from pipeline import stages

    fused = stages.FusedStore.load(store)
    return stages.products(spec, fused, out_dir, run_id=run_id, overwrite=True)


@task(cache_policy=NO_CACHE, retries=1)
def feeds(store: str, spec: ProductsSpec, out_dir: Path, run_id: str) -> dict[str, Path]:
    """Feeds for downstream classifiers (Parquet / Zarr / COG + STAC items)."""
    from pipeline import stages

    fused = stages.FusedStore.load(store)
    return stages.products(spec, fused, out_dir, run_id=f"{run_id}-feeds", overwrite=True)
