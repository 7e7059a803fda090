"""Products run on a contract-layout store: COG/GeoParquet outputs, STAC round-trip, versions."""

from __future__ import annotations

import json
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
    assert pix.crs.to_epsg() == 32632 and {"crop", "field_id", "ndvi_doy061"} <= set(pix.columns)
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


def test_crop_map_has_colour_table_and_class_names(outputs: dict[str, Path]) -> None:
    with rasterio.open(outputs["crop_map"]) as src:
        cmap = src.colormap(1)
        tags = src.tags()
        assert src.descriptions == ("crop class",)
        assert src.profile.get("tiled") or src.block_shapes[0][0] < src.height
    assert cmap[255][3] == 0 and all(cmap[c][3] == 255 for c in (0, 1, 2))
    assert {tags["CLASS_0"], tags["CLASS_1"], tags["CLASS_2"]} == {"crop0", "crop1", "crop2"}
    with rasterio.open(outputs["crop_probability"]) as src:
        assert src.descriptions == tuple(f"probability of crop{c}" for c in range(src.count))


def test_each_variable_carries_its_own_attributes(outputs: dict[str, Path]) -> None:
    import xarray as xr

    ds = xr.open_zarr(outputs["indices"])
    assert "flag_masks" not in ds["weight"].attrs
    assert ds["weight"].attrs["long_name"].startswith("confidence")
    assert ds["ndvi"].attrs["long_name"].startswith("normalized difference vegetation")
    assert ds["ndvi_smooth"].attrs["smoother"] == "whittaker"


def test_feed_columns_sit_on_the_calendar_grid(outputs: dict[str, Path]) -> None:
    pix = gpd.read_parquet(outputs["pixel_samples"])
    ndvi_cols = [c for c in pix.columns if c.startswith("ndvi_doy")]
    # 200 days from 1 March 2024 (day of year 61) to 16 September (260): every 10-day
    # period from day 61 to day 251, the last one partial, none dropped
    assert ndvi_cols[0] == "ndvi_doy061" and ndvi_cols[-1] == "ndvi_doy251"
    assert len(ndvi_cols) == 20


def test_stac_items_load_with_stackstac_and_odc_stac(outputs: dict[str, Path]) -> None:
    import odc.stac
    import stackstac

    coll = pystac.Collection.from_file(str(outputs["stac"]))
    items = {i.id: i for i in coll.get_items()}
    crop = items["crop_map"]
    # the item as served (JSON); pystac's reader drops proj:epsg when migrating
    raw = json.loads(Path(crop.get_self_href()).read_text())
    assert raw["properties"]["proj:epsg"] == 32632
    raw["assets"]["crop_map"]["href"] = crop.assets["crop_map"].get_absolute_href()
    with rasterio.open(outputs["crop_map"]) as src:
        expected = src.read(1)
    stacked = stackstac.stack(
        [raw],
        assets=["crop_map"],
        dtype="uint8",
        fill_value=np.uint8(255),
        rescale=False,
        snap_bounds=False,  # the grid is not aligned to multiples of 30 m
    )
    assert stacked.shape[-2:] == expected.shape
    assert np.array_equal(np.asarray(stacked.isel(time=0, band=0).values), expected)
    loaded = odc.stac.load([crop], bands=["crop_map"])
    assert np.array_equal(np.asarray(loaded["crop_map"].isel(time=0).values), expected)
    store = items["fusion-store"]
    assert "cube:dimensions" in store.properties and "red" in store.properties["cube:variables"]
    assert not Path(store.assets["zarr"].href).is_absolute()
    assert store.assets["zarr"].get_absolute_href().endswith("fusion.zarr")
    assert not Path(crop.properties["stf:source_store"]).is_absolute()


def test_run_is_never_overwritten_silently(fused_store: Path, outputs: dict[str, Path]) -> None:
    out_root = outputs["manifest"].parents[2]
    with pytest.raises(StoreError, match="--overwrite"):
        run_products(fused_store, ProductsSpec(ndvi=True), out_root, run_id="r1")
    again = run_products(
        fused_store, ProductsSpec(ndvi=True), out_root, run_id="r1", overwrite=True
    )
    assert "crop_map" not in again and again["indices"].exists()
