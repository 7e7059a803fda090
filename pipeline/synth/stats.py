"""Scene statistics that calibrate the demo world against real Landsat/MODIS sets.

Each function takes plain arrays, so the same figure is computed on the real sets in
``tests/data/real`` and on a built world (``tests/synth/test_calibration.py``,
``pipeline/synth/CALIBRATION.md``). Reflectance arrays are float in [0, 1].
"""

from __future__ import annotations

import numpy as np

#: Fine pixels per side of a coarse (480 m) cell, the "MODIS scale" of these statistics.
BLOCK = 16


def block_mean(img: np.ndarray, block: int = BLOCK) -> np.ndarray:
    """Mean of each ``block`` x ``block`` cell of a (y, x) array (edges cropped), float64."""
    h, w = (img.shape[0] // block) * block, (img.shape[1] // block) * block
    return img[:h, :w].reshape(h // block, block, w // block, block).mean(axis=(1, 3))


def red_nir_correlation(red: np.ndarray, nir: np.ndarray) -> float:
    """Pearson correlation of red and NIR over the finite pixels of one scene."""
    ok = np.isfinite(red) & np.isfinite(nir)
    return float(np.corrcoef(red[ok], nir[ok])[0, 1])


def edge_index(img: np.ndarray, quantile: float = 0.98) -> float:
    """Sharpness of the strongest edges: 1 = one-pixel steps, ~0.5 = blurred over ~2 px.

    At every pixel the step over three pixels ``|x[i+2] - x[i-1]|`` is compared with the
    largest single-pixel step inside it; the index is the median ratio over the pixels
    whose three-pixel step is in the top ``1 - quantile`` (rows and columns pooled).
    A perfect step gives 1; a Gaussian blur of sigma 0.7 px gives about 0.55.
    """
    ratios = []
    for a in (img, img.T):
        d1 = np.abs(np.diff(a, axis=1))
        wide = np.abs(a[:, 3:] - a[:, :-3])
        step = np.maximum(np.maximum(d1[:, :-2], d1[:, 1:-1]), d1[:, 2:])
        ok = np.isfinite(wide) & np.isfinite(step)
        strong = ok & (wide >= np.quantile(wide[ok], quantile)) & (wide > 0)
        ratios.append(step[strong] / wide[strong])
    return float(np.median(np.concatenate(ratios)))


def sub_coarse_change_share(before: np.ndarray, after: np.ndarray, block: int = BLOCK) -> float:
    """Share of the variance of the change ``after - before`` lying below the coarse scale.

    ``var(change - blockmean(change)) / var(change)`` with ``block`` x ``block`` cells: the
    part a MODIS-scale change image cannot show, whatever its quality.
    """
    change = (after - before).astype(np.float64)
    h, w = (change.shape[0] // block) * block, (change.shape[1] // block) * block
    change = change[:h, :w]
    coarse = np.kron(block_mean(change, block), np.ones((block, block)))
    return float(np.var(change - coarse) / np.var(change))


def coarse_fit(fine: np.ndarray, coarse: np.ndarray, block: int = BLOCK) -> dict[str, float]:
    """Gain, bias, noise and explained variance of coarse vs fine, both as block means.

    Parameters
    ----------
    fine, coarse : (y, x) reflectance of one band on the same fine grid (the coarse image
        resampled onto it), co-registered by the caller.

    Returns
    -------
    ``gain``, ``bias`` (least squares coarse = gain * fine + bias), ``noise`` (residual
    standard deviation, reflectance), ``r2`` (squared correlation).
    """
    f, c = block_mean(fine, block).ravel(), block_mean(coarse, block).ravel()
    ok = np.isfinite(f) & np.isfinite(c)
    gain, bias = np.polyfit(f[ok], c[ok], 1)
    resid = c[ok] - (gain * f[ok] + bias)
    r = np.corrcoef(f[ok], c[ok])[0, 1]
    return {
        "gain": float(gain),
        "bias": float(bias),
        "noise": float(resid.std()),
        "r2": float(r * r),
    }


def best_shift(
    fine: np.ndarray, coarse: np.ndarray, search: int = 24, step: int = 2
) -> tuple[int, int]:
    """(dy, dx) in fine pixels that best aligns ``coarse`` with ``fine`` (block-mean correlation).

    ``coarse`` shifted by (dy, dx), i.e. ``coarse[y + dy, x + dx]`` against ``fine[y, x]``.
    """
    best, arg = -2.0, (0, 0)
    m = search
    h, w = fine.shape
    for dy in range(-search, search + 1, step):
        for dx in range(-search, search + 1, step):
            f = fine[m : h - m, m : w - m]
            c = coarse[m + dy : h - m + dy, m + dx : w - m + dx]
            r = np.corrcoef(block_mean(f).ravel(), block_mean(c).ravel())[0, 1]
            if r > best:
                best, arg = r, (dy, dx)
    return arg


def ndvi(red: np.ndarray, nir: np.ndarray) -> np.ndarray:
    """Normalised difference vegetation index, NaN where red + nir is 0."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return (nir - red) / (nir + red)
