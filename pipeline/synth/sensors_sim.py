"""Sensor simulators: Landsat-like 30 m and MODIS-like 463 m sinusoidal scenes from the truth."""

from __future__ import annotations

import math

import numpy as np
import rasterio.warp
from rasterio.enums import Resampling
from scipy import ndimage

from pipeline import sensors as s
from pipeline.synth.clouds import CloudMasks, cloud_masks, draw_cover
from pipeline.synth.grid import FINE_RES, Grid
from pipeline.synth.phenology import WATER

# Cloud-top spectrum (blue..swir2) and the diffuse light left in cloud shadow.
_CLOUD_SPECTRUM = np.array([0.55, 0.55, 0.56, 0.60, 0.45, 0.30], dtype=np.float32)
_SHADOW_FACTOR = 0.45
#: Landsat noise: additive (reflectance) and relative, per band (OLI L2 SR-like).
_LS_NOISE_ADD, _LS_NOISE_REL = 0.003, 0.01
#: Sun at ~150 deg azimuth, ~60 deg elevation at 10:00 UTC in summer; clouds ~1.5 km high.
_SUN_AZIMUTH_DEG, _SUN_ELEVATION_DEG, _CLOUD_HEIGHT_M = 150.0, 60.0, 1500.0

# MODIS vs Landsat: per-band gain/bias (different spectral response and NBAR correction),
# for MODIS bands 1..7; band 5 (1240 nm) is interpolated between nir and swir1.
_MODIS_GAIN = np.array([0.97, 1.03, 1.00, 0.99, 1.00, 1.02, 0.98], dtype=np.float32)
_MODIS_BIAS = np.array([0.004, -0.005, 0.008, 0.003, 0.0, 0.0, 0.002], dtype=np.float32)
_MODIS_NOISE = 0.004
#: Canonical band index (blue, green, red, nir, swir1, swir2) feeding MODIS bands 1, 2, 3, 4, 6, 7.
_MODIS_FROM = {0: 2, 1: 3, 2: 0, 3: 1, 5: 4, 6: 5}
#: Gaussian PSF sigma in metres: FWHM about one nominal 500 m pixel.
_MODIS_PSF_SIGMA_M = 500.0 / 2.355
MODIS_FILL = 32767
MODIS_QA_FILL = 255


def landsat_noise(refl: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """``refl`` with OLI-like sensor noise (1 % relative + 0.003 additive), float32."""
    refl = refl * (1 + _LS_NOISE_REL * rng.standard_normal(refl.shape, dtype=np.float32))
    return refl + _LS_NOISE_ADD * rng.standard_normal(refl.shape, dtype=np.float32)


def landsat_scene(
    truth: np.ndarray, labels: np.ndarray, rng: np.random.Generator, cloudiness: float
) -> tuple[np.ndarray, np.ndarray, float]:
    """One Landsat Collection 2 L2-like scene of the world.

    Parameters
    ----------
    truth : (band, y, x) float32 surface reflectance (blue..swir2).
    labels : (y, x) class ids (water pixels get the water QA bit).
    rng : this scene's generator.
    cloudiness : maximum cloud fraction of a cloudy scene.

    Returns
    -------
    dn : (band, y, x) uint16, reflectance = dn * 2.75e-05 - 0.2, 0 = fill.
    qa : (y, x) uint16 QA_PIXEL with the Collection 2 bit layout.
    cloud_cover : percent of the scene flagged cloud or cirrus.
    """
    cover = draw_cover(rng, cloudiness, clear_share=0.4)
    masks = cloud_masks(
        truth.shape[1:], cover, rng, sigma_px=10.0, shadow_shift_px=_shadow_shift_px()
    )
    refl = landsat_noise(_apply_clouds(truth, masks), rng)
    dn = np.clip(
        np.round((refl - s.LANDSAT_C2_L2.offset) / s.LANDSAT_C2_L2.scale), 1, 65535
    ).astype(np.uint16)
    return dn, landsat_qa(masks, labels == WATER), masks.cover_percent


def landsat_qa(masks: CloudMasks, water: np.ndarray) -> np.ndarray:
    """QA_PIXEL bits from the masks, as USGS sets them.

    Clear (bit 6) means "cloud and dilated-cloud bits not set"; confidences (bits 8-15,
    two bits each: cloud, shadow, snow, cirrus) are 1 (low) unless the flag is set (3, high).
    """
    qa = np.zeros(masks.cloud.shape, dtype=np.uint16)
    qa |= np.where(masks.dilated, s.QA_DILATED_CLOUD, 0).astype(np.uint16)
    qa |= np.where(masks.cirrus, s.QA_CIRRUS, 0).astype(np.uint16)
    qa |= np.where(masks.cloud, s.QA_CLOUD, 0).astype(np.uint16)
    qa |= np.where(masks.shadow, s.QA_CLOUD_SHADOW, 0).astype(np.uint16)
    qa |= np.where(~(masks.cloud | masks.dilated), s.QA_CLEAR, 0).astype(np.uint16)
    qa |= np.where(water & ~masks.cloud, s.QA_WATER, 0).astype(np.uint16)
    for bit, flag in ((8, masks.cloud), (10, masks.shadow), (12, None), (14, masks.cirrus)):
        conf = (
            np.full(qa.shape, 1, dtype=np.uint16)
            if flag is None
            else np.where(flag, 3, 1).astype(np.uint16)
        )
        qa |= conf << bit
    return qa


def _shadow_shift_px() -> tuple[int, int]:
    length = _CLOUD_HEIGHT_M / math.tan(math.radians(_SUN_ELEVATION_DEG)) / FINE_RES
    away = math.radians(_SUN_AZIMUTH_DEG + 180.0)
    # Azimuth is clockwise from north; rows grow southwards.
    return round(-length * math.cos(away)), round(length * math.sin(away))


def _apply_clouds(truth: np.ndarray, masks: CloudMasks) -> np.ndarray:
    op = masks.opacity[None]
    out = truth * (1 - op) + _CLOUD_SPECTRUM[:, None, None] * op
    out = np.where(masks.shadow[None], out * _SHADOW_FACTOR, out)
    # Cirrus adds a thin, mostly visible haze.
    return np.where(masks.cirrus[None], out + 0.03, out).astype(np.float32)


def modis_scene(
    truth: np.ndarray, world: Grid, window: Grid, rng: np.random.Generator, cloudiness: float
) -> tuple[np.ndarray, np.ndarray, float]:
    """One MCD43A4-like NBAR scene on the sinusoidal ``window``.

    The truth is blurred by a Gaussian PSF, area-averaged onto the 463 m sinusoidal
    pixels, given per-band gain/bias and noise; clouded pixels become fill.

    Returns
    -------
    dn : (7, yc, xc) int16 for MODIS bands 1..7, reflectance = dn * 1e-4, 32767 = fill.
    qa : (yc, xc) uint8 BRDF mandatory quality (0 full, 1 magnitude inversion, 255 fill).
    cloud_cover : percent of the window without a valid retrieval.
    """
    refl = modis_reflectance(truth, world, window)
    refl = refl + _MODIS_NOISE * rng.standard_normal(refl.shape, dtype=np.float32)
    cover = draw_cover(rng, 0.6 * cloudiness, clear_share=0.6)
    masks = cloud_masks(window.shape, cover, rng, sigma_px=1.5)
    fill = masks.cloud | ~np.isfinite(refl).all(axis=0)
    dn = np.where(fill[None], MODIS_FILL, np.round(np.nan_to_num(refl) * 1e4)).astype(np.int16)
    # Pixels near clouds had fewer looks in the 16-day window: magnitude inversions.
    qa = np.where(fill, MODIS_QA_FILL, np.where(masks.cirrus | masks.dilated, 1, 0)).astype(
        np.uint8
    )
    return dn, qa, float(100.0 * fill.mean())


def coarse_blocks(truth: np.ndarray, factor: int, bands: tuple[int, ...]) -> np.ndarray:
    """MODIS-like reflectance on the coarse grid aligned with the world grid (no reprojection).

    PSF blur, then the mean of each ``factor`` x ``factor`` block, then MODIS gain/bias.

    Parameters
    ----------
    truth : (band, y, x) float32 reflectance, canonical bands blue..swir2.
    factor : block size in fine pixels (16 for 480 m); y and x must be multiples of it.
    bands : canonical band indices to return.

    Returns
    -------
    (len(bands), y // factor, x // factor) float32 reflectance.
    """
    sigma_px = _MODIS_PSF_SIGMA_M / FINE_RES
    modis_of = {canon: m for m, canon in _MODIS_FROM.items()}
    out = []
    for b in bands:
        blurred = ndimage.gaussian_filter(truth[b], sigma_px, mode="nearest")
        h, w = blurred.shape
        block = blurred.reshape(h // factor, factor, w // factor, factor).mean(axis=(1, 3))
        out.append(block * _MODIS_GAIN[modis_of[b]] + _MODIS_BIAS[modis_of[b]])
    return np.clip(np.stack(out), 0.0, 1.0).astype(np.float32)


def modis_reflectance(truth: np.ndarray, world: Grid, window: Grid) -> np.ndarray:
    """Noise-free MODIS bands 1..7 on ``window``: (7, yc, xc) float32, NaN outside the world."""
    sigma_px = _MODIS_PSF_SIGMA_M / FINE_RES
    blurred = np.stack([ndimage.gaussian_filter(b, sigma_px, mode="nearest") for b in truth])
    coarse = np.full((truth.shape[0], *window.shape), np.nan, dtype=np.float32)
    rasterio.warp.reproject(
        blurred,
        coarse,
        src_transform=world.transform,
        src_crs=world.crs,
        dst_transform=window.transform,
        dst_crs=window.crs,
        src_nodata=np.nan,
        dst_nodata=np.nan,
        resampling=Resampling.average,
    )
    out = np.empty((7, *window.shape), dtype=np.float32)
    for modis_idx, canon in _MODIS_FROM.items():
        out[modis_idx] = coarse[canon]
    out[4] = 0.75 * coarse[3] + 0.25 * coarse[4]
    out = out * _MODIS_GAIN[:, None, None] + _MODIS_BIAS[:, None, None]
    return np.clip(out, 0.0, 1.0, where=np.isfinite(out), out=out)
