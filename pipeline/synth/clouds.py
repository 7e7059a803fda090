"""Clouds, cirrus and displaced cloud shadows as thresholded smooth random fields."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage


@dataclass(frozen=True)
class CloudMasks:
    """Boolean (y, x) masks of one scene; ``opacity``: float32 (y, x) in [0, 1], 0 outside cloud."""

    cloud: np.ndarray
    cirrus: np.ndarray
    dilated: np.ndarray
    shadow: np.ndarray
    opacity: np.ndarray

    @property
    def cover_percent(self) -> float:
        """Share of the scene under cloud or cirrus, in percent (as ``eo:cloud_cover``)."""
        return float(100.0 * np.mean(self.cloud | self.cirrus))


def draw_cover(rng: np.random.Generator, cloudiness: float, clear_share: float) -> float:
    """A scene's cloud fraction: 0 with probability ``clear_share``, else up to ``cloudiness``."""
    if rng.uniform() < clear_share:
        return 0.0
    return float(cloudiness * rng.uniform(0.05, 1.0))


def smooth_field(shape: tuple[int, int], sigma_px: float, rng: np.random.Generator) -> np.ndarray:
    """Unit-variance Gaussian random field with correlation length ~``sigma_px``: float32 (y, x)."""
    field = ndimage.gaussian_filter(rng.standard_normal(shape), sigma_px, mode="wrap")
    return ((field - field.mean()) / (field.std() + 1e-12)).astype(np.float32)


def cloud_masks(
    shape: tuple[int, int],
    cover: float,
    rng: np.random.Generator,
    sigma_px: float = 10.0,
    shadow_shift_px: tuple[int, int] = (0, 0),
    dilate_px: int = 3,
) -> CloudMasks:
    """Clouds covering ``cover`` of the scene, cirrus at their fringes, shadows displaced.

    Parameters
    ----------
    shape : (y, x) of the scene.
    cover : cloud fraction in [0, 1]; the field is thresholded at its (1 - cover) quantile.
    sigma_px : correlation length of the cloud field in pixels.
    shadow_shift_px : (rows, cols) from a cloud to its shadow (away from the sun).
    dilate_px : buffer of the "dilated cloud" flag around clouds.
    """
    field = smooth_field(shape, sigma_px, rng)
    if cover <= 0.0:
        empty = np.zeros(shape, dtype=bool)
        return CloudMasks(empty, empty, empty, empty, np.zeros(shape, dtype=np.float32))
    threshold = np.quantile(field, 1.0 - cover)
    cloud = field > threshold
    cirrus = (field > threshold - 0.25) & ~cloud
    dilated = ndimage.binary_dilation(cloud, iterations=dilate_px) & ~cloud
    shadow = _shift(cloud, shadow_shift_px) & ~cloud
    # Thick cloud cores are opaque; edges let some surface through.
    opacity = np.where(cloud, np.clip(0.6 + (field - threshold), 0.6, 1.0), 0.0).astype(np.float32)
    return CloudMasks(cloud, cirrus, dilated, shadow, opacity)


def _shift(mask: np.ndarray, shift: tuple[int, int]) -> np.ndarray:
    """``mask`` moved by (rows, cols), padding with False (no wrap-around)."""
    dy, dx = shift
    out = np.zeros_like(mask)
    h, w = mask.shape
    ys, yd = (slice(0, h - dy), slice(dy, h)) if dy >= 0 else (slice(-dy, h), slice(0, h + dy))
    xs, xd = (slice(0, w - dx), slice(dx, w)) if dx >= 0 else (slice(-dx, w), slice(0, w + dx))
    out[yd, xd] = mask[ys, xs]
    return out
