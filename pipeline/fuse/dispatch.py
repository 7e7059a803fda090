"""Map the plan over the cluster: inputs from the lazy cubes, model tasks, region writes.

The cubes' scenes that the run can use are persisted once on the cluster
(:meth:`Sources.persisted`: the loading graph runs once, on workers; nothing
is read on the client and no client-local file is used). Then per
:class:`~pipeline.fuse.plan.FuseTask`:

1. its input windows are sliced from the persisted arrays, the coarse window
   block-replicated onto the fine window on the worker;
2. ``predict_days`` model tasks of ``batch_days`` days each, asking for one
   ``GPU`` resource when ``gpu`` is set;
3. one ``write_window`` task writes the block's window and commits it.

At most ``2 x workers`` FuseTasks are in flight so memory stays bounded. A
worker that dies takes its results with it; the scheduler recomputes them
from the graph (every step is idempotent: a write rewrites the same region).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import dask.array as da
import numpy as np
import pandas as pd
import xarray as xr
from distributed import Client, Future, as_completed
from tqdm.auto import tqdm

from pipeline.fuse.plan import Block, FuseTask, PlanInputs, make_blocks, plan_tasks
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

    def persisted(self, client: Client, days: Sequence[dt.date]) -> Sources:
        """Only the scenes a run over ``days`` can use, read once into cluster memory.

        Every task slices these persisted arrays, so the (large) loading graph is
        sent and run once instead of once per task. Memory: the fine scenes of
        the run's days and pairs over the region, plus the coarse days (1/factor^2).
        """
        wanted = set(days) | set(self.pairs)
        fine_idx = [i for i, d in enumerate(self.dates("fine")) if d in wanted]
        coarse_idx = [i for i, d in enumerate(self.dates("coarse")) if d in wanted]
        fine, coarse = client.persist(
            [self.fine.isel(time=fine_idx), self.coarse.isel(time=coarse_idx)]
        )
        return Sources(fine, coarse, self.factor, self.pairs)


def block_clear_fraction(client: Client, sources: Sources, chunk: tuple[int, int]) -> np.ndarray:
    """Valid fraction of each pair's fine scene in each block: (n_pairs, nyblock, nxblock) float."""
    index = {d: i for i, d in enumerate(sources.dates("fine"))}
    valid = sources.fine.isel(time=[index[d] for d in sources.pairs]).notnull().all("band")
    valid = valid.chunk({"time": 1, "y": chunk[0], "x": chunk[1]}).data
    means = valid.map_blocks(
        lambda b: b.mean(axis=(1, 2), keepdims=True, dtype=np.float64),
        chunks=(1, (1,) * len(valid.chunks[1]), (1,) * len(valid.chunks[2])),
        dtype=np.float64,
    )
    return np.asarray(client.compute(means).result())


def _window(
    cube: xr.DataArray, days: Sequence[dt.date], index: dict[dt.date, int], ys: slice, xs: slice
) -> da.Array:
    return cube.isel(time=[index[d] for d in days], y=ys, x=xs).data


def _submit_inputs(client: Client, task: FuseTask, sources: Sources) -> Future:
    b, f = task.block, sources.factor
    pad = (b.py0, b.py1, b.px0, b.px1)
    f_index = {d: i for i, d in enumerate(sources.dates("fine"))}
    c_index = {d: i for i, d in enumerate(sources.dates("coarse"))}
    cy, cx = slice(b.py0 // f, -(-b.py1 // f)), slice(b.px0 // f, -(-b.px1 // f))
    arrays = [
        _window(sources.fine, task.ref_dates, f_index, slice(b.py0, b.py1), slice(b.px0, b.px1)),
        _window(sources.coarse, coarse_dates(task), c_index, cy, cx),
        _window(sources.fine, task.obs_days, f_index, slice(b.y0, b.y1), slice(b.x0, b.x1)),
    ]
    fine_refs, coarse, obs = client.compute(arrays)
    return client.submit(task_inputs, fine_refs, coarse, obs, f, pad, pure=False)


@dataclass(frozen=True)
class FuseContext:
    """Run-wide settings of the tasks: store URL, layout, model key, batching, GPU."""

    url: str
    layout: StoreLayout
    model_key: str
    batch_days: int
    gpu: bool


def _submit_task(client: Client, task: FuseTask, sources: Sources, ctx: FuseContext) -> Future:
    inputs = _submit_inputs(client, task, sources)
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
    return client.submit(write_window, task, ctx.url, ctx.layout, parts, pure=False, retries=1)


def run_tasks(
    client: Client,
    tasks: Sequence[FuseTask],
    sources: Sources,
    ctx: FuseContext,
    progress: bool = True,
) -> list[BlockSummary]:
    """Submit every task (bounded in flight), wait for all writes; raise the first task error."""
    in_flight = max(2, 2 * len(client.scheduler_info(n_workers=-1)["workers"]))
    pending: Iterator[FuseTask] = iter(tasks)
    seq = as_completed(loop=client.loop)
    for task in _take(pending, in_flight):
        seq.add(_submit_task(client, task, sources, ctx))
    done: list[BlockSummary] = []
    with tqdm(total=len(tasks), desc="fuse blocks", unit="block", disable=not progress) as bar:
        for future in seq:
            done.append(future.result())
            bar.update(1)
            for task in _take(pending, 1):
                seq.add(_submit_task(client, task, sources, ctx))
    return done


def _take(items: Iterator[FuseTask], n: int) -> list[FuseTask]:
    return [task for _, task in zip(range(n), items, strict=False)]


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
        time_chunk=layout.chunk_time,
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
