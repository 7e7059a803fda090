"""Sensor table: scale, offset, nodata and QA decoding against real QA values and real items."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from pipeline.config import BANDS
from pipeline.sensors import (
    COARSE_SENSORS,
    FINE_SENSORS,
    LANDSAT_C2_L2,
    MODIS_09A1,
    MODIS_43A4,
    sensor,
)

#: Real items recorded from Planetary Computer, read in place (never copied into the repo).
STAC = Path(__file__).resolve().parent / "data" / "stac"

# Real Landsat C2 QA_PIXEL values (USGS Landsat 8-9 C2 L2 guide, table 6-3).
QA_CLEAR_LAND = 21824  # bits 6 (clear) + low-confidence cloud/shadow/snow/cirrus
QA_CLEAR_WATER = 21952
QA_CLOUD_HIGH = 22280  # bit 3 cloud, high confidence
QA_SHADOW = 23888  # bit 4 cloud shadow
QA_FILL = 1


def _features(name: str) -> list[dict]:
    return json.loads((STAC / name).read_text())["features"]


def test_landsat_scale_offset_and_nodata() -> None:
    dn = np.array([0, 7273, 43636, 65535], dtype=np.uint16)
    refl = LANDSAT_C2_L2.to_reflectance(dn)
    assert refl.dtype == np.float32
    assert np.isnan(refl[0])
    np.testing.assert_allclose(
        refl[1:], [7273 * 2.75e-5 - 0.2, 43636 * 2.75e-5 - 0.2, 1.6022125], atol=1e-6
    )


def test_modis_scale_and_declared_fill() -> None:
    dn = np.array([32767, 0, 1234, -100], dtype=np.int16)
    refl = MODIS_43A4.to_reflectance(dn)
    assert np.isnan(refl[0])
    np.testing.assert_allclose(refl[1:], [0.0, 0.1234, -0.01], rtol=1e-6)


def test_landsat_qa_real_values() -> None:
    qa = np.array([QA_CLEAR_LAND, QA_CLEAR_WATER, QA_CLOUD_HIGH, QA_SHADOW, QA_FILL], np.uint16)
    assert LANDSAT_C2_L2.invalid_from_qa(qa).tolist() == [False, False, True, True, True]


def test_modis_quality_flags() -> None:
    assert MODIS_43A4.invalid_from_qa(np.array([0, 1, 2, 255], np.uint8)).tolist() == [
        False,
        False,
        True,
        True,
    ]
    # MOD09 state: cloudy (01), mixed (10), shadow bit 2, fill 65535 are unusable.
    state = np.array([0b0, 0b01, 0b10, 0b100, 65535, 0b1000], np.uint16)
    assert MODIS_09A1.invalid_from_qa(state).tolist() == [False, True, True, True, True, False]


def test_every_canonical_band_maps_for_landsat_and_43a4() -> None:
    for band in BANDS:
        assert LANDSAT_C2_L2.asset_for(band)
        assert MODIS_43A4.asset_for(band)
    with pytest.raises(KeyError, match="modis-09Q1-061 has no band 'blue'"):
        COARSE_SENSORS["modis-09Q1-061"].asset_for("blue")
    with pytest.raises(KeyError, match="unknown collection"):
        sensor("sentinel-2-l2a")


@pytest.mark.parametrize("feature", _features("landsat-c2-l2-items.json"), ids=lambda f: f["id"])
def test_real_landsat_items_have_our_assets_and_scaling(feature: dict) -> None:
    sens = FINE_SENSORS[feature["collection"]]
    for band in BANDS:
        asset = feature["assets"][sens.asset_for(band)]
        (rb,) = asset["raster:bands"]
        assert (rb["scale"], rb["offset"], rb["nodata"]) == (sens.scale, sens.offset, sens.nodata)
        assert rb["data_type"] == sens.dtype
    (qa,) = feature["assets"][sens.qa_asset]["raster:bands"]
    assert qa["nodata"] == sens.qa_nodata


@pytest.mark.parametrize("feature", _features("modis-061-items.json"), ids=lambda f: f["id"])
def test_real_modis_items_have_our_assets_and_scaling(feature: dict) -> None:
    sens = COARSE_SENSORS[feature["collection"]]
    for band, key in sens.assets.items():
        (rb,) = feature["assets"][key]["raster:bands"]
        assert rb["scale"] == sens.scale, band
        assert rb.get("offset", 0.0) == sens.offset
        assert rb["data_type"] == sens.dtype
    for key in (sens.qa_asset, *sens.qa_per_band.values()):
        if key is not None:
            assert key in feature["assets"]
