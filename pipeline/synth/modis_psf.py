"""The 30 m truth seen through the MODIS PSF on the sinusoidal window, a strip at a time.

The sensor model (``pipeline/synth/CALIBRATION.md``): the truth (and the day's cloud
mask) averaged to 60 m, given a reflected margin so the shifted, blurred scene has no
edge, blurred by a Gaussian PSF, displaced by the misregistration and averaged over
each sinusoidal pixel. Each 60 m pixel goes whole to the MODIS pixel holding its centre
(the sums of a day add up over strips); a strip needs the PSF's reach of 60 m rows
either side and, at the world's top and bottom, the rows the margin reflects.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
from affine import Affine
from pyproj import Transformer
from scipy import ndimage

from pipeline.synth.grid import FINE_RES, Grid

#: Gaussian PSF sigma in metres, on top of the 463 m pixel average: a triangular along-
#: scan response of one pixel is roughly a box plus this blur. Tuned so the 480 m variance
#: kept by the coarse image matches the real estarfm-2001 MODIS (see CALIBRATION.md).
MODIS_PSF_SIGMA_M = 120.0
#: The truth is averaged to 60 m before the PSF (4x cheaper; the PSF is ~7 px wide at 30 m).
_PRE = 2
#: Reflected margin (30 m px) around the world so the shifted, blurred scene has no edge.
_PAD = 64
_SIGMA = MODIS_PSF_SIGMA_M / (FINE_RES * _PRE)
_REACH = int(4.0 * _SIGMA + 0.5)
#: Sinusoidal coordinates are computed exactly every this many 60 m pixels, linear between.
_LATTICE = 16


class ModisStrips:
    """Accumulates one day's PSF-blurred truth and cloud fraction on the MODIS window.

    Parameters
    ----------
    world, window : the 30 m world grid and the sinusoidal MODIS window.
    shift_m : (east, north) misregistration of the MODIS scene, metres.
    """

    def __init__(self, world: Grid, window: Grid, shift_m: tuple[float, float]) -> None:
        self.world, self.window = world, window
        pad = _PAD // _PRE
        # Padded 60 m row -> real 60 m row: numpy's own reflection, repeated if need be.
        self.source_row = np.pad(np.arange(world.height // _PRE), pad, mode="reflect")
        self.padded_width = world.width // _PRE + 2 * pad
        self.src = (
            Affine.translation(*shift_m)
            * world.transform
            * Affine.scale(_PRE)
            * Affine.translation(-pad, -pad)
        )
        self._to_window = _transformer(world.crs.to_wkt(), window.crs.to_wkt())
        self.sums = np.zeros((7, window.height * window.width))
        self.count = np.zeros(window.height * window.width)

    def fine_rows(self, r0: int, r1: int) -> tuple[int, int]:
        """30 m rows of truth that the strip of world rows ``r0..r1`` needs (a superset of it)."""
        e0, e1 = self._reach(*self._padded(r0, r1))
        rows = self.source_row[e0:e1]
        return min(r0, _PRE * int(rows.min())), max(r1, _PRE * (int(rows.max()) + 1))

    def add(self, r0: int, r1: int, lo: int, truth: np.ndarray, cloud: np.ndarray) -> None:
        """Add the strip ``r0..r1`` given the truth and cloud of rows ``lo..`` (:meth:`fine_rows`).

        Parameters
        ----------
        truth : (6, rows, x) float32 reflectance of 30 m rows ``lo..lo + rows``.
        cloud : (rows, x) bool cloud or cirrus of the same rows.
        """
        stack = np.concatenate([truth, cloud[None].astype(np.float32)])
        h, w = stack.shape[1:]
        stack = stack.reshape(len(stack), h // _PRE, _PRE, w // _PRE, _PRE).mean(axis=(2, 4))
        p0, p1 = self._padded(r0, r1)
        e0, e1 = self._reach(p0, p1)
        pad = _PAD // _PRE
        rows = stack[:, self.source_row[e0:e1] - lo // _PRE]
        rows = np.pad(rows, ((0, 0), (0, 0), (pad, pad)), mode="reflect")
        for b in range(len(rows) - 1):  # the PSF blurs the bands, not the cloud fraction
            rows[b] = ndimage.gaussian_filter(rows[b], _SIGMA, mode="nearest", truncate=4.0)
        self._bin(p0, rows[:, p0 - e0 : p1 - e0])

    def result(self) -> np.ndarray:
        """(7, yc, xc) float32: bands blue..swir2, then cloud fraction; NaN where no data."""
        with np.errstate(invalid="ignore", divide="ignore"):
            mean = np.where(self.count > 0, self.sums / self.count, np.nan)
        return mean.reshape(7, *self.window.shape).astype(np.float32)

    def _padded(self, r0: int, r1: int) -> tuple[int, int]:
        """Padded 60 m rows owned by world rows ``r0..r1`` (the margins go to the end strips)."""
        pad = _PAD // _PRE
        p0 = 0 if r0 == 0 else r0 // _PRE + pad
        p1 = len(self.source_row) if r1 >= self.world.height else r1 // _PRE + pad
        return p0, p1

    def _reach(self, p0: int, p1: int) -> tuple[int, int]:
        return max(0, p0 - _REACH), min(len(self.source_row), p1 + _REACH)

    def _bin(self, p0: int, values: np.ndarray) -> None:
        index = self._window_index(p0, p0 + values.shape[1]).ravel()
        ok = index >= 0
        index = index[ok]
        n = self.count.size
        for b in range(len(values)):
            self.sums[b] += np.bincount(index, weights=values[b].ravel()[ok], minlength=n)
        self.count += np.bincount(index, minlength=n)

    def _window_index(self, p0: int, p1: int) -> np.ndarray:
        """(rows, cols) flat window index of each padded 60 m pixel's centre; -1 outside."""
        # Lattice rows on multiples of _LATTICE: the same points whatever the strip plan.
        first = p0 // _LATTICE
        rows = _LATTICE * np.arange(first, (p1 - 1) // _LATTICE + 2)
        cols = _LATTICE * np.arange((self.padded_width - 1) // _LATTICE + 2)
        cc, rr = np.meshgrid(cols + 0.5, rows + 0.5)
        x, y = self.src * (cc, rr)
        sx, sy = self._to_window.transform(x, y)
        inv = ~self.window.transform
        wc, wr = inv * (np.asarray(sx), np.asarray(sy))
        grid_r, grid_c = np.mgrid[p0:p1, 0 : self.padded_width].astype(np.float64)
        coords = np.stack([grid_r / _LATTICE - first, grid_c / _LATTICE])
        col = ndimage.map_coordinates(wc, coords, order=1)
        row = ndimage.map_coordinates(wr, coords, order=1)
        ic, ir = np.floor(col).astype(np.int64), np.floor(row).astype(np.int64)
        inside = (ic >= 0) & (ic < self.window.width) & (ir >= 0) & (ir < self.window.height)
        return np.where(inside, ir * self.window.width + ic, -1)


@lru_cache(maxsize=4)
def _transformer(src_wkt: str, dst_wkt: str) -> Transformer:
    """One transformer per pair of CRSs: making one costs ~0.1 s (PROJ database lookups)."""
    return Transformer.from_crs(src_wkt, dst_wkt, always_xy=True)
