"""Fuse a run's days into its store: lock, prepare, plan, dispatch, record provenance.

This is the one entry point of :mod:`pipeline.fuse` for :mod:`pipeline.run`;
it takes plain arrays (``Sources``), the fine ``Grid`` and the model bytes, so
it is tested on synthetic cubes as well as real ones.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
from dataclasses import asdict, dataclass, replace
from typing import Any

import numpy as np
from distributed import Client

from pipeline.config import ComputeSpec
from pipeline.errors import InputError
from pipeline.fuse.calibrate import fit_calibration
from pipeline.fuse.dispatch import FuseContext, Sources, pair_choice_record, plan_run, run_tasks
from pipeline.fuse.plan import plan_tasks, time_windows
from pipeline.fuse.stream import ChunkCache, CubeChunks, plan_groups
from pipeline.fuse.worker import ModelPayload, ModelPlugin, install
from pipeline.store.layout import Grid, StoreLayout
from pipeline.store.lock import StoreLock
from pipeline.store.provenance import merge, run_record
from pipeline.store.write import finalize_store, prepare_store

#: Default group budget: MiB of source chunks per group per worker. Two groups are
#: open at a time, so the inputs held average at most 2 x this per worker.
WINDOW_MIB: float = ComputeSpec.model_fields["window_mib"].default


@dataclass(frozen=True)
class FuseRequest:
    """What to fuse where.

    Attributes
    ----------
    url : store path or fsspec URL.
    region : region name (checked against an existing store).
    days : consecutive target days.
    bands : canonical bands, in the order of the cubes' band axis.
    chunks : (time, y, x) store chunk = fusion block, in days and fine pixels.
    sharding : Zarr v3 sharding of each block.
    batch_days : days per model task.
    gpu : model tasks ask for one ``GPU`` worker resource.
    min_clear : block clear fraction above which a pair is a usable reference there.
    resume : skip days the store marks final (False: re-fuse every day).
    window_mib : MiB of source chunks one group of tasks may hold on the cluster,
        per worker (:mod:`pipeline.fuse.stream`; two groups are open at a time).
    """

    url: str
    region: str
    days: tuple[dt.date, ...]
    bands: tuple[str, ...]
    chunks: tuple[int, int, int] = (366, 256, 256)
    sharding: bool = False
    batch_days: int = 8
    gpu: bool = False
    min_clear: float = 0.5
    resume: bool = True
    window_mib: float = WINDOW_MIB

    @property
    def layout(self) -> StoreLayout:
        t, y, x = self.chunks
        return StoreLayout(self.bands, chunk_time=t, chunk_y=y, chunk_x=x, sharding=self.sharding)


@dataclass(frozen=True)
class FuseOutcome:
    """Tasks run, tasks skipped (already final in the store), pixel-days written, groups run,
    and the most bytes of source chunks held on the cluster at once."""

    tasks: int
    tasks_skipped: int
    pixel_days: int
    groups: int = 0
    peak_window_bytes: int = 0


def _provenance(
    url: str,
    request: FuseRequest,
    prov: dict[str, Any],
    model: dict[str, Any],
    choice: dict[str, Any],
) -> str:
    import zarr

    previous = zarr.open_group(url, mode="r").attrs.get("stf_provenance")
    record = run_record(
        config=prov.get("config", {}),
        fine_items=prov.get("fine_items", []),
        coarse_items=prov.get("coarse_items", []),
        skipped_items=prov.get("skipped_items", []),
        model=model,
        pair_choice=choice,
        days=(request.days[0], request.days[-1]),
        model_selection=prov.get("model_selection"),
        coregistration=prov.get("coregistration"),
    )
    return merge(previous if isinstance(previous, str) else None, record)


#: Share of the group budget (:mod:`pipeline.fuse.stream`) under which the whole coarse cube
#: is read once and held for the stage.
COARSE_HOLD_SHARE = 0.5


def hold_coarse(client: Client, sources: Sources, budget: int) -> Sources:
    """``sources`` with the coarse cube computed once and held on the cluster, when it is small.

    The calibration's two rounds and then the groups each read the coarse days they need
    from the COGs again; a MODIS read is a GDAL warp of a few dozen pixels whose set-up
    dominates (~5 ms a file), and a 32-day coarse chunk is read whole even for the two
    pair days in it. Profile of the 512² x 16-day chain: 2,336 asset reads, ~28 CPU s,
    in the calibration alone (``benchmarks/results.md``, "Fuse stage profile"). A
    coarse cube is ~1/256 of the fine scenes' pixels per day (e.g. 2.5 MB for 512² x
    184 days x 3 bands), so it is held when it takes at most :data:`COARSE_HOLD_SHARE` of
    ``budget`` (bytes); larger ones stay streamed. A held chunk lost with a worker is
    recomputed from its loading graph.
    """
    if sources.coarse.nbytes > COARSE_HOLD_SHARE * budget:
        return sources
    return replace(sources, coarse=client.persist(sources.coarse))


#: Attempts at registering the model plugin (a broadcast to every current worker).
REGISTER_ATTEMPTS = 3


def _register(client: Client, plugin: ModelPlugin) -> None:
    """Register ``plugin`` on the cluster, retried when a worker dies during the broadcast.

    The scheduler keeps the plugin for workers that (re)start later, but the
    broadcast to a worker killed at that moment raises a comm error; registering
    again (same name, idempotent) reaches the workers alive now.
    """
    for attempt in range(REGISTER_ATTEMPTS):
        try:
            client.register_plugin(plugin)
            return
        except OSError:  # distributed's CommClosedError is an OSError
            if attempt == REGISTER_ATTEMPTS - 1:
                raise
            client.wait_for_workers(1, timeout=60)


def fuse_into_store(
    client: Client,
    sources: Sources,
    grid: Grid,
    payload: ModelPayload,
    request: FuseRequest,
    prov: dict[str, Any],
    *,
    progress: bool = True,
    lock: bool = True,
) -> FuseOutcome:
    """Fuse ``request.days`` over every block into the store, resuming from its completion record.

    Parameters
    ----------
    client : a Dask client (LocalCluster or remote scheduler).
    sources : lazy fine / coarse-on-fine cubes and the pair dates.
    grid : the fine grid of the cubes.
    payload : the model's config + weights bytes (sent once per worker).
    request : store, days and settings.
    prov : provenance facts of the run: ``config``, STAC ``fine_items`` / ``coarse_items``
        and ``skipped_items`` (dicts of :class:`~pipeline.cube.unreadable.SkippedItem`).
    lock : take the store lock here (False when the caller already holds it).

    Raises
    ------
    StoreError : the store is locked, conflicting or unwritable (nothing is written then).
    InputError : there is no reference pair at all.
    """
    if not sources.pairs:
        raise InputError(
            f"no clear fine/coarse pair for region {request.region!r}; widen the dates"
        )
    layout = request.layout
    with StoreLock(request.url) if lock else contextlib.nullcontext():
        state = prepare_store(request.url, grid, list(request.days), layout, request.region)
        model = install(payload)
        _register(client, ModelPlugin(payload))
        blocks, inputs, tasks = plan_run(
            client, sources, state, request.days, layout, model.halo, request.min_clear
        )
        if not request.resume:
            tasks = plan_tasks(replace(inputs, done=np.zeros_like(inputs.done)), blocks)
        i0 = state.index(request.days[0])
        t_chunk = state.time_chunk or layout.chunk_time
        total = len(time_windows(i0, i0 + len(request.days), t_chunk)) * len(blocks)
        workers = len(client.scheduler_info(n_workers=-1)["workers"])
        budget = int(request.window_mib * 2**20 * max(1, workers))
        sources = hold_coarse(client, sources, budget)
        calibration = fit_calibration(
            client, sources, payload.key, request.bands, model.halo, request.min_clear
        )
        ctx = FuseContext(
            request.url,
            layout,
            payload.key,
            request.batch_days,
            request.gpu,
            sources.factor,
            calibration,
        )
        cubes = (CubeChunks("fine", sources.fine), CubeChunks("coarse", sources.coarse))
        groups = plan_groups(tasks, *cubes, sources.factor, budget)
        cache = ChunkCache(client, cubes)
        run_tasks(client, groups, cache, ctx, progress=progress)
        model_info = {
            "name": model.name,
            "weights_sha256": payload.weights_sha256,
            "config": json.loads(payload.config_json),
            # the fused sigma's scale and the gap filler's q, fitted on this run's pair dates
            "seamless": {"method": ctx.method, **asdict(calibration)},
        }
        attrs = _provenance(
            request.url, request, prov, model_info, pair_choice_record(inputs, blocks)
        )
        finalize_store(request.url, {"stf_provenance": attrs})
    pixel_days = sum(
        (t.t1 - t.t0) * (t.block.y1 - t.block.y0) * (t.block.x1 - t.block.x0) for t in tasks
    )
    return FuseOutcome(
        tasks=len(tasks),
        tasks_skipped=total - len(tasks),
        pixel_days=pixel_days,
        groups=len(groups),
        peak_window_bytes=cache.peak_nbytes,
    )
