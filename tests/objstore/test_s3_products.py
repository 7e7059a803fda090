"""Every product of a store on S3, read through ``pipeline.store`` and written beside it."""

from __future__ import annotations

import json
from pathlib import Path

import fsspec
import geopandas as gpd
import pytest
import rasterio

from pipeline.config import ProductsSpec
from pipeline.errors import StoreError
from pipeline.products import run_products
from tests.products.storegen import write_fields, write_store


@pytest.fixture(scope="module")
def s3_store(s3_endpoint: str, tmp_path_factory: pytest.TempPathFactory) -> str:
    """The products tests' 200-day synthetic store, uploaded to the loopback S3 API."""
    local = write_store(tmp_path_factory.mktemp("store") / "fusion.zarr")
    url = "s3://stf-test/products-store/fusion.zarr"
    fs, path = fsspec.core.url_to_fs(url)
    fs.put(str(local), path, recursive=True)
    return url


@pytest.mark.slow
def test_every_product_of_an_s3_store_is_written_beside_it(s3_store: str, tmp_path: Path) -> None:
    labels = write_fields(tmp_path / "fields.parquet")
    spec = ProductsSpec(ndvi=True, phenology=True, cropmap=True, feeds=True, labels=labels)
    outputs = run_products(s3_store, spec, tmp_path / "unused", run_id="r1")
    prefix = "s3://stf-test/products-store/products/r1"
    assert all(str(path).startswith(prefix + "/") for path in outputs.values()), outputs
    assert outputs["manifest"].parent == prefix
    assert not (tmp_path / "unused").exists()
    fs, _ = fsspec.core.url_to_fs(prefix)
    manifest = json.loads(fs.cat_file(str(outputs["manifest"])))
    assert manifest["store"] == s3_store and "crop_map" in manifest["outputs"]
    assert fs.exists(f"{prefix.removeprefix('s3://')}/stac/collection.json")
    pixels = gpd.read_parquet(str(outputs["pixel_samples"]))
    assert len(pixels) > 0 and pixels.crs.to_epsg() == 32632
    with fs.open(str(outputs["crop_map"])) as fh, rasterio.open(fh) as src:
        assert src.crs.to_epsg() == 32632 and src.dtypes[0] == "uint8"
    with pytest.raises(StoreError, match="already exists"):
        run_products(s3_store, ProductsSpec(ndvi=True), tmp_path, run_id="r1")
