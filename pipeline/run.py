"""The orchestration API: search -> cubes -> model -> fuse into the store.

``run(cfg)`` does the whole chain in one process with one Dask client. The
step functions do the same steps separately for an orchestrator (``flows/``):
each takes the frozen config and paths and returns a path or URL, so steps can
be cached, retried and run on different machines::

    items = search_step(cfg, workdir)               # workdir/items.json
    summary = cubes_step(cfg, items, workdir)       # workdir/cubes.json
    model_dir = model_step(cfg, summary, workdir)   # a saved model directory
    url = fuse_step(cfg, summary, model_dir)        # the store, filled and committed

Nothing here imports Prefect; torch is imported only through the models.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from pipeline.config import RunConfig
from pipeline.cube.cubes import CubeFacts, Cubes
from pipeline.cube.unreadable import SkippedItem
from pipeline.errors import InputError
from pipeline.fuse.cluster import open_client
from pipeline.fuse.worker import ModelPayload

#: A pair is a usable reference in a block when at least this fraction of it is clear.
MIN_BLOCK_CLEAR = 0.5

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

    @property
    def pixels_per_s(self) -> float:
        return self.pixel_days / self.wall_s if self.wall_s > 0 else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "pixels_per_s": self.pixels_per_s}


def store_url(cfg: RunConfig) -> str:
    """The store location: ``store.path`` if it is a URL, else under ``output_root``."""
    path = cfg.store.path
    return path if "://" in path else str(cfg.output_root / path)


# --- steps ---------------------------------------------------------------------------


def _search(cfg: RunConfig) -> Any:
    from pipeline.catalog.search import open_endpoint, search_items

    with open_endpoint(cfg) as url:
        return search_items(cfg, url)


def search_step(cfg: RunConfig, workdir: Path) -> Path:
    """Search the catalog; write the items (full STAC JSON) to ``workdir/items.json``."""
    result = _search(cfg)
    workdir.mkdir(parents=True, exist_ok=True)
    path = workdir / "items.json"
    data = {
        "url": result.url,
        "fine": [it.to_dict() for it in result.fine],
        "coarse": [it.to_dict() for it in result.coarse],
    }
    path.write_text(json.dumps(data))
    return path


def _read_items(path: Path) -> Any:
    import pystac

    from pipeline.catalog.search import SearchResult

    data = json.loads(Path(path).read_text())
    items = {k: [pystac.Item.from_dict(d) for d in data[k]] for k in ("fine", "coarse")}
    return SearchResult(fine=items["fine"], coarse=items["coarse"], url=data["url"])


def _load_cubes(
    cfg: RunConfig, result: Any, progress: bool, facts: CubeFacts | None = None
) -> Cubes:
    from pipeline.cube.cubes import load_cubes
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


def cubes_step(cfg: RunConfig, items: Path, workdir: Path) -> Path:
    """Load the cubes lazily, find pairs; write ``workdir/cubes.json``.

    It holds the items path, pairs, the item ids read and the cubes'
    :class:`~pipeline.cube.cubes.CubeFacts` (clear fractions, ``skipped`` items whose
    asset was unreadable): later steps rebuild the same cubes from the items without
    reading every scene again.
    """
    cubes = _load_cubes(cfg, _read_items(items), progress=False)
    path = workdir / "cubes.json"
    summary = {
        "items": str(Path(items).absolute()),
        "pairs": [p.date.isoformat() for p in cubes.pairs],
        "fine_ids": list(cubes.fine_ids),
        "coarse_ids": list(cubes.coarse_ids),
        "shape": list(cubes.fine.shape),
        **CubeFacts.of(cubes).to_dict(),
    }
    path.write_text(json.dumps(summary, indent=1))
    return path


def _cubes_from_summary(cfg: RunConfig, summary: Path) -> Cubes:
    """The cubes of :func:`cubes_step`, rebuilt from its items and facts (no full read)."""
    data = json.loads(Path(summary).read_text())
    facts = CubeFacts.from_dict(data)
    return _load_cubes(cfg, _read_items(Path(data["items"])), progress=False, facts=facts)


def model_step(cfg: RunConfig, cube_summary: Path, workdir: Path) -> Path:
    """Load ``model.weights``, or train the configured model on the pairs; returns its directory."""
    from pipeline.fuse.model_prep import model_dir_for

    return model_dir_for(cfg, _cubes_from_summary(cfg, cube_summary), workdir, progress=False)


def fuse_step(
    cfg: RunConfig, cube_summary: Path, model_dir: Path, *, scheduler: str | None = None
) -> str:
    """Fuse the config's days into the store (resuming); returns the store URL."""
    from pipeline.fuse.model_prep import read_selection

    cubes = _cubes_from_summary(cfg, cube_summary)
    payload = ModelPayload.from_dir(Path(model_dir))
    selection = read_selection(Path(model_dir))
    with open_client(cfg.compute, scheduler, log=lambda _msg: None) as client:
        _fuse(cfg, client, cubes, payload, resume=True, progress=False, selection=selection)
    return store_url(cfg)


# --- the whole run -------------------------------------------------------------------


def _fuse(
    cfg: RunConfig,
    client: Any,
    cubes: Cubes,
    payload: ModelPayload,
    *,
    resume: bool,
    progress: bool,
    lock: bool = True,
    selection: dict[str, Any] | None = None,
) -> Any:
    from pipeline.fuse.dispatch import Sources
    from pipeline.fuse.engine import FuseRequest, fuse_into_store
    from pipeline.store.layout import Grid

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
    prov = {
        "config": cfg.model_dump(mode="json"),
        "fine_items": list(cubes.fine_ids),
        "coarse_items": list(cubes.coarse_ids),
        "skipped_items": [asdict(s) for s in cubes.skipped],
    }
    if selection is not None:  # model.select: the leave-one-pair-out table and the choice
        prov["model_selection"] = selection
    bands = list(cfg.bands)
    sources = Sources(
        fine=cubes.fine.sel(band=bands),
        coarse=cubes.coarse.sel(band=bands),
        factor=cfg.grid.coarse_factor,
        pairs=tuple(p.date for p in cubes.pairs),
    )
    grid = Grid.from_geobox(cubes.geobox)
    return fuse_into_store(
        client, sources, grid, payload, request, prov, progress=progress, lock=lock
    )


def _store_bytes(url: str) -> int:
    from pipeline.store.lock import is_local, local_path

    if not is_local(url):
        return 0
    return sum(p.stat().st_size for p in local_path(url).rglob("*") if p.is_file())


@contextlib.contextmanager
def _stage(name: str, log: Log) -> Iterator[None]:
    start = time.perf_counter()
    log(f"[{name}] ...")
    yield
    log(f"[{name}] done in {time.perf_counter() - start:.1f} s")


def _remove_store(url: str) -> None:
    from pipeline.store.lock import is_local, local_path

    if is_local(url):
        shutil.rmtree(local_path(url), ignore_errors=True)
    else:
        import fsspec

        fs, path = fsspec.core.url_to_fs(url)
        if fs.exists(path):
            fs.rm(path, recursive=True)


def run(
    cfg: RunConfig,
    *,
    scheduler: str | None = None,
    resume: bool = True,
    progress: bool = True,
    log: Log = print,
) -> RunSummary:
    """Search, load cubes, train or load the model, fuse every day into the store.

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
    from pipeline.store.lock import StoreLock

    # the lock is held for the whole run, so a second run (or a bad store path)
    # is refused before minutes of search and loading
    with StoreLock(store_url(cfg)):
        check_store_region(cfg)
        return _run_locked(cfg, scheduler=scheduler, resume=resume, progress=progress, log=log)


def check_store_region(cfg: RunConfig) -> None:
    """StoreError early if the store exists and holds another region (the grid is checked later)."""
    from pipeline.errors import StoreError
    from pipeline.store.write import open_store, store_exists

    url = store_url(cfg)
    if cfg.store.overwrite or not store_exists(url):
        return
    found = open_store(url).attrs.get("stf_region")
    if found != cfg.region.name:
        raise StoreError(
            f"store {url} holds region {found!r}, not {cfg.region.name!r}; use another store.path"
        )


def _run_locked(
    cfg: RunConfig, *, scheduler: str | None, resume: bool, progress: bool, log: Log
) -> RunSummary:
    from pipeline.fuse.model_prep import model_dir_for, read_selection

    start = time.perf_counter()
    if cfg.store.overwrite:
        _remove_store(store_url(cfg))
    with _stage("search", log):
        result = _search(cfg)
        log(f"  {len(result.fine)} fine + {len(result.coarse)} coarse items")
    with _stage("cubes", log):
        cubes = _load_cubes(cfg, result, progress)
        log(
            f"  grid {cubes.fine.sizes['y']} x {cubes.fine.sizes['x']} px, {len(cubes.pairs)} pairs"
        )
        for item in cubes.skipped:
            log(f"  skipped {item.describe()}")
    with _stage("model", log):
        model_dir = model_dir_for(cfg, cubes, cfg.output_root / "models", progress=progress)
        payload = ModelPayload.from_dir(model_dir)
        selection = read_selection(model_dir)
        if selection is not None:
            log(f"  model chosen: {selection['choice']} ({selection['rule']})")
    with _stage("fuse", log), open_client(cfg.compute, scheduler, log=log) as client:
        outcome = _fuse(
            cfg,
            client,
            cubes,
            payload,
            resume=resume,
            progress=progress,
            lock=False,
            selection=selection,
        )
    url = store_url(cfg)
    products = products_step(cfg, log) if cfg.products.any else {}
    return RunSummary(
        store=url,
        days=len(cfg.time.days()),
        pixel_days=outcome.pixel_days,
        tasks=outcome.tasks,
        tasks_skipped=outcome.tasks_skipped,
        wall_s=time.perf_counter() - start,
        store_bytes=_store_bytes(url),
        model=selection["choice"] if selection is not None else cfg.model.name,
        weights_sha256=payload.weights_sha256,
        products={name: str(path) for name, path in products.items()},
        skipped=cubes.skipped,
    )


def products_step(cfg: RunConfig, log: Log = print) -> dict[str, Path]:
    """The products ``cfg.products`` asks for, from the run's store, in a new versioned folder.

    Outputs go to ``<output_root>/products/<run_id>/`` (see :mod:`pipeline.products`).
    """
    from pipeline.products import run_products

    with _stage("products", log):
        outputs = run_products(store_url(cfg), cfg.products, cfg.output_root)
        log(f"  {len(outputs)} outputs in {outputs['manifest'].parent}")
    return outputs
