"""Map the plan over the cluster: streamed source chunks, model tasks, region writes.

Nothing is read on the client and no client-local file is used: the cubes'
loading graph runs on workers. The plan's tasks run in spatial groups
(:mod:`pipeline.fuse.stream`): a group's source chunks are computed on the
cluster when it opens (the next group's while the current one runs) and
dropped once its last task is written, so the inputs held on the cluster are
bounded by the group budget, not by the region. Per
:class:`~pipeline.fuse.plan.FuseTask`:

1. one ``task_inputs`` task cuts its windows out of the group's chunks, the
   coarse window block-replicated onto the fine window, on the worker;
2. ``predict_days`` model tasks of ``batch_days`` days each, asking for one
   ``GPU`` resource when ``gpu`` is set;
3. one ``write_window`` task makes the window seamless (coverage, calibrated sigma, gaps
   filled from the block's series with the run's :class:`SeriesCalibration`), writes it and
   commits it.

At most ``2 x workers`` FuseTasks are in flight so memory stays bounded. A
worker that dies takes its results with it; the scheduler recomputes them
from the graph (every step is idempotent: a write rewrites the same region;
a lost source chunk is recomputed from its loading graph while its group is open).
"""

from __future__ import annotations

import datetime as dt
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import xarray as xr
from distributed import Client, Future, as_completed

from pipeline.fuse.calibrate import SeriesCalibration
from pipeline.fuse.gapfill import DEFAULT_METHOD
from pipeline.fuse.plan import Block, FuseTask, PlanInputs, make_blocks, plan_tasks
from pipeline.fuse.stream import RESIDENT_GROUPS, ChunkCache, Group, coarse_window
from pipeline.fuse.worker import (
    BlockSummary,
    coarse_dates,
    predict_days,
    task_inputs,
    write_window,
)
from pipeline.store.layout import StoreLayout
from pipeline.store.write import StoreState, done_mask


@dataclass(frozen=True)
class Sources:
    """The lazy inputs of the fusion.

    Attributes
    ----------
    fine : (time, band, y, x) float32 Landsat reflectance, NaN = invalid, dask-backed.
    coarse : (time, band, yc, xc) float32 MODIS reflectance on the coarse grid
        (same origin as the fine grid, ``factor`` times larger pixels).
    factor : fine pixels per coarse pixel along each axis.
    pairs : reference pair dates, ascending.
    """

    fine: xr.DataArray
    coarse: xr.DataArray
    factor: int
    pairs: tuple[dt.date, ...]

    def dates(self, which: str) -> list[dt.date]:
        """Days of the ``"fine"`` or ``"coarse"`` time axis."""
        return [pd.Timestamp(t).date() for t in getattr(self, which)["time"].values]


def block_clear_fraction(client: Client, sources: Sources, chunk: tuple[int, int]) -> np.ndarray:
    """Valid fraction of each pair's fine scene in each block: (n_pairs, nyblock, nxblock) float.

    A streamed reduction of the lazy cube: workers read the pair scenes chunk by
    chunk and keep one number per block; nothing is persisted (the groups read
    these scenes again when they need them).
    """
    index = {d: i for i, d in enumerate(sources.dates("fine"))}
    valid = sources.fine.isel(time=[index[d] for d in sources.pairs]).notnull().all("band").data
    cy, cx = chunk
    if any(c % cy for c in valid.chunks[1][:-1]) or any(c % cx for c in valid.chunks[2][:-1]):
        valid = valid.rechunk({1: cy, 2: cx})  # cube chunks not made of whole blocks
    valid = valid.rechunk({0: 1})
    # one task per cube chunk (pipeline.cube.chunking makes them whole blocks), not per block
    out_chunks = tuple(
        tuple(-(-c // step) for c in cs) for cs, step in zip(valid.chunks[1:], chunk, strict=True)
    )
    means = valid.map_blocks(
        _block_means,
        chunk,
        chunks=((1,) * len(valid.chunks[0]), *out_chunks),
        dtype=np.float64,
    )
    return np.asarray(client.compute(means).result())


def _block_means(valid: np.ndarray, chunk: tuple[int, int]) -> np.ndarray:
    """(t, y, x) bool -> (t, ny, nx) float64 mean of each ``chunk``-sized block (edges partial)."""
    cy, cx = chunk
    ny, nx = -(-valid.shape[1] // cy), -(-valid.shape[2] // cx)
    out = np.empty((valid.shape[0], ny, nx))
    for i in range(ny):
        for j in range(nx):
            block = valid[:, i * cy : (i + 1) * cy, j * cx : (j + 1) * cx]
            out[:, i, j] = block.mean(axis=(1, 2), dtype=np.float64)
    return out


def _submit_inputs(client: Client, task: FuseTask, cache: ChunkCache, factor: int) -> Future:
    b = task.block
    fine, coarse = cache.cubes["fine"], cache.cubes["coarse"]
    fine_refs, fine_cut = fine.cut(task.ref_dates, (b.py0, b.py1, b.px0, b.px1), cache.held)
    small, small_cut = coarse.cut(coarse_dates(task), coarse_window(task, factor), cache.held)
    obs, obs_cut = fine.cut(task.obs_days, (b.y0, b.y1, b.x0, b.x1), cache.held)
    cuts = (fine_cut, small_cut, obs_cut)
    return client.submit(task_inputs, fine_refs, small, obs, cuts, factor, pure=False)


@dataclass(frozen=True)
class FuseContext:
    """Run-wide settings of the tasks: store URL, layout, model key, batching, GPU, grid factor,
    the sigma calibration and the gap-filling method (:mod:`pipeline.fuse.gapfill`)."""

    url: str
    layout: StoreLayout
    model_key: str
    batch_days: int
    gpu: bool
    factor: int
    calibration: SeriesCalibration | None = None
    method: str = DEFAULT_METHOD


def _submit_task(client: Client, task: FuseTask, cache: ChunkCache, ctx: FuseContext) -> Future:
    inputs = _submit_inputs(client, task, cache, ctx.factor)
    resources = {"GPU": 1} if ctx.gpu else None
    parts = [
        client.submit(
            predict_days,
            task,
            i,
            i + ctx.batch_days,
            ctx.model_key,
            ctx.layout.bands,
            inputs,
            resources=resources,
            pure=False,
            retries=1,
        )
        for i in range(0, len(task.refs), ctx.batch_days)
    ]
    return client.submit(
        write_window,
        task,
        ctx.url,
        ctx.layout,
        parts,
        inputs,
        ctx.calibration,
        ctx.method,
        pure=False,
        retries=1,
    )


def run_tasks(
    client: Client,
    groups: Sequence[Group],
    cache: ChunkCache,
    ctx: FuseContext,
    progress: bool = True,
) -> list[BlockSummary]:
    """Run the groups' tasks in order; wait for all writes; raise the first task error.

    At most :data:`~pipeline.fuse.stream.RESIDENT_GROUPS` groups are open (the
    next one's chunks load while the current one's tasks run) and at most
    ``2 x workers`` tasks are in flight; a group is closed (its chunks dropped)
    as soon as its last task is written.
    """
    in_flight = max(2, 2 * len(client.scheduler_info(n_workers=-1)["workers"]))
    queue = deque((g, task) for g, group in enumerate(groups) for task in group.tasks)
    left = [len(group.tasks) for group in groups]
    is_open: set[int] = set()
    opened = 0
    owner: dict[Future, int] = {}
    seq = as_completed(loop=client.loop)

    def fill() -> None:
        nonlocal opened
        while opened < len(groups) and len(is_open) < RESIDENT_GROUPS:
            cache.open(groups[opened])
            is_open.add(opened)
            opened += 1
        while queue and len(owner) < in_flight and queue[0][0] in is_open:
            g, task = queue.popleft()
            future = _submit_task(client, task, cache, ctx)
            owner[future] = g
            seq.add(future)

    done: list[BlockSummary] = []
    total = sum(left)
    from pipeline.progress import progress_bar

    with progress_bar(total=total, desc="fuse blocks", unit="block", disable=not progress) as bar:
        fill()
        for future in seq:
            done.append(future.result())
            bar.update(1)
            g = owner.pop(future)
            left[g] -= 1
            if not left[g]:
                cache.close(groups[g])
                is_open.remove(g)
            fill()
    return done


def plan_run(
    client: Client,
    sources: Sources,
    state: StoreState,
    days: Sequence[dt.date],
    layout: StoreLayout,
    halo: int,
    min_clear: float,
) -> tuple[list[Block], PlanInputs, list[FuseTask]]:
    """Blocks, the plan's inputs (clear fractions, completion) and the tasks still to do."""
    chunk = (layout.chunk_y, layout.chunk_x)
    blocks = make_blocks((sources.fine.sizes["y"], sources.fine.sizes["x"]), chunk, halo)
    i0 = state.index(days[0])
    inputs = PlanInputs(
        days=tuple(days),
        first_day=state.first_day,
        time_chunk=state.time_chunk or layout.chunk_time,
        pairs=sources.pairs,
        clear=block_clear_fraction(client, sources, chunk),
        min_clear=min_clear,
        fine_days=frozenset(sources.dates("fine")),
        coarse_days=frozenset(sources.dates("coarse")),
        done=done_mask(state.url, i0, i0 + len(days)),
    )
    return blocks, inputs, plan_tasks(inputs, blocks)


def pair_choice_record(inputs: PlanInputs, blocks: Sequence[Block]) -> dict[str, object]:
    """Provenance of the reference choice: the rule and the usable pairs of every block.

    With the rule of :mod:`pipeline.fuse.plan` these determine every day's pair;
    the per-pixel result is in ``ref_before_days`` / ``ref_after_days``.
    """
    usable = {
        f"{b.by},{b.bx}": [
            p.isoformat()
            for p, c in zip(inputs.pairs, inputs.clear[:, b.by, b.bx], strict=True)
            if c >= inputs.min_clear
        ]
        for b in blocks
    }
    return {
        "rule": "nearest pair clear in the block on/before and on/after each day",
        "min_clear": inputs.min_clear,
        "pairs": [p.isoformat() for p in inputs.pairs],
        "usable_pairs_per_block": usable,
    }
