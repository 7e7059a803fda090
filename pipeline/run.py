"""The composition of the stages: search -> cubes -> model -> fuse -> products.

``run(cfg)`` calls the stage functions of :mod:`pipeline.stages` in one process with
one Dask client, holding the store's writer lock for the whole chain so a second run
(or a bad store path) is refused before minutes of search and loading. The Prefect
flows (``flows/``) call the very same stage functions; nothing here imports Prefect,
and torch is imported only through the models.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from pipeline import stages
from pipeline.config import RunConfig
from pipeline.cube.unreadable import SkippedItem
from pipeline.fuse.cluster import open_client
from pipeline.stages import check_store_region, store_url

__all__ = ["RunSummary", "check_store_region", "run", "store_url"]

Log = Callable[[str], None]


@dataclass(frozen=True)
class RunSummary:
    """What a run did (JSON-ready via :meth:`to_dict`).

    ``pixel_days`` counts every (day, pixel) written by this run; blocks
    already complete in the store are skipped and counted in ``tasks_skipped``.
    ``skipped`` are the STAC items left out because an asset of theirs cannot be read.
    """

    store: str
    days: int
    pixel_days: int
    tasks: int
    tasks_skipped: int
    wall_s: float
    store_bytes: int
    model: str
    weights_sha256: str
    products: dict[str, str] = field(default_factory=dict)
    skipped: tuple[SkippedItem, ...] = ()
    coregistration: dict[str, Any] | None = None  # Coregistration.to_dict() of the cubes

    @property
    def pixels_per_s(self) -> float:
        return self.pixel_days / self.wall_s if self.wall_s > 0 else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "pixels_per_s": self.pixels_per_s}


def _store_bytes(url: str) -> int:
    """Bytes of every object under the store, local path or fsspec URL (``s3://``...)."""
    import fsspec

    fs, path = fsspec.core.url_to_fs(url)
    fs.invalidate_cache(path)  # the cached listing of a shared instance may predate this run
    # one listing with sizes (``du`` would ask for each object's info again)
    return int(sum(info.get("size", 0) for info in fs.find(path, detail=True).values()))


@contextlib.contextmanager
def _stage(name: str, log: Log) -> Iterator[None]:
    start = time.perf_counter()
    log(f"[{name}] ...")
    yield
    log(f"[{name}] done in {time.perf_counter() - start:.1f} s")


def run(
    cfg: RunConfig,
    *,
    scheduler: str | None = None,
    resume: bool = True,
    progress: bool = True,
    log: Log = print,
) -> RunSummary:
    """Search, load cubes, train or load the model, fuse every day into the store, products.

    Parameters
    ----------
    cfg : the run configuration.
    scheduler : address of an existing Dask scheduler (overrides ``compute.scheduler``).
    resume : skip blocks the store marks complete (False re-fuses every day of the range).
    progress : show progress bars.
    log : where stage lines and the dashboard link go.

    Raises
    ------
    InputError, ServiceError, StoreError : one-line user errors (exit 2, 3, 4).
    """
    start = time.perf_counter()
    with stages.store_lock(cfg):
        with _stage("search", log):
            items = stages.search(cfg)
            log(f"  {len(items.result.fine)} fine + {len(items.result.coarse)} coarse items")
        with _stage("cubes", log):
            cube_set = stages.cubes(cfg, items, progress=progress, log=log)
            cube_set.save(stages.run_dir(cfg))  # the notebooks reopen the cubes from here
            _log_cubes(cube_set, log)
        with _stage("model", log):
            trained = stages.model(cfg, cube_set, progress=progress)
            if trained.selection is not None:
                log(f"  model chosen: {trained.selection['choice']} ({trained.selection['rule']})")
        with _stage("fuse", log), open_client(cfg.compute, scheduler, log=log) as client:
            fused = stages.fuse(
                cfg, cube_set, trained, client=client, resume=resume, progress=progress,
                locked=True,
            )  # fmt: skip
        outputs = products_step(cfg, fused, log)
    outcome = fused.outcome
    assert outcome is not None  # fused in this process
    return RunSummary(
        store=fused.url,
        days=len(cfg.time.days()),
        pixel_days=outcome.pixel_days,
        tasks=outcome.tasks,
        tasks_skipped=outcome.tasks_skipped,
        wall_s=time.perf_counter() - start,
        store_bytes=_store_bytes(fused.url),
        model=trained.name(cfg),
        weights_sha256=trained.payload.weights_sha256,
        products={name: str(path) for name, path in outputs.items()},
        skipped=cube_set.cubes.skipped,
        coregistration=cube_set.cubes.coregistration and cube_set.cubes.coregistration.to_dict(),
    )


def _log_cubes(cube_set: stages.CubeSet, log: Log) -> None:
    cubes = cube_set.cubes
    log(f"  grid {cubes.fine.sizes['y']} x {cubes.fine.sizes['x']} px, {len(cubes.pairs)} pairs")
    for item in cubes.skipped:
        log(f"  skipped {item.describe()}")


def products_step(
    cfg: RunConfig, fused: stages.FusedStore | None = None, log: Log = print
) -> dict[str, Path]:
    """The products ``cfg.products`` asks for, from the run's store, in a new versioned folder.

    Outputs go to ``<output_root>/products/<run_id>/`` (see :mod:`pipeline.products`).
    """
    if not cfg.products.any:
        return {}
    fused = fused or stages.FusedStore.load(store_url(cfg))
    with _stage("products", log):
        outputs = stages.products(cfg.products, fused, cfg.output_root)
        log(f"  {len(outputs)} outputs in {outputs['manifest'].parent}")
    return outputs
