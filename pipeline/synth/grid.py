"""The world's 30 m UTM grid and the real MODIS sinusoidal grid around it."""

from __future__ import annotations

import math
from dataclasses import dataclass

from affine import Affine
from pyproj import CRS, Transformer

from pipeline.synth.spec import COARSE_FACTOR, WorldSpec

FINE_RES = 30.0
#: MODIS sinusoidal sphere, exactly as ``proj:wkt2`` of the real MODIS 061 STAC items.
MODIS_WKT2 = (
    'PROJCRS["unnamed",BASEGEOGCRS["Unknown datum based upon the custom spheroid",DATUM["Not '
    'specified (based on custom spheroid)",ELLIPSOID["Custom spheroid",6371007.181,0,LENGTHUN'
    'IT["metre",1,ID["EPSG",9001]]]],PRIMEM["Greenwich",0,ANGLEUNIT["degree",0.01745329251994'
    '33,ID["EPSG",9122]]]],CONVERSION["unnamed",METHOD["Sinusoidal"],PARAMETER["Longitude of '
    'natural origin",0,ANGLEUNIT["degree",0.0174532925199433],ID["EPSG",8802]],PARAMETER["Fal'
    'se easting",0,LENGTHUNIT["metre",1],ID["EPSG",8806]],PARAMETER["False northing",0,LENGTH'
    'UNIT["metre",1],ID["EPSG",8807]]],CS[Cartesian,2],AXIS["easting",east,ORDER[1],LENGTHUNI'
    'T["metre",1,ID["EPSG",9001]]],AXIS["northing",north,ORDER[2],LENGTHUNIT["metre",1,ID["EP'
    'SG",9001]]]]'
)
#: Global sinusoidal tiling: 36 x 18 tiles of 2400 x 2400 pixels of 500 m nominal size.
MODIS_X0 = -20015109.354
MODIS_Y0 = 10007554.677
MODIS_TILE = 1111950.5197
MODIS_TILE_PX = 2400
MODIS_RES = 463.3127165275


@dataclass(frozen=True)
class Grid:
    """A north-up raster grid: ``transform`` maps (col, row) to CRS metres of the pixel corner."""

    crs: CRS
    transform: Affine
    width: int
    height: int

    @property
    def shape(self) -> tuple[int, int]:
        """(rows, cols)."""
        return self.height, self.width

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        """(left, bottom, right, top) in CRS metres."""
        t = self.transform
        return t.c, t.f + t.e * self.height, t.c + t.a * self.width, t.f


def world_grid(spec: WorldSpec) -> Grid:
    """The 30 m UTM grid of the world, centred on (lon, lat), origin snapped to 480 m.

    Snapping to the coarse cell (a multiple of 30 m) keeps the 480 m grid aligned with
    the world grid and with any other world built at the same place.
    """
    to_utm = Transformer.from_crs(4326, spec.epsg, always_xy=True)
    cx, cy = to_utm.transform(spec.lon, spec.lat)
    snap = FINE_RES * COARSE_FACTOR
    left = math.floor((cx - spec.width * FINE_RES / 2) / snap) * snap
    top = math.floor((cy + spec.height * FINE_RES / 2) / snap) * snap
    return Grid(
        CRS.from_epsg(spec.epsg),
        Affine(FINE_RES, 0, left, 0, -FINE_RES, top),
        spec.width,
        spec.height,
    )


def coarse_grid(world: Grid) -> Grid:
    """The 480 m grid whose cells are exact 16 x 16 blocks of the world grid."""
    t = world.transform
    scaled = Affine(t.a * COARSE_FACTOR, 0, t.c, 0, t.e * COARSE_FACTOR, t.f)
    return Grid(world.crs, scaled, world.width // COARSE_FACTOR, world.height // COARSE_FACTOR)


def lonlat_bbox(grid: Grid) -> tuple[float, float, float, float]:
    """[west, south, east, north] in degrees of the grid's footprint (densified edges)."""
    to_ll = Transformer.from_crs(grid.crs, 4326, always_xy=True)
    return tuple(to_ll.transform_bounds(*grid.bounds, densify_pts=21))  # type: ignore[return-value]


def modis_tile(world: Grid) -> tuple[int, int]:
    """(h, v) of the global MODIS tile holding the world's centre."""
    sin = modis_crs()
    left, bottom, right, top = world.bounds
    x, y = Transformer.from_crs(world.crs, sin, always_xy=True).transform(
        (left + right) / 2, (bottom + top) / 2
    )
    return int((x - MODIS_X0) // MODIS_TILE), int((MODIS_Y0 - y) // MODIS_TILE)


def modis_crs() -> CRS:
    """The MODIS sinusoidal sphere CRS (no EPSG code)."""
    return CRS.from_wkt(MODIS_WKT2)


def modis_window(world: Grid) -> Grid:
    """The smallest window of the real sinusoidal pixel lattice covering the world (+1 px margin).

    Pixel edges sit exactly on the global tiling (tile origin + k x 463.3 m), so the
    window lines up with real MODIS tiles.
    """
    sin = modis_crs()
    left, bottom, right, top = Transformer.from_crs(
        world.crs, sin, always_xy=True
    ).transform_bounds(*world.bounds, densify_pts=21)
    col0 = math.floor((left - MODIS_X0) / MODIS_RES) - 1
    col1 = math.ceil((right - MODIS_X0) / MODIS_RES) + 1
    row0 = math.floor((MODIS_Y0 - top) / MODIS_RES) - 1
    row1 = math.ceil((MODIS_Y0 - bottom) / MODIS_RES) + 1
    transform = Affine(
        MODIS_RES, 0, MODIS_X0 + col0 * MODIS_RES, 0, -MODIS_RES, MODIS_Y0 - row0 * MODIS_RES
    )
    return Grid(sin, transform, col1 - col0, row1 - row0)
