"""The static landscape: Voronoi field parcels, a river with riparian forest, villages.

The generator state is small (parcel seeds, per-parcel classes and parameters, the
river's course, a noise key); the per-pixel layers (parcel id, texture, shade) are
generated a strip of rows at a time from it, keyed on position, and kept on disk beside
the state (``parcel.npy``, ``texture.npy``, ``shade.npy``) so truth days read them back
strip by strip.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
from scipy.spatial import cKDTree

from pipeline.synth import rowfile
from pipeline.synth.noise import smooth_rows
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
from pipeline.synth.strips import strip_plan

#: Mean parcel side in pixels (~450 m), typical of Po-valley fields.
_PARCEL_PX = 15
#: Class shares of the Voronoi parcels before river and villages are drawn in.
_PARCEL_CLASSES = np.array([MAIZE, WHEAT, RICE, SOYBEAN, ALFALFA, FOREST, BARE])
_PARCEL_SHARES = np.array([0.28, 0.22, 0.10, 0.16, 0.12, 0.07, 0.05])
#: (stream, sigma px, weight) of the smooth components of texture and shade.
#: Texture: within-field vigour, patches of ~120 m (sd 4 %) plus ~45 m clumps (sd 3 %):
#: real canopies vary with soil patches and sowing density at tens of metres.
_TEXTURE = ((11, 4.0, 0.04), (12, 1.5, 0.03))
#: Shade: all-band brightness, ~600 m gradients (sd 8 %) and ~60 m structure (sd 5 %).
_SHADE = ((13, 20.0, 0.08), (14, 2.0, 0.05))
_STATE, _LAYERS = "landscape.npz", {"parcel": np.int32, "texture": np.float32, "shade": np.float32}


@dataclass(frozen=True)
class Layers:
    """Per-pixel layers of a strip of rows, each (rows, x).

    ``parcel`` int32 parcel id (index into the per-parcel arrays); ``texture`` float32
    within-field vigour multiplier, mean ~1; ``shade`` float32 all-band brightness
    multiplier (canopy structure, micro-relief, illumination), mean ~1.
    """

    parcel: np.ndarray
    texture: np.ndarray
    shade: np.ndarray


@dataclass(frozen=True, eq=False)
class Landscape:
    """The small generator state from which every truth day is regenerated.

    Attributes
    ----------
    height, width : world size, 30 m pixels.
    key : seed of the position-keyed noise of texture and shade.
    seeds : (n_seeds, 2) float64 (row, col) of the Voronoi parcel seeds; parcel id = index.
    classes : (n_parcels,) uint8 class id per parcel (seeds, then riparian forest, river).
    params : per-parcel float32 arrays from :func:`phenology.field_parameters`.
    river : (5,) float64 centre row, amplitude, wavelength, phase, half width (px, rad).
    cache : folder holding the layers as ``.npy`` rasters; None: generate on demand.
    """

    height: int
    width: int
    key: int
    seeds: np.ndarray
    classes: np.ndarray
    params: dict[str, np.ndarray]
    river: np.ndarray
    cache: Path | None = None

    def layers(self, r0: int, r1: int) -> Layers:
        """The per-pixel layers of rows ``r0..r1`` (read back when cached, else generated)."""
        if self.cache is not None:
            return Layers(*(rowfile.read_rows(self.cache / f"{n}.npy", r0, r1) for n in _LAYERS))
        return Layers(
            self._parcels(r0, r1), self._smooth(_TEXTURE, r0, r1), self._smooth(_SHADE, r0, r1)
        )

    def labels(self) -> np.ndarray:
        """(y, x) uint8 class id of each pixel (the whole world: for tests and reports)."""
        return self.classes[self.parcel]

    @property
    def parcel(self) -> np.ndarray:
        """(y, x) int32 parcel id of the whole world."""
        return self.layers(0, self.height).parcel

    @property
    def texture(self) -> np.ndarray:
        """(y, x) float32 texture of the whole world."""
        return self.layers(0, self.height).texture

    @property
    def shade(self) -> np.ndarray:
        """(y, x) float32 shade of the whole world."""
        return self.layers(0, self.height).shade

    def save(self, folder: Path) -> Landscape:
        """Write the state (``landscape.npz``) and the layers strip by strip; return it cached."""
        folder = Path(folder)
        # Typed Any: mypy would match ndarray values against savez's ``allow_pickle: bool``.
        extra: dict[str, Any] = {f"param_{k}": v for k, v in self.params.items()}
        size = np.array([self.height, self.width, self.key], dtype=np.int64)
        np.savez_compressed(
            folder / _STATE,
            size=size,
            seeds=self.seeds,
            classes=self.classes,
            river=self.river,
            **extra,
        )
        for name, dtype in _LAYERS.items():
            rowfile.write_header(folder / f"{name}.npy", np.dtype(dtype), (self.height, self.width))
        for r0, r1 in strip_plan(self.height, self.width):
            strip = self.layers(r0, r1)
            for name in _LAYERS:
                rowfile.append_rows(folder / f"{name}.npy", getattr(strip, name))
        return Landscape.load(folder)

    @classmethod
    def load(cls, folder: Path) -> Landscape:
        """Inverse of :meth:`save`: the state, reading its layers from ``folder``."""
        folder = Path(folder)
        with np.load(folder / _STATE) as data:
            params = {
                k.removeprefix("param_"): data[k] for k in data.files if k.startswith("param_")
            }
            height, width, key = (int(v) for v in data["size"])
            return cls(
                height, width, key, data["seeds"], data["classes"], params, data["river"], folder
            )

    @cached_property
    def _tree(self) -> cKDTree:
        return cKDTree(self.seeds)

    def _parcels(self, r0: int, r1: int) -> np.ndarray:
        yy, xx = np.mgrid[r0:r1, 0 : self.width]
        _, nearest = self._tree.query(np.stack([yy.ravel(), xx.ravel()], axis=1))
        parcel = nearest.reshape(r1 - r0, self.width).astype(np.int32)
        river, riparian = _river_rows(self.river, r0, r1, self.width)
        # The river and its banks are two extra parcels so they carry their own parameters.
        n = len(self.seeds)
        parcel = np.where(riparian, n, parcel)
        return np.where(river, n + 1, parcel).astype(np.int32)

    def _smooth(self, parts: tuple[tuple[int, float, float], ...], r0: int, r1: int) -> np.ndarray:
        out = np.ones((r1 - r0, self.width), dtype=np.float32)
        for stream, sigma, weight in parts:
            out += weight * smooth_rows((self.key, stream), sigma, r0, r1, self.width)
        return out


def make_landscape(height: int, width: int, rng: np.random.Generator) -> Landscape:
    """Draw a farming landscape of ``height`` x ``width`` 30 m pixels (layers not cached).

    Parcels are Voronoi cells of a jittered grid of seeds; a meandering river (its own
    parcel, class water) crosses the world with a riparian forest strip; two villages
    turn the parcels near their centres into urban.
    """
    seeds = _seeds(height, width, rng)
    classes = rng.choice(_PARCEL_CLASSES, size=len(seeds), p=_PARCEL_SHARES).astype(np.uint8)
    _villages(seeds, classes, height, width, rng)
    river = _river(height, width, rng)
    classes = np.concatenate([classes, np.array([FOREST, WATER], dtype=np.uint8)])
    params = field_parameters(classes, rng)
    key = int(rng.integers(2**31))
    return Landscape(height, width, key, seeds, classes, params, river)


def _seeds(height: int, width: int, rng: np.random.Generator) -> np.ndarray:
    rows = np.arange(-_PARCEL_PX / 2, height + _PARCEL_PX, _PARCEL_PX)
    cols = np.arange(-_PARCEL_PX / 2, width + _PARCEL_PX, _PARCEL_PX)
    seeds = np.stack(np.meshgrid(rows, cols, indexing="ij"), axis=-1).reshape(-1, 2)
    return seeds + rng.uniform(-0.45, 0.45, seeds.shape) * _PARCEL_PX


def _villages(
    seeds: np.ndarray, classes: np.ndarray, height: int, width: int, rng: np.random.Generator
) -> None:
    """Parcels whose seed lies within a village's radius (+ half a parcel) become urban."""
    for _ in range(2):
        centre = rng.uniform(0.15, 0.85, 2) * (height, width)
        radius = rng.uniform(0.05, 0.09) * min(height, width) + 4 + _PARCEL_PX / 2
        classes[((seeds - centre) ** 2).sum(axis=1) < radius**2] = URBAN


def _river(height: int, width: int, rng: np.random.Generator) -> np.ndarray:
    """A sinuous west-east channel 3-6 px wide: centre, amplitude, wavelength, phase, half width."""
    phase, wavelength = rng.uniform(0, 2 * np.pi), rng.uniform(0.6, 1.2) * width
    centre = height * rng.uniform(0.35, 0.65)
    half_width = rng.uniform(1.5, 3.0)
    return np.array([centre, 0.08 * height, wavelength, phase, half_width])


def _river_rows(river: np.ndarray, r0: int, r1: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    """(river, riparian) boolean masks of rows ``r0..r1``."""
    centre0, amplitude, wavelength, phase, half_width = river
    xx = np.arange(width, dtype=np.float32)
    centre = centre0 + amplitude * np.sin(2 * np.pi * xx / wavelength + phase)
    distance = np.abs(np.arange(r0, r1, dtype=np.float32)[:, None] - centre[None, :])
    return distance < half_width, (distance >= half_width) & (distance < half_width + 3)
