"""The odc reader checks what odc-loader's public read returned against the item's STAC grid."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import rasterio
from odc.geo.geobox import GeoBox
from odc.loader import RasterLoadParams, RasterSource
from rasterio.transform import from_origin

from pipeline.cube.load import GeoreferenceError, RetryingRioDriver, gdal_name

TRANSFORM = from_origin(600_000, 5_000_000, 30, 30)
STAC_GRID = GeoBox((64, 64), TRANSFORM, "EPSG:32632")
TARGET = GeoBox.from_bbox((600_300, 4_998_500, 601_500, 4_999_700), "EPSG:32632", resolution=30)
CFG = RasterLoadParams(dtype="uint16", fill_value=0)


def _tif(path: Path, **georef: object) -> str:
    profile = {"driver": "GTiff", "width": 64, "height": 64, "count": 1, "dtype": "uint16"}
    with rasterio.open(path, "w", **profile, **georef) as dst:
        dst.write(np.arange(64 * 64, dtype="uint16").reshape(1, 64, 64))
    return str(path)


def _read(uri: str, grid: GeoBox | None = STAC_GRID) -> tuple[tuple[slice, ...], np.ndarray]:
    reader = RetryingRioDriver().open(RasterSource(uri, geobox=grid), None)
    roi, pixels = reader.read(CFG, TARGET)
    return tuple(roi), pixels


def test_a_georeferenced_asset_reads_where_its_stac_grid_says(tmp_path: Path) -> None:
    uri = _tif(tmp_path / "ok.tif", crs="EPSG:32632", transform=TRANSFORM)
    roi, pixels = _read(uri)
    assert pixels.shape == (roi[0].stop - roi[0].start, roi[1].stop - roi[1].start)
    assert pixels[0, 0] == 10 * 64 + 10  # 300 m in from the asset's corner: row 10, col 10
    assert _read(uri, grid=None)[0] == roi  # no STAC grid: checked on a separate open


@pytest.mark.filterwarnings("ignore::rasterio.errors.NotGeoreferencedWarning")
def test_an_asset_that_opens_without_a_crs_is_a_georeference_error(tmp_path: Path) -> None:
    uri = _tif(tmp_path / "cut.tif")  # what libtiff leaves of a header cut short
    with pytest.raises(GeoreferenceError):
        _read(uri)
    with pytest.raises(GeoreferenceError):
        _read(uri, grid=None)


def test_an_asset_that_lost_its_geotransform_is_a_georeference_error(tmp_path: Path) -> None:
    uri = _tif(tmp_path / "lost.tif", crs="EPSG:32632")  # a CRS but the identity transform
    with pytest.raises(GeoreferenceError, match="item's grid"):
        _read(uri)


def test_an_asset_georeferenced_elsewhere_is_read_on_its_own_grid(tmp_path: Path) -> None:
    """Bad metadata, not a fault: read where the file says (as GDAL would), never retried."""
    moved = from_origin(600_000 + 600, 5_000_000, 30, 30)
    uri = _tif(tmp_path / "moved.tif", crs="EPSG:32632", transform=moved)
    expected, _ = _read(_tif(tmp_path / "ok.tif", crs="EPSG:32632", transform=TRANSFORM))
    roi, _ = _read(uri)
    assert roi != expected


@pytest.mark.parametrize(
    ("href", "name"),
    [
        ("https://h:8/a/b.tif?sig=x", "/vsicurl/https://h:8/a/b.tif?sig=x"),
        ("http://127.0.0.1:5/data/x.tif", "/vsicurl/http://127.0.0.1:5/data/x.tif"),
        ("s3://bucket/k/x.tif", "/vsis3/bucket/k/x.tif"),
        ("gs://bucket/x.tif", "/vsigs/bucket/x.tif"),
        ("file:///tmp/x.tif", "/tmp/x.tif"),
        ("/tmp/x.tif", "/tmp/x.tif"),
    ],
)
def test_gdal_name_is_the_name_gdal_gives_the_file(href: str, name: str) -> None:
    assert gdal_name(href) == name
