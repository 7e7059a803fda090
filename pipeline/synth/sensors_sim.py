"""Landsat-like 30 m scenes from the truth: clouds, shadows, haze, noise and QA_PIXEL.

The MODIS-like side is :mod:`pipeline.synth.modis_sim` (names re-exported here).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from pipeline import sensors as s
from pipeline.synth.clouds import CloudMasks, cloud_masks, mask_halo
from pipeline.synth.grid import FINE_RES
from pipeline.synth.modis_sim import (  # noqa: F401  (re-exported)
    MODIS_FILL,
    MODIS_QA_FILL,
    coarse_blocks,
    modis_reflectance,
    modis_scene,
)
from pipeline.synth.noise import row_normals
from pipeline.synth.phenology import WATER

# Cloud-top spectrum (blue..swir2) and the diffuse light left in cloud shadow.
_CLOUD_SPECTRUM = np.array([0.55, 0.55, 0.56, 0.60, 0.45, 0.30], dtype=np.float32)
_SHADOW_FACTOR = 0.45
#: Shadow of thin cloud (never flagged) and the spectral shape of haze (strongest in blue).
_FAINT_SHADOW_FACTOR = 0.85
_HAZE_SPECTRAL = np.array([1.0, 0.8, 0.6, 0.4, 0.2, 0.1], dtype=np.float32)
#: Landsat noise: additive (reflectance) and relative, per band (OLI L2 SR-like).
_LS_NOISE_ADD, _LS_NOISE_REL = 0.003, 0.01
#: Sun at ~150 deg azimuth, ~60 deg elevation at 10:00 UTC in summer; clouds ~1.5 km high.
_SUN_AZIMUTH_DEG, _SUN_ELEVATION_DEG, _CLOUD_HEIGHT_M = 150.0, 60.0, 1500.0


def landsat_noise(refl: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """``refl`` with OLI-like sensor noise (1 % relative + 0.003 additive), float32."""
    relative = rng.standard_normal(refl.shape, dtype=np.float32)
    return _noisy(refl, relative, rng.standard_normal(refl.shape, dtype=np.float32))


def _noisy(refl: np.ndarray, relative: np.ndarray, additive: np.ndarray) -> np.ndarray:
    return refl * (1 + _LS_NOISE_REL * relative) + _LS_NOISE_ADD * additive


def landsat_scene(
    truth: np.ndarray, labels: np.ndarray, rng: np.random.Generator, masks: CloudMasks
) -> tuple[np.ndarray, np.ndarray, float]:
    """One Landsat Collection 2 L2-like scene of the world.

    Parameters
    ----------
    truth : (band, y, x) float32 surface reflectance (blue..swir2).
    labels : (y, x) class ids (water pixels get the water QA bit).
    rng : this scene's generator (sensor noise).
    masks : the day's clouds on the 30 m grid (:func:`landsat_masks`).

    Returns
    -------
    dn : (band, y, x) uint16, reflectance = dn * 2.75e-05 - 0.2, 0 = fill.
    qa : (y, x) uint16 QA_PIXEL with the Collection 2 bit layout.
    cloud_cover : percent of the scene flagged cloud or cirrus.
    """
    refl = landsat_noise(_apply_clouds(truth, masks), rng)
    return _to_dn(refl), landsat_qa(masks, labels == WATER), masks.cover_percent


def landsat_rows(
    truth: np.ndarray, labels: np.ndarray, masks: CloudMasks, key: Sequence[int], row0: int
) -> tuple[np.ndarray, np.ndarray]:
    """A strip of rows of a Landsat scene, its noise keyed on (``key``, row).

    As :func:`landsat_scene` on the strip (``truth`` (band, rows, x), ``labels`` and
    ``masks`` of the same rows, the first of which is world row ``row0``), but each row's
    noise comes from its own generator, so strips of any height give the same scene.

    Returns
    -------
    dn : (band, rows, x) uint16; qa : (rows, x) uint16 QA_PIXEL.
    """
    bands, rows, width = truth.shape
    noise = row_normals(key, row0, row0 + rows, 2 * width, depth=bands)
    refl = _noisy(_apply_clouds(truth, masks), noise[..., :width], noise[..., width:])
    return _to_dn(refl), landsat_qa(masks, labels == WATER)


def _to_dn(refl: np.ndarray) -> np.ndarray:
    dn = np.round((refl - s.LANDSAT_C2_L2.offset) / s.LANDSAT_C2_L2.scale)
    return np.clip(dn, 1, 65535).astype(np.uint16)


def landsat_masks(field: np.ndarray, cover: float, threshold: float | None = None) -> CloudMasks:
    """The day's cloud masks as Landsat sees them (shadows cast for its ~10:00 overpass).

    ``threshold``: the day's cloud threshold (:attr:`weather.Sky.threshold`) when
    ``field`` is a strip of rows with :func:`landsat_mask_halo` rows either side.
    """
    return cloud_masks(field, cover, shadow_shift_px=_shadow_shift_px(), threshold=threshold)


def landsat_mask_halo() -> int:
    """Rows either side of a strip that :func:`landsat_masks` needs for the strip's rows."""
    return mask_halo(_shadow_shift_px())


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
    out = np.where(masks.faint_shadow[None], out * _FAINT_SHADOW_FACTOR, out)
    # Cirrus adds a thin, mostly visible haze; the unflagged haze a fainter one.
    out = out + masks.haze[None] * _HAZE_SPECTRAL[:, None, None]
    return np.where(masks.cirrus[None], out + 0.03, out).astype(np.float32)
