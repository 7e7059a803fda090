"""The stage functions: search -> cubes -> model (train | select | load) -> fuse -> products.

Each takes the frozen run configuration and the previous stage's artefact and
returns its own artefact (:mod:`pipeline.stages.artefacts`). :func:`pipeline.run.run`
calls them in one process; ``flows/`` calls the very same functions as Prefect tasks,
saving each artefact to the run directory and loading it in the next task.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipeline.catalog.search import SearchResult
from pipeline.config import ProductsSpec, RunConfig
from pipeline.cube.cubes import CubeFacts, Cubes, load_cubes
from pipeline.errors import InputError
from pipeline.stages.artefacts import CubeSet, FusedStore, Items, TrainedModel, store_url
from pipeline.stages.search import search as search
from pipeline.stages.size import RunEstimate, check_size, estimate
from pipeline.store.template import remove_store
from pipeline.store.write import check_region

if TYPE_CHECKING:
    from distributed import Client

#: A pair is a usable reference in a block when at least this fraction of it is clear.
MIN_BLOCK_CLEAR = 0.5

Log = Callable[[str], None]


def _quiet(_msg: str) -> None:
    """A log that drops its lines (the flows log through Prefect instead)."""


# --- search and cubes ----------------------------------------------------------------


def build_cubes(
    cfg: RunConfig, result: SearchResult, *, progress: bool = False, facts: CubeFacts | None = None
) -> Cubes:
    """The lazy cubes of ``result`` (InputError when no clear fine/coarse pair is found)."""
    from pipeline.progress import progress_bar

    with progress_bar(desc="cubes (clear fractions)", unit="task", disable=not progress) as bar:

        def tick(done: int, total: int) -> None:
            bar.total = total
            bar.update(done - bar.n)  # the bar throttles its output

        cubes = load_cubes(cfg, result, progress=tick, facts=facts)
    if not cubes.pairs:
        raise InputError(
            f"no clear fine/coarse pair over region {cfg.region.name!r} near "
            f"{cfg.time.start}..{cfg.time.end}; widen time.search_margin_days or the dates"
        )
    return cubes


def size(cfg: RunConfig, items: Items) -> RunEstimate:
    """The run's size from the search alone (pixels, days, bands, bytes, tasks, coverage)."""
    return estimate(cfg, items.result)


def cubes(cfg: RunConfig, items: Items, *, progress: bool = False, log: Log = _quiet) -> CubeSet:
    """Size the run, then load and mask the cubes of ``items`` on its grid and find the pairs.

    Raises
    ------
    InputError : the region reaches beyond the items found or the run beyond
        ``compute.max_run_gib`` (:func:`pipeline.stages.size.check_size`), before any read.
    """
    sized = size(cfg, items)
    log(f"  size: {sized.describe()}")
    check_size(cfg, sized)
    return CubeSet(items, build_cubes(cfg, items.result, progress=progress))


# --- model -----------------------------------------------------------------------------


def model(cfg: RunConfig, cube_set: CubeSet, *, progress: bool = False) -> TrainedModel:
    """Load ``model.weights``, or select and/or train the model on the clear pairs.

    The directory is ``<output_root>/models/<name>-<key>`` keyed by everything training
    depends on, so a rerun (a resumed run, the flow after the CLI) reuses the weights.
    """
    from pipeline.train import model_dir_for

    directory = model_dir_for(cfg, cube_set.cubes, cfg.output_root / "models", progress=progress)
    return TrainedModel.load(directory)


# --- fuse ------------------------------------------------------------------------------


def check_store_region(cfg: RunConfig) -> None:
    """StoreError early if the store exists and holds another region (the grid is checked later)."""
    if not cfg.store.overwrite:
        check_region(store_url(cfg), cfg.region.name)


@contextlib.contextmanager
def store_lock(cfg: RunConfig) -> Iterator[None]:
    """Hold the store's writer lock; check its region and apply ``store.overwrite`` under it."""
    from pipeline.store.lock import StoreLock

    with StoreLock(store_url(cfg)):
        check_store_region(cfg)
        if cfg.store.overwrite:
            remove_store(store_url(cfg))  # its lock file stays: we hold it
        yield


def _provenance(cfg: RunConfig, cubes: Cubes, trained: TrainedModel) -> dict[str, Any]:
    prov: dict[str, Any] = {
        "config": cfg.model_dump(mode="json"),
        "fine_items": list(cubes.fine_ids),
        "coarse_items": list(cubes.coarse_ids),
        "skipped_items": [asdict(s) for s in cubes.skipped],
        "coregistration": cubes.coregistration and cubes.coregistration.to_dict(),
    }
    if trained.selection is not None:  # model.select: the leave-one-pair-out table and choice
        prov["model_selection"] = trained.selection
    return prov


def _fuse_locked(
    cfg: RunConfig, cube_set: CubeSet, trained: TrainedModel, client: Client, *, resume: bool,
    progress: bool,
) -> FusedStore:  # fmt: skip
    from pipeline.fuse.dispatch import Sources
    from pipeline.fuse.engine import FuseRequest, fuse_into_store
    from pipeline.store.layout import Grid

    cubes_ = cube_set.cubes
    request = FuseRequest(
        url=store_url(cfg),
        region=cfg.region.name,
        days=tuple(cfg.time.days()),
        bands=cfg.bands,
        chunks=(cfg.chunks.time, cfg.chunks.y, cfg.chunks.x),
        sharding=cfg.store.sharding,
        batch_days=cfg.compute.batch_days,
        gpu=cfg.compute.gpu,
        min_clear=MIN_BLOCK_CLEAR,
        resume=resume,
        window_mib=cfg.compute.window_mib,
    )
    bands = list(cfg.bands)
    sources = Sources(
        fine=cubes_.fine.sel(band=bands),
        coarse=cubes_.coarse.sel(band=bands),
        factor=cfg.grid.coarse_factor,
        pairs=tuple(p.date for p in cubes_.pairs),
    )
    outcome = fuse_into_store(
        client, sources, Grid.from_geobox(cubes_.geobox), trained.payload, request,
        _provenance(cfg, cubes_, trained), progress=progress, lock=False,
    )  # fmt: skip
    return FusedStore(request.url, outcome)


def fuse(
    cfg: RunConfig,
    cube_set: CubeSet,
    trained: TrainedModel,
    *,
    client: Client | None = None,
    scheduler: str | None = None,
    resume: bool = True,
    progress: bool = False,
    locked: bool = False,
    log: Log = _quiet,
) -> FusedStore:
    """Fuse ``cfg.time``'s days over every block into the store, resuming from what it holds.

    Parameters
    ----------
    client : a Dask client to use; else one is opened on ``scheduler`` /
        ``compute.scheduler`` or a new LocalCluster, for this stage only.
    resume : skip blocks the store marks final (False re-fuses every day of the range).
    locked : the caller already holds :func:`store_lock` (``pipeline.run`` holds it for
        the whole chain); else it is taken here, with ``store.overwrite`` applied under it.
    """
    from pipeline.fuse.cluster import open_client

    with contextlib.ExitStack() as stack:
        if not locked:
            stack.enter_context(store_lock(cfg))
        if client is None:
            client = stack.enter_context(open_client(cfg.compute, scheduler, log=log))
        return _fuse_locked(cfg, cube_set, trained, client, resume=resume, progress=progress)


# --- products ----------------------------------------------------------------------------


def products(
    spec: ProductsSpec,
    store: FusedStore,
    out_dir: Path,
    *,
    run_id: str | None = None,
    overwrite: bool = False,
) -> dict[str, Path]:
    """The products ``spec`` asks for, from the store, in ``<out_dir>/products/<run_id>/``.

    Returns the paths written by :func:`pipeline.products.run_products` (``manifest``
    included; ``run_id`` defaults to a UTC timestamp); an empty dict when no product
    is enabled.
    """
    from pipeline.products import run_products

    if not spec.any:
        return {}
    return run_products(store.url, spec, out_dir, run_id=run_id, overwrite=overwrite)
