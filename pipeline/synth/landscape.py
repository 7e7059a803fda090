"""The static landscape: Voronoi field parcels, a river with riparian forest, villages."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage
from scipy.spatial import cKDTree

from pipeline.synth.phenology import (
    ALFALFA,
    BARE,
    FOREST,
    MAIZE,
    RICE,
    SOYBEAN,
    URBAN,
    WATER,
    WHEAT,
    field_parameters,
)

#: Mean parcel side in pixels (~450 m), typical of Po-valley fields.
_PARCEL_PX = 15
#: Class shares of the Voronoi parcels before river and villages are drawn in.
_PARCEL_CLASSES = np.array([MAIZE, WHEAT, RICE, SOYBEAN, ALFALFA, FOREST, BARE])
_PARCEL_SHARES = np.array([0.28, 0.22, 0.10, 0.16, 0.12, 0.07, 0.05])


@dataclass(frozen=True)
class Landscape:
    """The small generator state from which every truth day is regenerated.

    Attributes
    ----------
    parcel : (y, x) int32 parcel id of each pixel (index into the per-parcel arrays).
    classes : (n_parcels,) uint8 class id per parcel (see :data:`phenology.CLASS_NAMES`).
    params : per-parcel float32 arrays from :func:`phenology.field_parameters`.
    texture : (y, x) float32 within-field vigour multiplier, mean ~1.
    shade : (y, x) float32 all-band brightness multiplier (canopy structure, micro-relief
        and illumination), mean ~1, spatially correlated.
    """

    parcel: np.ndarray
    classes: np.ndarray
    params: dict[str, np.ndarray]
    texture: np.ndarray
    shade: np.ndarray

    def labels(self) -> np.ndarray:
        """(y, x) uint8 class id of each pixel."""
        return self.classes[self.parcel]

    def save(self, path: str) -> None:
        """Write the state as one compressed ``.npz`` (a few MB at full size)."""
        extra = {f"param_{k}": v for k, v in self.params.items()}
        np.savez_compressed(
            path,
            parcel=self.parcel,
            classes=self.classes,
            texture=self.texture,
            shade=self.shade,
            **extra,
        )

    @classmethod
    def load(cls, path: str) -> Landscape:
        """Inverse of :meth:`save`."""
        with np.load(path) as data:
            params = {
                k.removeprefix("param_"): data[k] for k in data.files if k.startswith("param_")
            }
            return cls(data["parcel"], data["classes"], params, data["texture"], data["shade"])


def make_landscape(height: int, width: int, rng: np.random.Generator) -> Landscape:
    """Draw a farming landscape of ``height`` x ``width`` 30 m pixels.

    Parcels are Voronoi cells of a jittered grid of seeds; a meandering river (its own
    parcel, class water) crosses the world with a riparian forest strip; two villages
    turn the parcels near their centres into urban.
    """
    parcel, n_cells = _voronoi_parcels(height, width, rng)
    classes = rng.choice(_PARCEL_CLASSES, size=n_cells, p=_PARCEL_SHARES).astype(np.uint8)
    _villages(parcel, classes, rng)
    river, riparian = _river(height, width, rng)
    # The river and its banks become two extra parcels so they carry their own parameters.
    parcel = np.where(riparian, n_cells, parcel)
    parcel = np.where(river, n_cells + 1, parcel).astype(np.int32)
    classes = np.concatenate([classes, np.array([FOREST, WATER], dtype=np.uint8)])
    params = field_parameters(classes, rng)
    texture = _texture(height, width, rng)
    shade = _shade(height, width, rng)
    return Landscape(parcel, classes, params, texture, shade)


def _voronoi_parcels(height: int, width: int, rng: np.random.Generator) -> tuple[np.ndarray, int]:
    rows = np.arange(-_PARCEL_PX / 2, height + _PARCEL_PX, _PARCEL_PX)
    cols = np.arange(-_PARCEL_PX / 2, width + _PARCEL_PX, _PARCEL_PX)
    seeds = np.stack(np.meshgrid(rows, cols, indexing="ij"), axis=-1).reshape(-1, 2)
    seeds = seeds + rng.uniform(-0.45, 0.45, seeds.shape) * _PARCEL_PX
    yy, xx = np.mgrid[0:height, 0:width]
    _, nearest = cKDTree(seeds).query(np.stack([yy.ravel(), xx.ravel()], axis=1))
    # Renumber to the parcels actually present so ids are dense.
    _, dense = np.unique(nearest, return_inverse=True)
    parcel = dense.reshape(height, width).astype(np.int32)
    return parcel, int(parcel.max()) + 1


def _villages(parcel: np.ndarray, classes: np.ndarray, rng: np.random.Generator) -> None:
    height, width = parcel.shape
    yy, xx = np.mgrid[0:height, 0:width]
    for _ in range(2):
        cy, cx = rng.uniform(0.15, 0.85, 2) * (height, width)
        radius = rng.uniform(0.05, 0.09) * min(height, width) + 4
        inside = np.unique(parcel[(yy - cy) ** 2 + (xx - cx) ** 2 < radius**2])
        classes[inside] = URBAN


def _river(height: int, width: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(river, riparian) boolean masks: a sinuous west-east channel 3-6 px wide."""
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    phase, wavelength = rng.uniform(0, 2 * np.pi), rng.uniform(0.6, 1.2) * width
    centre = height * rng.uniform(0.35, 0.65) + 0.08 * height * np.sin(
        2 * np.pi * xx / wavelength + phase
    )
    distance = np.abs(yy - centre)
    half_width = rng.uniform(1.5, 3.0)
    return distance < half_width, (distance >= half_width) & (distance < half_width + 3)


def _texture(height: int, width: int, rng: np.random.Generator) -> np.ndarray:
    """Within-field vigour: patches of ~120 m (sd ~4 %) plus ~45 m clumps (sd ~3 %).

    Real canopies vary with soil patches and sowing density at tens of metres, not as
    white pixel noise, so both components are spatially correlated.
    """
    patches = _unit_field(height, width, 4.0, rng)
    clumps = _unit_field(height, width, 1.5, rng)
    return (1.0 + 0.04 * patches + 0.03 * clumps).astype(np.float32)


def _shade(height: int, width: int, rng: np.random.Generator) -> np.ndarray:
    """All-band brightness: ~600 m gradients (sd 8 %) and ~60 m structure (sd 5 %)."""
    broad = _unit_field(height, width, 20.0, rng)
    local = _unit_field(height, width, 2.0, rng)
    return (1.0 + 0.08 * broad + 0.05 * local).astype(np.float32)


def _unit_field(height: int, width: int, sigma: float, rng: np.random.Generator) -> np.ndarray:
    field = ndimage.gaussian_filter(
        rng.standard_normal((height, width), dtype=np.float32), sigma, mode="wrap"
    )
    return field / (field.std() + 1e-12)
