"""Products run on a contract-layout store: COG/GeoParquet outputs, STAC round-trip, versions."""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import numpy as np
import pystac
import pytest
import rasterio

from pipeline.config import ProductsSpec
from pipeline.errors import StoreError
from pipeline.products import run_products
from pipeline.products.stac import check_collection


@pytest.fixture(scope="module")
def outputs(
    fused_store: Path, fields_parquet: Path, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, Path]:
    spec = ProductsSpec(ndvi=True, phenology=True, cropmap=True, feeds=True, labels=fields_parquet)
    return run_products(fused_store, spec, tmp_path_factory.mktemp("out"), run_id="r1")


def test_cog_outputs_carry_crs(outputs: dict[str, Path]) -> None:
    with rasterio.open(outputs["crop_map"]) as src:
        assert src.crs.to_epsg() == 32632 and src.dtypes[0] == "uint8" and src.nodata == 255
        crop = src.read(1)
    assert set(np.unique(crop)) <= {0, 1, 2}
    with rasterio.open(outputs["phenology_sos"]) as src:
        assert src.crs.to_epsg() == 32632


def test_feeds_geoparquet_readable(outputs: dict[str, Path]) -> None:
    pix = gpd.read_parquet(outputs["pixel_samples"])
    assert pix.crs.to_epsg() == 32632 and {"crop", "field_id", "ndvi_t00"} <= set(pix.columns)
    fields = gpd.read_parquet(outputs["field_features"])
    assert len(fields) == 16 and (fields["n_pixels"] == 36).all()
    assert fields.geom_type.eq("Polygon").all() and "pheno_sos_mean" in fields.columns


def test_stac_round_trip(outputs: dict[str, Path]) -> None:
    assert check_collection(outputs["stac"]) == []
    coll = pystac.Collection.from_file(str(outputs["stac"]))
    items = {i.id: i for i in coll.get_items()}
    assert {"indices", "phenology", "crop_map", "pixel_samples", "field_features"} <= set(items)
    crop = items["crop_map"]
    assert crop.properties["proj:code"] == "EPSG:32632"
    assert crop.assets["crop_map"].extra_fields["raster:bands"][0]["data_type"] == "uint8"
    assert not Path(crop.assets["crop_map"].href).is_absolute()  # self-contained, movable
    assert -180 <= crop.bbox[0] < crop.bbox[2] <= 180


def test_run_is_never_overwritten_silently(fused_store: Path, outputs: dict[str, Path]) -> None:
    out_root = outputs["manifest"].parents[2]
    with pytest.raises(StoreError, match="--overwrite"):
        run_products(fused_store, ProductsSpec(ndvi=True), out_root, run_id="r1")
    again = run_products(
        fused_store, ProductsSpec(ndvi=True), out_root, run_id="r1", overwrite=True
    )
    assert "crop_map" not in again and again["indices"].exists()
