"""Random fields keyed on position, so any strip of rows is the same whatever the strip plan.

Every row of noise comes from its own generator, seeded by (key..., row), and is drawn
over a fixed span of columns: a strip of rows ``[r0, r1)`` generated alone is
bit-identical to the same rows of the whole world. Smooth fields filter such noise with a
halo of real noise rows and columns around the strip (never a boundary rule), and are
normalised by the filter's exact standard deviation instead of the sample's.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy import ndimage

#: Rows above the world have negative indices: keys add this so seeds stay non-negative.
_ROW_OFFSET = 1 << 16
#: Noise columns drawn either side of the world: the widest filter halo must fit.
FIELD_PAD = 128
_TRUNCATE = 4.0


def row_normals(key: Sequence[int], r0: int, r1: int, width: int, depth: int = 1) -> np.ndarray:
    """Standard normal noise of rows ``r0..r1`` (any integers > -65536).

    Parameters
    ----------
    key : integers naming the stream (seed, purpose, day...).
    r0, r1 : first and past-last row.
    width : columns per row; row ``r`` is the same for a given ``(key, width, depth)``.
    depth : independent layers drawn per row.

    Returns
    -------
    (depth, r1 - r0, width) float32.
    """
    out = np.empty((depth, r1 - r0, width), dtype=np.float32)
    for i, row in enumerate(range(r0, r1)):
        rng = np.random.default_rng([*key, row + _ROW_OFFSET])
        out[:, i] = rng.standard_normal((depth, width), dtype=np.float32)
    return out


def smooth_rows(key: Sequence[int], sigma: float, r0: int, r1: int, width: int) -> np.ndarray:
    """Rows ``r0..r1`` of a stationary unit-variance Gaussian random field, (rows, width) float32.

    White noise on an unbounded lattice filtered by a Gaussian of ``sigma`` px (truncated
    at 4 sigma): the field has no edges, wraps nowhere, and a strip needs only its halo.
    """
    halo = int(_TRUNCATE * sigma + 0.5)
    if halo > FIELD_PAD:
        raise ValueError(f"sigma {sigma} px needs a halo wider than {FIELD_PAD} columns")
    noise = row_normals(key, r0 - halo, r1 + halo, width + 2 * FIELD_PAD)[0]
    noise = noise[:, FIELD_PAD - halo : FIELD_PAD + width + halo]
    field = ndimage.gaussian_filter(noise, sigma, truncate=_TRUNCATE, mode="nearest")
    return (field[halo : halo + r1 - r0, halo : halo + width] / field_std(sigma)).astype(np.float32)


def field_std(sigma: float) -> float:
    """Standard deviation of unit white noise after the 2-D truncated Gaussian filter."""
    radius = int(_TRUNCATE * sigma + 0.5)
    x = np.arange(-radius, radius + 1, dtype=np.float64)
    w = np.exp(-0.5 * (x / sigma) ** 2)
    w /= w.sum()
    # Separable kernel w_i w_j: its sum of squares is (sum w^2)^2, whose root is sum w^2.
    return float(np.sum(w**2))


def upsample_rows(
    small: np.ndarray, shape: tuple[int, int], rows: np.ndarray, cols: np.ndarray
) -> np.ndarray:
    """Linear interpolation of a periodic coarse field at fine pixel ``rows`` x ``cols``.

    The same mapping as ``ndimage.zoom(order=1, grid_mode=True, mode="grid-wrap")`` to
    ``shape``: fine pixel ``i`` sits at coarse coordinate ``(i + 0.5) * yc / y - 0.5``.

    Parameters
    ----------
    small : (yc, xc) float32 coarse field.
    shape : (y, x) of the fine grid.
    rows, cols : 1-D integer fine indices.

    Returns
    -------
    (len(rows), len(cols)) float32.
    """
    r_lo, r_w = _linear(rows, shape[0] / small.shape[0], small.shape[0])
    c_lo, c_w = _linear(cols, shape[1] / small.shape[1], small.shape[1])
    r_hi, c_hi = (r_lo + 1) % small.shape[0], (c_lo + 1) % small.shape[1]
    by_row = small[r_lo] * (1 - r_w)[:, None] + small[r_hi] * r_w[:, None]
    out = by_row[:, c_lo] * (1 - c_w)[None, :] + by_row[:, c_hi] * c_w[None, :]
    return out.astype(np.float32)


def _linear(index: np.ndarray, factor: float, n: int) -> tuple[np.ndarray, np.ndarray]:
    coord = (np.asarray(index, dtype=np.float64) + 0.5) / factor - 0.5
    lo = np.floor(coord)
    return (lo.astype(np.int64) % n), (coord - lo).astype(np.float32)
