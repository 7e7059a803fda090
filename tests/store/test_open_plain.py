"""A store opened as a stranger would: only xarray, zarr and rioxarray on the reading side."""

from __future__ import annotations

import datetime as dt
import json
import warnings
from pathlib import Path

import numpy as np
import pytest
import rioxarray  # noqa: F401  (registers the .rio accessor)
import xarray as xr
import zarr
from pyproj import CRS

from pipeline.store.layout import FUSED, Grid, StoreLayout
from pipeline.store.write import DONE, finalize_store, prepare_store, write_block

DAYS = [dt.date(2024, 6, 1) + dt.timedelta(days=i) for i in range(10)]
LAYOUT = StoreLayout(("green", "red", "nir"), chunk_time=366, chunk_y=16, chunk_x=16)


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A 10-day store written by the pipeline, every block committed, finalised."""
    grid = Grid(
        y=5_000_000 - 15 - 30 * np.arange(20, dtype=np.float64),
        x=600_000 + 15 + 30 * np.arange(24, dtype=np.float64),
        crs_wkt=CRS.from_epsg(32632).to_wkt(),
    )
    url = str(tmp_path_factory.mktemp("plain") / "fusion.zarr")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no library warning may leak from the write path
        prepare_store(url, grid, DAYS, LAYOUT, "plain")
        for by, (y0, y1) in enumerate(((0, 16), (16, 20))):
            for bx, (x0, x1) in enumerate(((0, 16), (16, 24))):
                shape = (len(DAYS), y1 - y0, x1 - x0)
                dims = ("time", "y", "x")
                block = xr.Dataset(
                    {n: (dims, np.full(shape, 0.11599999, np.float32)) for n in LAYOUT.packed}
                )
                block["ref_before_days"] = (dims, np.zeros(shape, np.int16))
                block["ref_after_days"] = (dims, np.ones(shape, np.int16))
                block["quality"] = (dims, np.full(shape, FUSED, np.uint8))
                region = {"time": slice(0, 10), "y": slice(y0, y1), "x": slice(x0, x1)}
                write_block(url, block, region, (by, bx), np.full(10, DONE, np.uint8))
        finalize_store(url, {"stf_provenance": json.dumps({"model": {"name": "starfm"}})})
    return url


def test_values_decode_to_float32_on_the_1e4_grid(store: str) -> None:
    ds = xr.open_zarr(store)
    for name in ("green", "red", "nir", "ndvi", "uncertainty"):
        assert ds[name].dtype == np.float32, name
    assert float(ds["red"][0, 0, 0]) == pytest.approx(0.116, abs=1e-7)
    assert ds["quality"].dtype == np.uint8


def test_time_chunk_fits_the_time_axis(store: str) -> None:
    ds = xr.open_zarr(store)
    assert ds["red"].encoding["chunks"][0] == len(DAYS)
    assert zarr.open_array(f"{store}/red").chunks[0] <= len(DAYS)


def test_block_done_is_skipped_and_rio_reproject_works(store: str) -> None:
    ds = xr.open_zarr(store, decode_coords="all")
    assert "block_done" not in ds.data_vars and "block_done" in ds.coords
    assert int(ds["block_done"].min()) == DONE
    out = ds.rio.reproject("EPSG:4326")
    assert out.rio.crs.to_epsg() == 4326
    assert set(out.data_vars) >= {"red", "quality", "uncertainty"}
    assert np.nanmax(out["red"].values) == pytest.approx(0.116, abs=1e-6)


def test_cf_and_acdd_attributes(store: str) -> None:
    ds = xr.open_zarr(store)
    assert ds["red"].attrs["standard_name"] == "surface_bidirectional_reflectance"
    assert ds["red"].attrs["ancillary_variables"].split()[:2] == ["quality", "uncertainty"]
    assert ds["ndvi"].attrs["ancillary_variables"].startswith("quality uncertainty")
    assert ds["uncertainty"].attrs["standard_name"].endswith("standard_error")
    assert ds["quality"].attrs["standard_name"].endswith("status_flag")
    attrs = ds.attrs
    assert "ACDD-1.3" in attrs["Conventions"]
    assert attrs["time_coverage_start"] == "2024-06-01"
    assert attrs["time_coverage_end"] == "2024-06-10"
    assert 44 < attrs["geospatial_lat_min"] < attrs["geospatial_lat_max"] < 46
    assert attrs["summary"] and attrs["keywords"]


def test_stf_info_prints_days_bands_completion_coverage_provenance(
    store: str, capsys: pytest.CaptureFixture[str]
) -> None:
    from pipeline.cli import main

    assert main(["info", store]) == 0
    out = capsys.readouterr().out
    assert "2024-06-01 .. 2024-06-10 (10 days)" in out
    assert "green, red, nir" in out
    assert "100.0% final" in out and "100.0% fused" in out
    assert "model        starfm" in out
    assert main(["info", str(Path(store).parent / "nothing.zarr")]) == 2
    assert "no fused store" in capsys.readouterr().err
