"""Coarse-fine co-registration: estimate and undo a shift of the coarse images.

MODIS geolocation (or a resampling step upstream) can leave the coarse images
displaced from the Landsat grid by a sizeable fraction of a coarse pixel; a
model that learns ``fine - coarse`` on such pairs learns the misregistration.

Convention: the estimated ``shift = (dy, dx)`` is in FINE pixels (rows, columns)
and says where the coarse image shows what the fine image shows at ``p``: at
``p + shift``. The correction resamples the coarse image at ``p + shift``.

Estimator (numpy only): for every integer candidate shift within
``max_shift``, the fine image is aggregated over each coarse cell's footprint
moved by the shift (a box PSF of the cell's size, via summed-area tables) and
correlated (Pearson, per band, then averaged) with the coarse cells. Pairs are
combined by averaging their correlation surfaces (weighted by valid cells);
the integer peak is refined to sub-pixel by a parabola through its neighbours
along each axis. The estimate is *unreliable* (and then not applied) when the
peak is weak, lies on the search border, few cells are clear, or the pairs
disagree.

The records and the apply/refuse decision live in :mod:`pipeline.coregister_record`
(re-exported here).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import replace

import numpy as np

from pipeline.coregister_record import (
    MIN_APPLIED,
    MODES,
    Coregistration,
    Mode,
    PairShift,
    ShiftEstimate,
    check_mode,
    decide,
)

__all__ = [
    "MIN_APPLIED",
    "MODES",
    "Coregistration",
    "Mode",
    "PairShift",
    "ShiftEstimate",
    "cells_from_fine_grid",
    "check_mode",
    "correlation_surface",
    "decide",
    "estimate_shift",
    "shift_image",
]

#: Weakest acceptable peak correlation (mean Pearson r over bands).
MIN_PEAK = 0.5
#: Fewest clear coarse cells (summed over pairs) an estimate may rest on.
MIN_CELLS = 16
#: Largest disagreement (fine px) of one pair's estimate with the combined one,
#: as a fraction of the coarse pixel (with a floor of one fine pixel).
MAX_SPREAD_CELLS = 0.125
#: A coarse cell counts when at least this fraction of its (shifted) fine footprint is valid.
MIN_CELL_VALID = 0.75


def cells_from_fine_grid(coarse_on_fine: np.ndarray, factor: int) -> np.ndarray:
    """Coarse cells (band, yc, xc) as the NaN-mean of each aligned ``factor``² block.

    Recovers the cells exactly from a block-replicated image; a coarse image
    resampled to the fine grid by other means is averaged per cell.
    """
    b, h, w = coarse_on_fine.shape
    hc, wc = h // factor, w // factor
    blocks = coarse_on_fine[:, : hc * factor, : wc * factor].reshape(b, hc, factor, wc, factor)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN cells stay NaN
        return np.nanmean(blocks, axis=(2, 4)).astype(np.float64)


def _summed_area(image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Zero-padded summed-area tables of values (NaN as 0) and of valid counts, (band, h+1, w+1)."""
    valid = np.isfinite(image)
    values = np.where(valid, image, 0.0)
    pad = ((0, 0), (1, 0), (1, 0))
    return (
        np.pad(values.cumsum(1).cumsum(2), pad),
        np.pad(valid.cumsum(1).cumsum(2, dtype=np.int64), pad),
    )


def _box_means(
    sat: tuple[np.ndarray, np.ndarray], rows: np.ndarray, cols: np.ndarray, factor: int
) -> np.ndarray:
    """Mean over the ``factor``² boxes with top-left (rows[i], cols[j]); NaN when out or unclear."""
    total, count = sat
    h, w = total.shape[1] - 1, total.shape[2] - 1
    inside_r = (rows >= 0) & (rows + factor <= h)
    inside_c = (cols >= 0) & (cols + factor <= w)
    r0, c0 = np.clip(rows, 0, h - factor), np.clip(cols, 0, w - factor)
    r1, c1 = r0 + factor, c0 + factor

    def box(t: np.ndarray) -> np.ndarray:
        return (
            t[:, r1[:, None], c1[None, :]]
            - t[:, r0[:, None], c1[None, :]]
            - t[:, r1[:, None], c0[None, :]]
            + t[:, r0[:, None], c0[None, :]]
        )

    sums, counts = box(total), box(count)
    ok = (counts >= MIN_CELL_VALID * factor * factor) & (inside_r[:, None] & inside_c[None, :])
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(ok, sums / np.maximum(counts, 1), np.nan)


def _pearson(a: np.ndarray, b: np.ndarray) -> tuple[float, int]:
    """Mean over bands of Pearson r between (band, n) arrays on cells finite in both; cell count."""
    ok = np.isfinite(a).all(0) & np.isfinite(b).all(0)
    n = int(ok.sum())
    if n < 3:
        return float("nan"), n
    a, b = a[:, ok], b[:, ok]
    a = a - a.mean(1, keepdims=True)
    b = b - b.mean(1, keepdims=True)
    den = np.sqrt((a * a).sum(1) * (b * b).sum(1))
    r = np.where(den > 0, (a * b).sum(1) / np.where(den > 0, den, 1.0), np.nan)
    return float(np.nanmean(r)) if np.isfinite(r).any() else float("nan"), n


def correlation_surface(
    fine: np.ndarray,
    cells: np.ndarray,
    factor: int,
    dys: np.ndarray,
    dxs: np.ndarray,
    origin: tuple[int, int] = (0, 0),
) -> tuple[np.ndarray, np.ndarray]:
    """Correlation of box-aggregated fine and coarse cells for each shift in ``dys`` × ``dxs``.

    Parameters
    ----------
    fine : (band, y, x) fine reflectance, NaN = invalid.
    cells : (band, yc, xc) coarse reflectance on the coarse grid, NaN = invalid.
    factor : fine pixels per coarse pixel.
    dys, dxs : integer candidate shifts in fine pixels (rows, columns).
    origin : fine (row, col) of coarse cell (0, 0)'s top-left corner.

    Returns
    -------
    r : (len(dys), len(dxs)) float64, mean Pearson r over bands (NaN: fewer than 3 cells).
    n : same shape, int, clear cells used per shift.
    """
    return _surface(_summed_area(fine.astype(np.float64)), cells, factor, dys, dxs, origin)


def _surface(
    sat: tuple[np.ndarray, np.ndarray],
    cells: np.ndarray,
    factor: int,
    dys: np.ndarray,
    dxs: np.ndarray,
    origin: tuple[int, int],
) -> tuple[np.ndarray, np.ndarray]:
    flat_cells = cells.reshape(cells.shape[0], -1)
    base_r = origin[0] + factor * np.arange(cells.shape[1])
    base_c = origin[1] + factor * np.arange(cells.shape[2])
    r, n = np.full((len(dys), len(dxs)), np.nan), np.zeros((len(dys), len(dxs)), int)
    for i, dy in enumerate(dys):
        for j, dx in enumerate(dxs):
            # the coarse cell at p shows the ground the fine image shows at p - shift
            agg = _box_means(sat, base_r - dy, base_c - dx, factor)
            r[i, j], n[i, j] = _pearson(agg.reshape(agg.shape[0], -1), flat_cells)
    return r, n


def _combine(surfaces: Sequence[tuple[np.ndarray, np.ndarray]]) -> tuple[np.ndarray, np.ndarray]:
    """Cell-weighted mean of correlation surfaces; NaN where fewer than MIN_CELLS cells."""
    weights = np.stack([n for _, n in surfaces]).astype(float)
    stack = np.stack([np.nan_to_num(r) for r, _ in surfaces])
    total = weights.sum(0)
    with np.errstate(invalid="ignore", divide="ignore"):
        combined = (stack * weights).sum(0) / total
    combined[total < MIN_CELLS] = np.nan
    return combined, total.astype(int)


def _vertex(values: np.ndarray, k: int) -> float:
    """Sub-sample offset of the parabola through ``values[k-1:k+2]`` (0 at an edge or no peak)."""
    if k in (0, len(values) - 1):
        return 0.0
    minus, mid, plus = values[k - 1], values[k], values[k + 1]
    curve = minus - 2 * mid + plus
    if not np.isfinite(curve) or curve >= 0:
        return 0.0
    return float(np.clip(0.5 * (minus - plus) / curve, -0.5, 0.5))


def _peak(
    r: np.ndarray, dys: np.ndarray, dxs: np.ndarray
) -> tuple[tuple[float, float], float, tuple[int, int]]:
    """Sub-pixel peak (dy, dx) of a surface, its integer peak value and integer position."""
    i, j = (int(k) for k in np.unravel_index(np.nanargmax(r), r.shape))
    sub = (float(dys[i]) + _vertex(r[:, j], i), float(dxs[j]) + _vertex(r[i, :], j))
    return sub, float(r[i, j]), (int(dys[i]), int(dxs[j]))


def _search(
    sats: Sequence[tuple[np.ndarray, np.ndarray]],
    cells: Sequence[np.ndarray],
    factor: int,
    radius: int,
    origin: tuple[int, int],
) -> tuple[tuple[float, float], float, int, tuple[int, int]] | None:
    """Coarse-to-fine search of the combined surface: sub-px peak, its r, cells, integer peak.

    A grid of step ``factor // 4`` first (the box-aggregated surface is smooth at
    that scale), then every integer shift around its best point.
    """
    step = max(1, factor // 4)
    half = np.arange(0, radius + 1, step)
    grid = np.unique(np.concatenate([-half, half, [-radius, radius]]))

    def combined(dys: np.ndarray, dxs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return _combine(
            [_surface(s, c, factor, dys, dxs, origin) for s, c in zip(sats, cells, strict=True)]
        )

    rough, _ = combined(grid, grid)
    if not np.isfinite(rough).any():
        return None
    _, _, (gy, gx) = _peak(rough, grid, grid)
    dys = np.arange(max(-radius, gy - step - 1), min(radius, gy + step + 1) + 1)
    dxs = np.arange(max(-radius, gx - step - 1), min(radius, gx + step + 1) + 1)
    fine_r, counts = combined(dys, dxs)
    shift, peak, at = _peak(fine_r, dys, dxs)
    used = int(counts[at[0] - dys[0], at[1] - dxs[0]])
    return shift, peak, used, at


def estimate_shift(
    pairs: Sequence[tuple[str, np.ndarray, np.ndarray]],
    factor: int,
    *,
    max_shift: int | None = None,
    origin: tuple[int, int] = (0, 0),
) -> ShiftEstimate:
    """Estimate the coarse images' shift against the fine grid from clear pairs.

    Parameters
    ----------
    pairs : (label, fine (band, y, x), coarse cells (band, yc, xc)) per pair, float reflectance,
        NaN = invalid; the same grids for every pair.
    factor : fine pixels per coarse pixel (e.g. 16 for 30 m / 480 m).
    max_shift : search radius in fine pixels; default two coarse pixels.
    origin : fine (row, col) of coarse cell (0, 0)'s top-left corner.

    Returns
    -------
    ShiftEstimate
        ``shift`` in fine pixels (module convention) with its reliability.
    """
    radius = 2 * factor if max_shift is None else int(max_shift)
    sats = [_summed_area(fine.astype(np.float64)) for _, fine, _ in pairs]
    cells = [c.astype(np.float64) for _, _, c in pairs]
    found = _search(sats, cells, factor, radius, origin) if pairs else None
    if found is None:
        reason = f"fewer than {MIN_CELLS} clear coarse cells in the pairs"
        return ShiftEstimate((0.0, 0.0), None, None, 0, 0.0, (), False, reason)
    shift, peak, used, at = found
    own = []
    for (label, _, _), sat, cell in zip(pairs, sats, cells, strict=True):
        mine = _search([sat], [cell], factor, radius, origin)
        if mine is not None:
            own.append(PairShift(label, _round(mine[0]), round(mine[1], 4), mine[2]))
    zero = np.array([0])
    at_zero, _ = _combine(
        [_surface(s, c, factor, zero, zero, origin) for s, c in zip(sats, cells, strict=True)]
    )
    spread = max((float(np.hypot(*np.subtract(p.shift, shift))) for p in own), default=0.0)
    estimate = ShiftEstimate(
        shift=_round(shift),
        peak=round(peak, 4),
        at_zero=round(float(at_zero[0, 0]), 4) if np.isfinite(at_zero[0, 0]) else None,
        cells=used,
        spread=round(spread, 3),
        pairs=tuple(own),
        reliable=True,
    )
    why = _unreliable(estimate, radius in np.abs(at), factor, radius)
    return replace(estimate, reliable=why is None, reason=why)


def _round(shift: tuple[float, float]) -> tuple[float, float]:
    return (round(float(shift[0]), 3), round(float(shift[1]), 3))


def _unreliable(est: ShiftEstimate, border: bool, factor: int, radius: int) -> str | None:
    """Why ``est`` must not be applied, or None."""
    if est.cells < MIN_CELLS:
        return f"only {est.cells} clear coarse cells (need {MIN_CELLS})"
    if est.peak is None or not est.peak >= MIN_PEAK:
        return f"weak correlation peak r={est.peak:.2f} (< {MIN_PEAK})"
    if border:
        return f"peak on the search border ({radius} fine px): shift larger than searched"
    limit = max(1.0, MAX_SPREAD_CELLS * factor)
    if est.spread > limit:
        return f"pairs disagree by up to {est.spread:.1f} fine px (> {limit:g})"
    return None


def shift_image(image: np.ndarray, shift: tuple[float, float], order: int = 1) -> np.ndarray:
    """``image`` (..., y, x) resampled at ``p + shift`` (undoes a displacement by ``shift``).

    Linear interpolation (``order=1``) for sub-pixel parts; edges take the nearest
    pixel so no valid pixel becomes NaN (NaN pixels spread to their interpolation
    neighbours). float32 out.
    """
    from scipy import ndimage

    if shift == (0.0, 0.0):
        return image
    lead = (0.0,) * (image.ndim - 2)
    out = ndimage.shift(
        image.astype(np.float32, copy=False),
        (*lead, -shift[0], -shift[1]),
        order=order,
        mode="nearest",
        prefilter=False,
    )
    return out.astype(np.float32, copy=False)
