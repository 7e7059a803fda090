"""Labels from polygons or rasters: ids keep their names; other CRSs reprojected; no CRS refused."""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
import rioxarray  # noqa: F401  (registers .rio)
import xarray as xr

from pipeline.errors import InputError
from pipeline.products.labels import load_labels
from tests.products.storegen import write_fields


def _grid(store: Path) -> xr.DataArray:
    return xr.open_zarr(store, decode_coords="all")["red"].isel(time=0, drop=True)


def test_class_id_column_keeps_ids_and_names(
    fused_store: Path, fields_parquet: Path, tmp_path: Path
) -> None:
    gdf = gpd.read_parquet(fields_parquet)
    gdf["class_id"] = gdf["crop"].str[-1].astype(int) + 4  # world style: ids + class_name
    gdf = gdf.rename(columns={"crop": "class_name"})
    gdf.to_parquet(tmp_path / "world_fields.parquet")
    labels = load_labels(tmp_path / "world_fields.parquet", _grid(fused_store))
    assert set(labels.class_names) <= {4, 5, 6}
    assert labels.class_names[4] == "crop0"
    assert set(np.unique(labels.classes)) == set(labels.class_names)  # full coverage, no -1
    assert labels.groups.max() == len(gdf) - 1


def test_polygons_without_crs_are_refused(
    fused_store: Path, fields_parquet: Path, tmp_path: Path
) -> None:
    gdf = gpd.read_parquet(fields_parquet)
    gdf.geometry.array.crs = None
    gdf.to_parquet(tmp_path / "nocrs.parquet")
    with pytest.raises(InputError, match="no CRS"):
        load_labels(tmp_path / "nocrs.parquet", _grid(fused_store))


def test_polygons_in_another_crs_are_reprojected(
    fused_store: Path, fields_parquet: Path, tmp_path: Path
) -> None:
    grid = _grid(fused_store)
    native = load_labels(fields_parquet, grid)
    lonlat = load_labels(write_fields(tmp_path / "f4326.parquet", epsg=4326), grid)
    assert np.array_equal(lonlat.classes, native.classes)
    assert np.array_equal(lonlat.groups, native.groups)


def test_raster_in_another_crs_is_resampled(fused_store: Path, tmp_path: Path) -> None:
    grid = _grid(fused_store)
    truth = (np.indices(grid.shape).sum(axis=0) // 8 % 3).astype(np.int16)
    src = xr.DataArray(truth, dims=("y", "x"), coords={"y": grid["y"], "x": grid["x"]})
    src = src.rio.write_crs(grid.rio.crs).rio.write_nodata(-1)
    # the same classes on a 3857 grid of about the same resolution
    src.rio.reproject("EPSG:3857", resampling=0).rio.to_raster(tmp_path / "cls3857.tif")
    labels = load_labels(tmp_path / "cls3857.tif", grid)
    inner = (slice(2, -2), slice(2, -2))  # the edges change with the reprojected footprint
    agree = labels.classes[inner] == truth[inner]
    assert agree.mean() > 0.9
