"""Target grids: UTM of the region centre, snapped outward to whole coarse pixels."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pipeline.catalog.search import _to_item
from pipeline.config import parse_config
from pipeline.cube.grid import LANDSAT_GRID_ANCHOR_M, grid_anchor, target_grids, utm_crs

STAC = Path(__file__).resolve().parents[1] / "data" / "stac"
BASE = {
    "region": {"bbox": [10.0, 45.0, 10.2, 45.1]},
    "time": {"start": "2024-06-01", "end": "2024-06-30"},
}


@pytest.mark.parametrize(
    ("lon", "lat", "epsg"),
    [(10.0, 45.1, 32632), (-122.4, 37.8, 32610), (151.2, -33.9, 32756), (179.99, 1.0, 32660)],
)
def test_utm_zone_of_centre(lon: float, lat: float, epsg: int) -> None:
    assert utm_crs(lon, lat).epsg == epsg


@pytest.mark.parametrize(("resolution", "factor"), [(30, 16), (60, 8), (30, 17)])
def test_fine_grid_is_whole_coarse_pixels(resolution: int, factor: int) -> None:
    cfg = parse_config({**BASE, "grid": {"resolution": resolution, "coarse_factor": factor}})
    fine, coarse = target_grids(cfg)
    assert fine.crs.epsg == 32632 and fine.crs == coarse.crs
    assert fine.resolution.x == resolution and coarse.resolution.x == resolution * factor
    assert fine.shape.y == coarse.shape.y * factor and fine.shape.x == coarse.shape.x * factor
    assert fine.boundingbox == coarse.boundingbox
    # edges on Landsat's lattice (15 m mod 30 m), so 30 m pixels are copied, not shifted
    assert (fine.affine.c - LANDSAT_GRID_ANCHOR_M[0]) % 30 == 0
    assert (fine.affine.f - LANDSAT_GRID_ANCHOR_M[1]) % 30 == 0
    # and the region is covered
    region = fine.extent.to_crs("EPSG:4326").boundingbox
    w, s, e, n = cfg.region.bounds()
    assert region.left <= w and region.bottom <= s and region.right >= e and region.top >= n


def test_explicit_crs_is_used() -> None:
    cfg = parse_config({**BASE, "grid": {"crs": "EPSG:3035"}})
    fine, _ = target_grids(cfg)
    assert fine.crs.epsg == 3035


def test_anchor_read_from_real_landsat_items() -> None:
    features = json.loads((STAC / "landsat-c2-l2-items.json").read_text())["features"]
    assert grid_anchor([_to_item(f) for f in features]) == (15.0, 15.0)
    assert grid_anchor([]) == LANDSAT_GRID_ANCHOR_M
