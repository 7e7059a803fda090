"""The fusion plan: blocks with halos, time windows, per-day reference pairs (pure, no I/O).

The plan is computed on the client from small arrays (dates, per-block clear
fractions, the store's completion record) and shipped to workers as plain
dataclasses.

Reference-pair rule (recorded in ``ref_before_days`` / ``ref_after_days`` and
the provenance): for each target day and block, ``before`` is the nearest pair
on or before the day and ``after`` the nearest pair on or after it, counting
only pairs whose fine scene is clear (valid fraction >= ``min_clear``) inside
that block. On a clear pair date both are that pair (0 days) and the model gets
one reference; otherwise it gets both, or the one that exists.
"""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from pipeline.models.pairs import PairChoice, nearest_pairs


@dataclass(frozen=True)
class Block:
    """One spatial block of the store and its halo-padded read window (fine-pixel indices).

    ``y0:y1, x0:x1`` is written; ``py0:py1, px0:px1`` (the block grown by the
    halo, clipped to the image) is read and fused, then cropped.
    """

    by: int
    bx: int
    y0: int
    y1: int
    x0: int
    x1: int
    py0: int
    py1: int
    px0: int
    px1: int

    @property
    def crop(self) -> tuple[slice, slice]:
        """Slices of the block inside its padded window."""
        return (
            slice(self.y0 - self.py0, self.y1 - self.py0),
            slice(self.x0 - self.px0, self.x1 - self.px0),
        )


def make_blocks(shape: tuple[int, int], chunk: tuple[int, int], halo: int) -> list[Block]:
    """Blocks of ``chunk`` pixels tiling an image of ``shape`` (y, x), padded by ``halo`` pixels."""
    ny, nx = shape
    blocks = []
    for by, y0 in enumerate(range(0, ny, chunk[0])):
        for bx, x0 in enumerate(range(0, nx, chunk[1])):
            y1, x1 = min(y0 + chunk[0], ny), min(x0 + chunk[1], nx)
            blocks.append(
                Block(
                    by,
                    bx,
                    y0,
                    y1,
                    x0,
                    x1,
                    max(0, y0 - halo),
                    min(ny, y1 + halo),
                    max(0, x0 - halo),
                    min(nx, x1 + halo),
                )
            )
    return blocks


#: The reference choice of one target day in one block (the shared pair rule).
DayRefs = PairChoice


def choose_refs(
    days: Sequence[dt.date], pairs: Sequence[dt.date], clear: np.ndarray
) -> list[DayRefs]:
    """Nearest clear pair on/before and on/after each day (:mod:`pipeline.models.pairs`).

    Parameters
    ----------
    days : target days.
    pairs : pair dates, ascending.
    clear : (n_pairs,) bool, whether each pair is clear in the block.
    """
    usable = [p for p, ok in zip(pairs, clear, strict=True) if ok]
    return [nearest_pairs(day, usable) for day in days]


@dataclass(frozen=True)
class FuseTask:
    """One unit of work: one block over one time window of the store.

    Attributes
    ----------
    block : the spatial block.
    t0, t1 : store time indices written, ``[t0, t1)`` (within one Zarr time chunk).
    refs : per-day reference choice, one per day of the window.
    ref_dates : distinct pair dates the window needs (fine + coarse, padded window).
    coarse_days : days of the window that have a coarse scene (padded window).
    obs_days : days of the window that have a fine scene (observations, block only).
    """

    block: Block
    t0: int
    t1: int
    refs: tuple[DayRefs, ...]
    ref_dates: tuple[dt.date, ...]
    coarse_days: tuple[dt.date, ...]
    obs_days: tuple[dt.date, ...]

    @property
    def key(self) -> str:
        """A stable, readable Dask key part."""
        return f"fuse-b{self.block.by}-{self.block.bx}-t{self.t0}"


def time_windows(i0: int, i1: int, chunk: int) -> list[tuple[int, int]]:
    """Split store indices ``[i0, i1)`` at multiples of ``chunk`` (one window per Zarr chunk)."""
    edges = [i0, *range((i0 // chunk + 1) * chunk, i1, chunk), i1]
    return list(itertools.pairwise(edges))


@dataclass(frozen=True)
class PlanInputs:
    """What the plan is computed from (all small).

    Attributes
    ----------
    days : the run's consecutive target days.
    first_day : the store's day at time index 0.
    time_chunk : the store's time chunk (days).
    pairs : pair dates, ascending.
    clear : (n_pairs, nyblock, nxblock) float valid fraction of each pair's fine scene per block.
    min_clear : a pair is usable in a block when ``clear >= min_clear``.
    fine_days, coarse_days : dates with a fine / coarse scene.
    done : (len(days), nyblock, nxblock) bool completion read from the store.
    """

    days: tuple[dt.date, ...]
    first_day: dt.date
    time_chunk: int
    pairs: tuple[dt.date, ...]
    clear: np.ndarray
    min_clear: float
    fine_days: frozenset[dt.date]
    coarse_days: frozenset[dt.date]
    done: np.ndarray


def plan_tasks(inputs: PlanInputs, blocks: Sequence[Block]) -> list[FuseTask]:
    """Every task still to do: (block x time window) whose ``block_done`` is not all set."""
    i0 = (inputs.days[0] - inputs.first_day).days
    tasks = []
    for t0, t1 in time_windows(i0, i0 + len(inputs.days), inputs.time_chunk):
        window = inputs.days[t0 - i0 : t1 - i0]
        for block in blocks:
            if inputs.done[t0 - i0 : t1 - i0, block.by, block.bx].all():
                continue
            clear = inputs.clear[:, block.by, block.bx] >= inputs.min_clear
            refs = tuple(choose_refs(window, inputs.pairs, clear))
            ref_dates = tuple(sorted({d for r in refs for d in r.dates}))
            tasks.append(
                FuseTask(
                    block=block,
                    t0=t0,
                    t1=t1,
                    refs=refs,
                    ref_dates=ref_dates,
                    coarse_days=tuple(d for d in window if d in inputs.coarse_days),
                    obs_days=tuple(d for d in window if d in inputs.fine_days),
                )
            )
    return tasks
