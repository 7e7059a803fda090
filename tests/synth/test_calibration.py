"""The demo world's statistics stay in the bands of the real ones (pipeline/synth/CALIBRATION.md).

Each band is the real figure (recorded STAC items, the real sets in tests/data/real,
published cloud statistics) widened for the tiny world's small sample; the table in
CALIBRATION.md gives the source of each.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest

from pipeline.synth import World, stats
from pipeline.synth.landscape import make_landscape
from pipeline.synth.measure import world_statistics
from pipeline.synth.phenology import CROPS, WHEAT
from pipeline.synth.weather import daily_skies


@pytest.fixture(scope="module")
def measured(tiny_world: World) -> dict[str, float]:
    return world_statistics(tiny_world)


def _season_covers(cloudiness: float, seed: int = 42) -> np.ndarray:
    days = [dt.date(2024, 4, 1) + dt.timedelta(days=i) for i in range(214)]
    return np.array([sky.cover for sky in daily_skies(seed, days, (32, 32), cloudiness)])


def test_a_season_of_skies_has_the_po_valley_cloud_regime() -> None:
    covers = _season_covers(0.4)
    # Apr-Oct Po valley: ~40 % mean cloud fraction, U-shaped scene cover histogram.
    assert 0.32 <= covers.mean() <= 0.48
    assert 0.25 <= np.mean(covers < 0.1) <= 0.5, "share of near-clear days"
    assert 0.1 <= np.mean(covers == 0.0) <= 0.35, "share of clear-sky days"
    assert 0.08 <= np.mean(covers > 0.9) <= 0.3, "share of overcast days (real scenes reach 100 %)"
    lag1 = np.corrcoef(covers[:-1], covers[1:])[0, 1]
    assert 0.35 <= lag1 <= 0.8, f"day-to-day persistence {lag1:.2f}"
    assert _season_covers(0.2).mean() < covers.mean() < _season_covers(0.6).mean()


def test_landsat_and_modis_see_the_same_clouds(measured: dict[str, float]) -> None:
    # Melchiorre et al. 2020: same-day Landsat 7 / MODIS-Terra cloud fractions, R^2 = 0.83.
    assert measured["landsat_modis_cover_r2"] >= 0.7
    # The margin of the MODIS window outside the world is not counted: clear days are 0 %.
    assert measured["modis_cover_min"] < 5.0


def test_qa_misses_some_contamination_but_not_most(measured: dict[str, float]) -> None:
    assert 0.002 <= measured["qa_missed_share"] <= 0.1


def test_modis_has_the_real_gain_noise_and_fit(measured: dict[str, float]) -> None:
    # Real estarfm-2001 (aligned, 480 m blocks): red gain 0.77-0.80, NIR 0.64-0.72 with
    # bias 0.055-0.078, r^2 0.68-0.79; the tiny world has only 9 blocks: wide bands.
    assert 0.5 <= measured["modis_nir_gain"] <= 1.0
    assert 0.5 <= measured["modis_red_gain"] <= 1.0
    assert measured["modis_nir_r2"] >= 0.5 and measured["modis_red_r2"] >= 0.5
    assert measured["modis_nir_r2"] <= 0.97, "MODIS explains too much of the fine signal"


def test_land_surface_resembles_the_real_scenes(measured: dict[str, float]) -> None:
    assert 0.48 <= measured["edge_index_nir"] <= 0.65  # real 0.53-0.60
    assert 0.74 <= measured["ndvi_p99"] <= 0.92  # real 0.74-0.86
    assert 0.25 <= measured["nir_p99"] <= 0.45  # real 0.24-0.39
    # Real (this definition): lgc-2004 0.34-0.39, estarfm-2001 0.56-0.86.
    assert 0.3 <= measured["sub_coarse_change_median"] <= 0.86


def test_red_and_nir_vary_together_within_a_cover_type(tiny_world: World) -> None:
    truth = tiny_world.truth(dt.date(2024, 7, 1))
    nd = stats.ndvi(truth[2], truth[3])
    green = nd > 0.6
    # Real: r = 0.64 (estarfm-2001) and 0.68 (lgc-2004) among pixels with NDVI > 0.6.
    assert stats.red_nir_correlation(truth[2][green], truth[3][green]) >= 0.35


def test_crops_vary_within_their_class() -> None:
    land = make_landscape(256, 256, np.random.default_rng([42, 0]))
    p, classes = land.params, land.classes
    for crop in CROPS:
        sos = p["sos"][classes == crop]
        assert sos.std() >= 9.0, f"class {crop}: sowing dates sd {sos.std():.1f} days"
    wheat = classes == WHEAT
    assert 0.15 <= np.mean(p["vmax2"][wheat] > 0) <= 0.55, "wheat followed by a second crop"
