"""Clouds, cirrus, haze and displaced cloud shadows cut from one day's cloud field."""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np
from scipy import ndimage

#: Width, in field standard deviations below the cloud threshold, of the flagged cirrus
#: fringe and of the thinner haze beyond it that no QA flag reports.
_CIRRUS_BAND, _HAZE_BAND = 0.15, 0.45
#: Brightening (reflectance) of the unflagged haze at its inner edge, fading outwards.
_HAZE_MAX = 0.02


@dataclass(frozen=True)
class CloudMasks:
    """Masks of one scene; boolean (y, x) flags plus float32 (y, x) contamination.

    ``cloud``, ``cirrus``, ``dilated``, ``shadow`` are what the QA reports; ``haze``
    (reflectance added, 0 where none) and ``faint_shadow`` (shadows of thin cloud) are
    contamination the QA misses, as Fmask/CFMask misses thin cloud edges.
    ``opacity``: 0 outside cloud, 0.6..1 inside.
    """

    cloud: np.ndarray
    cirrus: np.ndarray
    dilated: np.ndarray
    shadow: np.ndarray
    opacity: np.ndarray
    haze: np.ndarray
    faint_shadow: np.ndarray

    @property
    def cover_percent(self) -> float:
        """Share of the scene under cloud or cirrus, in percent (as ``eo:cloud_cover``)."""
        return float(100.0 * np.mean(self.cloud | self.cirrus))

    def rows(self, r0: int, r1: int) -> CloudMasks:
        """The masks of rows ``r0..r1`` of these (a strip cut from its computed halo)."""
        return CloudMasks(*(getattr(self, f.name)[r0:r1] for f in fields(self)))


def smooth_field(shape: tuple[int, int], sigma_px: float, rng: np.random.Generator) -> np.ndarray:
    """Unit-variance Gaussian random field with correlation length ~``sigma_px``: float32 (y, x)."""
    field = ndimage.gaussian_filter(
        rng.standard_normal(shape, dtype=np.float32), sigma_px, mode="wrap"
    )
    return ((field - field.mean()) / (field.std() + 1e-12)).astype(np.float32)


def cloud_masks(
    field: np.ndarray,
    cover: float,
    shadow_shift_px: tuple[int, int] = (0, 0),
    dilate_px: int = 3,
    threshold: float | None = None,
) -> CloudMasks:
    """Clouds covering ``cover`` of the scene where ``field`` is highest; fringes and shadows.

    Parameters
    ----------
    field : (y, x) float32 unit-variance cloud field of the day (shared by the sensors).
    cover : cloud fraction in [0, 1]; the field is thresholded at its (1 - cover) quantile.
    shadow_shift_px : (rows, cols) from a cloud to its shadow (away from the sun).
    dilate_px : buffer of the "dilated cloud" flag around clouds.
    threshold : the field value above which there is cloud; default the (1 - cover)
        quantile of ``field``. A strip of a world passes the whole world's threshold.

    Rows within ``dilate_px`` and the shadow shift of the array's edges see no cloud
    beyond them: a strip computes a halo of :func:`mask_halo` rows and drops it.
    """
    shape = field.shape
    if cover <= 0.0:
        empty = np.zeros(shape, dtype=bool)
        zero = np.zeros(shape, dtype=np.float32)
        return CloudMasks(empty, empty, empty, empty, zero, zero, empty)
    if threshold is None:
        threshold = float(np.quantile(field, 1.0 - cover))
    cloud = field > threshold
    cirrus = (field > threshold - _CIRRUS_BAND) & ~cloud
    dilated = ndimage.binary_dilation(cloud, iterations=dilate_px) & ~cloud
    shadow = _shift(cloud, shadow_shift_px) & ~cloud
    thin = (field > threshold - _HAZE_BAND) & ~(cloud | cirrus)
    depth = (field - (threshold - _HAZE_BAND)) / (_HAZE_BAND - _CIRRUS_BAND)
    haze = np.where(thin & ~dilated, _HAZE_MAX * np.clip(depth, 0, 1), 0).astype(np.float32)
    faint_shadow = _shift(cirrus, shadow_shift_px) & ~(cloud | cirrus | shadow)
    # Thick cloud cores are opaque; edges let some surface through.
    opacity = np.where(cloud, np.clip(0.6 + (field - threshold), 0.6, 1.0), 0.0).astype(np.float32)
    return CloudMasks(cloud, cirrus, dilated, shadow, opacity, haze, faint_shadow)


def mask_halo(shadow_shift_px: tuple[int, int], dilate_px: int = 3) -> int:
    """Rows beyond a strip that :func:`cloud_masks` needs to get the strip's rows right."""
    return max(abs(shadow_shift_px[0]), dilate_px) + 1


def cloudy(field: np.ndarray, cover: float, threshold: float) -> np.ndarray:
    """(y, x) bool cloud or cirrus: ``cloud | cirrus`` of :func:`cloud_masks`, pointwise."""
    if cover <= 0.0:
        return np.zeros(field.shape, dtype=bool)
    return field > threshold - _CIRRUS_BAND


def _shift(mask: np.ndarray, shift: tuple[int, int]) -> np.ndarray:
    """``mask`` moved by (rows, cols), padding with False (no wrap-around)."""
    dy, dx = shift
    out = np.zeros_like(mask)
    h, w = mask.shape
    ys, yd = (slice(0, h - dy), slice(dy, h)) if dy >= 0 else (slice(-dy, h), slice(0, h + dy))
    xs, xd = (slice(0, w - dx), slice(dx, w)) if dx >= 0 else (slice(-dx, w), slice(0, w + dx))
    out[yd, xd] = mask[ys, xs]
    return out
