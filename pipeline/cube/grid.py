"""The target grids: a fine GeoBox (UTM, 30 m) and the coarse GeoBox aligned with it.

Both grids share one origin. The region's bounding box is projected to the
grid CRS and snapped *outward* to whole coarse pixels, so the fine grid is an
exact integer number of coarse pixels (``coarse_factor`` fine pixels per coarse
pixel along each axis) and block replication maps one onto the other.

Pixel edges are anchored on the Landsat pixel lattice: Collection 2 scenes have
edges at 15 m (mod 30 m) in UTM (e.g. x0 = 466185 m), so the fine grid lands
exactly on Landsat pixels and nearest-neighbour loading copies them unchanged
instead of shifting them by half a pixel. :func:`grid_anchor` reads the lattice
offset from the items (the demo world puts edges on multiples of 30 m).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import pystac
from odc.geo import CRS
from odc.geo.geobox import GeoBox
from odc.geo.geom import BoundingBox, box

from pipeline.config import LANDSAT_RESOLUTION_M, RunConfig

#: Landsat C2 pixel edges lie at this offset (m) from multiples of 30 m in UTM (x, y).
LANDSAT_GRID_ANCHOR_M = (15.0, 15.0)


def utm_crs(lon: float, lat: float) -> CRS:
    """The WGS 84 / UTM CRS of the zone containing (lon, lat) degrees (EPSG:326xx / 327xx)."""
    zone = min(int((lon + 180.0) // 6.0) + 1, 60)
    return CRS(f"EPSG:{(32600 if lat >= 0 else 32700) + zone}")


def grid_crs(cfg: RunConfig) -> CRS:
    """``grid.crs``, or for ``"utm"`` the UTM zone of the region's centre."""
    if cfg.grid.crs.lower() != "utm":
        return CRS(cfg.grid.crs)
    west, south, east, north = cfg.region.bounds()
    return utm_crs((west + east) / 2.0, (south + north) / 2.0)


def grid_anchor(items: Sequence[pystac.Item]) -> tuple[float, float]:
    """Pixel-edge offset (x, y) in metres, mod 30 m, of the first item with ``proj:transform``.

    Falls back to :data:`LANDSAT_GRID_ANCHOR_M` when no item declares one.
    """
    for item in items:
        transform = item.properties.get("proj:transform")
        if transform is not None:
            return transform[2] % LANDSAT_RESOLUTION_M, transform[5] % LANDSAT_RESOLUTION_M
    return LANDSAT_GRID_ANCHOR_M


def snap_outward(bounds: BoundingBox, step: float, anchor: tuple[float, float]) -> BoundingBox:
    """Grow ``bounds`` to the nearest edges at ``anchor + k * step`` (metres, per axis)."""
    ax, ay = anchor
    return BoundingBox(
        ax + math.floor((bounds.left - ax) / step) * step,
        ay + math.floor((bounds.bottom - ay) / step) * step,
        ax + math.ceil((bounds.right - ax) / step) * step,
        ay + math.ceil((bounds.top - ay) / step) * step,
    )


def target_grids(
    cfg: RunConfig, anchor: tuple[float, float] = LANDSAT_GRID_ANCHOR_M
) -> tuple[GeoBox, GeoBox]:
    """The fine and coarse GeoBoxes covering the region.

    Parameters
    ----------
    cfg : run configuration (region, grid.crs, grid.resolution, grid.coarse_factor).
    anchor : pixel-edge offset (x, y) in metres (see :func:`grid_anchor`).

    Returns
    -------
    (fine, coarse) : GeoBox, GeoBox
        Same CRS and bounds; ``fine.shape == coarse.shape * coarse_factor``.
        Pixel sizes ``grid.resolution`` and ``grid.coarse_resolution`` metres, north-up.
    """
    crs = grid_crs(cfg)
    west, south, east, north = cfg.region.bounds()
    # Densified polygon: a projected lon/lat box has curved edges, its corners alone undershoot.
    footprint = box(west, south, east, north, "EPSG:4326").to_crs(crs, resolution=0.001)
    bounds = snap_outward(footprint.boundingbox, cfg.grid.coarse_resolution, anchor)
    fine = GeoBox.from_bbox(bounds, crs, resolution=cfg.grid.resolution, tight=True)
    coarse = GeoBox.from_bbox(bounds, crs, resolution=cfg.grid.coarse_resolution, tight=True)
    return fine, coarse
