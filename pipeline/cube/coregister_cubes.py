"""Co-registration of a run's cubes: estimate the coarse shift from clear pairs, undo it lazily.

The estimate reads a bounded sample (the clearest ``MAX_PAIRS`` pairs, a
central window of at most ``WINDOW_CELLS``² coarse cells) so its cost does not
grow with the region. The correction resamples the coarse cube on its own grid
(linear, by ``shift / factor`` coarse pixels) chunk by chunk with a halo, so
``coarse_on_fine`` and the fuse workers, which block-replicate coarse chunks,
see the same shifted values.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Sequence

import dask
import numpy as np
import xarray as xr

from pipeline.coregister import (
    Coregistration,
    ShiftEstimate,
    check_mode,
    decide,
    estimate_shift,
    shift_image,
)
from pipeline.cube.pairs import Pair

#: Pairs (clearest first) and central window (coarse cells per side) the estimate reads.
MAX_PAIRS = 4
WINDOW_CELLS = 64


def _window(n_cells: int, factor: int, radius: int, fine_size: int) -> tuple[slice, slice, int]:
    """Central coarse-cell slice, the fine slice under it plus ``radius``, and the fine origin."""
    size = min(n_cells, WINDOW_CELLS)
    c0 = (n_cells - size) // 2
    f0 = max(0, c0 * factor - radius)
    f1 = min(fine_size, (c0 + size) * factor + radius)
    return slice(c0, c0 + size), slice(f0, f1), c0 * factor - f0


def _index(cube: xr.DataArray, day: dt.date) -> int:
    days = cube["time"].values.astype("datetime64[D]")
    return int(np.flatnonzero(days == np.datetime64(day, "D"))[0])


def estimate_cube_shift(
    fine: xr.DataArray, coarse: xr.DataArray, pairs: Sequence[Pair], factor: int
) -> ShiftEstimate:
    """Estimate the coarse cube's shift (fine px) from the clearest pairs, central window.

    Parameters
    ----------
    fine : (time, band, y, x) float32 fine reflectance, NaN = invalid (dask-backed).
    coarse : (time, band, yc, xc) float32 coarse reflectance on the coarse grid.
    pairs : the cubes' reference pairs.
    factor : fine pixels per coarse pixel.
    """
    radius = 2 * factor
    chosen = sorted(pairs, key=lambda p: -min(p.clear_fraction, p.coarse_clear_fraction))
    chosen = chosen[:MAX_PAIRS]
    cy, fy, oy = _window(coarse.sizes["y"], factor, radius, fine.sizes["y"])
    cx, fx, ox = _window(coarse.sizes["x"], factor, radius, fine.sizes["x"])
    lazy = [
        (
            fine.isel(time=_index(fine, p.date), y=fy, x=fx).data,
            coarse.isel(time=_index(coarse, p.coarse_date), y=cy, x=cx).data,
        )
        for p in chosen
    ]
    arrays = dask.compute(*lazy)
    labelled = [
        (p.date.isoformat(), np.asarray(f, np.float64), np.asarray(c, np.float64))
        for p, (f, c) in zip(chosen, arrays, strict=True)
    ]
    return estimate_shift(labelled, factor, max_shift=radius, origin=(oy, ox))


def shift_coarse_cube(
    coarse: xr.DataArray, shift: tuple[float, float], factor: int
) -> xr.DataArray:
    """The coarse cube resampled at ``p + shift`` (fine px), lazily, same chunks and coords.

    Parameters
    ----------
    coarse : (time, band, yc, xc) float32 on the coarse grid, dask-backed.
    shift : (dy, dx) in fine pixels (the :mod:`pipeline.coregister` convention).
    factor : fine pixels per coarse pixel.
    """
    if shift == (0.0, 0.0):
        return coarse
    cells = (shift[0] / factor, shift[1] / factor)
    depth = math.ceil(max(abs(cells[0]), abs(cells[1]))) + 1
    data = coarse.data
    if min(min(data.chunks[2]), min(data.chunks[3])) < depth:
        # dask needs chunks at least as deep as the halo; the cube is small on the coarse grid
        data = data.rechunk({2: max(depth, data.chunksize[2]), 3: max(depth, data.chunksize[3])})
    moved = data.map_overlap(
        shift_image,
        depth={0: 0, 1: 0, 2: depth, 3: depth},
        boundary="nearest",
        dtype=np.float32,
        shift=cells,
    )
    if moved.chunks != coarse.data.chunks:
        moved = moved.rechunk(coarse.data.chunks)
    return coarse.copy(data=moved)


def coregister(
    fine: xr.DataArray,
    coarse: xr.DataArray,
    pairs: Sequence[Pair],
    factor: int,
    mode: str,
    known: Coregistration | None = None,
) -> tuple[xr.DataArray, Coregistration]:
    """The coarse cube shifted onto the fine grid under ``mode``, and the record of it.

    ``known`` (an earlier load's record with the same mode, from the run's
    ``cubes.json``) is reused without reading anything.

    Raises
    ------
    InputError
        ``mode="require"`` with an unreliable estimate.
    """
    check_mode(mode)
    if known is not None and known.mode == mode:
        record = known
    elif mode == "off" or not pairs:
        record = decide("off", None, factor)
    else:
        record = decide(mode, estimate_cube_shift(fine, coarse, pairs, factor), factor)
    return shift_coarse_cube(coarse, record.applied, factor), record
