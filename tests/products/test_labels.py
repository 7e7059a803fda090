"""Labels from polygons: integer class ids keep their names; missing CRS is refused."""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
import rioxarray  # noqa: F401  (registers .rio)
import xarray as xr

from pipeline.errors import InputError
from pipeline.products.labels import load_labels


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
