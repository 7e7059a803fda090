"""Masking and merging on crafted arrays: scale/offset, nodata, real QA values, same-day merge."""

from __future__ import annotations

import dask.array as da
import numpy as np
import pandas as pd
import xarray as xr

from pipeline.cube.mask import clear_fraction, masked_cube, merge_same_day
from pipeline.sensors import LANDSAT_C2_L2, MODIS_43A4

CLEAR, CLOUD, SHADOW, FILL = 21824, 22280, 23888, 1


def _raw(values: dict[str, list], dtype: dict[str, str]) -> xr.Dataset:
    """(time=1, y=1, x=n) variables from flat lists."""
    return xr.Dataset(
        {k: (("time", "y", "x"), np.array([[v]], dtype=dtype[k])) for k, v in values.items()},
        coords={"time": pd.to_datetime(["2024-06-08"])},
    )


def test_landsat_dn_qa_to_reflectance() -> None:
    dn = [0, 10000, 20000, 30000, 40000]
    qa = [FILL, CLEAR, CLOUD, SHADOW, CLEAR]
    raw = _raw(
        {"red": dn, "nir08": dn, "qa_pixel": qa},
        dict.fromkeys(["red", "nir08", "qa_pixel"], "uint16"),
    )
    cube = masked_cube(raw, LANDSAT_C2_L2, ("red", "nir"))
    assert cube.dims == ("time", "band", "y", "x") and cube.dtype == np.float32
    assert list(cube.band.values) == ["red", "nir"]
    got = cube.sel(band="red").values.ravel()
    expected = LANDSAT_C2_L2.to_reflectance(np.array(dn, np.uint16))
    expected[[2, 3]] = np.nan  # cloud, shadow
    np.testing.assert_array_equal(got, expected)
    assert np.isfinite(got).tolist() == [False, True, False, False, True]


def test_modis_quality_masks_only_its_own_band() -> None:
    raw = _raw(
        {
            "Nadir_Reflectance_Band1": [32767, 500, 600],
            "Nadir_Reflectance_Band2": [3000, 3100, 3200],
            "BRDF_Albedo_Band_Mandatory_Quality_Band1": [0, 1, 255],
            "BRDF_Albedo_Band_Mandatory_Quality_Band2": [0, 2, 0],
        },
        {
            "Nadir_Reflectance_Band1": "int16",
            "Nadir_Reflectance_Band2": "int16",
            "BRDF_Albedo_Band_Mandatory_Quality_Band1": "uint8",
            "BRDF_Albedo_Band_Mandatory_Quality_Band2": "uint8",
        },
    )
    cube = masked_cube(raw, MODIS_43A4, ("red", "nir")).values[0, :, 0]
    np.testing.assert_allclose(cube[0], [np.nan, 0.05, np.nan], rtol=1e-6)
    np.testing.assert_allclose(cube[1], [0.30, np.nan, 0.32], rtol=1e-6)
    assert clear_fraction(masked_cube(raw, MODIS_43A4, ("red", "nir"))).values.tolist() == [0.0]


def test_masking_stays_lazy() -> None:
    qa = da.from_array(np.full((2, 4, 4), CLEAR, np.uint16), chunks=(1, 2, 2))
    dn = da.from_array(np.full((2, 4, 4), 10000, np.uint16), chunks=(1, 2, 2))
    raw = xr.Dataset({"red": (("time", "y", "x"), dn), "qa_pixel": (("time", "y", "x"), qa)})
    cube = masked_cube(raw, LANDSAT_C2_L2, ("red",))
    assert isinstance(cube.data, da.Array)
    assert clear_fraction(cube).values.tolist() == [1.0, 1.0]


def test_same_day_scenes_merge_first_valid_value() -> None:
    nan = np.nan
    cube = xr.DataArray(
        np.array([[[[0.1, nan, nan]]], [[[0.2, 0.3, nan]]], [[[0.5, 0.6, 0.7]]]], np.float32),
        dims=("time", "band", "y", "x"),
        coords={
            "time": pd.to_datetime(["2024-06-08T10:00", "2024-06-08T10:01", "2024-06-16T10:00"])
        },
    )
    day = xr.DataArray(
        pd.to_datetime(["2024-06-08", "2024-06-08", "2024-06-16"]).values, dims="time"
    )
    merged = merge_same_day(cube, day)
    assert merged.dims == cube.dims
    assert merged.time.values.tolist() == day.values[[0, 2]].tolist()
    expected = np.array([[0.1, 0.3, nan], [0.5, 0.6, 0.7]], np.float32)
    np.testing.assert_array_equal(merged.values[:, 0, 0], expected)
    single = merge_same_day(cube.isel(time=[0, 2]), day.isel(time=[0, 2]))
    assert single.time.values.tolist() == day.values[[0, 2]].tolist()
