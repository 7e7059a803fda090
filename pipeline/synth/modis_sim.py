"""MODIS-like scenes from the truth: PSF, misregistration, gain/bias, noise, the day's clouds.

Calibrated against the real estarfm-2001 MODIS/TM pairs (``pipeline/synth/CALIBRATION.md``):
the coarse image is displaced by ``WorldSpec.modis_shift_m`` (real: ~540 m), has a
gain below one and a NIR bias (different sensor, atmospheric correction and view), day-
to-day calibration jitter and pixel noise. Clouds are the same field Landsat sees that
day; partly cloudy coarse pixels are kept with their contamination and only the worse
of them are flagged, as real QA misses sub-pixel cloud.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from pipeline.synth.grid import FINE_RES, Grid
from pipeline.synth.modis_psf import MODIS_PSF_SIGMA_M, ModisStrips

#: Gain and bias vs Landsat surface reflectance for MODIS bands 1..7 (red, nir, blue,
#: green, 1240 nm, swir1, swir2). With the PSF and the 463 m sinusoidal pixels, a least-
#: squares fit of 480 m block means then gives the real estarfm-2001 figures (red ~0.78,
#: NIR ~0.65 with bias ~0.07): most of the real "gain" is regression dilution by the PSF.
_MODIS_GAIN = np.array([1.00, 0.90, 1.00, 1.00, 0.90, 0.95, 0.95], dtype=np.float32)
_MODIS_BIAS = np.array([0.003, 0.035, 0.005, 0.006, 0.025, 0.010, 0.005], dtype=np.float32)
#: Per-pixel noise and per-day calibration jitter (gain sd, bias sd), reflectance.
_MODIS_NOISE, _DAY_GAIN_SD, _DAY_BIAS_SD = 0.004, 0.02, 0.003
#: Canonical band index (blue, green, red, nir, swir1, swir2) feeding MODIS bands 1, 2, 3, 4, 6, 7.
_MODIS_FROM = {0: 2, 1: 3, 2: 0, 3: 1, 5: 4, 6: 5}
#: A coarse pixel is fill above this cloud fraction and flagged (QA 1) above the lower one;
#: below that its contamination goes unreported.
_FILL_FRACTION, _FLAG_FRACTION = 0.20, 0.05
_CLOUD_TOP = np.array([0.56, 0.60, 0.55, 0.55, 0.55, 0.45, 0.30], dtype=np.float32)
MODIS_FILL = 32767
MODIS_QA_FILL = 255


def modis_scene(
    truth: np.ndarray,
    world: Grid,
    window: Grid,
    rng: np.random.Generator,
    cloud: np.ndarray,
    shift_m: tuple[float, float],
    inside: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, float]:
    """One MCD43A4-like NBAR scene on the sinusoidal ``window``.

    Parameters
    ----------
    truth : (band, y, x) float32 surface reflectance on the world grid.
    world, window : the 30 m world grid and the sinusoidal MODIS window.
    rng : this day's generator (noise, calibration jitter).
    cloud : (y, x) bool, the day's cloud (and cirrus) on the world grid.
    shift_m : (east, north) misregistration of the MODIS scene, metres.
    inside : (yc, xc) bool, window pixels whose centre lies in the world.

    Returns
    -------
    dn : (7, yc, xc) int16 for MODIS bands 1..7, reflectance = dn * 1e-4, 32767 = fill.
    qa : (yc, xc) uint8 BRDF mandatory quality (0 full, 1 magnitude inversion, 255 fill).
    cloud_cover : percent of the window pixels inside the world without a retrieval.
    """
    return finish_scene(*_on_window(truth, cloud, world, window, shift_m), rng, inside)


def finish_scene(
    refl: np.ndarray, frac: np.ndarray, rng: np.random.Generator, inside: np.ndarray
) -> tuple[np.ndarray, np.ndarray, float]:
    """Calibration, noise, cloud contamination and QA of the day's blurred bands.

    ``refl`` (7, yc, xc) and ``frac`` (yc, xc) from :func:`modis_bands`; ``rng`` and
    ``inside`` and the returns as :func:`modis_scene`.
    """
    gain = _MODIS_GAIN * (1 + _DAY_GAIN_SD * rng.standard_normal(7, dtype=np.float32))
    bias = _MODIS_BIAS + _DAY_BIAS_SD * rng.standard_normal(7, dtype=np.float32)
    refl = refl * gain[:, None, None] + bias[:, None, None]
    refl = refl + _MODIS_NOISE * rng.standard_normal(refl.shape, dtype=np.float32)
    weight = 0.4 * frac[None]
    refl = (1 - weight) * refl + weight * _CLOUD_TOP[:, None, None]
    fill = (frac > _FILL_FRACTION) | ~np.isfinite(refl).all(axis=0)
    dn = np.round(np.clip(np.nan_to_num(refl), 0.0, 1.0) * 1e4)
    dn = np.where(fill[None], MODIS_FILL, dn).astype(np.int16)
    qa = np.where(fill, MODIS_QA_FILL, np.where(frac > _FLAG_FRACTION, 1, 0)).astype(np.uint8)
    cover = float(100.0 * fill[inside].mean()) if inside.any() else 0.0
    return dn, qa, cover


def inside_world(world: Grid, window: Grid) -> np.ndarray:
    """(yc, xc) bool: window pixels whose centre falls inside the world's footprint."""
    from pyproj import Transformer

    rows, cols = np.mgrid[0 : window.height, 0 : window.width] + 0.5
    xs, ys = window.transform * (cols.ravel(), rows.ravel())
    ex, ny = Transformer.from_crs(window.crs, world.crs, always_xy=True).transform(xs, ys)
    left, bottom, right, top = world.bounds
    ok = (ex >= left) & (ex < right) & (ny > bottom) & (ny <= top)
    return np.asarray(ok).reshape(window.shape)


def _on_window(
    truth: np.ndarray, cloud: np.ndarray, world: Grid, window: Grid, shift_m: tuple[float, float]
) -> tuple[np.ndarray, np.ndarray]:
    """PSF-blurred, shifted MODIS bands 1..7 (7, yc, xc) and cloud fraction (yc, xc)."""
    strips = ModisStrips(world, window, shift_m)
    strips.add(0, world.height, 0, truth, cloud)
    return modis_bands(strips.result())


def modis_bands(coarse: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """MODIS bands 1..7 (7, yc, xc) and cloud fraction (yc, xc) from :meth:`ModisStrips.result`."""
    out = np.empty((7, *coarse.shape[1:]), dtype=np.float32)
    for modis_idx, canon in _MODIS_FROM.items():
        out[modis_idx] = coarse[canon]
    out[4] = 0.75 * coarse[3] + 0.25 * coarse[4]
    return out, np.nan_to_num(coarse[-1], nan=1.0)


def modis_reflectance(
    truth: np.ndarray, world: Grid, window: Grid, shift_m: tuple[float, float] = (0.0, 0.0)
) -> np.ndarray:
    """Noise-free, cloud-free MODIS bands 1..7 on ``window``: (7, yc, xc) float32."""
    cloud = np.zeros(truth.shape[1:], dtype=bool)
    refl, _ = _on_window(truth, cloud, world, window, shift_m)
    out = refl * _MODIS_GAIN[:, None, None] + _MODIS_BIAS[:, None, None]
    return np.clip(out, 0.0, 1.0, where=np.isfinite(out), out=out)


def coarse_blocks(
    truth: np.ndarray,
    factor: int,
    bands: tuple[int, ...],
    shift_px: tuple[int, int] = (0, 0),
    rng: np.random.Generator | None = None,
) -> np.ndarray:
    """MODIS-like reflectance on the coarse grid aligned with the world grid (no reprojection).

    PSF blur, the misregistration, the mean of each ``factor`` x ``factor`` block, MODIS
    gain/bias and (with ``rng``) pixel noise: the same sensor model as :func:`modis_scene`
    on the benchmarks' aligned 480 m grid.

    Parameters
    ----------
    truth : (band, y, x) float32 reflectance, canonical bands blue..swir2.
    factor : block size in fine pixels (16 for 480 m); y and x must be multiples of it.
    bands : canonical band indices to return.
    shift_px : (rows, cols) the coarse image content is displaced by (edges repeated).
    rng : noise generator; None for noise-free blocks.

    Returns
    -------
    (len(bands), y // factor, x // factor) float32 reflectance.
    """
    sigma_px = MODIS_PSF_SIGMA_M / FINE_RES
    modis_of = {canon: m for m, canon in _MODIS_FROM.items()}
    out = []
    for b in bands:
        blurred = ndimage.gaussian_filter(truth[b], sigma_px, mode="nearest")
        blurred = ndimage.shift(blurred, shift_px, order=0, mode="nearest")
        h, w = blurred.shape
        block = blurred.reshape(h // factor, factor, w // factor, factor).mean(axis=(1, 3))
        block = block * _MODIS_GAIN[modis_of[b]] + _MODIS_BIAS[modis_of[b]]
        if rng is not None:
            block = block + _MODIS_NOISE * rng.standard_normal(block.shape)
        out.append(block)
    return np.clip(np.stack(out), 0.0, 1.0).astype(np.float32)


def shift_px(shift_m: tuple[float, float]) -> tuple[int, int]:
    """(rows, cols) of 30 m pixels for an (east, north) shift in metres (rows grow south)."""
    return round(-shift_m[1] / FINE_RES), round(shift_m[0] / FINE_RES)
