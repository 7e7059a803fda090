"""QA bits, COG validity and realism of the simulated Landsat and MODIS scenes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import rasterio
import rasterio.warp
from affine import Affine
from rasterio.enums import Resampling

from pipeline import sensors as s
from pipeline.synth import World
from pipeline.synth.clouds import smooth_field
from pipeline.synth.grid import modis_window
from pipeline.synth.phenology import WATER
from pipeline.synth.sensors_sim import MODIS_FILL, landsat_masks, landsat_scene
from tests.synth.helpers import read_asset, world_items

LANDSAT_KEYS = ("blue", "green", "red", "nir08", "swir16", "swir22")


def _assert_qa_consistent(qa: np.ndarray, labels: np.ndarray) -> None:
    cloud = (qa & s.QA_CLOUD) != 0
    dilated = (qa & s.QA_DILATED_CLOUD) != 0
    clear = (qa & s.QA_CLEAR) != 0
    assert not (clear & (cloud | dilated)).any(), "clear bit set on a cloud pixel"
    assert (clear | cloud | dilated).all(), "a pixel neither clear nor cloudy"
    assert not (qa & s.QA_FILL).any()
    water = (qa & s.QA_WATER) != 0
    assert not (water & (labels != WATER)).any()
    confidence = (qa >> 8) & 0b11
    assert (confidence[cloud] == 3).all() and (confidence[~cloud] == 1).all()


def test_qa_bits_of_every_written_scene(tiny_world: World) -> None:
    labels = tiny_world.labels()
    for item in world_items(tiny_world, "landsat-c2-l2"):
        qa = read_asset(item, "qa_pixel")
        _assert_qa_consistent(qa, labels)
        flagged = 100 * np.mean((qa & (s.QA_CLOUD | s.QA_CIRRUS)) != 0)
        assert item["properties"]["eo:cloud_cover"] == pytest.approx(flagged, abs=0.01)


def test_cloudy_scene_flags_clouds_shadows_and_brightens(tiny_world: World) -> None:
    truth, labels = tiny_world.truth(tiny_world.spec.start), tiny_world.labels()
    rng = np.random.default_rng(7)
    field = smooth_field(labels.shape, 10.0, rng)
    dn, qa, _ = landsat_scene(truth, labels, rng, landsat_masks(field, 0.4))
    _assert_qa_consistent(qa, labels)
    refl = dn * s.LANDSAT_C2_L2.scale + s.LANDSAT_C2_L2.offset
    cloud, shadow = (qa & s.QA_CLOUD) != 0, (qa & s.QA_CLOUD_SHADOW) != 0
    clear = (qa & s.LANDSAT_INVALID_BITS) == 0
    assert cloud.any() and shadow.any() and clear.any()
    assert refl[0][cloud].mean() > 3 * refl[0][clear].mean()
    assert refl[3][shadow].mean() < refl[3][clear].mean()


def test_landsat_cogs_are_tiled_with_overviews_and_match_the_item(tiny_world: World) -> None:
    item = world_items(tiny_world, "landsat-c2-l2")[0]
    for key in (*LANDSAT_KEYS, "qa_pixel"):
        path = Path(item["assets"][key]["href"].removeprefix("file://"))
        with rasterio.open(path) as src:
            assert src.profile["tiled"] and src.overviews(1)
            assert src.crs.to_epsg() == item["properties"]["proj:epsg"]
            assert list(src.transform)[:6] == item["properties"]["proj:transform"]
            assert list(src.shape) == item["properties"]["proj:shape"]
            assert src.dtypes[0] == item["assets"][key]["raster:bands"][0]["data_type"]
            assert src.nodata == item["assets"][key]["raster:bands"][0]["nodata"]


def test_modis_cogs_are_on_the_sinusoidal_window_with_fill_where_qa_says(tiny_world: World) -> None:
    window = modis_window(tiny_world.grid)
    any_fill = False
    for item in world_items(tiny_world, "modis-43A4-061"):
        qa = read_asset(item, "BRDF_Albedo_Band_Mandatory_Quality_Band1")
        red = read_asset(item, "Nadir_Reflectance_Band1")
        assert red.shape == window.shape and red.dtype == np.int16
        assert ((red == MODIS_FILL) == (qa == 255)).all()
        assert set(np.unique(qa)) <= {0, 1, 255}
        any_fill |= bool((qa == 255).any())
    assert any_fill, "the outer ring of the window lies outside the world and must be fill"
    with rasterio.open(
        Path(item["assets"]["Nadir_Reflectance_Band2"]["href"].removeprefix("file://"))
    ) as src:
        assert src.crs.to_epsg() is None and "Sinusoidal" in src.crs.to_wkt()
        assert src.profile["tiled"]


def _real(shared_data: Path, name: str, size: int) -> np.ndarray:
    """A real ENVI BSQ int16 x1e4 raster as (3, y, x) reflectance: green, red, nir."""
    return np.fromfile(shared_data / "real" / name, dtype="<i2").reshape(3, size, size) / 1e4


def _clear_landsat(tiny_world: World) -> tuple[dict, np.ndarray]:
    """The clearest Landsat scene of the world: (item, (band, y, x) reflectance, NaN = invalid)."""
    item = min(
        world_items(tiny_world, "landsat-c2-l2"), key=lambda i: i["properties"]["eo:cloud_cover"]
    )
    invalid = s.LANDSAT_C2_L2.invalid_from_qa(read_asset(item, "qa_pixel"))
    bands = [s.LANDSAT_C2_L2.to_reflectance(read_asset(item, k)) for k in LANDSAT_KEYS]
    refl = np.stack(bands)
    refl[:, invalid] = np.nan
    return item, refl


def test_reflectance_statistics_resemble_real_landsat(tiny_world: World, shared_data: Path) -> None:
    # Two real TM scenes: summer cropland (2001) and late-autumn mixed cover (2004); the
    # demo world also has a river and villages, hence the loose spread bounds.
    real_sets = [
        _real(shared_data, "estarfm-2001/tm0711", 400).reshape(3, -1),
        _real(shared_data, "lgc-2004/Landsat20041126", 480).reshape(3, -1),
    ]
    _, refl = _clear_landsat(tiny_world)
    ours = refl[[1, 2, 3]].reshape(3, -1)
    ours = ours[:, np.isfinite(ours).all(axis=0)]
    for b, name in enumerate(("green", "red", "nir")):
        lo, med, hi = np.percentile(ours[b], [5, 50, 95])
        real = np.array([np.percentile(r[b], [5, 50, 95]) for r in real_sets])
        spreads = real[:, 2] - real[:, 0]
        assert lo >= 0.0 and hi <= 0.6, name
        assert 0.5 * real[:, 1].min() <= med <= 2.0 * real[:, 1].max(), f"{name}: median {med:.3f}"
        assert 0.5 * spreads.min() <= hi - lo <= 2.5 * spreads.max(), (
            f"{name}: spread {hi - lo:.3f}"
        )
    ndvi = (ours[2] - ours[1]) / (ours[2] + ours[1])
    veg_ratio = np.median(ours[2][ndvi > 0.5] / ours[1][ndvi > 0.5])
    real_ratios = []
    for r in real_sets:
        real_ndvi = (r[2] - r[1]) / (r[2] + r[1])
        real_ratios.append(np.median(r[2][real_ndvi > 0.5] / r[1][real_ndvi > 0.5]))
    assert 0.5 * min(real_ratios) <= veg_ratio <= 2.0 * max(real_ratios), f"NIR/red {veg_ratio:.1f}"


def test_modis_block_means_correlate_with_landsat(tiny_world: World) -> None:
    item, refl = _clear_landsat(tiny_world)
    day = item["properties"]["datetime"][:10]
    modis = next(
        i
        for i in world_items(tiny_world, "modis-43A4-061")
        if i["properties"]["datetime"][:10] == day
    )
    window = modis_window(tiny_world.grid)
    # The MODIS scenes are misregistered by the world's modis_shift_m (real estarfm-2001:
    # ~540 m); Landsat placed with that shift is what they must match.
    shifted = Affine.translation(*tiny_world.spec.modis_shift_m) * tiny_world.grid.transform
    # Landsat red/nir averaged onto the MODIS pixels vs MODIS bands 1/2.
    for canon, key in ((2, "Nadir_Reflectance_Band1"), (3, "Nadir_Reflectance_Band2")):
        coarse = np.full(window.shape, np.nan, dtype=np.float32)
        rasterio.warp.reproject(
            refl[canon].astype(np.float32),
            coarse,
            src_transform=shifted,
            src_crs=tiny_world.grid.crs,
            dst_transform=window.transform,
            dst_crs=window.crs,
            src_nodata=np.nan,
            dst_nodata=np.nan,
            resampling=Resampling.average,
        )
        dn = read_asset(modis, key)
        valid = np.isfinite(coarse) & (dn != MODIS_FILL)
        assert valid.sum() >= 10
        r = np.corrcoef(coarse[valid], dn[valid] * 1e-4)[0, 1]
        assert r > 0.8, f"{key}: r = {r:.2f}"
