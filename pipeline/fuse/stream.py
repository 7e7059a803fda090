"""Streamed inputs: spatial groups of tasks and the cube chunks each group holds on the cluster.

Persisting the whole region's scenes would hold ``scenes x bands x pixels x 4 B``
on the cluster (~40 GB for a Landsat tile-year at 6 bands). Instead the plan's
tasks are cut into groups: per store time window, squares of ``G x G`` blocks
in row-major order. A group holds the source chunks its tasks read, i.e. the
fine chunks of its reference and observation days and the coarse chunks of its
days that intersect its blocks' halo-padded windows, and nothing else.
:class:`ChunkCache` computes those chunks on workers when the group opens and
drops them when no open group needs them any more; at most
:data:`RESIDENT_GROUPS` (the current one and the next one, prefetched) are
open at a time, so the inputs held on the cluster are bounded by the group
budget, not by the region.

Chunks are the cube's own dask chunks, kept under their own keys: two
neighbouring groups open at the same time share the chunks of their common
halo instead of reading them twice. ``G`` is the largest size whose every
group fits the budget (bytes of the distinct chunks, fine + coarse); a group
of one block is the floor even when it does not fit.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from itertools import groupby

import numpy as np
import pandas as pd
import xarray as xr
from distributed import Client, Future

from pipeline.fuse.plan import FuseTask
from pipeline.fuse.worker import WindowCut, coarse_dates

#: Groups open at a time: the one whose tasks are running and the next, prefetched.
RESIDENT_GROUPS = 2

#: (cube name, time chunk, band chunk, y chunk, x chunk): one chunk of a source cube.
ChunkKey = tuple[str, int, int, int, int]


class CubeChunks:
    """The dask chunk grid of one (time, band, y, x) cube and its chunks as delayed values.

    Parameters
    ----------
    name : ``"fine"`` or ``"coarse"`` (part of every :data:`ChunkKey`).
    cube : dask-backed (time, band, y, x) DataArray with a date ``time`` axis.
    """

    def __init__(self, name: str, cube: xr.DataArray) -> None:
        self.name = name
        self.cube = cube
        self.edges = tuple(np.cumsum((0, *c)) for c in cube.data.chunks)
        self.index = {pd.Timestamp(t).date(): i for i, t in enumerate(cube["time"].values)}
        self.itemsize = cube.dtype.itemsize
        self._delayed: np.ndarray | None = None

    def span(self, axis: int, start: int, stop: int) -> range:
        """Chunk indices along ``axis`` (0 time, 1 band, 2 y, 3 x) covering ``[start, stop)``."""
        edges = self.edges[axis]
        first = int(np.searchsorted(edges, start, side="right")) - 1
        last = int(np.searchsorted(edges, stop, side="left"))
        return range(first, last)

    def spatial(self, window: tuple[int, int, int, int]) -> list[tuple[int, int, int]]:
        """(band, y, x) chunk indices covering the pixel ``window`` (y0, y1, x0, x1), every band."""
        y0, y1, x0, x1 = window
        return [
            (b, y, x)
            for b in range(len(self.edges[1]) - 1)
            for y in self.span(2, y0, y1)
            for x in self.span(3, x0, x1)
        ]

    def time_chunk(self, day: dt.date) -> tuple[int, int]:
        """(time chunk, index inside it) of ``day``."""
        i = self.index[day]
        chunk = self.span(0, i, i + 1)[0]
        return chunk, i - int(self.edges[0][chunk])

    def keys(self, days: Iterable[dt.date], window: tuple[int, int, int, int]) -> set[ChunkKey]:
        """Chunks holding ``days`` over the pixel ``window`` (y0, y1, x0, x1), every band."""
        times = {self.time_chunk(d)[0] for d in days}
        return {(self.name, t, *s) for t in times for s in self.spatial(window)}

    def nbytes(self, key: ChunkKey) -> int:
        """Bytes of one chunk."""
        sizes = [int(e[i + 1] - e[i]) for e, i in zip(self.edges, key[1:], strict=True)]
        return math.prod(sizes) * self.itemsize

    def delayed(self, key: ChunkKey) -> object:
        """The chunk as a dask Delayed under its own key (the graph is optimised once)."""
        if self._delayed is None:
            self._delayed = self.cube.data.to_delayed()
        return self._delayed[key[1:]]

    def cut(
        self,
        days: Sequence[dt.date],
        window: tuple[int, int, int, int],
        held: dict[ChunkKey, Future],
    ) -> tuple[list[list[Future]], WindowCut]:
        """The futures of the chunks that make up ``days`` x ``window`` and how to cut them.

        Returns ``pieces[d][k]`` (chunk futures, one list per day) and the
        :class:`WindowCut` a worker applies to them.
        """
        spatial = self.spatial(window)
        located = [self.time_chunk(d) for d in days]
        pieces = [[held[(self.name, t, *s)] for s in spatial] for t, _ in located]
        origins = tuple(
            (int(self.edges[1][b]), int(self.edges[2][y]), int(self.edges[3][x]))
            for b, y, x in spatial
        )
        cut = WindowCut(
            offsets=tuple(o for _, o in located),
            origins=origins,
            window=window,
            bands=int(self.edges[1][-1]),
        )
        return pieces, cut


def coarse_window(task: FuseTask, factor: int) -> tuple[int, int, int, int]:
    """The coarse-pixel window (y0, y1, x0, x1) under a task's padded fine window."""
    b = task.block
    return b.py0 // factor, -(-b.py1 // factor), b.px0 // factor, -(-b.px1 // factor)


def task_chunks(task: FuseTask, fine: CubeChunks, coarse: CubeChunks, factor: int) -> set[ChunkKey]:
    """Every source chunk a task reads: reference and observation scenes, coarse days."""
    b = task.block
    return (
        fine.keys(task.ref_dates, (b.py0, b.py1, b.px0, b.px1))
        | fine.keys(task.obs_days, (b.y0, b.y1, b.x0, b.x1))
        | coarse.keys(coarse_dates(task), coarse_window(task, factor))
    )


@dataclass(frozen=True)
class Group:
    """Tasks run together and the source chunks they hold on the cluster while open.

    Attributes
    ----------
    tasks : the group's tasks, in plan order.
    chunks : distinct source chunks its tasks read.
    nbytes : bytes of those chunks (what the group holds on the cluster).
    """

    tasks: tuple[FuseTask, ...]
    chunks: frozenset[ChunkKey]
    nbytes: int


def _tile(
    tasks: Sequence[FuseTask], needs: dict[int, set[ChunkKey]], size: int, nbytes: dict
) -> list[Group]:
    """Cut one time window's tasks into ``size x size``-block squares, row-major."""
    squares: dict[tuple[int, int], list[FuseTask]] = {}
    for task in tasks:
        squares.setdefault((task.block.by // size, task.block.bx // size), []).append(task)
    groups = []
    for _, members in sorted(squares.items()):
        chunks = frozenset().union(*(needs[id(t)] for t in members))
        groups.append(Group(tuple(members), chunks, sum(nbytes[k] for k in chunks)))
    return groups


def plan_groups(
    tasks: Sequence[FuseTask], fine: CubeChunks, coarse: CubeChunks, factor: int, budget: int
) -> list[Group]:
    """Groups of the plan's tasks holding at most ``budget`` bytes of source chunks each.

    Per store time window (in plan order), the largest square of ``G x G``
    blocks whose every group fits ``budget``; ``G = 1`` when none does.
    """
    needs = {id(t): task_chunks(t, fine, coarse, factor) for t in tasks}
    cubes = {fine.name: fine, coarse.name: coarse}
    nbytes = {k: cubes[k[0]].nbytes(k) for keys in needs.values() for k in keys}
    out: list[Group] = []
    for _, window in groupby(tasks, key=lambda t: t.t0):
        members = list(window)
        side = max(max(t.block.by, t.block.bx) for t in members) + 1
        low, high = 1, side  # largest fitting size, by bisection (bytes grow with the size)
        while low < high:
            mid = (low + high + 1) // 2
            fits = all(g.nbytes <= budget for g in _tile(members, needs, mid, nbytes))
            low, high = (mid, high) if fits else (low, mid - 1)
        out += _tile(members, needs, low, nbytes)
    return out


class ChunkCache:
    """Source chunks computed on the cluster for the open groups, dropped when none needs them.

    The client holds one future per chunk; dropping it lets the scheduler
    release the chunk. A chunk lost with a worker is recomputed from its
    loading graph while a future still holds it.
    """

    def __init__(self, client: Client, cubes: Sequence[CubeChunks]) -> None:
        self.client = client
        self.cubes = {c.name: c for c in cubes}
        self.held: dict[ChunkKey, Future] = {}
        self.users: dict[ChunkKey, int] = {}
        self.nbytes = 0
        self.peak_nbytes = 0

    def open(self, group: Group) -> None:
        """Start computing the group's chunks that are not held yet (returns at once)."""
        new = sorted(k for k in group.chunks if k not in self.held)
        futures = self.client.compute([self.cubes[k[0]].delayed(k) for k in new])
        for key, future in zip(new, futures, strict=True):
            self.held[key] = future
            self.nbytes += self.cubes[key[0]].nbytes(key)
        for key in group.chunks:
            self.users[key] = self.users.get(key, 0) + 1
        self.peak_nbytes = max(self.peak_nbytes, self.nbytes)

    def close(self, group: Group) -> None:
        """Drop the group's chunks that no other open group needs."""
        for key in group.chunks:
            self.users[key] -= 1
            if not self.users[key]:
                del self.users[key], self.held[key]
                self.nbytes -= self.cubes[key[0]].nbytes(key)
